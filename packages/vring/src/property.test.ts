// Property tests: random chains round-trip; arbitrary ring bytes never crash,
// hang, or yield a view outside guest memory.

import { memfdCreate, mmap } from '@vipc/shm';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DescriptorChain } from './descriptor-chain.js';
import { VringError } from './errors.js';
import { GuestMemory } from './guest-memory.js';
import { PackedDeviceQueue } from './packed-device-queue.js';
import { PackedDriverQueue } from './packed-driver-queue.js';
import { packedLayout } from './packed-layout.js';
import { SplitDeviceQueue } from './split-device-queue.js';
import type { DriverBuffer } from './split-driver-queue.js';
import { SplitDriverQueue } from './split-driver-queue.js';
import { splitLayout } from './split-layout.js';
import { packedRig, packedRingAt, splitRig, splitRingAt, viewsInside } from './test-rig.js';

const chainArb = fc.record({
  readable: fc.array(fc.uint8Array({ minLength: 0, maxLength: 40 }), { minLength: 0, maxLength: 3 }),
  writable: fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 0, maxLength: 3 }),
  reply: fc.uint8Array({ minLength: 0, maxLength: 120 }),
  indirect: fc.boolean(),
});
type ChainSpec = { readable: Uint8Array[]; writable: number[]; reply: Uint8Array; indirect: boolean };

function concat(parts: Uint8Array[]): number[] {
  return parts.flatMap((p) => Array.from(p));
}

function roundTrip(
  kind: 'split' | 'packed',
  size: number,
  eventIdx: boolean,
  chains: ChainSpec[],
  order: number[],
  backing: Backing = 'array',
) {
  const features = { indirect: true, eventIdx };
  const buffer = backing === 'memfd' ? memfdBuffer() : undefined;
  const shared = backing === 'shared';
  const r =
    kind === 'split'
      ? splitRig({ size, features, dataBytes: 1 << 20, shared, buffer })
      : packedRig({ size, features, dataBytes: 1 << 20, shared, buffer });
  const { driver, device } = r;
  let cursor = 0;
  const alloc = (n: number) => {
    const a = r.data + BigInt(cursor);
    cursor += Math.ceil((n + 1) / 16) * 16;
    return a;
  };
  const specs = chains.filter((c) => c.readable.length + c.writable.length > 0);
  const sent = new Map<number, { spec: ChainSpec; writable: bigint[] }>();
  const headToken = new Map<number, number>();
  let next = 0;
  let done = 0;
  while (done < specs.length) {
    while (next < specs.length) {
      const spec = specs[next]!;
      const bufs: DriverBuffer[] = spec.readable.map((b) => {
        const a = alloc(b.length);
        r.bytes.set(b, r.off(a));
        return { addr: a, len: b.length };
      });
      const writable = spec.writable.map((n) => alloc(n));
      writable.forEach((a, i) => {
        bufs.push({ addr: a, len: spec.writable[i]!, writable: true });
      });
      const opts = spec.indirect ? { indirectTable: alloc(16 * bufs.length) } : undefined;
      const head = driver.add(bufs, next, opts);
      if (head < 0) break;
      headToken.set(head, next);
      sent.set(next, { spec, writable });
      next++;
    }
    driver.publish();
    const popped = [];
    for (let c = device.pop(); c !== null; c = device.pop()) popped.push(c);
    expect(popped.length).toBeGreaterThan(0);
    const perm = popped
      .map((_, i) => i)
      .sort((a, b) => order[a % order.length]! - order[b % order.length]! || a - b);
    for (const i of perm) {
      const c = popped[i]!;
      const s = sent.get(headToken.get(c.head)!)!;
      expect(viewsInside(r.memory, [...c.readable, ...c.writable])).toBe(true);
      expect(Array.from(c.read())).toEqual(concat(s.spec.readable));
      expect(c.writableLength).toBe(s.spec.writable.reduce((a, b) => a + b, 0));
      device.addUsed(c.head, c.write(s.spec.reply));
    }
    device.publishUsed();
    for (let u = driver.popUsed(); u !== null; u = driver.popUsed()) {
      const s = sent.get(u.token as number)!;
      const cap = s.spec.writable.reduce((a, b) => a + b, 0);
      expect(u.len).toBe(Math.min(cap, s.spec.reply.length));
      const back = s.writable.flatMap((a, i) =>
        Array.from(r.bytes.subarray(r.off(a), r.off(a) + s.spec.writable[i]!)),
      );
      expect(back.slice(0, u.len)).toEqual(Array.from(s.spec.reply.subarray(0, u.len)));
      sent.delete(u.token as number);
      done++;
    }
  }
  expect(driver.freeCount()).toBe(size);
  expect(driver.inFlight()).toBe(0);
}

