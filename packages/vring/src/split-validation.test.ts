// One test per rule of "Validating what a peer wrote", each with a crafted ring.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import {
  VIRTQ_DESC_F_INDIRECT as INDIRECT,
  VIRTQ_DESC_F_NEXT as NEXT,
  VIRTQ_DESC_F_WRITE as WRITE,
} from './defs.js';
import type { VringError } from './errors.js';
import { GuestMemory } from './guest-memory.js';
import { SplitDeviceQueue } from './split-device-queue.js';
import { SplitDriverQueue } from './split-driver-queue.js';
import { splitLayout } from './split-layout.js';
import { addTwoChains, catchCode, packedRig, type SplitRig, splitRig } from './test-rig.js';

/** A hostile driver: writes ring bytes directly. */
function hostile(r: SplitRig) {
  const d = r.off(r.addresses.descTable);
  const a = r.off(r.addresses.availRing);
  return {
    desc(i: number, addr: bigint, len: number, flags = 0, next = 0) {
      r.view.setBigUint64(d + 16 * i, addr, true);
      r.view.setUint32(d + 16 * i + 8, len, true);
      r.view.setUint16(d + 16 * i + 12, flags, true);
      r.view.setUint16(d + 16 * i + 14, next, true);
    },
    /** Writes an indirect table at a guest address. */
    table(at: bigint, entries: [bigint, number, number, number][]) {
      entries.forEach(([addr, len, flags, next], i) => {
        const o = r.off(at) + 16 * i;
        r.view.setBigUint64(o, addr, true);
        r.view.setUint32(o + 8, len, true);
        r.view.setUint16(o + 12, flags, true);
        r.view.setUint16(o + 14, next, true);
      });
    },
    avail(heads: number[], idx = heads.length) {
      heads.forEach((h, i) => {
        r.view.setUint16(a + 4 + 2 * (i % r.ring.size), h, true);
      });
      r.view.setUint16(a + 2, idx, true);
    },
  };
}

/** Pops, expects `code`, then checks the queue is broken, unchanged, and stays broken. */
function expectViolation(r: SplitRig, code: string) {
  const before = r.device.state();
  const usedBefore = r.bytes.slice(r.off(r.addresses.usedRing), r.off(r.addresses.usedRing) + 64);
  let err: VringError | undefined;
  try {
    r.device.pop();
  } catch (e) {
    err = e as VringError;
  }
  expect(err?.code).toBe(code);
  expect(err?.message.length).toBeGreaterThan(10);
  expect(r.device.broken).toBe(err);
  expect(r.device.state()).toEqual(before);
  expect(r.bytes.slice(r.off(r.addresses.usedRing), r.off(r.addresses.usedRing) + 64)).toEqual(usedBefore);
  // never processed again
  expect(catchCode(() => r.device.pop())).toBe('QUEUE_BROKEN');
  expect(catchCode(() => r.device.hasAvailable())).toBe('QUEUE_BROKEN');
  expect(catchCode(() => r.device.publishUsed())).toBe('QUEUE_BROKEN');
  expect(catchCode(() => r.device.addUsed(0, 0))).toBe('QUEUE_BROKEN');
}

