/**
 * INFLIGHT_SHMFD with packed rings: the QueueRegionPacked / DescStatePacked
 * layout, the bookkeeping and the recovery algorithm against a model of the
 * descriptor ring, and a fuzz run over arbitrary region bytes (the back-end
 * restarts are in inflight.test.ts and reconnect.test.ts).
 */
import { memfdCreate } from '@vipc/shm';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VhostUserError } from './errors.js';
import {
  InflightBuffer,
  InflightQueue,
  inflightQueueSize,
  type PackedDescriptor,
  PackedInflightQueue,
} from './inflight.js';

const AVAIL = 1 << 7;
const USED = 1 << 15;
const NEXT = 1;

/** The flags a driver writes to make a descriptor available in wrap `w`. */
const availFlags = (w: boolean): number => (w ? AVAIL : USED);
/** The flags a device writes for a used descriptor in wrap `w`. */
const usedFlags = (w: boolean): number => (w ? AVAIL | USED : 0);

/** A model of the descriptor ring (flags only) and of the driver and device positions. */
class RingModel {
  readonly n: number;
  readonly flags: Uint16Array;
  avail = 0;
  availWrap = true;
  used = 0;
  usedWrap = true;
  constructor(n: number) {
    this.n = n;
    // before the driver ever wrote it, a descriptor is neither available nor used in wrap 1
    this.flags = new Uint16Array(n);
  }
  /** The driver makes a chain of `k` descriptors available; returns them in ring order. */
  offer(k: number, id: number): PackedDescriptor[] {
    const out: PackedDescriptor[] = [];
    for (let i = 0; i < k; i++) {
      const f = availFlags(this.availWrap) | (i < k - 1 ? NEXT : 0);
      this.flags[this.avail] = f;
      out.push({ addr: BigInt(0x10000 + this.avail * 0x100), len: 64 + i, id, flags: f });
      if (++this.avail === this.n) {
        this.avail = 0;
        this.availWrap = !this.availWrap;
      }
    }
    return out;
  }
  /** The device writes one used descriptor per chain, skipping the chain's length. */
  writeUsed(chainLengths: readonly number[]): void {
    for (const k of chainLengths) {
      this.flags[this.used] = usedFlags(this.usedWrap);
      this.used += k;
      if (this.used >= this.n) {
        this.used -= this.n;
        this.usedWrap = !this.usedWrap;
      }
    }
  }
}

function region(n: number): { bytes: Uint8Array; q: PackedInflightQueue } {
  const bytes = new Uint8Array(inflightQueueSize(n, 'packed'));
  return { bytes, q: new PackedInflightQueue(bytes, n) };
}