type Backing = 'array' | 'shared' | 'memfd';
// One memfd mapping (ArrayBuffer over MAP_SHARED memory), zeroed for each run.
let memfdMap: { buffer: ArrayBuffer } | undefined;
function memfdBuffer(): ArrayBuffer {
  const b = memfdMap!.buffer;
  new Uint8Array(b).fill(0);
  return b;
}
beforeAll(() => {
  const fd = memfdCreate(`vring-prop-${process.pid}`, { size: 2 << 20 });
  memfdMap = mmap(fd);
  fd.close();
});
afterAll(() => {
  (memfdMap as { unmap?: () => void } | undefined)?.unmap?.();
});

describe('property: random chains round-trip', () => {
  // the same contract over every kind of memory: ArrayBuffer, SharedArrayBuffer, a memfd mapping
  for (const [kind, backing] of [
    ['split', 'array'],
    ['packed', 'array'],
    ['split', 'shared'],
    ['packed', 'shared'],
    ['split', 'memfd'],
    ['packed', 'memfd'],
  ] as const) {
    it(`${kind} over ${backing}: payloads, lengths and tokens survive any chain shapes and completion order`, () => {
      fc.assert(
        fc.property(
          fc.constantFrom(1, 2, 4, 8, 16),
          fc.boolean(),
          fc.array(chainArb, { minLength: 1, maxLength: 40 }),
          fc.array(fc.nat(100), { minLength: 1, maxLength: 16 }),
          (size, eventIdx, chains, order) => {
            // a driver may not make a chain longer than the queue size, direct or
            // indirect (2.7.5.3.1): longer ones are cut to fit
            const fit = chains.map((c) => {
              if (c.readable.length + c.writable.length <= size) return c;
              const readable = c.readable.slice(0, size);
              return { ...c, readable, writable: c.writable.slice(0, size - readable.length) };
            });
            roundTrip(kind, size, eventIdx, fit, order, backing);
          },
        ),
        { numRuns: backing === 'array' ? 150 : 50 },
      );
    });
  }
});

/** Descriptor fields biased towards the interesting: inside memory, table-sized lengths, small indexes. */
function descArb(base: bigint, span: number, size: number) {
  return fc.record({
    addr: fc.oneof(
      { weight: 8, arbitrary: fc.integer({ min: 0, max: span }).map((o) => base + BigInt(o & ~15)) },
      { weight: 2, arbitrary: fc.integer({ min: 0, max: span }).map((o) => base + BigInt(o)) },
      { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(0n, (1n << 64n) - 16n, 1n << 53n, (1n << 53n) - 1n, base - 1n),
      },
    ),
    len: fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 0, max: 128 }) },
      { weight: 3, arbitrary: fc.integer({ min: 1, max: 8 }).map((k) => 16 * k) },
      { weight: 1, arbitrary: fc.constantFrom(0xffffffff, 0x80000000, 0xfffffff0) },
      { weight: 1, arbitrary: fc.nat(0xffffffff) },
    ),
    flags: fc.oneof({ weight: 8, arbitrary: fc.nat(7) }, { weight: 1, arbitrary: fc.nat(0xffff) }),
    next: fc.oneof({ weight: 8, arbitrary: fc.nat(size) }, { weight: 1, arbitrary: fc.nat(0xffff) }),
    id: fc.oneof({ weight: 8, arbitrary: fc.nat(size) }, { weight: 1, arbitrary: fc.nat(0xffff) }),
    owner: fc.oneof(
      { weight: 6, arbitrary: fc.constant(0x0080) },
      { weight: 1, arbitrary: fc.constantFrom(0, 0x8000, 0x8080) },
    ),
  });
}
type Desc = { addr: bigint; len: number; flags: number; next: number; id: number; owner: number };

