// The one-call paths: addBuffer(), popUsedBatch() and serve(), for both layouts.
// They must leave exactly the ring bytes and queue state the general calls
// (add(), popUsedHead(), pop() + addUsed()) leave, and check the same things.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DescriptorChain } from './descriptor-chain.js';
import type { VringError } from './errors.js';
import type { QueueFeatures } from './queue-state.js';
import { catchCode, packedRig, splitRig } from './test-rig.js';

type Rig = ReturnType<typeof splitRig> | ReturnType<typeof packedRig>;
const LAYOUTS = [
  ['split', (o: { size?: number; features?: QueueFeatures }) => splitRig(o) as Rig],
  ['packed', (o: { size?: number; features?: QueueFeatures }) => packedRig(o) as Rig],
] as const;

/** A list of one-buffer chains: offset into the data area, length, writable. */
const chainsArb = fc.array(
  fc.record({
    at: fc.integer({ min: 0, max: 60000 }),
    len: fc.integer({ min: 0, max: 4096 }),
    writable: fc.boolean(),
  }),
  { minLength: 1, maxLength: 8 },
);
/** For round trips: lengths and directions (the test places the buffers). */
const roundArb = fc.array(fc.record({ len: fc.integer({ min: 0, max: 4096 }), writable: fc.boolean() }), {
  minLength: 1,
  maxLength: 8,
});

