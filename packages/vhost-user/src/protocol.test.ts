/**
 * rust-vmm-style protocol tests: a real back-end and a raw front-end
 * connection over a Unix socket in a temp dir; one test per message kind,
 * then the malformed variants. Every hostile message gets a clear error, the
 * back-end survives and serves the next front-end, and no fd leaks.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventFd, type Fd, memfdCreate, openFdCount } from '@vipc/shm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VhostUserBackend } from './backend.js';
import { encodeHeader } from './codec.js';
import { anyPeer, type Connection, connectTo, type VhostUserListener } from './connection.js';
import { bit, ProtocolFeature as P, FrontendRequest as R, VirtioFeature, VirtioNetFeature } from './defs.js';
import type { VhostUserError, VhostUserErrorCode } from './errors.js';
import type { PayloadBodies, PayloadKind } from './messages.js';
import { VirtioNetDevice } from './net-device.js';
import { pollUntil } from './test-support/until.js';

let dir: string;
let sock: string;
let backend: VhostUserBackend;
let listener: VhostUserListener;
let conn: Connection | undefined;
let errors: VhostUserError[];
let requestErrors: VhostUserError[];
let fdsBefore: number;
const owned: Fd[] = [];

beforeEach(() => {
  fdsBefore = openFdCount();
  dir = mkdtempSync(join(tmpdir(), `vipc-vhu-proto-${process.pid}-`));
  sock = join(dir, 'p.sock');
  backend = new VhostUserBackend({
    device: new VirtioNetDevice({ queuePairs: 2, mac: new Uint8Array([2, 0, 0, 0, 0, 9]) }),
  });
  errors = [];
  requestErrors = [];
  backend.on('connection-error', (e: VhostUserError) => errors.push(e));
  backend.on('request-error', (e: VhostUserError) => requestErrors.push(e));
  listener = backend.listen(sock, { policy: anyPeer });
});

afterEach(async () => {
  conn?.close();
  conn = undefined;
  for (const f of owned.splice(0)) f.close();
  await waitFor(() => !backend.connected, 'the back-end to drop the connection');
  backend.close();
  listener.close();
  rmSync(dir, { recursive: true, force: true });
  await waitFor(() => openFdCount() === fdsBefore, `fds back to ${fdsBefore} (now ${openFdCount()})`);
});

const waitFor = (cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> =>
  pollUntil(cond, what, timeoutMs, 5);

async function open(): Promise<Connection> {
  conn?.close();
  await waitFor(() => !backend.connected, 'the previous connection to close');
  conn = await connectTo(sock, { role: 'frontend', policy: anyPeer, replyTimeoutMs: 5000 });
  await waitFor(() => backend.connected, 'the back-end to accept');
  return conn;
}

async function get(c: Connection, request: number): Promise<bigint> {
  return (await c.request(request, 'none', undefined, 'u64')).body;
}

/** Negotiates features and the given protocol features (REPLY_ACK always). */
async function negotiated(protocol: bigint = bit(P.REPLY_ACK) | bit(P.MQ)): Promise<Connection> {
  const c = await open();
  c.send(R.SET_OWNER, 'none', undefined);
  const f = await get(c, R.GET_FEATURES);
  await get(c, R.GET_PROTOCOL_FEATURES);
  c.send(R.SET_PROTOCOL_FEATURES, 'u64', protocol | bit(P.REPLY_ACK));
  await ack(c, R.SET_FEATURES, 'u64', f & (bit(30) | bit(VirtioFeature.VERSION_1)));
  return c;
}

/** Sends with NEED_REPLY and returns the status (0 = success). */
async function ack<K extends PayloadKind>(
  c: Connection,
  request: number,
  kind: K,
  body: PayloadBodies[K],
  fds: Fd[] = [],
): Promise<bigint> {
  return (await c.request(request, kind, body, 'u64', { needReply: true, fds })).body;
}

