/**
 * Hostile front-ends: rings that point outside guest memory, absurd indexes,
 * region fds that shrink. Each gives a clear error, nothing leaks, the
 * process survives and the back-end serves the next front-end. And a hostile
 * back-end: a GET_VRING_BASE answered for another ring.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFdCount, Seal } from '@vipc/shm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VhostUserBackend } from './backend.js';
import { closeAll } from './codec.js';
import { anyPeer, type Connection, VhostUserListener } from './connection.js';
import { bit, DeviceStatus, FrontendRequest as R, VirtioFeature } from './defs.js';
import type { BackendQueue } from './device.js';
import type { VhostUserError } from './errors.js';
import { VhostUserFrontend } from './frontend.js';
import type { VringState } from './messages.js';
import { VirtioNetDevice } from './net-device.js';
import { NET_DRIVER_FEATURES, VirtioNetDriver } from './net-driver.js';
import { pollUntil } from './test-support/until.js';

let dir: string;
let sock: string;
let backend: VhostUserBackend;
let device: VirtioNetDevice;
let listener: VhostUserListener;
let queueErrors: [BackendQueue, VhostUserError][];
const cleanup: (() => void)[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), `vipc-vhu-sec-${process.pid}-`));
  sock = join(dir, 's.sock');
  device = new VirtioNetDevice();
  backend = new VhostUserBackend({ device });
  queueErrors = [];
  backend.on('queue-error', (q: BackendQueue, e: VhostUserError) => queueErrors.push([q, e]));
  listener = backend.listen(sock, { policy: anyPeer });
});
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
  backend.close();
  listener.close();
  rmSync(dir, { recursive: true, force: true });
});

const until = (cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> =>
  pollUntil(cond, what, timeoutMs, 5);

async function frontend(): Promise<VhostUserFrontend> {
  const fe = await VhostUserFrontend.connect(sock, {
    queueCount: 2,
    queueSize: 64,
    features: NET_DRIVER_FEATURES,
    policy: anyPeer,
  });
  cleanup.push(() => fe.close());
  return fe;
}

/** Writes a split descriptor and makes it available on queue `qi`, then kicks. */
function hostileChain(
  fe: VhostUserFrontend,
  qi: number,
  desc: { addr: bigint; len: number; flags: number; next: number },
  availIdx = 1,
  head = 0,
): void {
  const q = fe.queues[qi]!;
  const d = fe.memory.slice(q.addresses.desc + BigInt(16 * head), 16);
  const v = new DataView(d.buffer, d.byteOffset, 16);
  v.setBigUint64(0, desc.addr, true);
  v.setUint32(8, desc.len, true);
  v.setUint16(12, desc.flags, true);
  v.setUint16(14, desc.next, true);
  const a = fe.memory.slice(q.addresses.avail, 4 + 2 * 64);
  const av = new DataView(a.buffer, a.byteOffset, a.length);
  av.setUint16(4, head, true);
  av.setUint16(2, availIdx, true);
  q.notify();
}

