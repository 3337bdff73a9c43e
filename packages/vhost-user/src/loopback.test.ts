/** A real vipc front-end and back-end over a Unix socket in a temp dir. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Fd, fstat, openFdCount } from '@vipc/shm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VhostUserBackend } from './backend.js';
import { anyPeer, type VhostUserListener } from './connection.js';
import { bit, DeviceStatus, FrontendRequest as R, VirtioNetFeature } from './defs.js';
import { VhostUserFrontend } from './frontend.js';
import type { PayloadBodies } from './messages.js';
import { VirtioNetDevice } from './net-device.js';
import { NET_DRIVER_FEATURES, VirtioNetDriver } from './net-driver.js';
import { pollUntil } from './test-support/until.js';

let dir: string;
const cleanup: (() => void)[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), `vipc-vhu-lb-${process.pid}-`));
});
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
  rmSync(dir, { recursive: true, force: true });
});

export const until = (cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> =>
  pollUntil(cond, what, timeoutMs, 5);

/** A vipc front-end (no driver yet) and a back-end serving `device`. */
async function connected(
  name: string,
  opts: { packed?: boolean; mode?: 'event' | 'poll'; device?: VirtioNetDevice; features?: bigint } = {},
) {
  const sock = join(dir, `${name}.sock`);
  const device = opts.device ?? new VirtioNetDevice();
  const errors: string[] = [];
  const backend = new VhostUserBackend({ device, log: (l) => errors.push(l), mode: opts.mode ?? 'event' });
  const listener: VhostUserListener = backend.listen(sock, { policy: anyPeer });
  cleanup.push(
    () => listener.close(),
    () => backend.close(),
  );
  const frontend = await VhostUserFrontend.connect(sock, {
    queueCount: 2,
    queueSize: 64,
    features: opts.features ?? NET_DRIVER_FEATURES,
    packed: opts.packed ?? false,
    policy: anyPeer,
  });
  cleanup.push(() => frontend.close());
  return { device, backend, frontend, errors };
}

async function pair(
  opts: { packed?: boolean; mode?: 'event' | 'poll'; disabledTx?: 'hold' | 'discard'; txBatch?: number } = {},
) {
  const c = await connected('lb', {
    ...opts,
    device: new VirtioNetDevice({ disabledTx: opts.disabledTx, txBatch: opts.txBatch }),
  });
  const driver = new VirtioNetDriver(c.frontend, { mode: opts.mode ?? 'event' });
  cleanup.push(() => driver.close());
  return { ...c, driver };
}

/** connected(), with the transmit ring started. */
async function bare(name: string, opts: Parameters<typeof connected>[1] = {}) {
  const c = await connected(name, opts);
  await until(() => c.backend.queues[1]?.ready === true, 'the transmit ring to start');
  return c;
}