for (const [name, rig] of LAYOUTS) {
  describe(`${name}: addBuffer()`, () => {
    it('writes the same ring bytes and state as add() with a one-buffer list', () => {
      fc.assert(
        fc.property(chainsArb, fc.boolean(), (chains, inOrder) => {
          const a = rig({ size: 8, features: { eventIdx: true, inOrder } });
          const b = rig({ size: 8, features: { eventIdx: true, inOrder } });
          for (let i = 0; i < chains.length; i++) {
            const c = chains[i]!;
            const addr = Number(a.data) + c.at;
            const ida = a.driver.add([{ addr, len: c.len, writable: c.writable }], i);
            const idb = b.driver.addBuffer(addr, c.len, i, c.writable);
            expect(idb).toBe(ida);
          }
          expect(b.driver.publish()).toBe(a.driver.publish());
          expect(Buffer.from(b.bytes).equals(Buffer.from(a.bytes))).toBe(true);
          expect(b.driver.freeCount()).toBe(a.driver.freeCount());
          expect(b.driver.inFlight()).toBe(a.driver.inFlight());
          expect(b.driver.state()).toEqual(a.driver.state());
        }),
        { numRuns: 150 },
      );
    });

    it('rejects a bad length, address or flag by name, and changes nothing', () => {
      const r = rig({ size: 4 });
      const data = Number(r.data);
      const before = Buffer.from(r.bytes);
      const cases: [number, number, unknown, string][] = [
        [data, -1, false, 'INVALID_ARGUMENT'],
        [data, 1.5, false, 'INVALID_ARGUMENT'],
        [data, 2 ** 32, false, 'INVALID_ARGUMENT'],
        [data, Number.NaN, false, 'INVALID_ARGUMENT'],
        [-1, 4, false, 'INVALID_ARGUMENT'],
        [data + 0.5, 4, false, 'INVALID_ARGUMENT'],
        [2 ** 53, 4, false, 'INVALID_ARGUMENT'],
        [Number.NaN, 4, false, 'INVALID_ARGUMENT'],
        [data, 4, 'yes', 'INVALID_ARGUMENT'],
        [data + r.dataBytes - 2, 4, false, 'ADDRESS_OUT_OF_BOUNDS'],
        [2 ** 40, 4, false, 'ADDRESS_OUT_OF_BOUNDS'],
        [0, 4, false, 'ADDRESS_OUT_OF_BOUNDS'],
      ];
      for (const [addr, len, writable, code] of cases) {
        const err = catchCode(() => r.driver.addBuffer(addr, len, 't', writable as boolean));
        expect(err, `addBuffer(${addr}, ${len}, ${String(writable)})`).toBe(code);
      }
      expect(r.driver.freeCount()).toBe(4);
      expect(r.driver.inFlight()).toBe(0);
      expect(r.driver.broken).toBeNull();
      expect(Buffer.from(r.bytes).equals(before)).toBe(true);
      // a caller's mistake does not break the queue: it still works
      expect(r.driver.addBuffer(data, 4, 't')).toBeGreaterThanOrEqual(0);
    });

    it('returns -1 when no descriptor is free', () => {
      const r = rig({ size: 4 });
      for (let i = 0; i < 4; i++)
        expect(r.driver.addBuffer(Number(r.data) + 64 * i, 64, i)).toBeGreaterThanOrEqual(0);
      expect(r.driver.addBuffer(Number(r.data), 64, 'extra')).toBe(-1);
      expect(r.driver.inFlight()).toBe(4);
    });
  });

  describe(`${name}: serve() and popUsedBatch()`, () => {
    it('round-trip random chains: what serve() visits is what was added, lengths and tokens come back', () => {
      fc.assert(
        fc.property(
          fc.array(roundArb, { minLength: 1, maxLength: 6 }),
          fc.boolean(),
          fc.integer({ min: 1, max: 8 }),
          (rounds, inOrder, max) => {
            const r = rig({ size: 8, features: { eventIdx: true, inOrder } });
            const data = Number(r.data);
            let token = 0;
            const expected = new Map<number, { len: number; writable: boolean }>();
            const tokens: unknown[] = new Array(8);
            const lens = new Uint32Array(8);
            for (const chains of rounds) {
              for (const c of chains) {
                // at most 8 chains in flight, all from this round: 8 KiB apart, no overlap
                const at = data + (token % 8) * 8192;
                r.bytes.fill(0, r.off(BigInt(at)), r.off(BigInt(at)) + 4096);
                if (c.len >= 2) r.view.setUint16(r.off(BigInt(at)), token, true);
                if (r.driver.addBuffer(at, c.len, token, c.writable) < 0) break;
                expected.set(token, { len: c.len, writable: c.writable });
                token++;
              }
              r.driver.publish();
              let served = 0;
              for (;;) {
                const n = r.device.serve(max, (chain: DescriptorChain) => {
                  const seg = chain.readable[0] ?? chain.writable[0];
                  expect(seg).toBeDefined();
                  expect(chain.readable.length + chain.writable.length).toBe(1);
                  if (seg!.length >= 2) {
                    // the marker names the chain: its length and direction must be the added ones
                    const e = expected.get(seg![0]! | (seg![1]! << 8));
                    expect(e).toBeDefined();
                    expect(seg!.length).toBe(e!.len);
                    expect(chain.writableLength).toBe(e!.writable ? e!.len : 0);
                  }
                  // a writable chain gets its whole capacity written
                  return chain.writableLength;
                });
                expect(n).toBeLessThanOrEqual(max);
                if (n === 0) break;
                served += n;
                r.device.publishUsed();
              }
              let back = 0;
              for (;;) {
                const n = r.driver.popUsedBatch(tokens, lens);
                if (n === 0) break;
                for (let i = 0; i < n; i++) {
                  const e = expected.get(tokens[i] as number);
                  expect(e).toBeDefined();
                  // IN_ORDER: the device wrote every element, so each length is known
                  expect(lens[i]).toBe(e!.writable ? e!.len : 0);
                  expected.delete(tokens[i] as number);
                }
                back += n;
              }
              expect(back).toBe(served);
              expect(r.driver.inFlight()).toBe(0);
            }
            expect(expected.size).toBe(0);
          },
        ),
        { numRuns: 100 },
      );
    });

    it('serve() stops at max and reuses one chain object', () => {
      const r = rig({ size: 8 });
      for (let i = 0; i < 6; i++) r.driver.addBuffer(Number(r.data) + 64 * i, 64, i);
      r.driver.publish();
      const seen = new Set<DescriptorChain>();
      const heads: number[] = [];
      expect(
        r.device.serve(4, (c) => {
          seen.add(c);
          heads.push(c.head);
          return 0;
        }),
      ).toBe(4);
      expect(
        r.device.serve(4, (c) => {
          seen.add(c);
          heads.push(c.head);
          return 0;
        }),
      ).toBe(2);
      expect(seen.size).toBe(1);
      expect(new Set(heads).size).toBe(6);
      r.device.publishUsed();
      expect(r.driver.popUsedBatch(new Array(8))).toBe(6);
    });

    it('a visit that returns a bad length is a caller error naming the chain; the chain stays taken', () => {
      for (const bad of [-1, 0.5, 65, Number.NaN]) {
        const r = rig({ size: 4 });
        r.driver.add([{ addr: r.data, len: 64, writable: true }], 'w');
        r.driver.publish();
        let head = -1;
        const err = (() => {
          try {
            r.device.serve(4, (c) => {
              head = c.head;
              return bad;
            });
          } catch (e) {
            return e as VringError;
          }
          return undefined;
        })();
        expect(err?.code, String(bad)).toBe('INVALID_ARGUMENT');
        expect(err?.message).toMatch(/64 writable bytes/);
        expect(r.device.broken).toBeNull();
        // give it back by hand: the driver gets it
        r.device.addUsed(head, 64);
        r.device.publishUsed();
        const tokens: unknown[] = [undefined];
        const lens = new Uint32Array(1);
        expect(r.driver.popUsedBatch(tokens, lens)).toBe(1);
        expect(tokens[0]).toBe('w');
        expect(lens[0]).toBe(64);
      }
    });

    it('serve() and popUsedBatch() refuse bad arguments by name, and take nothing', () => {
      const r = rig({ size: 4 });
      r.driver.addBuffer(Number(r.data), 64, 't');
      r.driver.publish();
      for (const max of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '4']) {
        expect(
          catchCode(() => r.device.serve(max as number, () => 0)),
          String(max),
        ).toBe('INVALID_ARGUMENT');
      }
      expect(catchCode(() => r.device.serve(4, 'visit' as unknown as () => number))).toBe('INVALID_ARGUMENT');
      expect(r.device.broken).toBeNull();
      expect(r.device.serve(4, () => 0)).toBe(1);
      r.device.publishUsed();
      expect(catchCode(() => r.driver.popUsedBatch('x' as unknown as unknown[]))).toBe('INVALID_ARGUMENT');
      expect(catchCode(() => r.driver.popUsedBatch([], new Uint16Array(4) as unknown as Uint32Array))).toBe(
        'INVALID_ARGUMENT',
      );
      expect(catchCode(() => r.driver.popUsedBatch(new Array(4), undefined, -1))).toBe('INVALID_ARGUMENT');
      expect(r.driver.broken).toBeNull();
      const tokens: unknown[] = new Array(4);
      expect(r.driver.popUsedBatch(tokens)).toBe(1);
      expect(tokens[0]).toBe('t');
    });

    it('popUsedBatch() respects max and the array lengths', () => {
      const r = rig({ size: 8 });
      for (let i = 0; i < 6; i++) r.driver.addBuffer(Number(r.data) + 64 * i, 64, i);
      r.driver.publish();
      r.device.serve(8, () => 0);
      r.device.publishUsed();
      const tokens: unknown[] = new Array(8);
      expect(r.driver.popUsedBatch(tokens, undefined, 2)).toBe(2);
      expect(r.driver.popUsedBatch(tokens, new Uint32Array(3))).toBe(3);
      expect(r.driver.popUsedBatch(new Array(1))).toBe(1);
      expect(r.driver.popUsedBatch(tokens)).toBe(0);
      expect(r.driver.inFlight()).toBe(0);
    });
  });
}

