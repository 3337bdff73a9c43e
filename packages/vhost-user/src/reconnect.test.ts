/**
 * Reconnect: a back-end that restarts loses none of the messages the
 * front-end sent (re-submission from the used index), in both socket modes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VhostUserBackend } from './backend.js';
import { deviceEndpoint, driverEndpoint, MessageChannel } from './channel.js';
import { anyPeer } from './connection.js';
import { hasBit, ProtocolFeature } from './defs.js';
import { VhostUserFrontend } from './frontend.js';
import { VirtioNetDevice } from './net-device.js';
import { NET_DRIVER_FEATURES, VirtioNetDriver } from './net-driver.js';
import { pollUntil } from './test-support/until.js';

let dir: string;
const cleanup: (() => void)[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), `vipc-vhu-rc-${process.pid}-`));
});
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
  rmSync(dir, { recursive: true, force: true });
});

const until = (cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> =>
  pollUntil(cond, what, timeoutMs, 5);

function msg(i: number): Uint8Array {
  const m = new Uint8Array(32 + (i % 200));
  new DataView(m.buffer).setUint32(0, i, true);
  return m;
}

/** A back-end "process": device, back-end and a channel that records message numbers. */
function backendInstance(seen: number[], inflight = false) {
  const device = new VirtioNetDevice();
  const backend = new VhostUserBackend({ device, inflight });
  const channel = new MessageChannel(deviceEndpoint(device));
  channel.on('message', (m: Uint8Array) =>
    seen.push(new DataView(m.buffer, m.byteOffset).getUint32(0, true)),
  );
  return {
    device,
    backend,
    channel,
    /** A crash: the connection drops, nothing is stopped in order. */
    crash() {
      channel.close();
      backend.close();
    },
  };
}

describe('reconnect', () => {
  for (const [packed, inflight] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as const) {
    const what = `${packed ? 'packed' : 'split'}${inflight ? ', INFLIGHT_SHMFD on both sides' : ''}`;
    it(`back-end as server restarts mid-stream; every message arrives (${what})`, async () => {
      const path = join(dir, `srv-${packed}-${inflight}.sock`);
      const seen: number[] = [];
      const errors: Error[] = [];
      const b1 = backendInstance(seen, inflight);
      const l1 = b1.backend.listen(path, { policy: anyPeer });
      cleanup.push(
        () => l1.close(),
        () => b1.crash(),
      );
      const fe = await VhostUserFrontend.connect(path, {
        queueCount: 2,
        queueSize: 64,
        packed,
        inflight,
        features: NET_DRIVER_FEATURES,
        policy: anyPeer,
        reconnect: true,
      });
      cleanup.push(() => fe.close());
      expect(hasBit(b1.backend.protocolFeatures, ProtocolFeature.INFLIGHT_SHMFD)).toBe(inflight);
      const driver = new VirtioNetDriver(fe);
      cleanup.push(() => driver.close());
      const ch = new MessageChannel(driverEndpoint(driver));
      const total = 3000;
      const sending = ch.sendBatch(Array.from({ length: total }, (_, i) => msg(i)));
      await until(() => seen.length >= 500, 'the first back-end to receive 500 messages');
      b1.crash();
      l1.close();
      const first = seen.length;
      expect(first).toBeLessThan(total);
      const b2 = backendInstance(seen, inflight);
      b2.backend.on('queue-error', (_q: unknown, e: Error) => errors.push(e));
      let started = 0;
      b2.backend.on('queue-start', () => started++);
      const l2 = b2.backend.listen(path, { policy: anyPeer });
      cleanup.push(
        () => l2.close(),
        () => b2.crash(),
      );
      await sending;
      await until(() => new Set(seen).size === total, 'every message across both back-ends');
      expect([...new Set(seen)].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i));
      // each back-end saw its messages in order
      const second = seen.slice(first);
      expect(second).toEqual([...second].sort((a, b) => a - b));
      expect(errors).toEqual([]);
      expect(started).toBeGreaterThanOrEqual(2);
      // with INFLIGHT_SHMFD the restarted back-end tracks every running queue in the buffer it was given
      const running = b2.backend.queues.filter((q) => q.ready);
      expect(running.length).toBeGreaterThan(0);
      for (const q of running) expect(q.inflight !== undefined).toBe(inflight);
    });
  }

  it('front-end as server, back-end as client: a restarted back-end resumes; every message arrives', async () => {
    const path = join(dir, 'fe-srv.sock');
    const seen: number[] = [];
    const b1 = backendInstance(seen);
    cleanup.push(() => b1.crash());
    const feP = VhostUserFrontend.listen(path, {
      queueCount: 2,
      queueSize: 64,
      features: NET_DRIVER_FEATURES,
      policy: anyPeer,
    });
    const served1 = b1.backend.connect(path, { policy: anyPeer, timeoutMs: 10_000 });
    const fe = await feP;
    cleanup.push(() => fe.close());
    const driver = new VirtioNetDriver(fe);
    cleanup.push(() => driver.close());
    const ch = new MessageChannel(driverEndpoint(driver));
    const total = 3000;
    const sending = ch.sendBatch(Array.from({ length: total }, (_, i) => msg(i)));
    await until(() => seen.length >= 500, 'the first back-end to receive 500 messages');
    b1.crash();
    await served1;
    const b2 = backendInstance(seen);
    cleanup.push(() => b2.crash());
    const reconnected = new Promise((r) => fe.once('reconnect', r));
    void b2.backend.connect(path, { policy: anyPeer, reconnect: true });
    await reconnected;
    await sending;
    await until(() => new Set(seen).size === total, 'every message across both back-ends');
    expect([...new Set(seen)].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i));
  });

  it('close() ends a client-mode back-end that waits for its socket (reconnect on): connect() resolves', async () => {
    const b = backendInstance([]);
    // without the abort it would wait ten minutes for the socket, then reject
    const served = b.backend.connect(join(dir, 'nobody-listens.sock'), {
      reconnect: true,
      timeoutMs: 600_000,
      policy: anyPeer,
    });
    b.crash();
    await expect(served).resolves.toBeUndefined();
    expect(b.backend.connected).toBe(false);
  });

  it('the front-end re-sends SET_MEM_TABLE mid-stream (as DPDK does when its heap grows): no loss', async () => {
    const path = join(dir, 'remap.sock');
    const seen: number[] = [];
    const b = backendInstance(seen);
    const l = b.backend.listen(path, { policy: anyPeer });
    cleanup.push(
      () => l.close(),
      () => b.crash(),
    );
    let tables = 0;
    b.backend.on('memory', () => tables++);
    const fe = await VhostUserFrontend.connect(path, {
      queueCount: 2,
      queueSize: 64,
      features: NET_DRIVER_FEATURES,
      policy: anyPeer,
    });
    cleanup.push(() => fe.close());
    const driver = new VirtioNetDriver(fe);
    cleanup.push(() => driver.close());
    const ch = new MessageChannel(driverEndpoint(driver));
    const total = 3000;
    const sending = ch.sendBatch(Array.from({ length: total }, (_, i) => msg(i)));
    for (let k = 0; k < 5; k++) {
      await until(() => seen.length >= 400 * (k + 1), `${400 * (k + 1)} messages`);
      await fe.sendMemoryTable();
    }
    await sending;
    await until(() => seen.length === total, 'every message');
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => i));
    // an identical table is recognised and keeps its mapping
    expect(tables).toBe(1);
  });
});