/** Memory with guard bytes around the region inside the same buffer: a view escaping the region is visible. */
function guarded(ringBytes: number) {
  const guard = 4096;
  const size = ringBytes + 8192;
  const buffer = new ArrayBuffer(size + 2 * guard);
  const memory = new GuestMemory([{ guestAddress: 0x1000n, size, buffer, byteOffset: guard }]);
  const bytes = new Uint8Array(buffer, guard, size);
  return { memory, bytes, view: new DataView(buffer, guard, size), base: 0x1000n, size };
}

const stats = { chains: 0, errors: new Set<string>() };
function contained(fn: () => void) {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof VringError)) throw e;
    stats.errors.add(e.code);
  }
}

/**
 * Pops `q` until it is empty or broken (at most `limit` + 1 times), each
 * violation contained; every chain's views lie inside guest memory, and `use`
 * completes it. Then publishes what was used.
 */
function drainDevice(
  q: SplitDeviceQueue | PackedDeviceQueue,
  memory: GuestMemory,
  limit: number,
  use: (c: DescriptorChain) => void,
) {
  for (let i = 0; i <= limit && q.broken === null; i++) {
    let empty = false;
    contained(() => {
      const c = q.pop();
      if (c === null) {
        empty = true;
        return;
      }
      stats.chains++;
      expect(viewsInside(memory, [...c.readable, ...c.writable])).toBe(true);
      use(c);
    });
    if (empty) break;
  }
  contained(() => q.publishUsed());
}

/**
 * Pops used buffers from `q` until none is left or it is broken (at most
 * `limit` + 1 times), each violation contained: none is longer than the 4
 * bytes each chain had, none is returned twice.
 */
function drainUsed(q: SplitDriverQueue | PackedDriverQueue, limit: number) {
  const seen = new Set<unknown>();
  for (let i = 0; i <= limit && q.broken === null; i++) {
    let empty = false;
    contained(() => {
      const u = q.popUsed();
      if (u === null) {
        empty = true;
        return;
      }
      expect(u.len).toBeLessThanOrEqual(4);
      expect(seen.has(u.token)).toBe(false); // never returned twice
      seen.add(u.token);
    });
    if (empty) break;
  }
}

function writeSplitDesc(v: DataView, at: number, d: Desc) {
  v.setBigUint64(at, d.addr, true);
  v.setUint32(at + 8, d.len, true);
  v.setUint16(at + 12, d.flags, true);
  v.setUint16(at + 14, d.next, true);
}
function writePackedDesc(v: DataView, at: number, d: Desc) {
  v.setBigUint64(at, d.addr, true);
  v.setUint32(at + 8, d.len, true);
  v.setUint16(at + 12, d.id, true);
  v.setUint16(at + 14, (d.flags & 0x7) | d.owner, true);
}