describe('hostile rings through the one-call paths', () => {
  it('split serve(): a head beyond the queue size breaks the queue and serves nothing', () => {
    const r = splitRig({ size: 4 });
    r.driver.addBuffer(Number(r.data), 64, 0);
    r.driver.publish();
    const avail = r.off(r.addresses.availRing);
    r.view.setUint16(avail + 4, 9, true); // avail.ring[0] = 9
    let visits = 0;
    expect(
      catchCode(() =>
        r.device.serve(4, () => {
          visits++;
          return 0;
        }),
      ),
    ).toBe('INVALID_DESCRIPTOR_INDEX');
    expect(visits).toBe(0);
    expect(r.device.broken?.code).toBe('INVALID_DESCRIPTOR_INDEX');
    expect(r.device.state()).toEqual({ nextAvail: 0, nextUsed: 0 });
    expect(catchCode(() => r.device.serve(4, () => 0))).toBe('QUEUE_BROKEN');
  });

  it('split serve(): a descriptor outside guest memory is ADDRESS_OUT_OF_BOUNDS', () => {
    const r = splitRig({ size: 4 });
    r.driver.addBuffer(Number(r.data), 64, 0);
    r.driver.publish();
    const desc = r.off(r.addresses.descTable);
    r.view.setBigUint64(desc, 0xffff_0000_0000n, true);
    expect(catchCode(() => r.device.serve(4, () => 0))).toBe('ADDRESS_OUT_OF_BOUNDS');
  });

  it('packed serve(): a chain looping past the ring is caught', () => {
    const r = packedRig({ size: 4 });
    r.driver.addBuffer(Number(r.data), 64, 0);
    r.driver.publish();
    // make every slot available with NEXT set: a chain longer than the ring
    const d = r.off(r.addresses.descRing);
    for (let s = 0; s < 4; s++) {
      r.view.setBigUint64(d + 16 * s, r.data, true);
      r.view.setUint32(d + 16 * s + 8, 64, true);
      r.view.setUint16(d + 16 * s + 14, 0x80 | 0x1, true); // AVAIL | NEXT, wrap 1
    }
    // (the packed rule: a chain may not run past the descriptors the driver can have made available)
    expect(catchCode(() => r.device.serve(4, () => 0))).toBe('AVAIL_INDEX_OVERRUN');
    expect(r.device.broken?.code).toBe('AVAIL_INDEX_OVERRUN');
  });

  for (const [name, rig] of LAYOUTS) {
    it(`${name} popUsedBatch(): a used id that is not in flight breaks the queue`, () => {
      const r = rig({ size: 4 });
      r.driver.addBuffer(Number(r.data), 64, 'a');
      r.driver.publish();
      r.device.serve(4, () => 0);
      r.device.publishUsed();
      if (name === 'split') {
        const s = r as ReturnType<typeof splitRig>;
        s.view.setUint32(s.off(s.addresses.usedRing) + 4, 3, true); // used.ring[0].id = 3
      } else {
        const p = r as ReturnType<typeof packedRig>;
        p.view.setUint16(p.off(p.addresses.descRing) + 12, 3, true); // buffer id 3
      }
      expect(catchCode(() => r.driver.popUsedBatch(new Array(4)))).toBe('INVALID_USED_ID');
      expect(r.driver.broken?.code).toBe('INVALID_USED_ID');
    });

    it(`${name} popUsedBatch(): the valid elements before a bad one are handed over, the next call reports the break`, () => {
      const r = rig({ size: 4 });
      for (let i = 0; i < 3; i++) r.driver.addBuffer(Number(r.data) + 64 * i, 64, `t${i}`, true);
      r.driver.publish();
      r.device.serve(4, (c) => c.writableLength);
      r.device.publishUsed();
      if (name === 'split') {
        const s = r as ReturnType<typeof splitRig>;
        s.view.setUint32(s.off(s.addresses.usedRing) + 4 + 8 + 4, 65, true); // used.ring[1].len = 65 > 64
      } else {
        const p = r as ReturnType<typeof packedRig>;
        p.view.setUint32(p.off(p.addresses.descRing) + 16 + 8, 65, true); // second used descriptor's len
      }
      const tokens: unknown[] = new Array(4);
      const lens = new Uint32Array(4);
      expect(r.driver.popUsedBatch(tokens, lens)).toBe(1);
      expect(tokens[0]).toBe('t0');
      expect(lens[0]).toBe(64);
      expect(r.driver.broken?.code).toBe('INVALID_USED_LENGTH');
      expect(catchCode(() => r.driver.popUsedBatch(tokens, lens))).toBe('QUEUE_BROKEN');
    });
  }
});