async function closedWith(code: VhostUserErrorCode, pattern?: RegExp): Promise<void> {
  await waitFor(() => errors.length > 0, `a connection error ${code}`);
  expect(errors[0]!.code).toBe(code);
  if (pattern) expect(errors[0]!.message).toMatch(pattern);
  await waitFor(() => !backend.connected, 'the connection to close');
}

function memfd(size: number): Fd {
  const f = memfdCreate('guest', { size });
  owned.push(f);
  return f;
}

function region(size: number, base = 0x100000n) {
  return { guestAddress: base, size: BigInt(size), userAddress: base + 0x7f0000000000n, mmapOffset: 0n };
}

describe('back-end: one test per request', () => {
  it('GET_FEATURES offers PROTOCOL_FEATURES, VERSION_1, packed and the net features', async () => {
    const c = await open();
    const f = await get(c, R.GET_FEATURES);
    for (const b of [30, VirtioFeature.VERSION_1, VirtioFeature.RING_PACKED, 15, 22, 5]) {
      expect(f & bit(b), `bit ${b}`).not.toBe(0n);
    }
  });

  it('MQ comes with CTRL_VQ, which it requires (VIRTIO 5.1.3.1); MQ acknowledged without CTRL_VQ is accepted', async () => {
    const c = await open();
    const f = await get(c, R.GET_FEATURES);
    expect(f & bit(VirtioNetFeature.MQ)).not.toBe(0n);
    expect(f & bit(VirtioNetFeature.CTRL_VQ), 'CTRL_VQ offered with MQ').not.toBe(0n);
    // one pair: neither
    expect(new VirtioNetDevice().features & (bit(VirtioNetFeature.MQ) | bit(VirtioNetFeature.CTRL_VQ))).toBe(
      0n,
    );
    // QEMU and DPDK virtio-user keep the control queue to themselves and acknowledge MQ alone
    c.send(R.SET_PROTOCOL_FEATURES, 'u64', bit(P.REPLY_ACK) | bit(P.MQ));
    const mq = bit(30) | bit(VirtioFeature.VERSION_1) | bit(VirtioNetFeature.MQ);
    expect(await ack(c, R.SET_FEATURES, 'u64', mq)).toBe(0n);
    expect(backend.features).toBe(mq);
    expect(await get(c, R.GET_QUEUE_NUM)).toBe(2n);
    // the device has no control queue (2N): the front-end owns it
    expect(await ack(c, R.SET_VRING_NUM, 'vringState', { index: 4, num: 64 })).toBe(1n);
    expect(requestErrors.at(-1)?.code).toBe('INVALID_QUEUE_INDEX');
  });

  it('GET/SET_PROTOCOL_FEATURES work before SET_FEATURES; unknown bits are refused', async () => {
    const c = await open();
    const pf = await get(c, R.GET_PROTOCOL_FEATURES);
    for (const b of [P.MQ, P.REPLY_ACK, P.STATUS, P.CONFIG, P.RESET_DEVICE, P.CONFIGURE_MEM_SLOTS]) {
      expect(pf & bit(b), `protocol bit ${b}`).not.toBe(0n);
    }
    c.send(R.SET_PROTOCOL_FEATURES, 'u64', pf);
    expect(await get(c, R.GET_QUEUE_NUM)).toBe(2n);
    c.send(R.SET_PROTOCOL_FEATURES, 'u64', bit(P.PAGEFAULT));
    await closedWith('INVALID_PARAMETER', /never offered/);
  });

  it('SET_FEATURES with a bit never offered fails (REPLY_ACK gives the status, the connection stays)', async () => {
    const c = await open();
    c.send(R.SET_PROTOCOL_FEATURES, 'u64', bit(P.REPLY_ACK));
    expect(await ack(c, R.SET_FEATURES, 'u64', bit(63))).toBe(1n);
    expect(requestErrors[0]?.code).toBe('INVALID_PARAMETER');
    expect(await ack(c, R.SET_FEATURES, 'u64', bit(30) | bit(32))).toBe(0n);
    expect(backend.features).toBe(bit(30) | bit(32));
  });

  it('SET_FEATURES without PROTOCOL_FEATURES enables every ring', async () => {
    const c = await open();
    c.send(R.SET_FEATURES, 'u64', bit(32));
    await get(c, R.GET_FEATURES); // a round trip orders the two
    expect(backend.queues.every((q) => q.enabled)).toBe(true);
  });

  it('SET_OWNER and RESET_OWNER are accepted', async () => {
    const c = await negotiated();
    expect(await ack(c, R.SET_OWNER, 'none', undefined)).toBe(0n);
    expect(backend.owned).toBe(true);
    expect(await ack(c, R.RESET_OWNER, 'none', undefined)).toBe(0n);
  });

  it('SET_MEM_TABLE maps regions, remaps live, and refuses fds smaller than the region', async () => {
    const c = await negotiated();
    const memories: number[] = [];
    backend.on('memory', (n: number) => memories.push(n));
    expect(
      await ack(c, R.SET_MEM_TABLE, 'memoryTable', { regions: [region(1 << 20)] }, [memfd(1 << 20)]),
    ).toBe(0n);
    expect(backend.memoryMap.regionCount).toBe(1);
    // live remap: two regions now
    const two = { regions: [region(1 << 20), region(1 << 20, 0x400000n)] };
    expect(await ack(c, R.SET_MEM_TABLE, 'memoryTable', two, [memfd(1 << 20), memfd(1 << 20)])).toBe(0n);
    expect(backend.memoryMap.regionCount).toBe(2);
    expect(memories).toEqual([1, 2]);
    // a region fd smaller than the region: refused, the old table stays
    expect(
      await ack(c, R.SET_MEM_TABLE, 'memoryTable', { regions: [region(1 << 21)] }, [memfd(1 << 20)]),
    ).toBe(1n);
    expect(requestErrors.at(-1)?.code).toBe('REGION_FD_TOO_SMALL');
    expect(backend.memoryMap.regionCount).toBe(2);
    // mmap_offset + size beyond the file
    const off = { ...region(1 << 20), mmapOffset: 4096n };
    expect(await ack(c, R.SET_MEM_TABLE, 'memoryTable', { regions: [off] }, [memfd(1 << 20)])).toBe(1n);
    // overlapping regions
    const overlap = { regions: [region(1 << 20), region(1 << 20, 0x180000n)] };
    expect(await ack(c, R.SET_MEM_TABLE, 'memoryTable', overlap, [memfd(1 << 20), memfd(1 << 20)])).toBe(1n);
    expect(requestErrors.at(-1)?.code).toBe('INVALID_MEMORY_REGION');
    // an eventfd is no memory
    const efd = EventFd.create();
    expect(await ack(c, R.SET_MEM_TABLE, 'memoryTable', { regions: [region(4096)] }, [efd.fd])).toBe(1n);
    efd.close();
    expect(backend.connected).toBe(true);
  });

  it('GET_MAX_MEM_SLOTS, ADD_MEM_REG and REM_MEM_REG (with CONFIGURE_MEM_SLOTS)', async () => {
    const c = await negotiated(bit(P.CONFIGURE_MEM_SLOTS));
    expect(await get(c, R.GET_MAX_MEM_SLOTS)).toBe(32n);
    expect(await ack(c, R.ADD_MEM_REG, 'singleRegion', region(1 << 20), [memfd(1 << 20)])).toBe(0n);
    expect(await ack(c, R.ADD_MEM_REG, 'singleRegion', region(1 << 20, 0x400000n), [memfd(1 << 20)])).toBe(
      0n,
    );
    expect(backend.memoryMap.regionCount).toBe(2);
    expect(await ack(c, R.REM_MEM_REG, 'singleRegion', region(1 << 20))).toBe(0n);
    expect(backend.memoryMap.regionCount).toBe(1);
    expect(await ack(c, R.REM_MEM_REG, 'singleRegion', region(1 << 20))).toBe(1n);
    expect(requestErrors.at(-1)?.message).toMatch(/no memory region/);
  });

  it('ADD_MEM_REG without CONFIGURE_MEM_SLOTS is refused', async () => {
    const c = await negotiated();
    expect(await ack(c, R.ADD_MEM_REG, 'singleRegion', region(4096), [memfd(4096)])).toBe(1n);
    expect(requestErrors.at(-1)?.code).toBe('FEATURE_NOT_NEGOTIATED');
  });

  it('SET_VRING_NUM / ADDR / BASE, GET_VRING_BASE, queue index and size checks, order checks', async () => {
    const c = await negotiated();
    expect(await ack(c, R.SET_VRING_ADDR, 'vringAddress', addr(0, 0n))).toBe(1n);
    expect(requestErrors.at(-1)?.code).toBe('OUT_OF_ORDER');
    expect(await ack(c, R.SET_VRING_NUM, 'vringState', { index: 0, num: 100 })).toBe(1n); // not a power of two
    expect(await ack(c, R.SET_VRING_NUM, 'vringState', { index: 0, num: 65536 })).toBe(1n);
    expect(await ack(c, R.SET_VRING_NUM, 'vringState', { index: 9, num: 64 })).toBe(1n);
    expect(requestErrors.at(-1)?.code).toBe('INVALID_QUEUE_INDEX');
    expect(await ack(c, R.SET_VRING_NUM, 'vringState', { index: 0, num: 64 })).toBe(0n);
    expect(await ack(c, R.SET_VRING_BASE, 'vringState', { index: 0, num: 70000 })).toBe(1n);
    expect(await ack(c, R.SET_VRING_BASE, 'vringState', { index: 0, num: 42 })).toBe(0n);
    // ring addresses are translated through the memory table: there is none yet
    expect(await ack(c, R.SET_VRING_ADDR, 'vringAddress', addr(0, 0x7f0000100000n))).toBe(1n);
    expect(requestErrors.at(-1)?.code).toBe('OUT_OF_ORDER');
    expect(requestErrors.at(-1)?.message).toMatch(/queue 0 before SET_MEM_TABLE/);
    expect(
      await ack(c, R.SET_MEM_TABLE, 'memoryTable', { regions: [region(1 << 20)] }, [memfd(1 << 20)]),
    ).toBe(0n);
    expect(await ack(c, R.SET_VRING_ADDR, 'vringAddress', addr(0, 0x7f0000100000n))).toBe(0n);
    const base = await c.request(R.GET_VRING_BASE, 'vringState', { index: 0, num: 0 }, 'vringState');
    expect(base.body).toEqual({ index: 0, num: 42 });
    // GET_VRING_BASE with a bad index cannot be answered: the connection closes
    c.send(R.GET_VRING_BASE, 'vringState', { index: 200, num: 0 });
    await closedWith('INVALID_QUEUE_INDEX');
  });

  it('SET_VRING_ADDR translates its addresses when given: outside the table, across its end or misaligned fails at once, the old addresses stay', async () => {
    const c = await negotiated();
    const user = 0x7f0000100000n; // region(): guest 0x100000, 1 MiB
    expect(
      await ack(c, R.SET_MEM_TABLE, 'memoryTable', { regions: [region(1 << 20)] }, [memfd(1 << 20)]),
    ).toBe(0n);
    expect(await ack(c, R.SET_VRING_NUM, 'vringState', { index: 0, num: 64 })).toBe(0n);
    const good = addr(0, user);
    expect(await ack(c, R.SET_VRING_ADDR, 'vringAddress', good)).toBe(0n);
    for (const [bad, code, rule] of [
      [
        { ...good, descUserAddr: 0xdead0000n },
        'ADDRESS_NOT_MAPPED',
        /SET_VRING_ADDR for queue 0: descriptor table 0xdead0000\+1024 is in no memory region/,
      ],
      // the used ring (6 + 8 * 64 bytes) would run past the region's end
      [
        { ...good, usedUserAddr: user + (1n << 20n) - 16n },
        'ADDRESS_NOT_MAPPED',
        /queue 0: used ring 0x7f00001ffff0\+518 is in no memory region/,
      ],
      [{ ...good, availUserAddr: user - 2n }, 'ADDRESS_NOT_MAPPED', /queue 0: available ring/],
      [
        { ...good, usedUserAddr: user + 0x2002n },
        'INVALID_PARAMETER',
        /queue 0: used ring at user address 0x7f0000102002 \(guest 0x102002\) is not 4-byte aligned/,
      ],
      [{ ...good, descUserAddr: user + 8n }, 'INVALID_PARAMETER', /descriptor table .* not 16-byte aligned/],
    ] as const) {
      expect(await ack(c, R.SET_VRING_ADDR, 'vringAddress', bad), String(rule)).toBe(1n);
      expect(requestErrors.at(-1)?.code).toBe(code);
      expect(requestErrors.at(-1)?.message).toMatch(rule);
    }
    expect(backend.queues[0]!.userAddresses).toEqual({
      desc: user,
      avail: user + 0x1000n,
      used: user + 0x2000n,
      flags: 0,
    });
    // the ring starts at the addresses that were accepted
    const kick = EventFd.create();
    expect(await ack(c, R.SET_VRING_KICK, 'u64', 0n, [kick.fd])).toBe(0n);
    kick.close();
    expect(backend.queues[0]!.ready).toBe(true);
    expect(backend.queues[0]!.failure).toBeUndefined();
    expect(backend.connected).toBe(true);
  });

  it('SET_VRING_ADDR outside the memory table without REPLY_ACK closes the connection with the reason', async () => {
    const c = await open();
    c.send(R.SET_FEATURES, 'u64', bit(VirtioFeature.VERSION_1));
    c.send(R.SET_MEM_TABLE, 'memoryTable', { regions: [region(1 << 20)] }, { fds: [memfd(1 << 20)] });
    c.send(R.SET_VRING_NUM, 'vringState', { index: 1, num: 64 });
    c.send(R.SET_VRING_ADDR, 'vringAddress', addr(1, 0x40000000n));
    await closedWith('ADDRESS_NOT_MAPPED', /SET_VRING_ADDR for queue 1: descriptor table 0x40000000\+1024/);
  });

  it('SET_VRING_KICK / CALL / ERR take eventfds only, and close the ones they replace', async () => {
    const c = await negotiated();
    const a = EventFd.create();
    const b = EventFd.create();
    expect(await ack(c, R.SET_VRING_CALL, 'u64', 0n, [a.fd])).toBe(0n);
    expect(await ack(c, R.SET_VRING_CALL, 'u64', 0n, [b.fd])).toBe(0n);
    expect(await ack(c, R.SET_VRING_ERR, 'u64', 1n, [a.fd])).toBe(0n);
    expect(await ack(c, R.SET_VRING_CALL, 'u64', 0x100n)).toBe(0n); // no fd: polling
    a.close();
    b.close();
    expect(await ack(c, R.SET_VRING_KICK, 'u64', 0n, [memfd(4096)])).toBe(1n);
    expect(requestErrors.at(-1)?.code).toBe('INCORRECT_FDS');
    const e = EventFd.create();
    expect(await ack(c, R.SET_VRING_KICK, 'u64', 7n, [e.fd])).toBe(1n);
    expect(requestErrors.at(-1)?.code).toBe('INVALID_QUEUE_INDEX');
    e.close();
  });

  it('SET_VRING_ENABLE toggles a ring and checks num', async () => {
    const c = await negotiated();
    expect(await ack(c, R.SET_VRING_ENABLE, 'vringState', { index: 1, num: 1 })).toBe(0n);
    expect(backend.queues[1]!.enabled).toBe(true);
    expect(await ack(c, R.SET_VRING_ENABLE, 'vringState', { index: 1, num: 0 })).toBe(0n);
    expect(backend.queues[1]!.enabled).toBe(false);
    expect(await ack(c, R.SET_VRING_ENABLE, 'vringState', { index: 1, num: 2 })).toBe(1n);
  });

  it('SET_STATUS / GET_STATUS (with STATUS)', async () => {
    const c = await negotiated(bit(P.STATUS));
    expect(await ack(c, R.SET_STATUS, 'u64', 0xbn)).toBe(0n);
    expect(await get(c, R.GET_STATUS)).toBe(0xbn);
    expect(await ack(c, R.SET_STATUS, 'u64', 0x100n)).toBe(1n);
  });

  it('SET_STATUS 0 resets the device: running rings stop and forget their set-up, features and status go to 0', async () => {
    const c = await negotiated(bit(P.STATUS));
    const features = backend.features;
    expect(
      await ack(c, R.SET_MEM_TABLE, 'memoryTable', { regions: [region(1 << 20)] }, [memfd(1 << 20)]),
    ).toBe(0n);
    const kick = EventFd.create();
    const call = EventFd.create();
    for (const i of [0, 1]) {
      expect(await ack(c, R.SET_VRING_NUM, 'vringState', { index: i, num: 64 })).toBe(0n);
      expect(
        await ack(c, R.SET_VRING_ADDR, 'vringAddress', addr(i, 0x7f0000100000n + BigInt(i) * 0x4000n)),
      ).toBe(0n);
      expect(await ack(c, R.SET_VRING_CALL, 'u64', BigInt(i), [call.fd])).toBe(0n);
      expect(await ack(c, R.SET_VRING_KICK, 'u64', BigInt(i), [kick.fd])).toBe(0n);
      expect(await ack(c, R.SET_VRING_ENABLE, 'vringState', { index: i, num: 1 })).toBe(0n);
    }
    expect(await ack(c, R.SET_STATUS, 'u64', 0xfn)).toBe(0n);
    expect(backend.queues.slice(0, 2).every((q) => q.ready && q.enabled)).toBe(true);
    const stopped: number[] = [];
    backend.on('queue-stop', (q: { index: number }) => stopped.push(q.index));
    expect(await ack(c, R.SET_STATUS, 'u64', 0n)).toBe(0n);
    expect(stopped).toEqual([0, 1]);
    for (const q of backend.queues) {
      expect(q.started, `queue ${q.index} started`).toBe(false);
      expect(q.ready).toBe(false);
      expect(q.enabled).toBe(false);
      expect(q.size).toBe(0);
      expect(q.userAddresses).toBeUndefined();
      expect(q.base).toBeUndefined();
      expect(q.kick).toBeUndefined();
      expect(q.call).toBeUndefined();
    }
    expect(backend.features).toBe(0n);
    expect(await get(c, R.GET_STATUS)).toBe(0n);
    // a later set-up starts clean: new size, base and addresses
    expect(await ack(c, R.SET_FEATURES, 'u64', features)).toBe(0n);
    expect(await ack(c, R.SET_VRING_NUM, 'vringState', { index: 1, num: 32 })).toBe(0n);
    expect(await ack(c, R.SET_VRING_BASE, 'vringState', { index: 1, num: 0 })).toBe(0n);
    expect(await ack(c, R.SET_VRING_ADDR, 'vringAddress', addr(1, 0x7f0000180000n))).toBe(0n);
    expect(await ack(c, R.SET_VRING_KICK, 'u64', 1n, [kick.fd])).toBe(0n);
    expect(backend.queues[1]!.ready).toBe(true);
    expect(backend.queues[1]!.size).toBe(32);
    expect(backend.queues[1]!.enabled).toBe(false);
    expect(backend.queues[1]!.failure).toBeUndefined();
    kick.close();
    call.close();
    expect(backend.connected).toBe(true);
  });

  it('GET_CONFIG / SET_CONFIG (with CONFIG): the MAC and queue pairs; bad ranges give an empty reply', async () => {
    const c = await negotiated(bit(P.CONFIG));
    const r = await c.request(
      R.GET_CONFIG,
      'config',
      { offset: 0, size: 10, flags: 0, data: new Uint8Array(10) },
      'config',
    );
    expect([...r.body.data]).toEqual([2, 0, 0, 0, 0, 9, 0, 0, 2, 0]);
    // a range the device does not have: a zero-length payload, not even the config header
    const range = { offset: 8, size: 200, flags: 0, data: new Uint8Array(200) };
    const bad = await c.request(R.GET_CONFIG, 'config', range, 'opaque');
    expect(bad.body.length).toBe(0);
    expect(requestErrors.at(-1)?.message).toMatch(/GET_CONFIG at 8\+200/);
    // which a front-end's codec reports as a failed request; the connection stays
    await expect(c.request(R.GET_CONFIG, 'config', range, 'config')).rejects.toMatchObject({
      code: 'REQUEST_FAILED',
      message: expect.stringMatching(/zero-length reply/),
    });
    expect(
      await ack(c, R.SET_CONFIG, 'config', { offset: 0, size: 1, flags: 0, data: new Uint8Array(1) }),
    ).toBe(1n);
    // the MAC still reads
    const mac = { offset: 0, size: 6, flags: 0, data: new Uint8Array(6) };
    expect((await c.request(R.GET_CONFIG, 'config', mac, 'config')).body.data).toEqual(
      new Uint8Array([2, 0, 0, 0, 0, 9]),
    );
    // without CONFIG negotiated the same (REPLY_ACK brings no u64 status: GET_CONFIG has its own reply)
    const c2 = await negotiated(bit(P.MQ));
    const none = await c2.request(R.GET_CONFIG, 'config', mac, 'opaque', { needReply: true });
    expect(none.body.length).toBe(0);
    expect(requestErrors.at(-1)?.code).toBe('FEATURE_NOT_NEGOTIATED');
    expect(backend.connected).toBe(true);
  });

  it('RESET_DEVICE (with RESET_DEVICE) drops negotiated features and ring state', async () => {
    const c = await negotiated(bit(P.RESET_DEVICE));
    await ack(c, R.SET_VRING_NUM, 'vringState', { index: 0, num: 64 });
    expect(await ack(c, R.RESET_DEVICE, 'none', undefined)).toBe(0n);
    expect(backend.features).toBe(0n);
    expect(backend.queues[0]!.size).toBe(0);
  });

  it('requests whose feature was never offered fail clearly (SET_LOG_BASE, IOTLB_MSG, SEND_RARP, ...)', async () => {
    const c = await negotiated();
    expect(await ack(c, R.SEND_RARP, 'u64', 0n)).toBe(1n);
    expect(requestErrors.at(-1)?.code).toBe('FEATURE_NOT_NEGOTIATED');
    const iotlb = await c.request(
      R.IOTLB_MSG,
      'iotlb',
      { iova: 0n, size: 4096n, userAddress: 0n, permissions: 3, type: 2 },
      'u64',
    );
    expect(iotlb.body).toBe(1n);
    expect(await ack(c, R.SET_LOG_FD, 'none', undefined, [memfd(4096)])).toBe(1n);
    expect(await get(c, R.POSTCOPY_END)).toBe(1n);
    expect(backend.connected).toBe(true);
  });
});

