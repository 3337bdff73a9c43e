/**
 * Interop: the real DPDK 22.11 testpmd re-sends SET_MEM_TABLE while its
 * virtio-user port is up and sending, and our back-end loses nothing.
 *
 * DPDK's dynamic memory mode (hugepages, no -m/--socket-mem, no --no-huge)
 * allocates pages as its heap needs them; virtio-user registers for those
 * memory events and, on each, disables its rings (SET_VRING_ENABLE 0), sends
 * the new table and enables them again, while the forwarding lcore keeps
 * filling the ring. To grow the heap after link-up, the test attaches a
 * second virtio-user port (8 queue pairs of 4096 entries: several MB of ring
 * memzones) at the interactive prompt, served by a second back-end.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hugepagePools, mountHugetlbfs, setHugepageCount, unmountHugetlbfs } from '@vipc/dpdk';
import { leftoversOf, rootAvailable, testpmdAvailable } from '@vipc/dpdk/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VhostUserBackend } from './backend.js';
import { anyPeer, type VhostUserListener } from './connection.js';
import type { BackendQueue, VirtioDevice } from './device.js';
import { VirtioNetDevice } from './net-device.js';
import { interactiveTestpmd } from './test-support/testpmd.js';
import { pollUntil } from './test-support/until.js';

const PAGES = 192; // 384 MiB of 2 MiB pages: testpmd with 16384 mbufs uses well under half

const available = testpmdAvailable() && rootAvailable();

let dir: string;
const cleanups: (() => void | Promise<void>)[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), `vipc-vhu-remap-${process.pid}-`));
});
afterEach(async () => {
  const errors: unknown[] = [];
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c();
    } catch (e) {
      errors.push(e);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  if (errors.length > 0) throw errors[0];
});

const until = (cond: () => boolean, what: string, timeoutMs = 60_000): Promise<void> =>
  pollUntil(cond, what, timeoutMs, 20);

function pool2M(): number {
  const p = hugepagePools().find((x) => x.sizeKb === 2048);
  if (!p) throw new Error('no 2 MiB hugepage pool in sysfs');
  return p.total;
}

/** Reserves `pages` more 2 MiB pages and mounts a private hugetlbfs capped at them; undone by cleanups. */
function privateHugetlbfs(pages: number): string {
  const { previous, current } = setHugepageCount(pool2M() + pages);
  const reserved = Math.max(0, current - previous);
  cleanups.push(() => {
    // give back exactly what this test added (others may have changed the pool meanwhile)
    if (reserved > 0) setHugepageCount(Math.max(0, pool2M() - reserved));
  });
  if (reserved < pages / 2) throw new Error(`could reserve only ${reserved} of ${pages} hugepages`);
  const huge = join(dir, 'huge');
  mountHugetlbfs(huge, { pageSize: '2M', size: `${2 * reserved}M` });
  cleanups.push(() => {
    for (const f of readdirSync(huge)) rmSync(join(huge, f), { force: true });
    unmountHugetlbfs(huge, { removeDir: true });
  });
  return huge;
}

