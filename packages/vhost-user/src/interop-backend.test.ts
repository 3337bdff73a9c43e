/**
 * Interop: the real DPDK 22.11 testpmd, as a virtio-user front-end
 * (net_virtio_user, --no-huge memfd memory), against our back-end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DpdkProcess } from '@vipc/dpdk';
import { leftoversOf, testpmdAvailable } from '@vipc/dpdk/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VhostUserBackend } from './backend.js';
import { anyPeer, type VhostUserListener } from './connection.js';
import { VirtioNetDevice } from './net-device.js';
import { lastRxPackets, type PeerOptions, startTestpmd, totalsOf } from './test-support/testpmd.js';
import { pollUntil } from './test-support/until.js';

const available = testpmdAvailable();

let dir: string;
let testpmd: DpdkProcess | undefined;
let listener: VhostUserListener | undefined;
let backend: VhostUserBackend | undefined;
/** Every testpmd a test started: stopped (and its runtime dir removed) after the test in any case. */
const started: DpdkProcess[] = [];

function testpmdPeer(o: PeerOptions): DpdkProcess {
  const p = startTestpmd(o);
  started.push(p);
  return p;
}

/** testpmd in txonly (64-byte frames) on a virtio-user port to our socket. */
const txonly = (
  prefix: string,
  path: string,
  extra: { packedVq?: boolean; server?: boolean } = {},
): PeerOptions => ({
  prefix,
  vdev: { driver: 'net_virtio_user', path, queues: 1, ...extra },
  forwardMode: 'txonly',
  txpkts: 64,
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), `vipc-vhu-${process.pid}-`));
});
afterEach(async () => {
  for (const p of started.splice(0)) await p.stop({ timeoutMs: 5000 });
  testpmd = undefined;
  backend?.close();
  backend = undefined;
  listener?.close();
  listener = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const until = (cond: () => boolean, what: string, timeoutMs = 60_000): Promise<void> =>
  pollUntil(cond, what, timeoutMs, 20);

describe.runIf(available)('DPDK testpmd virtio-user -> vipc back-end', () => {
  for (const packed of [false, true]) {
    it(`receives exactly the packets testpmd sent (txonly, ${packed ? 'packed' : 'split'} ring)`, async () => {
      const sock = join(dir, 'vhu.sock');
      const device = new VirtioNetDevice();
      let bytes = 0;
      let bad = 0;
      device.onFrame = (frame) => {
        bytes += frame.length;
        if (frame.length !== 64) bad++;
      };
      const errors: string[] = [];
      backend = new VhostUserBackend({ device, log: (l) => errors.push(l) });
      let memoryTables = 0;
      backend.on('memory', () => memoryTables++);
      let negotiated = 0n;
      backend.on('queue-start', () => {
        negotiated = backend!.features;
      });
      listener = backend.listen(sock, { policy: anyPeer });
      const prefix = `vhu${process.pid}${packed ? 'p' : 's'}`;
      testpmd = testpmdPeer(txonly(prefix, sock, { packedVq: packed }));
      await until(() => device.stats.received >= 20_000, 'the first 20000 packets', 90_000);
      expect(backend.connected).toBe(true);
      expect(backend.queues[1]!.started).toBe(true);
      const totals = totalsOf(await testpmd.stop());
      testpmd = undefined;
      await until(() => !backend!.connected, 'the front-end to disconnect', 30_000);
      expect(errors).toEqual([]);
      expect(totals.txPackets).toBeGreaterThanOrEqual(20_000);
      expect(device.stats.received + device.stats.discarded).toBe(totals.txPackets);
      expect(device.stats.discarded).toBe(0);
      expect(bad).toBe(0);
      expect(bytes).toBe(64 * device.stats.received);
      expect(memoryTables).toBeGreaterThanOrEqual(1);
      expect((negotiated & (1n << 34n)) !== 0n, 'packed ring negotiated').toBe(packed);
      expect((negotiated & (1n << 32n)) !== 0n, 'VERSION_1 negotiated').toBe(true);
    });
  }

  for (const packed of [false, true]) {
    it(`testpmd rxonly counts exactly the frames the vipc back-end sent (${packed ? 'packed' : 'split'} ring)`, async () => {
      const sock = join(dir, 'vhu-rx.sock');
      const device = new VirtioNetDevice();
      const errors: string[] = [];
      backend = new VhostUserBackend({ device, log: (l) => errors.push(l) });
      listener = backend.listen(sock, { policy: anyPeer });
      testpmd = testpmdPeer({
        prefix: `vhu${process.pid}r${packed ? 'p' : 's'}`,
        vdev: { driver: 'net_virtio_user', path: sock, queues: 1, packedVq: packed },
        forwardMode: 'rxonly',
      });
      await until(() => device.linkUp(0), 'the receive queue to start', 90_000);
      // testpmd snapshots its counters when forwarding starts: send only after that
      await testpmd.waitFor(/Port statistics =+/, 90_000);
      const frame = new Uint8Array(60);
      frame.fill(0xff, 0, 6); // broadcast
      frame.set([0x02, 0, 0, 0, 0, 1], 6);
      frame.set([0x08, 0x00], 12);
      const total = 20_000;
      let sent = 0;
      while (sent < total) {
        const batch = Array.from({ length: Math.min(64, total - sent) }, () => frame);
        const n = device.sendBatch(batch);
        sent += n;
        if (n < batch.length) {
          // back-pressure: wait for the driver to post buffers (or re-check shortly)
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, 20);
            device.once('writable', () => {
              clearTimeout(t);
              resolve();
            });
          });
        }
      }
      expect(device.stats.sent).toBe(total);
      // let testpmd poll the last frames before it is stopped
      await until(() => lastRxPackets(testpmd!) >= total, 'testpmd to count them', 60_000);
      const totals = totalsOf(await testpmd.stop());
      testpmd = undefined;
      expect(totals.rxPackets).toBe(total);
      expect(errors).toEqual([]);
    });
  }

  it('a testpmd killed mid-stream leaves the back-end ready; the next testpmd is counted exactly', async () => {
    const sock = join(dir, 'vhu-restart.sock');
    const device = new VirtioNetDevice();
    const errors: string[] = [];
    backend = new VhostUserBackend({ device, log: (l) => errors.push(l) });
    let disconnects = 0;
    backend.on('disconnect', () => disconnects++);
    listener = backend.listen(sock, { policy: anyPeer });
    const first = testpmdPeer(txonly(`vhu${process.pid}k`, sock));
    await until(() => device.stats.received >= 5_000, 'the first testpmd to send', 90_000);
    first.kill('SIGKILL');
    await first.exited;
    await until(() => disconnects === 1 && !backend!.connected, 'the back-end to notice', 30_000);
    expect(leftoversOf(`vhu${process.pid}k`)).toEqual([]);
    const before = device.stats.received;
    testpmd = testpmdPeer(txonly(`vhu${process.pid}k2`, sock));
    await until(() => device.stats.received - before >= 10_000, 'the second testpmd to send', 90_000);
    const totals = totalsOf(await testpmd.stop());
    testpmd = undefined;
    await until(() => !backend!.connected, 'the second front-end to disconnect', 30_000);
    expect(device.stats.received - before).toBe(totals.txPackets);
    expect(errors).toEqual([]);
    expect(leftoversOf(`vhu${process.pid}k2`)).toEqual([]);
  });

  it('client socket mode: testpmd virtio-user as server (server=1), our back-end connects; a restarted back-end is served again', async () => {
    const sock = join(dir, 'vhu-client.sock');
    const device = new VirtioNetDevice();
    const errors: string[] = [];
    backend = new VhostUserBackend({ device, log: (l) => errors.push(l) });
    testpmd = testpmdPeer(txonly(`vhu${process.pid}c`, sock, { server: true }));
    const served = backend.connect(sock, { timeoutMs: 60_000, policy: anyPeer });
    await until(() => device.stats.received >= 10_000, 'packets from testpmd', 90_000);
    // the back-end "restarts": a new one connects to the same testpmd
    backend.close();
    await served;
    const device2 = new VirtioNetDevice();
    const backend2 = new VhostUserBackend({ device: device2, log: (l) => errors.push(l) });
    const served2 = backend2.connect(sock, { timeoutMs: 60_000, policy: anyPeer });
    try {
      await until(() => device2.stats.received >= 10_000, 'packets after the restart', 30_000).catch((e) => {
        console.log(
          'DBG',
          device2.stats,
          errors,
          backend2.connected,
          backend2.queues.map((q) => [
            q.started,
            q.enabled,
            q.ring !== undefined,
            q.failure?.message,
            q.stats,
          ]),
          testpmd?.lastLines.slice(-30).join('\n'),
        );
        throw e;
      });
      const totals = totalsOf(await testpmd.stop());
      testpmd = undefined;
      await served2;
      expect(device.stats.received + device2.stats.received).toBeLessThanOrEqual(totals.txPackets);
      expect(errors).toEqual([]);
    } finally {
      backend2.close();
    }
  });

  for (const packed of [true, false]) {
    const ring = packed ? 'packed' : 'split';
    it(`testpmd as server (server=1, ${ring} ring) killed and restarted mid-stream: our back-end reconnects, the new testpmd is counted exactly, nothing left behind`, async () => {
      const sock = join(dir, `vhu-srv-${ring}.sock`);
      const device = new VirtioNetDevice();
      const errors: string[] = [];
      backend = new VhostUserBackend({ device, log: (l) => errors.push(l) });
      let connects = 0;
      let disconnects = 0;
      backend.on('connect', () => connects++);
      backend.on('disconnect', () => disconnects++);
      const negotiated: bigint[] = [];
      backend.on('queue-start', () => negotiated.push(backend!.features));
      const p1 = `vhu${process.pid}sk${ring[0]}`;
      const p2 = `vhu${process.pid}sr${ring[0]}`;
      const first = testpmdPeer(txonly(p1, sock, { server: true, packedVq: packed }));
      // client mode with reconnect: when testpmd goes away, connect again (waiting for a new socket)
      const served = backend.connect(sock, {
        reconnect: true,
        timeoutMs: 60_000,
        intervalMs: 50,
        policy: anyPeer,
      });
      await until(() => device.stats.received >= 5_000, 'the first testpmd to send', 90_000);
      first.kill('SIGKILL');
      const killed = await first.exited;
      expect(killed.signal).toBe('SIGKILL');
      await until(() => disconnects === 1 && !backend!.connected, 'the back-end to notice', 30_000);
      // the supervisor removed the dead testpmd's runtime dir and socket
      expect(leftoversOf(p1, 0, [sock])).toEqual([]);
      const before = device.stats.received;
      testpmd = testpmdPeer(txonly(p2, sock, { server: true, packedVq: packed }));
      await until(() => connects === 2, 'the back-end to reconnect to the new testpmd', 90_000);
      await until(() => device.stats.received - before >= 10_000, 'the second testpmd to send', 90_000);
      const totals = totalsOf(await testpmd.stop());
      testpmd = undefined;
      await until(() => disconnects === 2 && !backend!.connected, 'the second testpmd to disconnect', 30_000);
      // exact: every frame the second testpmd counted as sent was received, and nothing else
      expect(totals.txPackets).toBeGreaterThanOrEqual(10_000);
      expect(device.stats.received - before).toBe(totals.txPackets);
      expect(device.stats.discarded).toBe(0);
      expect(negotiated.length).toBeGreaterThanOrEqual(2);
      for (const f of negotiated) expect((f & (1n << 34n)) !== 0n, 'packed ring negotiated').toBe(packed);
      expect(errors).toEqual([]);
      backend.close();
      await served;
      expect(leftoversOf(p1, 0, [sock])).toEqual([]);
      expect(leftoversOf(p2, 0, [sock])).toEqual([]);
    });
  }
});