describe('hostile rings', () => {
  it('a descriptor outside guest memory breaks only that queue, with a clear error', async () => {
    const before = openFdCount();
    const fe = await frontend();
    hostileChain(fe, 1, { addr: 0xdead00000000n, len: 100, flags: 0, next: 0 });
    await until(() => queueErrors.length === 1, 'the queue error');
    const [q, err] = queueErrors[0]!;
    expect(q.index).toBe(1);
    expect(err.code).toBe('QUEUE_BROKEN');
    expect(err.message).toMatch(/queue 1 is broken/);
    expect(backend.connected).toBe(true);
    expect(backend.queues[1]!.ready).toBe(false);
    // the other direction still works
    const driver = new VirtioNetDriver(fe);
    cleanup.push(() => driver.close());
    let got = 0;
    driver.onFrame = () => got++;
    await until(() => device.linkUp(0), 'the receive queue');
    expect(device.send(new Uint8Array(60))).toBe(true);
    await until(() => got === 1, 'a frame on the healthy queue');
    for (const f of cleanup.splice(0).reverse()) f();
    await until(() => !backend.connected, 'the disconnect');
    // the next front-end gets fresh queues
    const fe2 = await frontend();
    const d2 = new VirtioNetDriver(fe2);
    cleanup.push(() => d2.close());
    expect(d2.send(new Uint8Array(80))).toBe(true);
    await until(() => device.stats.received === 1, 'a frame from the next front-end');
    for (const f of cleanup.splice(0).reverse()) f();
    await until(() => openFdCount() === before, 'fds back to the start count');
  });

  it('an avail index that jumps beyond the ring size, a head beyond the table, a descriptor loop', async () => {
    for (const [desc, idx, head, rule] of [
      [{ addr: 0x40000000n, len: 16, flags: 0, next: 0 }, 1000, 0, /avail|index/i],
      [{ addr: 0x40000000n, len: 16, flags: 0, next: 0 }, 1, 64, /head|descriptor index|out of range/i],
      [{ addr: 0x40000000n, len: 16, flags: 1, next: 0 }, 1, 0, /loop|chain/i],
    ] as const) {
      queueErrors = [];
      const fe = await frontend();
      if (head >= 64) {
        // a head id past the table: write the bad id straight into the avail ring
        const q = fe.queues[1]!;
        const a = fe.memory.slice(q.addresses.avail, 6);
        const av = new DataView(a.buffer, a.byteOffset, 6);
        av.setUint16(4, head, true);
        av.setUint16(2, idx, true);
        q.notify();
      } else hostileChain(fe, 1, desc, idx, head);
      await until(() => queueErrors.length === 1, `the queue error (${rule})`);
      expect(queueErrors[0]![1].code).toBe('QUEUE_BROKEN');
      expect(queueErrors[0]![1].message).toMatch(rule);
      expect(backend.connected).toBe(true);
      for (const f of cleanup.splice(0).reverse()) f();
      await until(() => !backend.connected, 'the disconnect');
    }
  });

  it('a broken ring sets DEVICE_NEEDS_RESET in GET_STATUS until the front-end resets the device (SET_STATUS 0)', async () => {
    const before = openFdCount();
    const fe = await frontend();
    const status = async (): Promise<bigint> =>
      (await fe.connection.request(R.GET_STATUS, 'none', undefined, 'u64')).body;
    const setStatus = async (s: number): Promise<bigint> =>
      (await fe.connection.request(R.SET_STATUS, 'u64', BigInt(s), 'u64', { needReply: true })).body;
    const S = DeviceStatus;
    const ok = S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK;
    expect(await status()).toBe(BigInt(ok));
    const reported: number[] = [];
    backend.on('status', (st: number) => reported.push(st));
    hostileChain(fe, 1, { addr: 0xdead00000000n, len: 100, flags: 0, next: 0 });
    await until(() => queueErrors.length === 1, 'the queue error');
    expect(await status()).toBe(BigInt(ok | S.DEVICE_NEEDS_RESET));
    expect(reported).toEqual([ok | S.DEVICE_NEEDS_RESET]);
    // the driver writing its status again does not clear it: only a reset does
    expect(await setStatus(ok)).toBe(0n);
    expect(await status()).toBe(BigInt(ok | S.DEVICE_NEEDS_RESET));
    expect(backend.queues[1]!.failure).toBeDefined();
    expect(await setStatus(0)).toBe(0n);
    expect(await status()).toBe(0n);
    expect(backend.queues[1]!.failure).toBeUndefined();
    expect(backend.queues[1]!.started).toBe(false);
    expect(backend.connected).toBe(true);
    for (const f of cleanup.splice(0).reverse()) f();
    await until(() => !backend.connected, 'the disconnect');
    await until(() => openFdCount() === before, 'fds back to the start count');
  });

  it('with requireSeals, memory fds that could shrink (SIGBUS) are refused', async () => {
    backend.close();
    listener.close();
    device = new VirtioNetDevice();
    backend = new VhostUserBackend({ device, requireSeals: Seal.SHRINK });
    const errors: VhostUserError[] = [];
    backend.on('connection-error', (e: VhostUserError) => errors.push(e));
    backend.on('request-error', (e: VhostUserError) => errors.push(e));
    listener = backend.listen(sock, { policy: anyPeer });
    await expect(frontend()).rejects.toThrow(/failed request 5/);
    expect(errors[0]?.message).toMatch(/lacks the required seals/);
  });
});

describe('a hostile back-end', () => {
  /**
   * A back-end that answers what the front-end's handshake needs (no protocol
   * features: no acks) and every GET_VRING_BASE with `answer(index)`.
   */
  function fakeBackend(path: string, answer: (s: VringState) => VringState): VhostUserListener {
    const l = VhostUserListener.listen(path, { role: 'backend', policy: anyPeer });
    l.on('connection', (conn: Connection) => {
      void (async () => {
        for (;;) {
          let msg: Awaited<ReturnType<Connection['receive']>>;
          try {
            msg = await conn.receive();
          } catch {
            conn.close();
            return;
          }
          closeAll(msg.fds);
          if (msg.request === R.GET_FEATURES) conn.reply(msg.request, 'u64', bit(VirtioFeature.VERSION_1));
          else if (msg.request === R.GET_VRING_BASE)
            conn.reply(msg.request, 'vringState', answer(msg.body as VringState));
        }
      })();
    });
    return l;
  }

  it('a GET_VRING_BASE reply naming another ring fails stop() clearly, and the front-end still closes', async () => {
    const before = openFdCount();
    const path = join(dir, 'fake.sock');
    const fake = fakeBackend(path, (s) => ({ index: s.index === 0 ? 1 : s.index, num: 7 }));
    cleanup.push(() => fake.close());
    const fe = await VhostUserFrontend.connect(path, {
      queueCount: 2,
      queueSize: 64,
      features: NET_DRIVER_FEATURES,
      policy: anyPeer,
    });
    cleanup.push(() => fe.close());
    await expect(fe.stop()).rejects.toMatchObject({
      code: 'UNEXPECTED_REPLY',
      message: 'GET_VRING_BASE for queue 0 was answered for queue 1',
    });
    expect(fe.connection.closed).toBe(true);
    for (const f of cleanup.splice(0).reverse()) f();
    await until(() => openFdCount() === before, 'fds back to the start count');
  });

  it('a back-end that names the ring asked for is taken at its word', async () => {
    const path = join(dir, 'fake.sock');
    const fake = fakeBackend(path, (s) => ({ index: s.index, num: 40 + s.index }));
    cleanup.push(() => fake.close());
    const fe = await VhostUserFrontend.connect(path, {
      queueCount: 2,
      queueSize: 64,
      features: NET_DRIVER_FEATURES,
      policy: anyPeer,
    });
    cleanup.push(() => fe.close());
    expect(await fe.stop()).toEqual([40, 41]);
  });
});