describe.runIf(available)('DPDK testpmd dynamic memory: repeated SET_MEM_TABLE after link-up', () => {
  for (const [packed, mode] of [
    [false, 'event'],
    [true, 'event'],
    [false, 'poll'],
    [true, 'poll'],
  ] as const) {
    // poll mode looks at the rings all the time, also while they are disabled
    it(`testpmd's heap grows mid-stream: SET_MEM_TABLE with rings disabled around it, no frame lost (${packed ? 'packed' : 'split'} ring, ${mode} mode)`, async () => {
      const huge = privateHugetlbfs(PAGES);
      const errors: string[] = [];
      const device = new VirtioNetDevice({ onFrame: () => {} });
      const backend = new VhostUserBackend({ device, mode, log: (l) => errors.push(l) });
      const listener: VhostUserListener = backend.listen(join(dir, 'a.sock'), { policy: anyPeer });
      cleanups.push(() => {
        backend.close();
        listener.close();
      });
      // the second port's back-end (its own queues make testpmd's heap grow)
      const device2 = new VirtioNetDevice({ queuePairs: 8 });
      const backend2 = new VhostUserBackend({ device: device2, log: (l) => errors.push(`second: ${l}`) });
      const listener2 = backend2.listen(join(dir, 'b.sock'), { policy: anyPeer });
      cleanups.push(() => {
        backend2.close();
        listener2.close();
      });

      const tables: { remapped: boolean; receivedBefore: number }[] = [];
      backend.on('memory-table', (e: { regions: number; remapped: boolean }) =>
        tables.push({ remapped: e.remapped, receivedBefore: device.stats.received }),
      );
      // SET_VRING_ENABLE transitions of the queue testpmd transmits on (device queue 1)
      const txEnable: { enabled: boolean; received: number; held: boolean }[] = [];
      // (VirtioNetDevice has no queueChanged hook of its own: the back-end calls it when set)
      (device as VirtioDevice).queueChanged = (q: BackendQueue): void => {
        if (q.index === 1 && txEnable.at(-1)?.enabled !== q.enabled) {
          // held: frames the driver made available while the ring was disabled
          txEnable.push({
            enabled: q.enabled,
            received: device.stats.received,
            held: q.enabled && q.hasAvailable(),
          });
        }
      };

      const prefix = `vhurm${process.pid}${packed ? 'p' : 's'}${mode[0]}`;
      // the back-ends above run in this event loop: start testpmd without blocking it
      const launching = interactiveTestpmd({
        prefix,
        vdev: { driver: 'net_virtio_user', path: join(dir, 'a.sock'), queues: 1, packedVq: packed },
        forwardMode: 'txonly',
        txpkts: 64,
        hugeDir: huge,
      });
      cleanups.push(async () => {
        await (await launching.catch(() => undefined))?.process.stop({ timeoutMs: 5000 });
      });
      const testpmd = await launching;
      await testpmd.command('show port summary all', { timeoutMs: 90_000 });
      const tablesAtInit = tables.length;
      expect(tablesAtInit).toBeGreaterThanOrEqual(1);
      expect(backend.queues[1]!.started).toBe(true);

      await testpmd.command('start');
      await until(() => device.stats.received >= 20_000, 'traffic before the remap', 90_000);
      const beforeAttach = tables.length;
      const attach = await testpmd.command(
        `port attach net_virtio_user1,path=${join(dir, 'b.sock')},queues=8,queue_size=4096${packed ? ',packed_vq=1' : ''}`,
        { timeoutMs: 90_000 },
      );
      expect(attach).toMatch(/Port 1 is attached/);
      // DPDK's heap grew: at least one new table (a real remap: the segment file grew) after traffic flowed
      const remaps = (): typeof tables => tables.slice(beforeAttach).filter((t) => t.remapped);
      await until(() => remaps().length > 0, 'a SET_MEM_TABLE after the attach', 30_000).catch(() => {});
      expect(
        remaps().length,
        `SET_MEM_TABLEs after the attach: ${JSON.stringify(tables)}`,
      ).toBeGreaterThanOrEqual(1);
      expect(remaps()[0]!.receivedBefore).toBeGreaterThanOrEqual(20_000);
      const atRemap = device.stats.received;
      await until(() => device.stats.received >= atRemap + 20_000, 'traffic after the remap', 90_000);

      // the rings were disabled around the table and enabled again, with traffic on both sides
      const pause = txEnable.findIndex((t, i) => i > 0 && !t.enabled && t.received >= 20_000);
      expect(pause, JSON.stringify(txEnable)).toBeGreaterThan(0);
      expect(txEnable[pause + 1]?.enabled, JSON.stringify(txEnable)).toBe(true);

      // stop forwarding first (packets left in the ring at exit are never counted), then read the totals
      const sent = (await testpmd.stop()).accumulated.txPackets;
      await until(() => device.stats.received >= sent, `all ${sent} frames`, 30_000);
      await testpmd.quit();
      await until(() => !backend.connected, 'the front-end to disconnect', 30_000);

      expect(sent).toBeGreaterThanOrEqual(atRemap + 20_000);
      expect(device.stats.received).toBe(sent);
      expect(device.stats.discarded).toBe(0);
      expect(device.stats.receivedBytes).toBe(64 * sent);
      expect(errors).toEqual([]);
      // testpmd's runtime dir and its hugepage files are gone
      expect(leftoversOf(prefix)).toEqual([]);
    });
  }
});