function addr(index: number, at: bigint): PayloadBodies['vringAddress'] {
  return {
    index,
    flags: 0,
    descUserAddr: at,
    usedUserAddr: at + 0x2000n,
    availUserAddr: at + 0x1000n,
    logGuestAddr: 0n,
  };
}

describe('back-end: malformed messages close the connection with a reason', () => {
  async function raw(bytes: Buffer, fds: Fd[] = []): Promise<void> {
    const c = await open();
    c.socket.write(bytes, fds);
  }

  it('wrong payload size', async () => {
    await raw(Buffer.concat([encodeHeader({ request: R.SET_FEATURES, flags: 1, size: 4 }), Buffer.alloc(4)]));
    await closedWith('INVALID_PAYLOAD_SIZE', /SET_FEATURES: u64 payload must be 8 bytes \(got 4\)/);
  });

  it('missing fds', async () => {
    await raw(
      Buffer.concat([encodeHeader({ request: R.SET_VRING_KICK, flags: 1, size: 8 }), Buffer.alloc(8)]),
    );
    await closedWith('INCORRECT_FDS', /SET_VRING_KICK: carries 0 fds, must carry 1/);
  });

  it('extra fds (closed, not leaked)', async () => {
    const e = EventFd.create();
    await raw(
      Buffer.concat([encodeHeader({ request: R.SET_FEATURES, flags: 1, size: 8 }), Buffer.alloc(8)]),
      [e.fd, e.fd],
    );
    e.close();
    await closedWith('INCORRECT_FDS', /carries 2 fds, must carry 0/);
  });

  it('more fds than any message may carry', async () => {
    const fds = Array.from({ length: 12 }, () => memfd(4096));
    await raw(
      Buffer.concat([encodeHeader({ request: R.SET_MEM_TABLE, flags: 1, size: 8 }), Buffer.alloc(8)]),
      fds,
    );
    await closedWith('INCORRECT_FDS');
  });

  it('unknown request', async () => {
    await raw(encodeHeader({ request: 999, flags: 1, size: 0 }));
    await closedWith('UNKNOWN_REQUEST', /999/);
  });

  it('oversize payload (rejected from the header, never read)', async () => {
    await raw(encodeHeader({ request: R.SET_MEM_TABLE, flags: 1, size: 0x7fffffff }));
    await closedWith('OVERSIZE_PAYLOAD');
  });

  it('wrong version', async () => {
    await raw(encodeHeader({ request: R.GET_FEATURES, flags: 2, size: 0 }));
    await closedWith('INVALID_VERSION');
  });

  it('a reply flag on a request', async () => {
    await raw(encodeHeader({ request: R.GET_FEATURES, flags: 1 | 4, size: 0 }));
    await closedWith('UNEXPECTED_REPLY');
  });

  it('a message cut short by the peer closing', async () => {
    const c = await open();
    c.socket.write(
      Buffer.concat([encodeHeader({ request: R.SET_FEATURES, flags: 1, size: 8 }), Buffer.alloc(3)]),
    );
    c.socket.end();
    await closedWith('PARTIAL_MESSAGE');
  });

  it('requests out of order: GET_QUEUE_NUM before MQ was negotiated, SET_VRING_ADDR before SET_VRING_NUM', async () => {
    const c = await open();
    c.send(R.GET_QUEUE_NUM, 'none', undefined);
    await closedWith('FEATURE_NOT_NEGOTIATED', /GET_QUEUE_NUM needs protocol feature MQ/);
    errors.length = 0;
    const c2 = await open();
    c2.send(R.SET_VRING_ADDR, 'vringAddress', addr(0, 0n));
    await closedWith('OUT_OF_ORDER', /before SET_VRING_NUM/);
  });

  it('after each bad front-end the back-end serves the next one', async () => {
    await raw(encodeHeader({ request: 999, flags: 1, size: 0 }));
    await closedWith('UNKNOWN_REQUEST');
    const c = await open();
    expect((await get(c, R.GET_FEATURES)) & bit(30)).toBe(bit(30));
  });
});