describe('property: arbitrary ring contents never crash, hang or escape guest memory', () => {
  const size = 8;
  const span = splitLayout(size).totalBytes + 8192;

  it('split device side', () => {
    const l = splitLayout(size);
    stats.chains = 0;
    stats.errors.clear();
    fc.assert(
      fc.property(
        fc.array(descArb(0x1000n, span, size), { minLength: size, maxLength: size }),
        fc.array(descArb(0x1000n, span, size), { minLength: 16, maxLength: 16 }),
        fc.array(
          fc.oneof({ weight: 8, arbitrary: fc.nat(size - 1) }, { weight: 1, arbitrary: fc.nat(0xffff) }),
          {
            minLength: size,
            maxLength: size,
          },
        ),
        fc.oneof({ weight: 8, arbitrary: fc.nat(size + 1) }, { weight: 1, arbitrary: fc.nat(0xffff) }),
        fc.boolean(),
        fc.boolean(),
        (descs, extra, ring, idx, indirect, eventIdx) => {
          const g = guarded(l.totalBytes);
          descs.forEach((d, i) => {
            writeSplitDesc(g.view, 16 * i, d);
          });
          // more descriptors in the data area, where indirect tables may point
          const dataOff = l.totalBytes + (16 - (l.totalBytes % 16));
          extra.forEach((d, i) => {
            writeSplitDesc(g.view, dataOff + 16 * i, d);
          });
          ring.forEach((h, i) => {
            g.view.setUint16(l.availRing + 4 + 2 * i, h, true);
          });
          g.view.setUint16(l.availRing + 2, idx, true);
          const q = new SplitDeviceQueue({
            memory: g.memory,
            size,
            addresses: splitRingAt(g.base, l),
            features: { indirect, eventIdx },
          });
          drainDevice(q, g.memory, size + 1, (c) => {
            expect(c.read().length).toBe(Math.min(c.readableLength, c.readableLength));
            c.write(new Uint8Array(64).fill(1));
            q.addUsed(c.head, 1);
          });
        },
      ),
      { numRuns: 2000 },
    );
    // the generator reaches valid chains and many kinds of violation
    expect(stats.chains).toBeGreaterThan(100);
    expect(stats.errors.size).toBeGreaterThanOrEqual(8);
  });

  it('packed device side', () => {
    stats.chains = 0;
    stats.errors.clear();
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.array(descArb(0x1000n, span, 9), { minLength: 9, maxLength: 9 }),
        fc.array(descArb(0x1000n, span, 9), { minLength: 16, maxLength: 16 }),
        fc.boolean(),
        fc.boolean(),
        (n, descs, extra, indirect, eventIdx) => {
          const l = packedLayout(n);
          const g = guarded(l.totalBytes);
          descs.slice(0, n).forEach((d, i) => {
            writePackedDesc(g.view, 16 * i, d);
          });
          const dataOff = l.totalBytes + (16 - (l.totalBytes % 16));
          // indirect table entries (packed format: only the flags word matters besides addr/len)
          extra.forEach((d, i) => {
            writePackedDesc(g.view, dataOff + 16 * i, { ...d, owner: 0 });
          });
          const q = new PackedDeviceQueue({
            memory: g.memory,
            size: n,
            addresses: packedRingAt(g.base, l),
            features: { indirect, eventIdx },
          });
          drainDevice(q, g.memory, n + 1, (c) => {
            q.addUsed(c.head, 0);
          });
        },
      ),
      { numRuns: 2000 },
    );
    expect(stats.chains).toBeGreaterThan(100);
    expect(stats.errors.size).toBeGreaterThanOrEqual(7);
  });

  it('split driver side: any used ring', () => {
    const l = splitLayout(size);
    stats.errors.clear();
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            id: fc.oneof(fc.nat(size), fc.nat(0xffffffff)),
            len: fc.oneof(fc.nat(6), fc.nat(0xffffffff)),
          }),
          {
            minLength: size,
            maxLength: size,
          },
        ),
        fc.oneof(fc.nat(size + 1), fc.nat(0xffff)),
        fc.integer({ min: 0, max: size }),
        fc.boolean(),
        (elems, idx, inflight, inOrder) => {
          const g = guarded(l.totalBytes);
          const q = new SplitDriverQueue({
            memory: g.memory,
            size,
            addresses: splitRingAt(g.base, l),
            features: { inOrder },
          });
          for (let i = 0; i < inflight; i++) q.add([{ addr: g.base, len: 4, writable: true }], i);
          q.publish();
          elems.forEach((e, i) => {
            g.view.setUint32(l.usedRing + 4 + 8 * i, e.id, true);
            g.view.setUint32(l.usedRing + 8 + 8 * i, e.len, true);
          });
          g.view.setUint16(l.usedRing + 2, idx, true);
          drainUsed(q, size + 1);
          expect(q.freeCount() + q.inFlight()).toBe(size);
        },
      ),
      { numRuns: 2000 },
    );
    expect(stats.errors.size).toBeGreaterThanOrEqual(3);
  });

  it('packed driver side: any used descriptors', () => {
    stats.errors.clear();
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.array(descArb(0x1000n, span, 9), { minLength: 9, maxLength: 9 }),
        fc.nat(9),
        fc.boolean(),
        (n, descs, k, inOrder) => {
          const l = packedLayout(n);
          const g = guarded(l.totalBytes);
          const q = new PackedDriverQueue({
            memory: g.memory,
            size: n,
            addresses: packedRingAt(g.base, l),
            features: { inOrder },
          });
          for (let i = 0; i < Math.min(k, n); i++) q.add([{ addr: g.base, len: 4, writable: true }], i);
          q.publish();
          descs.slice(0, n).forEach((d, i) => {
            writePackedDesc(g.view, 16 * i, {
              ...d,
              owner: d.owner === 0x80 ? 0x8080 : d.owner,
              len: d.len & 7,
            });
          });
          drainUsed(q, n + 1);
          expect(q.freeCount()).toBeLessThanOrEqual(n);
        },
      ),
      { numRuns: 2000 },
    );
    expect(stats.errors.size).toBeGreaterThanOrEqual(2);
  });
});