describe('device side: what the driver wrote (split)', () => {
  it('rule 1: avail.idx more than N ahead is AVAIL_INDEX_OVERRUN', () => {
    const r = splitRig({ size: 8 });
    const h = hostile(r);
    h.desc(0, r.data, 4);
    h.avail([0], 9);
    expectViolation(r, 'AVAIL_INDEX_OVERRUN');
  });

  it('rule 1: exactly N ahead is fine, also across the u16 wrap', () => {
    const r = splitRig({ size: 4 });
    r.device.setState({ nextAvail: 0xfffe, nextUsed: 0xfffe });
    const h = hostile(r);
    for (let i = 0; i < 4; i++) h.desc(i, r.data, 1);
    // slots of indexes 0xfffe, 0xffff, 0, 1 are 2, 3, 0, 1
    h.avail([2, 3, 0, 1], 2);
    for (let i = 0; i < 4; i++) expect(r.device.pop()).not.toBeNull();
    expect(r.device.pop()).toBeNull();
    expect(r.device.state().nextAvail).toBe(2);
  });

  it('rule 1: avail.idx moving backwards (the driver never decrements it) is AVAIL_INDEX_OVERRUN', () => {
    const r = splitRig({ size: 8 });
    const h = hostile(r);
    for (let i = 0; i < 3; i++) h.desc(i, r.data, 4);
    h.avail([0, 1, 2]);
    for (let i = 0; i < 3; i++) expect(r.device.pop()).not.toBeNull();
    h.avail([0, 1, 2], 2);
    expectViolation(r, 'AVAIL_INDEX_OVERRUN');
  });

  it('rule 2: a head >= N is INVALID_DESCRIPTOR_INDEX', () => {
    const r = splitRig({ size: 8 });
    hostile(r).avail([8]);
    expectViolation(r, 'INVALID_DESCRIPTOR_INDEX');
  });

  it('rule 2: a next >= N is INVALID_DESCRIPTOR_INDEX', () => {
    const r = splitRig({ size: 8 });
    const h = hostile(r);
    h.desc(0, r.data, 4, NEXT, 8);
    h.avail([0]);
    expectViolation(r, 'INVALID_DESCRIPTOR_INDEX');
  });

  it('rule 2: a next beyond an indirect table is INVALID_DESCRIPTOR_INDEX', () => {
    const r = splitRig({ size: 8, features: { indirect: true } });
    const h = hostile(r);
    const t = r.data + 0x1000n;
    h.table(t, [
      [r.data, 4, NEXT, 1],
      [r.data, 4, NEXT, 2], // the table has 2 entries
    ]);
    h.desc(0, t, 32, INDIRECT);
    h.avail([0]);
    expectViolation(r, 'INVALID_DESCRIPTOR_INDEX');
  });

  it('rule 2: a head made available again while in flight is INVALID_DESCRIPTOR_INDEX', () => {
    const r = splitRig({ size: 8 });
    const h = hostile(r);
    h.desc(0, r.data, 4);
    h.avail([0, 0]);
    expect(r.device.pop()?.head).toBe(0);
    expectViolation(r, 'INVALID_DESCRIPTOR_INDEX');
  });

  it('rule 3: a loop in the descriptor table is DESCRIPTOR_LOOP', () => {
    const r = splitRig({ size: 8 });
    const h = hostile(r);
    h.desc(0, r.data, 4, NEXT, 1);
    h.desc(1, r.data, 4, NEXT, 2);
    h.desc(2, r.data, 4, NEXT, 0);
    h.avail([0]);
    expectViolation(r, 'DESCRIPTOR_LOOP');
  });

  it('rule 3: a self-loop in an indirect table is DESCRIPTOR_LOOP', () => {
    const r = splitRig({ size: 8, features: { indirect: true } });
    const h = hostile(r);
    const t = r.data + 0x1000n;
    h.table(t, [
      [r.data, 4, NEXT, 1],
      [r.data, 4, NEXT, 1],
    ]);
    h.desc(0, t, 32, INDIRECT);
    h.avail([0]);
    expectViolation(r, 'DESCRIPTOR_LOOP');
  });

  it('rule 3: a chain of exactly N descriptors is fine', () => {
    const r = splitRig({ size: 8 });
    const h = hostile(r);
    for (let i = 0; i < 8; i++) h.desc(i, r.data, 1, i < 7 ? NEXT : 0, i + 1);
    h.avail([0]);
    expect(r.device.pop()?.readable.length).toBe(8);
  });

  it.each([0, 17, 8])('rule 4: an indirect table of length %i is INVALID_INDIRECT_TABLE', (len) => {
    const r = splitRig({ size: 8, features: { indirect: true } });
    const h = hostile(r);
    h.desc(0, r.data + 0x1000n, len, INDIRECT);
    h.avail([0]);
    expectViolation(r, 'INVALID_INDIRECT_TABLE');
  });

  it('rule 4: an indirect descriptor inside an indirect table is NESTED_INDIRECT', () => {
    const r = splitRig({ size: 8, features: { indirect: true } });
    const h = hostile(r);
    const t = r.data + 0x1000n;
    h.table(t, [
      [r.data, 4, NEXT, 1],
      [t, 32, INDIRECT, 0],
    ]);
    h.desc(0, t, 32, INDIRECT);
    h.avail([0]);
    expectViolation(r, 'NESTED_INDIRECT');
  });

  it('rule 4: INDIRECT together with NEXT is INDIRECT_WITH_NEXT', () => {
    const r = splitRig({ size: 8, features: { indirect: true } });
    const h = hostile(r);
    h.table(r.data + 0x1000n, [[r.data, 4, 0, 0]]);
    h.desc(0, r.data + 0x1000n, 16, INDIRECT | NEXT, 1);
    h.desc(1, r.data, 4);
    h.avail([0]);
    expectViolation(r, 'INDIRECT_WITH_NEXT');
  });

  it('rule 4: INDIRECT without the feature is INDIRECT_NOT_NEGOTIATED', () => {
    const r = splitRig({ size: 8 });
    const h = hostile(r);
    h.table(r.data + 0x1000n, [[r.data, 4, 0, 0]]);
    h.desc(0, r.data + 0x1000n, 16, INDIRECT);
    h.avail([0]);
    expectViolation(r, 'INDIRECT_NOT_NEGOTIATED');
  });

  it('rule 4: an indirect table outside guest memory is ADDRESS_OUT_OF_BOUNDS', () => {
    const r = splitRig({ size: 8, features: { indirect: true } });
    const h = hostile(r);
    h.desc(0, r.data + BigInt(r.dataBytes) - 16n, 32, INDIRECT);
    h.avail([0]);
    expectViolation(r, 'ADDRESS_OUT_OF_BOUNDS');
  });

  it('rule 4: the WRITE flag on the descriptor pointing to the table is ignored', () => {
    const r = splitRig({ size: 8, features: { indirect: true } });
    const h = hostile(r);
    h.table(r.data + 0x1000n, [
      [r.data, 4, NEXT, 1],
      [r.data + 64n, 8, WRITE, 0],
    ]);
    h.desc(0, r.data + 0x1000n, 32, INDIRECT | WRITE);
    h.avail([0]);
    const c = r.device.pop()!;
    expect([c.readableLength, c.writableLength]).toEqual([4, 8]);
  });

  it('rule 5: a chain longer than 2^32 bytes is CHAIN_TOO_LONG', () => {
    // 65 descriptors of 64 MiB, all over the same 64 MiB region: 2^32 + 2^26 bytes.
    const size = 128;
    const ring = splitLayout(size);
    const ringBuf = new ArrayBuffer(65536);
    const big = new ArrayBuffer(1 << 26);
    const memory = new GuestMemory([
      { guestAddress: 0n, size: 65536, buffer: ringBuf },
      { guestAddress: 1n << 32n, size: 1 << 26, buffer: big },
    ]);
    const addresses = { descTable: 0n, availRing: BigInt(ring.availRing), usedRing: BigInt(ring.usedRing) };
    const v = new DataView(ringBuf);
    for (let i = 0; i < 65; i++) {
      v.setBigUint64(16 * i, 1n << 32n, true);
      v.setUint32(16 * i + 8, 1 << 26, true);
      v.setUint16(16 * i + 12, i < 64 ? NEXT : 0, true);
      v.setUint16(16 * i + 14, i + 1, true);
    }
    v.setUint16(ring.availRing + 2, 1, true);
    const device = new SplitDeviceQueue({ memory, size, addresses });
    expect(catchCode(() => device.pop())).toBe('CHAIN_TOO_LONG');
    expect(device.broken?.code).toBe('CHAIN_TOO_LONG');
    // 64 of them (exactly 2^32) are accepted
    v.setUint16(16 * 63 + 12, 0, true);
    device.reset();
    expect(device.pop()?.readableLength).toBe(2 ** 32);
  });

  it('rule 6: a readable descriptor after a writable one is READABLE_AFTER_WRITABLE', () => {
    const r = splitRig({ size: 8 });
    const h = hostile(r);
    h.desc(0, r.data, 4, NEXT | WRITE, 1);
    h.desc(1, r.data, 4, 0);
    h.avail([0]);
    expectViolation(r, 'READABLE_AFTER_WRITABLE');
  });

  it('rule 6: also across the jump into an indirect table', () => {
    const r = splitRig({ size: 8, features: { indirect: true } });
    const h = hostile(r);
    h.table(r.data + 0x1000n, [[r.data, 4, 0, 0]]);
    h.desc(0, r.data, 4, NEXT | WRITE, 1);
    h.desc(1, r.data + 0x1000n, 16, INDIRECT);
    h.avail([0]);
    expectViolation(r, 'READABLE_AFTER_WRITABLE');
  });

  it.each([
    ['past the end of memory', (r: SplitRig) => r.data + BigInt(r.dataBytes) - 2n, 4],
    ['below the first region', () => 0n, 1],
    ['above 2^53', () => (1n << 53n) + 0x10000n, 1],
    ['wrapping past 2^64', () => (1n << 64n) - 8n, 16],
    ['with len 2^32-1', (r: SplitRig) => r.data, 0xffffffff],
  ])('rule 7: a buffer %s is ADDRESS_OUT_OF_BOUNDS', (_, addr, len) => {
    const r = splitRig({ size: 8 });
    const h = hostile(r);
    h.desc(0, r.data, 0, NEXT, 1);
    h.desc(1, addr(r), len, WRITE);
    h.avail([0]);
    expectViolation(r, 'ADDRESS_OUT_OF_BOUNDS');
  });

  it('rule 7: a buffer straddling two adjacent regions is ADDRESS_OUT_OF_BOUNDS', () => {
    const r = splitRig({ size: 8 });
    const total = r.buffer.byteLength;
    // a second region right after the first one, in another buffer
    r.memory.addRegion({ guestAddress: r.base + BigInt(total), size: 4096, buffer: new ArrayBuffer(4096) });
    const h = hostile(r);
    h.desc(0, r.base + BigInt(total) - 2n, 4);
    h.avail([0]);
    expectViolation(r, 'ADDRESS_OUT_OF_BOUNDS');
  });

  it('rule 9: a descriptor rewritten concurrently is read once (checks and views always agree)', async () => {
    const r = splitRig({ size: 8, shared: true });
    const h = hostile(r);
    h.desc(0, r.data, 16);
    h.avail([0]);
    const ctl = new Int32Array(new SharedArrayBuffer(8));
    const word = r.off(r.addresses.descTable) / 4;
    // Another thread flips len, the high address word and flags/next of descriptor 0 as fast as it can.
    const worker = new Worker(
      `const { workerData } = require('node:worker_threads');
       const w = new Uint32Array(workerData.sab); const ctl = new Int32Array(workerData.ctl);
       const d = workerData.word; Atomics.store(ctl, 0, 1);
       for (let i = 0; Atomics.load(ctl, 1) === 0; i++) {
         w[d + 2] = (i & 1) ? 16 : 0xfffffff0;
         w[d + 1] = (i & 2) ? 0 : 0x10;
         w[d + 3] = (i & 4) ? (1 | (9 << 16)) : 0;
       }`,
      { eval: true, workerData: { sab: r.buffer, ctl: ctl.buffer, word } },
    );
    try {
      const deadline = Date.now() + 60_000;
      while (Atomics.load(ctl, 0) === 0 && Date.now() < deadline)
        await new Promise((ok) => setTimeout(ok, 5));
      expect(Atomics.load(ctl, 0)).toBe(1);
      const seen = new Set<string>();
      const stop = Date.now() + 1500;
      for (let i = 0; i < 200_000 && Date.now() < stop; i++) {
        r.device.reset();
        try {
          const c = r.device.pop()!;
          // whatever the other thread did, the chain is what was checked: one 16-byte buffer inside memory
          expect(c.readable.length).toBe(1);
          expect(c.readableLength).toBe(16);
          expect(c.readable[0]!.length).toBe(16);
          expect(c.readable[0]!.byteOffset).toBe(r.off(r.data));
          seen.add('ok');
        } catch (e) {
          const code = (e as VringError).code;
          expect(['ADDRESS_OUT_OF_BOUNDS', 'INVALID_DESCRIPTOR_INDEX']).toContain(code);
          seen.add(code);
        }
      }
      expect(seen.has('ok')).toBe(true);
    } finally {
      Atomics.store(ctl, 1, 1);
      await worker.terminate();
    }
  });

  it('rule 10: a broken queue stays broken even after the ring is repaired, until reset()', () => {
    const r = splitRig({ size: 8 });
    const h = hostile(r);
    h.avail([9]);
    expect(catchCode(() => r.device.pop())).toBe('INVALID_DESCRIPTOR_INDEX');
    h.desc(0, r.data, 4);
    h.avail([0]);
    const err = (() => {
      try {
        r.device.pop();
      } catch (e) {
        return e as VringError;
      }
    })();
    expect(err?.code).toBe('QUEUE_BROKEN');
    expect((err!.cause as VringError).code).toBe('INVALID_DESCRIPTOR_INDEX');
    r.device.reset();
    expect(r.device.pop()?.head).toBe(0);
  });

  it('caller errors on the device side do not break the queue', () => {
    const r = splitRig({ size: 8 });
    expect(catchCode(() => r.device.addUsed(8, 0))).toBe('INVALID_ARGUMENT');
    expect(catchCode(() => r.device.addUsed(0, -1))).toBe('INVALID_ARGUMENT');
    expect(catchCode(() => r.device.addUsed(0, 2 ** 32))).toBe('INVALID_ARGUMENT');
    expect(r.device.broken).toBeNull();
  });

  for (const kind of ['split', 'packed'] as const) {
    it(`a driver refuses a chain longer than the queue size, direct or indirect (${kind})`, () => {
      const opts = { size: 4, features: { indirect: true } };
      const r = kind === 'split' ? splitRig(opts) : packedRig(opts);
      const bufs = (n: number) =>
        Array.from({ length: n }, (_, i) => ({ addr: r.data + BigInt(8 * i), len: 8 }));
      expect(catchCode(() => r.driver.add(bufs(5)))).toBe('INVALID_ARGUMENT');
      expect(catchCode(() => r.driver.add(bufs(5), 't', { indirectTable: r.data + 0x400n }))).toBe(
        'INVALID_ARGUMENT',
      );
      expect(r.driver.add(bufs(4), 't', { indirectTable: r.data + 0x400n })).toBeGreaterThanOrEqual(0);
      expect(r.driver.add(bufs(3))).toBeGreaterThanOrEqual(0);
      expect(r.driver.broken).toBeNull();
    });

    it(`addUsed() takes only a chain in flight, at most its writable bytes, in order with IN_ORDER (${kind})`, () => {
      const r = kind === 'split' ? splitRig({ size: 8 }) : packedRig({ size: 8 });
      addTwoChains(r, 16); // two chains, 16 writable bytes each
      const a = r.device.pop()!;
      // not popped yet: no used element may be written for it
      expect(catchCode(() => r.device.addUsed(kind === 'split' ? 2 : 1, 0))).toBe('INVALID_ARGUMENT');
      expect(catchCode(() => r.device.addUsed(a.head, 17))).toBe('INVALID_ARGUMENT');
      r.device.addUsed(a.head, 16);
      expect(catchCode(() => r.device.addUsed(a.head, 0))).toBe('INVALID_ARGUMENT'); // twice
      expect(r.device.broken).toBeNull();

      const o =
        kind === 'split'
          ? splitRig({ size: 8, features: { inOrder: true } })
          : packedRig({ size: 8, features: { inOrder: true } });
      addTwoChains(o, 16);
      const first = o.device.pop()!;
      const second = o.device.pop()!;
      let err: unknown;
      try {
        o.device.addUsed(second.head, 0);
      } catch (e) {
        err = e;
      }
      expect((err as VringError).code).toBe('INVALID_ARGUMENT');
      expect((err as VringError).message).toMatch(/IN_ORDER/);
      o.device.addUsed(first.head, 1);
      o.device.addUsed(second.head, 0);
      o.device.publishUsed();
      expect(o.driver.popUsed()).toMatchObject({ token: 'a', len: 1 });
      expect(o.driver.popUsed()).toMatchObject({ token: 'b', len: 0 });
      // serve() keeps to the order too: a chain popped earlier and still open comes first
      addTwoChains(o, 16);
      o.device.pop();
      expect(catchCode(() => o.device.serve(1, () => 0))).toBe('INVALID_ARGUMENT');
      expect(o.device.broken).toBeNull();
    });
  }
});