describe('vipc front-end <-> vipc back-end', () => {
  for (const packed of [false, true]) {
    it(`a transmit queue disabled and enabled again (DPDK's pause around SET_MEM_TABLE) holds its frames, none lost (${packed ? 'packed' : 'split'})`, async () => {
      const { device, driver, frontend, backend, errors } = await pair({ packed });
      const seen: number[] = [];
      device.onFrame = (f) => seen.push(f[0]!);
      const frame = (i: number): Uint8Array => new Uint8Array(64).fill(i, 0, 1);
      for (let i = 0; i < 10; i++) expect(driver.send(frame(i))).toBe(true);
      await until(() => seen.length === 10, 'the first frames');
      await frontend.setQueueEnabled(1, false);
      for (let i = 10; i < 30; i++) expect(driver.send(frame(i))).toBe(true);
      await frontend.sendMemoryTable();
      backend.pollOnce(); // the device looks at the disabled ring: it must leave it alone
      expect(seen.length).toBe(10);
      expect(device.stats.discarded).toBe(0);
      await frontend.setQueueEnabled(1, true);
      await until(() => seen.length === 30, 'the frames held while disabled');
      expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => i));
      expect(device.stats.discarded).toBe(0);
      expect(errors).toEqual([]);
    });
  }

  it("disabledTx 'discard': a disabled transmit queue processes and discards (the spec's literal rule)", async () => {
    const { device, driver, frontend, backend, errors } = await pair({ disabledTx: 'discard' });
    let seen = 0;
    device.onFrame = () => seen++;
    expect(driver.send(new Uint8Array(64))).toBe(true);
    await until(() => seen === 1, 'the first frame');
    await frontend.setQueueEnabled(1, false);
    for (let i = 0; i < 5; i++) expect(driver.send(new Uint8Array(64))).toBe(true);
    backend.pollOnce();
    await until(() => device.stats.discarded === 5, 'the discards');
    await frontend.setQueueEnabled(1, true);
    expect(driver.send(new Uint8Array(64))).toBe(true);
    await until(() => seen === 2, 'a frame after re-enabling');
    expect(device.stats.discarded).toBe(5);
    expect(errors).toEqual([]);
    expect(() => new VirtioNetDevice({ disabledTx: 'drop' as 'hold' })).toThrow(/disabledTx/);
  });

  for (const [mode, packed, txBatch] of [
    ['event', false, 1],
    ['poll', false, 1],
    ['event', true, 1],
    ['poll', true, 1],
    ['event', false, 64],
    ['poll', true, 64],
  ] as const) {
    it(`moves frames both ways with exact counts and contents (${mode} mode, ${packed ? 'packed' : 'split'}, txBatch ${txBatch})`, async () => {
      const { device, driver, backend, errors } = await pair({ mode, packed, txBatch });
      const gotByDevice: number[] = [];
      device.onFrame = (f) => gotByDevice.push(f[0]! | (f[1]! << 8));
      const gotByDriver: number[] = [];
      driver.onFrame = (f) => gotByDriver.push(f[0]! | (f[1]! << 8));
      const N = 3000;
      // driver -> device
      for (let i = 0; i < N; ) {
        const f = new Uint8Array(64 + (i % 1000));
        f[0] = i & 0xff;
        f[1] = i >> 8;
        if (driver.send(f)) i++;
        else await new Promise((r) => setTimeout(r, 1));
      }
      await until(() => gotByDevice.length === N, 'the device to receive all frames');
      expect(gotByDevice).toEqual(Array.from({ length: N }, (_, i) => i));
      // device -> driver (large frames span several receive buffers: MRG_RXBUF)
      await until(() => device.linkUp(0), 'the receive queue to start');
      for (let i = 0; i < N; ) {
        const f = new Uint8Array(60 + ((i * 7) % 5000));
        f[0] = i & 0xff;
        f[1] = i >> 8;
        if (device.send(f)) i++;
        else await new Promise((r) => setTimeout(r, 1));
      }
      await until(() => gotByDriver.length === N, 'the driver to receive all frames');
      expect(gotByDriver).toEqual(Array.from({ length: N }, (_, i) => i));
      expect(driver.stats.rxErrors).toBe(0);
      expect(errors).toEqual([]);
      expect(backend.connected).toBe(true);
    });
  }

  it('an orderly stop returns the ring bases and leaves the back-end ready, without leaking fds', async () => {
    const before = openFdCount();
    const { frontend, backend, driver, device } = await pair();
    for (let i = 0; i < 10; i++) driver.send(new Uint8Array(100));
    await until(() => device.stats.received === 10, 'ten frames');
    driver.close();
    const bases = await frontend.stop();
    expect(bases[1]).toBe(10);
    await until(() => !backend.connected, 'the back-end to see the disconnect');
    for (const f of cleanup.splice(0).reverse()) f();
    await until(() => openFdCount() === before, 'fds to return to the start count', 5000);
  });

  it('multi-queue: two queue pairs carry separate streams', async () => {
    const sock = join(dir, 'mq.sock');
    const device = new VirtioNetDevice({ queuePairs: 2 });
    const backend = new VhostUserBackend({ device });
    const listener = backend.listen(sock, { policy: anyPeer });
    cleanup.push(
      () => listener.close(),
      () => backend.close(),
    );
    const frontend = await VhostUserFrontend.connect(sock, {
      queueCount: 4,
      queueSize: 64,
      features: NET_DRIVER_FEATURES | (1n << 22n),
      policy: anyPeer,
    });
    cleanup.push(() => frontend.close());
    expect(frontend.features & (1n << 22n)).toBe(1n << 22n);
    // MQ is offered with the CTRL_VQ it requires (5.1.3.1); this front-end, like QEMU and
    // DPDK virtio-user, keeps the control queue's part to itself and acknowledges MQ alone
    expect(backend.offeredFeatures & bit(VirtioNetFeature.CTRL_VQ)).toBe(bit(VirtioNetFeature.CTRL_VQ));
    expect(frontend.features & bit(VirtioNetFeature.CTRL_VQ)).toBe(0n);
    expect(backend.features & bit(VirtioNetFeature.MQ)).toBe(bit(VirtioNetFeature.MQ));
    const d0 = new VirtioNetDriver(frontend, { pair: 0 });
    const d1 = new VirtioNetDriver(frontend, { pair: 1 });
    cleanup.push(
      () => d0.close(),
      () => d1.close(),
    );
    const byPair: number[][] = [[], []];
    device.onFrame = (f, pair) => byPair[pair]!.push(f[0]!);
    for (let i = 0; i < 50; i++) {
      expect(d0.send(new Uint8Array([0, i]))).toBe(true);
      expect(d1.send(new Uint8Array([1, i]))).toBe(true);
    }
    await until(() => byPair[0]!.length === 50 && byPair[1]!.length === 50, 'both streams');
    expect(byPair[0]!.every((b) => b === 0)).toBe(true);
    expect(byPair[1]!.every((b) => b === 1)).toBe(true);
    const back: number[][] = [[], []];
    d0.onFrame = (f) => back[0]!.push(f[0]!);
    d1.onFrame = (f) => back[1]!.push(f[0]!);
    await until(() => device.linkUp(0) && device.linkUp(1), 'both receive queues');
    expect(device.send(new Uint8Array([10]), 0)).toBe(true);
    expect(device.send(new Uint8Array([11]), 1)).toBe(true);
    await until(() => back[0]!.length === 1 && back[1]!.length === 1, 'one frame per pair');
    expect(back).toEqual([[10], [11]]);
  });

  it('front-end guest memory in huge pages (memfd MFD_HUGETLB)', async () => {
    const nr = '/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages';
    const free = Number(/HugePages_Free:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
    let restore: number | undefined;
    if (free < 2) {
      // reserve two 2 MiB pages for this test (as root), give them back afterwards
      restore = Number(readFileSync(nr, 'utf8'));
      writeFileSync(nr, String(restore + 2));
    }
    cleanup.push(() => {
      if (restore !== undefined) writeFileSync(nr, String(restore));
    });
    const sock = join(dir, 'huge.sock');
    const device = new VirtioNetDevice();
    const backend = new VhostUserBackend({ device });
    const listener = backend.listen(sock, { policy: anyPeer });
    cleanup.push(
      () => listener.close(),
      () => backend.close(),
    );
    const frontend = await VhostUserFrontend.connect(sock, {
      queueCount: 2,
      queueSize: 64,
      hugetlb: true,
      features: NET_DRIVER_FEATURES,
      policy: anyPeer,
    });
    cleanup.push(() => frontend.close());
    expect(fstat(frontend.memfd).blockSize).toBe(2 * 1024 * 1024);
    const driver = new VirtioNetDriver(frontend);
    cleanup.push(() => driver.close());
    for (let i = 0; i < 50; i++) expect(driver.send(new Uint8Array(200))).toBe(true);
    await until(() => device.stats.received === 50, 'frames through huge-page memory');
  });
});

