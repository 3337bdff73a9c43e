/**
 * Interop: the vipc front-end (memfd guest memory, no hugepages) against the
 * real DPDK 22.11 testpmd vhost PMD (net_vhost).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DpdkProcess } from '@vipc/dpdk';
import { leftoversOf, testpmdAvailable } from '@vipc/dpdk/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VhostUserFrontend } from './frontend.js';
import { NET_DRIVER_FEATURES, VirtioNetDriver } from './net-driver.js';
import { lastRxPackets, startTestpmd, totalsOf } from './test-support/testpmd.js';
import { pollUntil } from './test-support/until.js';

const available = testpmdAvailable();

let dir: string;
let testpmd: DpdkProcess | undefined;
let frontend: VhostUserFrontend | undefined;
let driver: VirtioNetDriver | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), `vipc-vhu-fe-${process.pid}-`));
});
afterEach(async () => {
  driver?.close();
  driver = undefined;
  frontend?.close();
  frontend = undefined;
  await testpmd?.stop({ timeoutMs: 5000 });
  testpmd = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const until = (cond: () => boolean, what: string, timeoutMs = 60_000): Promise<void> =>
  pollUntil(cond, what, timeoutMs, 10);

function ethernet(i: number): Uint8Array {
  const f = new Uint8Array(64);
  f.set([0x02, 0, 0, 0, 0, 2], 0);
  f.set([0x02, 0, 0, 0, 0, 1], 6);
  f.set([0x08, 0x00], 12);
  new DataView(f.buffer).setUint32(20, i);
  return f;
}

async function sendAll(d: VirtioNetDriver, total: number, first = 0): Promise<void> {
  for (let i = 0; i < total; ) {
    const batch = Array.from({ length: Math.min(32, total - i) }, (_, k) => ethernet(first + i + k));
    const n = d.sendBatch(batch);
    i += n;
    if (n < batch.length) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 10);
        d.once('writable', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

describe.runIf(available)('vipc front-end -> DPDK testpmd net_vhost', () => {
  for (const packed of [false, true]) {
    const ring = packed ? 'packed' : 'split';
    it(`testpmd rxonly counts exactly what vipc sent (${ring} ring, memfd memory)`, async () => {
      const sock = join(dir, 'vhost.sock');
      const prefix = `vhf${process.pid}${packed ? 'p' : 's'}`;
      testpmd = startTestpmd({
        prefix,
        vdev: { driver: 'net_vhost', iface: sock, queues: 1 },
        forwardMode: 'rxonly',
        mainLcore: 1,
      });
      frontend = await VhostUserFrontend.connect(sock, {
        queueCount: 2,
        queueSize: 256,
        packed,
        features: NET_DRIVER_FEATURES,
        timeoutMs: 60_000,
        replyTimeoutMs: 30_000,
      });
      await testpmd.waitFor('link-up', 60_000);
      // testpmd snapshots its counters when forwarding starts: send only after that
      await testpmd.waitFor(/Port statistics =+/, 60_000);
      driver = new VirtioNetDriver(frontend);
      const total = 20_000;
      await sendAll(driver, total);
      await until(() => lastRxPackets(testpmd!) >= total, 'testpmd to count every frame');
      driver.close();
      driver = undefined;
      await frontend.stop();
      frontend = undefined;
      const totals = totalsOf(await testpmd.stop());
      testpmd = undefined;
      expect(totals.rxPackets).toBe(total);
      expect(leftoversOf(prefix, 0, [sock])).toEqual([]);
    });

    it(`testpmd macswap returns every frame to vipc (${ring} ring)`, async () => {
      const sock = join(dir, 'vhost2.sock');
      const prefix = `vhm${process.pid}${packed ? 'p' : 's'}`;
      testpmd = startTestpmd({
        prefix,
        vdev: { driver: 'net_vhost', iface: sock, queues: 1 },
        forwardMode: 'macswap',
        mainLcore: 1,
      });
      frontend = await VhostUserFrontend.connect(sock, {
        queueCount: 2,
        queueSize: 256,
        packed,
        features: NET_DRIVER_FEATURES,
        timeoutMs: 60_000,
        replyTimeoutMs: 30_000,
      });
      await testpmd.waitFor('link-up', 60_000);
      // testpmd snapshots its counters when forwarding starts: send only after that
      await testpmd.waitFor(/Port statistics =+/, 60_000);
      let back = 0;
      let swapped = 0;
      const seen = new Set<number>();
      driver = new VirtioNetDriver(frontend, {
        onFrame: (f) => {
          back++;
          // macswap: destination and source MACs exchanged
          if (f[5] === 1 && f[11] === 2) swapped++;
          seen.add(new DataView(f.buffer, f.byteOffset, f.length).getUint32(20));
        },
      });
      const total = 5_000;
      // a window smaller than the receive ring: testpmd drops what it cannot transmit at once,
      // so keep at most 128 frames in flight
      for (let sent = 0; sent < total; sent += 32) {
        await until(() => sent - back <= 96, 'frames to come back');
        await sendAll(driver, Math.min(32, total - sent), sent);
      }
      await until(() => back >= total, 'every frame to come back');
      driver.close();
      driver = undefined;
      await frontend.stop();
      frontend = undefined;
      const totals = totalsOf(await testpmd.stop());
      testpmd = undefined;
      expect(back).toBe(total);
      expect(swapped).toBe(total);
      expect(seen.size).toBe(total);
      expect(totals.rxPackets).toBe(total);
      expect(totals.txPackets).toBe(total);
      expect(leftoversOf(prefix, 0, [sock])).toEqual([]);
    });
  }
});