describe('packed inflight region', () => {
  it('has the spec layout: 32-byte QueueRegionPacked header, 32-byte DescStatePacked entries, 64-byte aligned', () => {
    expect(inflightQueueSize(256, 'packed')).toBe(8256); // 32 + 256 * 32 = 8224, rounded up to 64
    expect(inflightQueueSize(4, 'packed')).toBe(192);
    expect(inflightQueueSize(1, 'packed')).toBe(64);
    const { bytes, q } = region(4);
    const v = new DataView(bytes.buffer);
    q.init(2, false);
    expect(v.getUint16(8, true)).toBe(1); // version
    expect(v.getUint16(10, true)).toBe(4); // desc_num
    expect([v.getUint16(12, true), v.getUint16(14, true)]).toEqual([0, 0]); // free_head, old_free_head
    expect([v.getUint16(16, true), v.getUint16(18, true)]).toEqual([2, 2]); // used_idx, old_used_idx
    expect([v.getUint8(20), v.getUint8(21)]).toEqual([0, 0]); // wrap counters
    // the free list: entry i's next (offset 2) is i + 1, ending at desc_num
    expect([0, 1, 2, 3].map((i) => v.getUint16(32 + 32 * i + 2, true))).toEqual([1, 2, 3, 4]);
    const counter = 0x1_0000_0007n;
    const head = q.fetch(
      [
        { addr: 0x1122334455667788n, len: 0xaabbccdd, id: 3, flags: AVAIL | NEXT },
        { addr: 0x99n, len: 7, id: 3, flags: AVAIL },
      ],
      counter,
    );
    expect(head).toBe(0);
    const e = 32; // entry 0
    expect(v.getUint8(e)).toBe(1); // inflight
    expect(v.getUint16(e + 4, true)).toBe(1); // last: the entry of the second descriptor
    expect(v.getUint16(e + 6, true)).toBe(2); // num
    expect(v.getBigUint64(e + 8, true)).toBe(counter);
    expect(v.getUint16(e + 16, true)).toBe(3); // id
    expect(v.getUint16(e + 18, true)).toBe(AVAIL | NEXT); // flags
    expect(v.getUint32(e + 20, true)).toBe(0xaabbccdd); // len
    expect(v.getBigUint64(e + 24, true)).toBe(0x1122334455667788n); // addr
    expect(v.getBigUint64(64 + 24, true)).toBe(0x99n); // entry 1 holds the second descriptor
    expect([q.freeHead, q.oldFreeHead]).toEqual([2, 2]);
    expect(q.entry(1)).toMatchObject({ id: 3, len: 7, flags: AVAIL });
  });

  it('GET_INFLIGHT_FD sizes: the packed layout when known, else one that holds either; clear() forgets everything', () => {
    using packed = InflightBuffer.create(3, 256, 'packed');
    expect(packed.mmapSize).toBe(3 * 8256);
    using split = InflightBuffer.create(3, 256, 'split');
    expect(split.mmapSize).toBe(3 * 4160);
    using either = InflightBuffer.create(3, 256);
    expect(either.mmapSize).toBe(3 * 8256);
    expect(either.layout).toBeUndefined();
    const q = either.packedQueue(2);
    expect(either.layout).toBe('packed');
    expect(() => either.splitQueue(0)).toThrow(/holds packed regions/);
    expect(() => split.packedQueue(0)).toThrow(/too small|cannot use/);
    q.init(5, true);
    q.fetch([{ addr: 1n, len: 2, id: 3, flags: AVAIL }], 41n);
    expect(q.version).toBe(1);
    either.clear();
    expect([q.version, q.entry(0).inflight, q.usedIdx]).toEqual([0, 0, 0]);
  });

  it('recovers a half-completed batch: rolled back before the ring was written, committed after', () => {
    const n = 8;
    for (const reached of [false, true]) {
      const ring = new RingModel(n);
      const { q } = region(n);
      q.init(0, true);
      const chains = [
        { id: 5, k: 2 },
        { id: 1, k: 1 },
        { id: 7, k: 3 },
        { id: 0, k: 1 },
      ];
      const entries = chains.map((c, i) => q.fetch(ring.offer(c.k, c.id), BigInt(10 + i)));
      // the device completes the first two and dies while publishing them
      q.release(entries.slice(0, 2));
      if (reached) ring.writeUsed([2, 1]);
      const r = q.recover((pos) => ring.flags[pos]!);
      expect(r.committedBatch).toBe(reached);
      expect(r.ids).toEqual(reached ? [7, 0] : [5, 1, 7, 0]);
      expect(r.entries).toEqual(reached ? entries.slice(2) : entries);
      expect([r.usedIdx, r.usedWrap]).toEqual([reached ? 3 : 0, true]);
      expect([q.usedIdx, q.oldUsedIdx, q.freeHead, q.oldFreeHead]).toEqual(
        reached ? [3, 3, entries[1], entries[1]] : [0, 0, 7, 7],
      );
      // the completed chains' entries are free again and not inflight
      if (reached) for (const e of [0, 1, 2]) expect(q.entry(e).inflight).toBe(0);
    }
  });

  it('matches a model of the ring at every crash point of random runs (out-of-order completion, wrap-around)', () => {
    type Op = { kind: 'fetch'; k: number } | { kind: 'complete'; pick: number[] };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('fetch' as const), k: fc.integer({ min: 1, max: 3 }) }),
      fc.record({
        kind: fc.constant('complete' as const),
        pick: fc.array(fc.nat(7), { minLength: 1, maxLength: 4 }),
      }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.array(op, { maxLength: 60 }),
        fc.constantFrom('released', 'written', 'committed'),
        (n, ops, crashAt) => {
          const ring = new RingModel(n);
          const { q } = region(n);
          q.init(0, true);
          let counter = 0n;
          let held = 0;
          // chains the device holds, in fetch order
          let inflight: { id: number; k: number; entry: number }[] = [];
          const freeIds = Array.from({ length: n }, (_, i) => i);
          for (const o of ops) {
            if (o.kind === 'fetch') {
              if (held + o.k > n || freeIds.length === 0) continue;
              const id = freeIds.shift()!;
              const entry = q.fetch(ring.offer(o.k, id), ++counter);
              inflight.push({ id, k: o.k, entry });
              held += o.k;
            } else {
              const batch = [...new Set(o.pick.map((p) => p % Math.max(1, inflight.length)))]
                .map((p) => inflight[p])
                .filter((c) => c !== undefined);
              if (batch.length === 0) continue;
              q.release(batch.map((c) => c.entry));
              ring.writeUsed(batch.map((c) => c.k));
              q.commit(batch.map((c) => c.entry));
              inflight = inflight.filter((c) => !batch.includes(c));
              for (const c of batch) freeIds.push(c.id);
              held -= batch.reduce((a, c) => a + c.k, 0);
            }
          }
          // one more batch of everything held, interrupted at `crashAt`
          let expected = inflight;
          let used = [ring.used, ring.usedWrap] as const;
          if (inflight.length > 0) {
            const batch = inflight.slice(0, Math.ceil(inflight.length / 2)).reverse();
            q.release(batch.map((c) => c.entry));
            if (crashAt !== 'released') {
              ring.writeUsed(batch.map((c) => c.k));
              used = [ring.used, ring.usedWrap];
              expected = inflight.filter((c) => !batch.includes(c));
            }
            if (crashAt === 'committed') q.commit(batch.map((c) => c.entry));
          }
          const r = q.recover((pos) => ring.flags[pos]!);
          expect(r.ids).toEqual(expected.map((c) => c.id));
          expect([r.usedIdx, r.usedWrap]).toEqual(used);
          // recovery leaves a consistent region: recovering again finds the same
          const again = q.recover((pos) => ring.flags[pos]!);
          expect(again.ids).toEqual(r.ids);
        },
      ),
      { numRuns: 400, interruptAfterTimeLimit: 15_000 },
    );
  });

  it('fuzz: arbitrary region bytes and ring flags give a result or INFLIGHT_CORRUPT, never a crash or a hang', () => {
    let results = 0;
    let refused = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 24 }),
        fc.uint8Array({ minLength: 0, maxLength: 900 }),
        fc.constantFrom('noise', 'plausible', 'mutated'),
        fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
        (n, noise, mode, flags, mutations) => {
          const bytes = new Uint8Array(inflightQueueSize(n, 'packed'));
          const v = new DataView(bytes.buffer);
          if (mode === 'mutated') {
            // a region a real run left (chains taken, some completed), then a few bytes changed
            const q0 = new PackedInflightQueue(bytes, n);
            q0.init(noise.length % n, noise.length % 2 === 0);
            const held: number[] = [];
            let room = n;
            for (let i = 0; i < noise.length; i++) {
              const b = noise[i]!;
              const k = 1 + (b % 3);
              if (b & 0x80 && held.length > 0) {
                const batch = held.splice(0, 1 + (b % held.length));
                q0.release(batch);
                q0.commit(batch);
                for (const e of batch) room += q0.entry(e).num;
              } else if (k <= room) {
                const descs = Array.from({ length: k }, (_, j) => ({
                  addr: BigInt(b),
                  len: j,
                  id: held.length,
                  flags: AVAIL,
                }));
                held.push(q0.fetch(descs, BigInt(i + 1)));
                room -= k;
              }
            }
            for (const [off, val] of mutations) bytes[off % bytes.length] = val;
          } else {
            bytes.set(noise.subarray(0, bytes.length));
          }
          if (mode === 'plausible') {
            // get past the header checks more often: version 1, desc_num n, small indexes
            v.setUint16(8, 1, true);
            v.setUint16(10, n, true);
            for (const off of [12, 14, 16, 18]) v.setUint16(off, v.getUint16(off, true) % (n + 1), true);
            for (const off of [20, 21]) v.setUint8(off, v.getUint8(off) & 1);
            for (let i = 0; i < n; i++) {
              const d = 32 + 32 * i;
              v.setUint8(d, v.getUint8(d) & 1);
              for (const f of [2, 4, 16]) v.setUint16(d + f, v.getUint16(d + f, true) % (n + 1), true);
              v.setUint16(d + 6, v.getUint16(d + 6, true) % (n + 1), true);
            }
          }
          const q = new PackedInflightQueue(bytes, n);
          try {
            const r = q.recover((pos) => {
              expect(pos).toBeLessThan(n);
              return flags[pos % flags.length]!;
            });
            results++;
            expect(new Set(r.ids).size).toBe(r.ids.length);
            for (const id of r.ids) expect(id).toBeLessThan(n);
            expect(r.usedIdx).toBeLessThan(n);
            // what recovery accepted can be tracked from: init at its position works
            q.init(r.usedIdx, r.usedWrap);
            expect(q.recover(() => 0).ids).toEqual([]);
          } catch (err) {
            if (!(err instanceof VhostUserError)) throw err;
            expect(err.code).toBe('INFLIGHT_CORRUPT');
            expect(err.message).toMatch(/^inflight region: /);
            refused++;
          }
        },
      ),
      { numRuns: 3000, interruptAfterTimeLimit: 20_000 },
    );
    // both outcomes were exercised
    expect(results).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  });

  it('fuzz: the split region too, and adopting fds of any size and offset fails cleanly', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.integer({ min: 0, max: 0xffff }),
        (n, noise, ringUsed) => {
          const bytes = new Uint8Array(inflightQueueSize(n));
          bytes.set(noise.subarray(0, bytes.length));
          if (noise.length % 2 === 0) {
            new DataView(bytes.buffer).setUint16(8, 1, true);
            new DataView(bytes.buffer).setUint16(10, n, true);
          }
          try {
            const heads = new InflightQueue(bytes, n).recover(ringUsed);
            for (const h of heads) expect(h).toBeLessThan(n);
          } catch (err) {
            if (!(err instanceof VhostUserError)) throw err;
            expect(err.code).toBe('INFLIGHT_CORRUPT');
          }
        },
      ),
      { numRuns: 1000, interruptAfterTimeLimit: 10_000 },
    );
    fc.assert(
      fc.property(
        fc.nat(20_000),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.nat(300),
        fc.nat(40_000),
        fc.constantFrom(undefined, 'split' as const, 'packed' as const),
        (fdSize, mmapSize, mmapOffset, numQueues, queueSize, layout) => {
          const fd = memfdCreate('vipc-inflight-fuzz', { size: fdSize });
          try {
            using buf = InflightBuffer.adopt(fd, mmapSize, mmapOffset, numQueues, queueSize, layout);
            // accepted: the queues it describes are within the mapping
            const q = layout === 'packed' ? buf.packedQueue(numQueues - 1) : buf.splitQueue(numQueues - 1);
            expect(q.size).toBe(queueSize);
          } catch (err) {
            if (!(err instanceof VhostUserError)) throw err;
            expect(['INVALID_PARAMETER', 'REGION_FD_TOO_SMALL']).toContain(err.code);
          }
          expect(fd.closed).toBe(true);
        },
      ),
      { numRuns: 300, interruptAfterTimeLimit: 10_000 },
    );
  });
});