describe('txBatch', () => {
  it('takes frames in batches through serve(); pause() from onFrame stops it within the batch, resume() takes the rest in order', async () => {
    const { device, driver, errors } = await pair({ txBatch: 16 });
    const seen: number[] = [];
    device.onFrame = (f) => {
      seen.push(f[0]!);
      if (seen.length === 3) device.pause();
    };
    for (let i = 0; i < 40; i++) expect(driver.send(new Uint8Array(64).fill(i, 0, 1))).toBe(true);
    await until(() => seen.length >= 3, 'the first frames');
    await new Promise((r) => setTimeout(r, 50));
    // paused at the 3rd frame: the rest of its batch of 16 at most, nothing after
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen.length).toBeLessThanOrEqual(16);
    device.resume();
    await until(() => seen.length === 40, 'the frames after resume()');
    expect(seen).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(errors).toEqual([]);
  });

  it('refuses a txBatch that is not an integer from 1 to 1024', () => {
    for (const txBatch of [0, -1, 1.5, 1025, Number.NaN]) {
      expect(() => new VirtioNetDevice({ txBatch })).toThrow(/txBatch must be an integer from 1 to 1024/);
    }
  });
});

describe('a device reset by the front-end (SET_STATUS 0)', () => {
  it('stops the rings mid-stream, nothing is taken meanwhile, and a new set-up on the same connection runs clean', async () => {
    const { device, driver, frontend, backend, errors } = await pair();
    const seen: number[] = [];
    device.onFrame = (f) => seen.push(f[0]!);
    const frame = (i: number): Uint8Array => new Uint8Array(64).fill(i, 0, 1);
    for (let i = 0; i < 10; i++) expect(driver.send(frame(i))).toBe(true);
    await until(() => seen.length === 10, 'the first frames');
    const set = async <K extends 'u64' | 'vringState' | 'vringAddress'>(
      request: number,
      kind: K,
      body: PayloadBodies[K],
      fds: Fd[] = [],
    ): Promise<void> => {
      const r = await frontend.connection.request(request, kind, body, 'u64', { needReply: true, fds });
      expect(r.body, `request ${request}`).toBe(0n);
    };
    await set(R.SET_STATUS, 'u64', 0n);
    expect(backend.queues.every((q) => !q.started && q.ring === undefined && q.size === 0)).toBe(true);
    expect(device.linkUp(0)).toBe(false);
    // the driver goes on sending: a reset device takes nothing
    for (let i = 10; i < 20; i++) expect(driver.send(frame(i))).toBe(true);
    backend.pollOnce();
    expect(seen.length).toBe(10);
    // the front-end sets the device up again (VIRTIO 3.1.1)
    const S = DeviceStatus;
    await set(R.SET_STATUS, 'u64', BigInt(S.ACKNOWLEDGE | S.DRIVER));
    await set(R.SET_FEATURES, 'u64', frontend.features);
    await set(R.SET_STATUS, 'u64', BigInt(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK));
    await frontend.sendMemoryTable();
    for (const q of frontend.queues) {
      const a = q.addresses;
      // split: the driver resumes where the used ring stands
      const used = frontend.memory.slice(a.used + 2n, 2);
      await set(R.SET_VRING_NUM, 'vringState', { index: q.index, num: q.ring.size });
      await set(R.SET_VRING_BASE, 'vringState', { index: q.index, num: used[0]! | (used[1]! << 8) });
      await set(R.SET_VRING_ADDR, 'vringAddress', {
        index: q.index,
        flags: 0,
        descUserAddr: a.desc,
        availUserAddr: a.avail,
        usedUserAddr: a.used,
        logGuestAddr: 0n,
      });
      await set(R.SET_VRING_CALL, 'u64', BigInt(q.index), [q.call.fd]);
      await set(R.SET_VRING_KICK, 'u64', BigInt(q.index), [q.kick.fd]);
    }
    for (const q of frontend.queues) await set(R.SET_VRING_ENABLE, 'vringState', { index: q.index, num: 1 });
    await set(R.SET_STATUS, 'u64', BigInt(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK));
    // what the driver sent during the reset and after it arrives once, in order
    await until(() => seen.length === 20, 'the frames sent during the reset');
    for (let i = 20; i < 30; i++) expect(driver.send(frame(i))).toBe(true);
    await until(() => seen.length === 30, 'the frames after the new set-up');
    expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => i));
    // and the other direction
    const back: number[] = [];
    driver.onFrame = (f) => back.push(f[0]!);
    await until(() => device.linkUp(0), 'the receive ring');
    expect(device.send(new Uint8Array([7, 0, 0]))).toBe(true);
    await until(() => back.length === 1, 'a frame to the driver');
    expect(back).toEqual([7]);
    expect(driver.stats.rxErrors).toBe(0);
    expect(errors).toEqual([]);
  });
});