describe('driver side: what the device wrote (split)', () => {
  function rigWithTwoInFlight() {
    const r = splitRig({ size: 8 });
    addTwoChains(r, 16);
    const u = r.off(r.addresses.usedRing);
    return {
      r,
      used(entries: [number, number][], idx = entries.length) {
        entries.forEach(([id, len], i) => {
          r.view.setUint32(u + 4 + 8 * i, id, true);
          r.view.setUint32(u + 8 + 8 * i, len, true);
        });
        r.view.setUint16(u + 2, idx, true);
      },
    };
  }
  function expectDriverViolation(r: SplitRig, code: string) {
    const before = r.driver.state();
    const free = r.driver.freeCount();
    expect(catchCode(() => r.driver.popUsed())).toBe(code);
    expect(r.driver.broken?.code).toBe(code);
    expect(r.driver.state()).toEqual(before);
    expect(r.driver.freeCount()).toBe(free);
    expect(catchCode(() => r.driver.popUsed())).toBe('QUEUE_BROKEN');
    expect(catchCode(() => r.driver.add([{ addr: r.data, len: 1 }]))).toBe('QUEUE_BROKEN');
  }

  it('rule 8: used.idx ahead of the chains in flight is USED_INDEX_OVERRUN', () => {
    const { r, used } = rigWithTwoInFlight();
    used([[0, 0]], 3);
    expectDriverViolation(r, 'USED_INDEX_OVERRUN');
  });

  it('rule 8: a used id >= N is INVALID_USED_ID', () => {
    const { r, used } = rigWithTwoInFlight();
    used([[8, 0]]);
    expectDriverViolation(r, 'INVALID_USED_ID');
  });

  it('rule 8: a used id that is not a head in flight is INVALID_USED_ID', () => {
    const { r, used } = rigWithTwoInFlight();
    used([[1, 0]]); // descriptor 1 is the second one of chain 0, not a head
    expectDriverViolation(r, 'INVALID_USED_ID');
  });

  it('rule 8: the same id used twice is INVALID_USED_ID', () => {
    const { r, used } = rigWithTwoInFlight();
    used([
      [2, 0],
      [2, 0],
    ]);
    expect(r.driver.popUsed()?.token).toBe('b');
    expectDriverViolation(r, 'INVALID_USED_ID');
  });

  it('rule 8: a used length beyond the writable capacity is INVALID_USED_LENGTH', () => {
    const { r, used } = rigWithTwoInFlight();
    used([[0, 17]]);
    expectDriverViolation(r, 'INVALID_USED_LENGTH');
  });

  it('rule 8: a used length on a chain without writable buffers is INVALID_USED_LENGTH', () => {
    const { r, used } = rigWithTwoInFlight();
    used([[2, 1]]);
    expectDriverViolation(r, 'INVALID_USED_LENGTH');
  });

  it('rule 8: valid used elements in any order are accepted', () => {
    const { r, used } = rigWithTwoInFlight();
    used([
      [2, 0],
      [0, 16],
    ]);
    expect(r.driver.popUsed()).toEqual({ head: 2, len: 0, token: 'b' });
    expect(r.driver.popUsed()).toEqual({ head: 0, len: 16, token: 'a' });
    expect(r.driver.freeCount()).toBe(8);
  });

  it('a device rewriting the descriptor table cannot corrupt the driver free list', () => {
    const { r, used } = rigWithTwoInFlight();
    new Uint8Array(r.buffer, r.off(r.addresses.descTable), 16 * 8).fill(0xff);
    used([
      [0, 0],
      [2, 0],
    ]);
    r.driver.popUsed();
    r.driver.popUsed();
    const heads = new Set<number>();
    for (let i = 0; i < 8; i++) heads.add(r.driver.add([{ addr: r.data, len: 1 }]));
    expect([...heads].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('IN_ORDER: one used element for a batch completes every earlier chain (2.7.9)', () => {
    const r = splitRig({ size: 8, features: { inOrder: true } });
    for (let i = 0; i < 5; i++) r.driver.add([{ addr: r.data, len: 8, writable: true }], i);
    r.driver.publish();
    const u = r.off(r.addresses.usedRing);
    // batch 1 (chains 0-2): one element at the batch's first offset naming its last
    // chain, and used.idx moved by the size of the batch
    r.view.setUint32(u + 4, 2, true);
    r.view.setUint32(u + 8, 5, true);
    r.view.setUint16(u + 2, 3, true);
    // the earlier chains were used completely: their whole writable capacity
    expect(r.driver.popUsed()).toEqual({ head: 0, len: 8, token: 0 });
    expect(r.driver.hasUsed()).toBe(true);
    expect(r.driver.popUsed()).toEqual({ head: 1, len: 8, token: 1 });
    expect(r.driver.popUsed()).toEqual({ head: 2, len: 5, token: 2 });
    expect(r.driver.popUsed()).toBeNull();
    // batch 2 (chains 3-4): its element sits at the offset of its first chain, 3
    r.view.setUint32(u + 4 + 8 * 3, 4, true);
    r.view.setUint32(u + 8 + 8 * 3, 1, true);
    r.view.setUint16(u + 2, 5, true);
    const tokens: unknown[] = new Array(8);
    const lens = new Uint32Array(8);
    expect(r.driver.popUsedBatch(tokens, lens)).toBe(2);
    expect(tokens.slice(0, 2)).toEqual([3, 4]);
    expect(Array.from(lens.subarray(0, 2))).toEqual([8, 1]);
    expect(r.driver.inFlight()).toBe(0);
    expect(r.driver.state()).toEqual({ nextAvail: 5, nextUsed: 5 });
    // descriptors are reused in ring order
    expect(r.driver.add([{ addr: r.data, len: 1 }])).toBe(5);
  });

  it('IN_ORDER: a batch element whose used.idx does not cover the batch breaks the queue', () => {
    const r = splitRig({ size: 8, features: { inOrder: true } });
    for (let i = 0; i < 3; i++) r.driver.add([{ addr: r.data, len: 8, writable: true }], i);
    r.driver.publish();
    const u = r.off(r.addresses.usedRing);
    r.view.setUint32(u + 4, 2, true); // a batch of 3 ...
    r.view.setUint16(u + 2, 2, true); // ... but used.idx moved by 2
    expect(catchCode(() => r.driver.popUsed())).toBe('INVALID_USED_ID');
    expect(r.driver.broken?.code).toBe('INVALID_USED_ID');
    expect(catchCode(() => r.driver.popUsed())).toBe('QUEUE_BROKEN');
    // nothing was handed out or freed
    expect(r.driver.inFlight()).toBe(3);
    expect(r.driver.state()).toEqual({ nextAvail: 3, nextUsed: 0 });
  });
});

describe('a driver and a device share one table of checks', () => {
  it('a SplitDriverQueue and SplitDeviceQueue refuse misaligned or unmapped rings at construction', () => {
    const memory = GuestMemory.fromBuffer(new ArrayBuffer(8192));
    const ring = splitLayout(8);
    const ok = { descTable: 0n, availRing: BigInt(ring.availRing), usedRing: BigInt(ring.usedRing) };
    expect(
      catchCode(() => new SplitDeviceQueue({ memory, size: 8, addresses: { ...ok, descTable: 8n } })),
    ).toBe('MISALIGNED_RING');
    expect(
      catchCode(
        () => new SplitDriverQueue({ memory, size: 8, addresses: { ...ok, usedRing: 2n + ok.usedRing } }),
      ),
    ).toBe('MISALIGNED_RING');
    expect(
      catchCode(() => new SplitDeviceQueue({ memory, size: 8, addresses: { ...ok, usedRing: 8190n } })),
    ).toBe('MISALIGNED_RING');
    expect(
      catchCode(() => new SplitDeviceQueue({ memory, size: 8, addresses: { ...ok, usedRing: 8188n } })),
    ).toBe('ADDRESS_OUT_OF_BOUNDS');
    expect(catchCode(() => new SplitDeviceQueue({ memory, size: 7, addresses: ok }))).toBe(
      'INVALID_QUEUE_SIZE',
    );
  });
});