describe('stopping a ring (GET_VRING_BASE)', () => {
  const ack = (fe: VhostUserFrontend, request: number, index: number, num: number, fds = []) =>
    fe.connection.request(request, 'vringState', { index, num }, 'u64', { needReply: true, fds });

  for (const packed of [false, true]) {
    it(`on a ring still enabled, processes what was made available first and reports the base after it (${packed ? 'packed' : 'split'})`, async () => {
      const { device, frontend } = await bare(`stop-${packed}`, { packed });
      const tx = frontend.queues[1]!;
      for (let i = 0; i < 3; i++) {
        const slot = frontend.pool.alloc();
        frontend.pool.view(slot, 72).fill(0);
        tx.ring.add([{ addr: frontend.pool.address(slot), len: 72 }], slot);
      }
      tx.ring.publish(); // made available, never kicked: only GET_VRING_BASE finds them
      const r = await frontend.connection.request(
        R.GET_VRING_BASE,
        'vringState',
        { index: 1, num: 0 },
        'vringState',
      );
      expect(device.stats.received).toBe(3);
      // split: the next avail index; packed: avail index and wrap, used index and wrap
      if (!packed) expect(r.body.num).toBe(3);
      else expect(r.body.num).toBe((3 | 0x8000 | (3 << 16) | 0x80000000) >>> 0);
    });
  }

  it('receive chains the device held for a frame are given up when the ring stops, not completed after the restart', async () => {
    const { device, backend, frontend } = await bare('held');
    const rx = frontend.queues[0]!;
    const post = () => {
      const slot = frontend.pool.alloc();
      rx.ring.add([{ addr: frontend.pool.address(slot), len: 256, writable: true }], slot);
      rx.publish();
    };
    await until(() => backend.queues[0]?.ready === true && backend.queues[0]!.enabled, 'the receive ring');
    post();
    // 400 bytes need two 256-byte buffers (MRG_RXBUF): the device holds the one posted
    expect(device.send(new Uint8Array(400))).toBe(false);
    // DPDK's port stop / port start: disable, stop, set the base, kick fd, enable
    await ack(frontend, R.SET_VRING_ENABLE, 0, 0);
    const base = await frontend.connection.request(
      R.GET_VRING_BASE,
      'vringState',
      { index: 0, num: 0 },
      'vringState',
    );
    expect(base.body.num).toBe(1); // the held chain was popped
    await ack(frontend, R.SET_VRING_BASE, 0, 0); // the used index: nothing completed
    await frontend.connection.request(R.SET_VRING_KICK, 'u64', 0n, 'u64', {
      needReply: true,
      fds: [rx.kick.fd],
    });
    await ack(frontend, R.SET_VRING_ENABLE, 0, 1);
    await until(() => backend.queues[0]!.ready && backend.queues[0]!.enabled, 'the receive ring again');
    post();
    expect(device.send(new Uint8Array(40))).toBe(true);
    expect(device.send(new Uint8Array(40))).toBe(true);
    // each posted buffer completed once, in order: no stale chain from the first run
    const heads: number[] = [];
    for (let u = rx.ring.popUsed(); u !== null; u = rx.ring.popUsed()) heads.push(u.head);
    expect(heads).toEqual([0, 1]);
    expect(rx.ring.broken).toBeNull();
  });
});

describe('VIRTIO_NET_F_MTU', () => {
  for (const negotiate of [true, false]) {
    it(`frames beyond the MTU plus an Ethernet header are refused only when MTU was negotiated (${negotiate ? 'negotiated' : 'not negotiated'})`, async () => {
      const { device, backend, frontend } = await bare(`mtu-${negotiate}`, {
        device: new VirtioNetDevice({ mtu: 1500 }),
        features: NET_DRIVER_FEATURES | (negotiate ? bit(VirtioNetFeature.MTU) : 0n),
      });
      const got: number[] = [];
      const driver = new VirtioNetDriver(frontend, { mode: 'event', onFrame: (f) => got.push(f.length) });
      cleanup.push(() => driver.close());
      await until(() => backend.queues[0]?.ready === true && backend.queues[0]!.enabled, 'the receive ring');
      await until(() => device.send(new Uint8Array(1518)), 'room for a 1518-byte frame');
      if (negotiate) {
        expect(() => device.send(new Uint8Array(1519))).toThrow(/MTU 1500/);
      } else {
        await until(() => device.send(new Uint8Array(1519)), 'room for a 1519-byte frame');
      }
      await until(() => got.length === (negotiate ? 1 : 2), 'the frames at the driver');
      expect(got).toEqual(negotiate ? [1518] : [1518, 1519]);
    });
  }
});
