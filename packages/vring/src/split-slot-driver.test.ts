// SplitSlotDriver (one fixed buffer per descriptor) against SplitDeviceQueue,
// with and without IN_ORDER, and the device's batchUsed runs (2.7.9).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DescriptorChain } from './descriptor-chain.js';
import { SplitDeviceQueue } from './split-device-queue.js';
import { SplitSlotDriver } from './split-slot-driver.js';
import { catchCode, splitRig } from './test-rig.js';

const SLOT = 64;

function slotRig(opts: { size?: number; inOrder?: boolean; eventIdx?: boolean; batchUsed?: boolean } = {}) {
  const size = opts.size ?? 8;
  const r = splitRig({ size });
  const features = { inOrder: !!opts.inOrder, eventIdx: !!opts.eventIdx };
  const common = { memory: r.memory, size, addresses: r.addresses, features };
  const driver = new SplitSlotDriver({ ...common, slots: r.data, slotSize: SLOT });
  const device = new SplitDeviceQueue({ ...common, batchUsed: opts.batchUsed });
  /** Used element `i` of the shared ring: [id, len]. */
  const usedAt = (i: number) => [
    r.view.getUint32(r.off(r.addresses.usedRing) + 4 + 8 * i, true),
    r.view.getUint32(r.off(r.addresses.usedRing) + 8 + 8 * i, true),
  ];
  const usedIdx = () => r.view.getUint16(r.off(r.addresses.usedRing) + 2, true);
  /** The device writes used element `i` and used.idx itself (a hostile or hand-made device). */
  const writeUsed = (i: number, id: number, len: number) => {
    r.view.setUint32(r.off(r.addresses.usedRing) + 4 + 8 * i, id, true);
    r.view.setUint32(r.off(r.addresses.usedRing) + 8 + 8 * i, len, true);
  };
  const setUsedIdx = (v: number) => r.view.setUint16(r.off(r.addresses.usedRing) + 2, v, true);
  return { ...r, size, driver, device, usedAt, usedIdx, writeUsed, setUsedIdx };
}

const msg = (seq: number, len: number) => Uint8Array.from({ length: len }, (_, i) => (seq * 31 + i) & 0xff);

describe('SplitSlotDriver', () => {
  for (const inOrder of [false, true]) {
    for (const batchUsed of [false, true]) {
      it(`moves messages both ways (IN_ORDER ${inOrder}, batchUsed ${batchUsed})`, () => {
        const r = slotRig({ inOrder, batchUsed });
        const seen: string[] = [];
        const ids = new Uint16Array(8);
        const lens = new Uint32Array(8);
        for (let round = 0; round < 5; round++) {
          // three device-readable messages and one device-writable slot
          const sent = [0, 1, 2].map((k) => msg(round * 4 + k, 10 + k));
          const out = sent.map((m) => r.driver.addBytes(m));
          const w = r.driver.add(SLOT, true);
          expect(r.driver.freeCount()).toBe(4);
          expect(r.driver.inFlight()).toBe(4);
          expect(r.driver.publish()).toBe(true);
          const served = r.device.serve(8, (c: DescriptorChain) => {
            if (c.writableLength > 0) return c.write(Uint8Array.of(round, 7, 7));
            seen.push(Buffer.from(c.read()).toString('hex'));
            return 0;
          });
          expect(served).toBe(4);
          r.device.publishUsed();
          expect(r.driver.popUsed(ids, lens)).toBe(4);
          expect([...ids.subarray(0, 4)]).toEqual([...out, w]);
          expect([...lens.subarray(0, 4)]).toEqual([0, 0, 0, 3]);
          expect([...r.driver.slot(w).subarray(0, 3)]).toEqual([round, 7, 7]);
          expect(r.driver.popUsed(ids)).toBe(0);
          expect(r.driver.inFlight()).toBe(0);
          for (let k = 0; k < 3; k++) expect(seen[round * 3 + k]).toBe(Buffer.from(sent[k]!).toString('hex'));
        }
      });
    }
  }

  it('add() takes slots until none is free, then -1; the bytes go where slot(id) shows', () => {
    const r = slotRig({ size: 4 });
    const got = [0, 1, 2, 3].map(() => r.driver.add(5));
    expect(new Set(got).size).toBe(4);
    expect(r.driver.add(5)).toBe(-1);
    expect(r.driver.addBytes(new Uint8Array(3))).toBe(-1);
    for (const id of got) {
      const v = r.driver.slot(id);
      expect(v.length).toBe(SLOT);
      expect(r.off(r.data) + id * SLOT).toBe(v.byteOffset);
      v.fill(id + 1);
    }
    r.driver.publish();
    const first: number[] = [];
    r.device.serve(4, (c) => {
      first.push(c.segmentBytes(0)[c.segmentOffset(0)]!);
      expect(c.readableLength).toBe(5);
      return 0;
    });
    expect(first).toEqual(got.map((id) => id + 1));
  });

  it('rejects bad arguments by name and changes nothing', () => {
    const r = slotRig();
    const before = Buffer.from(r.bytes);
    const cases: [() => unknown, RegExp][] = [
      [() => r.driver.add(SLOT + 1), /slot size 64/],
      [() => r.driver.add(-1), /len/],
      [() => r.driver.add(1.5), /len/],
      [() => r.driver.add(Number.NaN), /len/],
      [() => r.driver.add(4, 'yes' as unknown as boolean), /writable must be a boolean/],
      [() => r.driver.addBytes(new Uint8Array(SLOT + 1)), /at most the slot size/],
      [() => r.driver.addBytes([1, 2] as unknown as Uint8Array), /Uint8Array/],
      [() => r.driver.slot(8), /slot id/],
      [() => r.driver.slot(-1), /slot id/],
      [() => r.driver.popUsed({} as unknown as number[]), /ids must be/],
      [() => r.driver.popUsed([], [] as unknown as Uint32Array), /lens must be/],
      [() => r.driver.popUsed([], undefined, -1), /max must be/],
    ];
    for (const [fn, re] of cases) {
      expect(fn).toThrow(re);
      expect(catchCode(fn)).toBe('INVALID_ARGUMENT');
    }
    expect(Buffer.from(r.bytes).equals(before)).toBe(true);
    expect(r.driver.freeCount()).toBe(8);
    expect(r.driver.broken).toBeNull();
  });

  it('refuses a slot area outside guest memory and a bad slot size', () => {
    const r = slotRig();
    const base = { memory: r.memory, size: 8, addresses: r.addresses };
    const end = r.base + BigInt(r.buffer.byteLength);
    expect(catchCode(() => new SplitSlotDriver({ ...base, slots: end - 256n, slotSize: SLOT }))).toBe(
      'ADDRESS_OUT_OF_BOUNDS',
    );
    expect(catchCode(() => new SplitSlotDriver({ ...base, slots: 0, slotSize: SLOT }))).toBe(
      'ADDRESS_OUT_OF_BOUNDS',
    );
    for (const slotSize of [0, -4, 1.5, 2 ** 32]) {
      expect(catchCode(() => new SplitSlotDriver({ ...base, slots: r.data, slotSize }))).toBe(
        'INVALID_ARGUMENT',
      );
    }
    expect(catchCode(() => new SplitSlotDriver({ ...base, slots: -1, slotSize: SLOT }))).toBe(
      'INVALID_ARGUMENT',
    );
  });

  describe('validates what the device wrote', () => {
    for (const inOrder of [false, true]) {
      it(`used.idx running ahead: USED_INDEX_OVERRUN (IN_ORDER ${inOrder})`, () => {
        const r = slotRig({ inOrder });
        r.driver.add(4);
        r.driver.add(4);
        r.driver.publish();
        r.writeUsed(0, 0, 0);
        r.writeUsed(1, 1, 0);
        r.writeUsed(2, 2, 0);
        r.setUsedIdx(3);
        expect(catchCode(() => r.driver.popUsed([]))).toBe('USED_INDEX_OVERRUN');
        expect(r.driver.broken?.code).toBe('USED_INDEX_OVERRUN');
        expect(catchCode(() => r.driver.add(1))).toBe('QUEUE_BROKEN');
      });

      it(`an id beyond the ring: INVALID_USED_ID (IN_ORDER ${inOrder})`, () => {
        const r = slotRig({ inOrder });
        r.driver.add(4);
        r.driver.publish();
        r.writeUsed(0, 8, 0);
        r.setUsedIdx(1);
        expect(catchCode(() => r.driver.popUsed(new Uint16Array(4)))).toBe('INVALID_USED_ID');
        expect(r.driver.inFlight()).toBe(1);
      });

      it(`a length beyond the slot's writable bytes: INVALID_USED_LENGTH (IN_ORDER ${inOrder})`, () => {
        const r = slotRig({ inOrder });
        const a = r.driver.add(4); // device-readable: 0 writable bytes
        const b = r.driver.add(16, true);
        r.driver.publish();
        r.writeUsed(0, a, 1);
        r.setUsedIdx(1);
        expect(catchCode(() => r.driver.popUsed(new Uint16Array(4)))).toBe('INVALID_USED_LENGTH');
        const s = slotRig({ inOrder });
        s.driver.add(4);
        const d = s.driver.add(16, true);
        s.driver.publish();
        s.writeUsed(0, d, 17);
        s.setUsedIdx(2);
        expect(catchCode(() => s.driver.popUsed(new Uint16Array(4)))).toBe('INVALID_USED_LENGTH');
        expect(b).toBe(d);
      });
    }

    it('without IN_ORDER, an id not in flight (returned twice): INVALID_USED_ID, after the valid ones', () => {
      const r = slotRig();
      const a = r.driver.add(4);
      const b = r.driver.add(4);
      r.driver.publish();
      r.writeUsed(0, a, 0);
      r.writeUsed(1, a, 0);
      r.setUsedIdx(2);
      const ids = new Uint16Array(4);
      expect(r.driver.popUsed(ids)).toBe(1);
      expect(ids[0]).toBe(a);
      expect(catchCode(() => r.driver.popUsed(ids))).toBe('INVALID_USED_ID');
      expect(r.driver.broken?.message).toMatch(/not a slot in flight/);
      expect(b).not.toBe(a);
    });

    it('with IN_ORDER, an element naming a chain used.idx does not cover: INVALID_USED_ID', () => {
      const r = slotRig({ inOrder: true });
      for (let i = 0; i < 4; i++) r.driver.add(4);
      r.driver.publish();
      r.writeUsed(0, 3, 0); // a run of 4 chains...
      r.setUsedIdx(2); // ...but used.idx moved by 2
      expect(catchCode(() => r.driver.popUsed(new Uint16Array(8)))).toBe('INVALID_USED_ID');
      expect(r.driver.broken?.message).toMatch(/batch of 4 chains, but used.idx moved by only 2/);
    });

    it('with IN_ORDER, an element naming a slot not in flight: INVALID_USED_ID', () => {
      const r = slotRig({ inOrder: true });
      r.driver.add(4);
      r.driver.add(4);
      r.driver.publish();
      r.writeUsed(0, 5, 0); // slot 5 was never added
      r.setUsedIdx(1);
      expect(catchCode(() => r.driver.popUsed(new Uint16Array(8)))).toBe('INVALID_USED_ID');
    });

    it('survives arbitrary used-ring bytes: only VringErrors, never more ids than in flight', () => {
      fc.assert(
        fc.property(
          fc.boolean(),
          fc.integer({ min: 0, max: 8 }),
          fc.uint8Array({ minLength: 68, maxLength: 68 }),
          (inOrder, added, junk) => {
            const r = slotRig({ inOrder });
            for (let i = 0; i < added; i++) r.driver.add(i * 4, i % 2 === 1);
            r.driver.publish();
            r.bytes.set(junk, r.off(r.addresses.usedRing));
            const ids = new Uint16Array(8);
            let total = 0;
            for (let k = 0; k < 3; k++) {
              try {
                const n = r.driver.popUsed(ids);
                for (let i = 0; i < n; i++) expect(ids[i]).toBeLessThan(8);
                total += n;
              } catch (e) {
                expect((e as { code?: string }).code).toMatch(/^[A-Z_]+$/);
                break;
              }
            }
            expect(total).toBeLessThanOrEqual(added);
            expect(r.driver.inFlight()).toBe(added - total);
          },
        ),
        { numRuns: 300 },
      );
    });
  });

  it('IN_ORDER: one element completes a run; skipped writable slots report their whole capacity', () => {
    const r = slotRig({ inOrder: true });
    const a = r.driver.add(16, true);
    const b = r.driver.add(24, true);
    const c = r.driver.add(32, true);
    r.driver.publish();
    r.writeUsed(0, c, 5); // the whole run in the first position (2.7.9)
    r.setUsedIdx(3);
    const ids = new Uint16Array(8);
    const lens = new Uint32Array(8);
    expect(r.driver.popUsed(ids, lens, 2)).toBe(0); // a run is taken whole
    expect(r.driver.popUsed(ids, lens)).toBe(3);
    expect([...ids.subarray(0, 3)]).toEqual([a, b, c]);
    expect([...lens.subarray(0, 3)]).toEqual([16, 24, 5]);
    expect(r.driver.freeCount()).toBe(8);
  });

  it('IN_ORDER: slots are reused in ring order, across the wrap', () => {
    const r = slotRig({ inOrder: true, batchUsed: true, size: 4 });
    const order: number[] = [];
    const ids = new Uint16Array(4);
    for (let round = 0; round < 6; round++) {
      for (let k = 0; k < 3; k++) order.push(r.driver.add(1));
      r.driver.publish();
      r.device.serve(4, () => 0);
      r.device.publishUsed();
      expect(r.driver.popUsed(ids)).toBe(3);
    }
    expect(order).toEqual(Array.from({ length: 18 }, (_, i) => i % 4));
  });

  it('EVENT_IDX: an empty popUsed() asks for a notification at the next element; publish() follows avail_event', () => {
    const r = slotRig({ eventIdx: true });
    const usedEvent = () => r.view.getUint16(r.off(r.addresses.availRing) + 4 + 2 * 8, true);
    r.driver.add(1);
    r.driver.add(1);
    r.driver.publish();
    r.device.serve(1, () => 0);
    r.device.publishUsed();
    const ids = new Uint16Array(8);
    expect(r.driver.popUsed(ids)).toBe(1);
    expect(r.driver.popUsed(ids)).toBe(0);
    expect(usedEvent()).toBe(1);
    // The device asks for a kick at avail index 5: publishing up to 4 needs none, 5 and 6 do.
    r.view.setUint16(r.off(r.addresses.usedRing) + 4 + 8 * 8, 5, true);
    r.driver.add(1);
    r.driver.add(1);
    expect(r.driver.publish()).toBe(false);
    r.driver.add(1);
    r.driver.add(1);
    expect(r.driver.publish()).toBe(true);
  });

  it('disableCallbacks()/enableCallbacks() set the avail flags, and enableCallbacks() re-checks', () => {
    const r = slotRig();
    const availFlags = () => r.view.getUint16(r.off(r.addresses.availRing), true);
    r.driver.disableCallbacks();
    expect(availFlags()).toBe(1);
    r.driver.add(1);
    r.driver.publish();
    r.device.serve(1, () => 0);
    r.device.publishUsed();
    expect(r.driver.enableCallbacks()).toBe(true);
    expect(availFlags()).toBe(0);
    expect(r.driver.hasUsed()).toBe(true);
  });

  it('follows a remap of guest memory, and breaks when the slot area is gone', () => {
    const r = slotRig();
    const id = r.driver.add(4);
    r.driver.publish();
    // the same buffer as two regions: rings and the slot area stay reachable
    const ringBytes = r.off(r.data);
    r.memory.replace([
      { guestAddress: r.base, size: ringBytes, buffer: r.buffer },
      { guestAddress: r.data, size: r.dataBytes, buffer: r.buffer, byteOffset: ringBytes },
    ]);
    r.device.serve(1, () => 0);
    r.device.publishUsed();
    const ids = new Uint16Array(8);
    expect(r.driver.popUsed(ids)).toBe(1);
    expect(ids[0]).toBe(id);
    expect(r.driver.slot(id).byteOffset).toBe(ringBytes + id * SLOT);
    r.memory.replace([{ guestAddress: r.base, size: ringBytes, buffer: r.buffer }]);
    expect(catchCode(() => r.driver.add(1))).toBe('ADDRESS_OUT_OF_BOUNDS');
    expect(r.driver.broken?.code).toBe('ADDRESS_OUT_OF_BOUNDS');
  });

  it('state() and a restored queue carry on from the same indexes; reset() zeroes the rings', () => {
    const r = slotRig({ inOrder: true });
    for (let i = 0; i < 5; i++) r.driver.add(1);
    r.driver.publish();
    r.device.serve(8, () => 0);
    r.device.publishUsed();
    r.driver.popUsed(new Uint16Array(8));
    expect(r.driver.state()).toEqual({ nextAvail: 5, nextUsed: 5 });
    const again = new SplitSlotDriver({
      memory: r.memory,
      size: 8,
      addresses: r.addresses,
      features: { inOrder: true },
      slots: r.data,
      slotSize: SLOT,
      state: r.driver.state(),
    });
    expect(again.add(1)).toBe(5);
    again.publish();
    expect(r.device.serve(8, () => 0)).toBe(1);
    r.device.publishUsed();
    expect(again.popUsed(new Uint16Array(8))).toBe(1);
    expect(
      catchCode(
        () =>
          new SplitSlotDriver({
            memory: r.memory,
            size: 8,
            addresses: r.addresses,
            slots: r.data,
            slotSize: SLOT,
            state: { nextAvail: 3, nextUsed: 1 },
          }),
      ),
    ).toBe('INVALID_ARGUMENT');
    again.reset();
    expect(again.state()).toEqual({ nextAvail: 0, nextUsed: 0 });
    expect(r.usedIdx()).toBe(0);
    expect(again.freeCount()).toBe(8);
  });

  it('property: random traffic in both modes delivers every message once, in a valid order', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.boolean(),
        fc.array(
          fc.record({
            add: fc.integer({ min: 0, max: 6 }),
            serve: fc.integer({ min: 0, max: 6 }),
            hold: fc.boolean(),
          }),
          {
            minLength: 1,
            maxLength: 30,
          },
        ),
        (inOrder, batchUsed, steps) => {
          const r = slotRig({ inOrder, batchUsed });
          let seq = 0;
          const got: number[] = [];
          const ids = new Uint16Array(8);
          const lens = new Uint32Array(8);
          const held: DescriptorChain[] = [];
          for (const s of steps) {
            for (let k = 0; k < s.add; k++) {
              const m = new Uint8Array(4);
              new DataView(m.buffer).setUint32(0, seq, true);
              const writable = seq % 3 === 2;
              const id = writable ? r.driver.add(8, true) : r.driver.addBytes(m);
              if (id < 0) break;
              if (writable) r.driver.slot(id).set(m);
              seq++;
            }
            r.driver.publish();
            if (s.hold && !inOrder) {
              // out of order: hold a chain back, complete the next ones first
              const c = r.device.pop();
              if (c !== null) held.push(c);
            }
            r.device.serve(s.serve, (c) => {
              const at = new Uint8Array(4);
              if (c.readableLength > 0) c.readInto(at);
              else {
                at.set(c.segmentBytes(0).subarray(c.segmentOffset(0), c.segmentOffset(0) + 4));
                c.write(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
              }
              return c.writableLength > 0 ? 8 : 0;
            });
            if (held.length > 0 && s.serve % 2 === 0) r.device.addUsed(held.shift()!.head, 0);
            r.device.publishUsed();
            const n = r.driver.popUsed(ids, lens);
            for (let i = 0; i < n; i++) {
              const v = new DataView(r.driver.slot(ids[i]!).buffer, r.driver.slot(ids[i]!).byteOffset);
              got.push(lens[i] === 8 ? -1 : v.getUint32(0, true));
            }
          }
          while (held.length > 0) r.device.addUsed(held.shift()!.head, 0);
          r.device.serve(8, (c) => (c.writableLength > 0 ? c.write(new Uint8Array(8)) : 0));
          r.device.publishUsed();
          for (let n = r.driver.popUsed(ids, lens); n > 0; n = r.driver.popUsed(ids, lens)) {
            for (let i = 0; i < n; i++)
              got.push(
                lens[i] === 8
                  ? -1
                  : new DataView(r.driver.slot(ids[i]!).buffer, r.driver.slot(ids[i]!).byteOffset).getUint32(
                      0,
                      true,
                    ),
              );
          }
          expect(got.length).toBe(seq);
          const readOnly = got.filter((x) => x >= 0);
          expect(new Set(readOnly).size).toBe(readOnly.length);
          if (inOrder) expect(readOnly).toEqual([...readOnly].sort((x, y) => x - y));
          expect(r.driver.inFlight()).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('SplitDeviceQueue batchUsed (IN_ORDER, 2.7.9)', () => {
  function rig(batchUsed: boolean, inOrder = true) {
    const r = splitRig({ size: 8, features: { inOrder } });
    const device = new SplitDeviceQueue({
      memory: r.memory,
      size: 8,
      addresses: r.addresses,
      features: { inOrder },
      batchUsed,
    });
    const used = (i: number) => [
      r.view.getUint32(r.off(r.addresses.usedRing) + 4 + 8 * i, true),
      r.view.getUint32(r.off(r.addresses.usedRing) + 8 + 8 * i, true),
    ];
    const usedIdx = () => r.view.getUint16(r.off(r.addresses.usedRing) + 2, true);
    return { ...r, device, used, usedIdx };
  }

  it('writes one element for a run of chains published together, naming the last', () => {
    const r = rig(true);
    const heads = [0, 1, 2].map((t) => r.driver.addBuffer(Number(r.data) + 64 * t, 8, t));
    r.driver.publish();
    expect(r.device.serve(8, () => 0)).toBe(3);
    r.device.publishUsed();
    expect(r.usedIdx()).toBe(3);
    expect(r.used(0)).toEqual([heads[2], 0]);
    // the general driver reads the run: every chain, in order
    const tokens: unknown[] = new Array(8);
    expect(r.driver.popUsedBatch(tokens)).toBe(3);
    expect(tokens.slice(0, 3)).toEqual([0, 1, 2]);
  });

  it('a chain written short ends its run; a new run starts after it', () => {
    const r = rig(true);
    for (let t = 0; t < 4; t++) r.driver.addBuffer(Number(r.data) + 64 * t, 8, t, true);
    r.driver.publish();
    const written = [8, 3, 8, 8];
    let i = 0;
    r.device.serve(8, () => written[i++]!);
    r.device.publishUsed();
    expect(r.usedIdx()).toBe(4);
    expect(r.used(0)).toEqual([1, 3]); // chains 0 (whole) and 1 (3 bytes)
    expect(r.used(2)).toEqual([3, 8]); // chains 2 and 3
    const tokens: unknown[] = new Array(8);
    const lens = new Uint32Array(8);
    expect(r.driver.popUsedBatch(tokens, lens)).toBe(4);
    expect([...lens.subarray(0, 4)]).toEqual(written);
  });

  it('addUsed() grows runs the same way; publishUsed() closes them', () => {
    const r = rig(true);
    for (let t = 0; t < 4; t++) r.driver.addBuffer(Number(r.data) + 64 * t, 8, t);
    r.driver.publish();
    const a = r.device.pop()!.head;
    const b = r.device.pop()!.head;
    r.device.addUsed(a, 0);
    r.device.addUsed(b, 0);
    r.device.publishUsed();
    const c = r.device.pop()!.head;
    r.device.addUsed(c, 0);
    r.device.publishUsed();
    expect(r.used(0)).toEqual([b, 0]);
    expect(r.used(2)).toEqual([c, 0]);
    expect(r.usedIdx()).toBe(3);
  });

  it('off by default, and ignored without IN_ORDER: one element per chain', () => {
    for (const [batch, inOrder] of [
      [false, true],
      [true, false],
    ] as const) {
      const r = rig(batch, inOrder);
      for (let t = 0; t < 3; t++) r.driver.addBuffer(Number(r.data) + 64 * t, 8, t);
      r.driver.publish();
      r.device.serve(8, () => 0);
      r.device.publishUsed();
      expect([r.used(0)[0], r.used(1)[0], r.used(2)[0]]).toEqual([0, 1, 2]);
    }
  });

  it('serve() fast path: a visit that throws leaves its chain taken, the ones before it used', () => {
    const r = rig(false, false);
    for (let t = 0; t < 3; t++) r.driver.addBuffer(Number(r.data) + 64 * t, 8, t);
    r.driver.publish();
    let k = 0;
    expect(() =>
      r.device.serve(8, () => {
        if (k++ === 1) throw new Error('visit failed');
        return 0;
      }),
    ).toThrow('visit failed');
    expect(r.device.state().nextAvail).toBe(2);
    r.device.addUsed(1, 0);
    expect(r.device.serve(8, () => 0)).toBe(1);
    r.device.publishUsed();
    expect(r.usedIdx()).toBe(3);
    expect(catchCode(() => r.device.addUsed(1, 0))).toBe('INVALID_ARGUMENT');
  });

  it('serve() fast path: a bad single descriptor is reported with its rule, like pop()', () => {
    const r = rig(false, false);
    r.driver.addBuffer(Number(r.data), 8, 0);
    r.driver.publish();
    // the driver side's descriptor 0 now points outside memory
    r.view.setUint32(r.off(r.addresses.descTable), 0xfff00000, true);
    expect(catchCode(() => r.device.serve(8, () => 0))).toBe('ADDRESS_OUT_OF_BOUNDS');
    const s = rig(false, false);
    s.driver.addBuffer(Number(s.data), 8, 0);
    s.driver.publish();
    s.view.setUint16(s.off(s.addresses.availRing) + 4, 9, true); // head 9 of 8
    expect(catchCode(() => s.device.serve(8, () => 0))).toBe('INVALID_DESCRIPTOR_INDEX');
  });

  it('works with the general driver in a two-queue round trip after a remap mid-serve', () => {
    const r = rig(true);
    const mem = r.memory;
    for (let t = 0; t < 4; t++) r.driver.addBuffer(Number(r.data) + 64 * t, 8, t);
    r.driver.publish();
    let remapped = false;
    const n = r.device.serve(8, () => {
      if (!remapped) {
        mem.replace([{ guestAddress: r.base, size: r.buffer.byteLength, buffer: r.buffer }]);
        remapped = true;
      }
      return 0;
    });
    expect(n).toBe(4);
    r.device.publishUsed();
    const tokens: unknown[] = new Array(8);
    expect(r.driver.popUsedBatch(tokens)).toBe(4);
    expect(tokens.slice(0, 4)).toEqual([0, 1, 2, 3]);
    expect(r.device.broken).toBeNull();
  });
});

describe('SplitDeviceQueue serve(): visit may not call back into the queue', () => {
  it('pop(), serve(), addUsed() and publishUsed() from visit throw, and nothing is served twice', () => {
    const r = splitRig({ size: 8 });
    for (let t = 0; t < 6; t++) r.driver.addBuffer(Number(r.data) + 64 * t, 8, t);
    r.driver.publish();
    const calls: (() => unknown)[] = [
      () => r.device.pop(),
      () => r.device.serve(1, () => 0),
      () => r.device.addUsed(0, 0),
      () => r.device.publishUsed(),
      () => r.device.setState({ nextAvail: 0, nextUsed: 0 }),
      () => r.device.reset(),
    ];
    const codes: (string | undefined)[] = [];
    let k = 0;
    const seen: number[] = [];
    const n = r.device.serve(8, (c) => {
      seen.push(c.head);
      if (k < calls.length) codes.push(catchCode(calls[k++]!));
      return 0;
    });
    expect(codes).toEqual(new Array(6).fill('INVALID_ARGUMENT'));
    expect(n).toBe(6);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
    r.device.publishUsed();
    const tokens: unknown[] = new Array(8);
    expect(r.driver.popUsedBatch(tokens)).toBe(6);
    // after serve() returned, the calls work again
    for (let t = 0; t < 3; t++) r.driver.addBuffer(Number(r.data) + 64 * t, 8, t);
    r.driver.publish();
    expect(catchCode(calls[0]!)).toBeUndefined();
    expect(r.device.broken).toBeNull();
  });
});

describe('SplitDeviceQueue serve() fast path: one chain object refilled per chain', () => {
  it('each visit sees its own chain: views, lengths and direction, also after readable/writable were read', () => {
    const r = splitRig({ size: 8 });
    const data = Number(r.data);
    // readable chains of different lengths and contents, a writable one, then readable again
    const shapes = [
      { at: 0, len: 3, writable: false },
      { at: 64, len: 5, writable: false },
      { at: 128, len: 7, writable: true },
      { at: 192, len: 2, writable: false },
    ];
    shapes.forEach((c, i) => {
      r.bytes.fill(i + 1, r.off(r.data) + c.at, r.off(r.data) + c.at + c.len);
      r.driver.addBuffer(data + c.at, c.len, i, c.writable);
    });
    r.driver.publish();
    const seen: string[] = [];
    r.device.serve(8, (chain) => {
      const views = chain.writableLength > 0 ? chain.writable : chain.readable;
      seen.push(`${chain.head}:${chain.readableLength}/${chain.writableLength}:${[...views[0]!].join(',')}`);
      return chain.writableLength > 0 ? chain.write(Uint8Array.of(9)) : 0;
    });
    expect(seen).toEqual(['0:3/0:1,1,1', '1:5/0:2,2,2,2,2', '2:0/7:3,3,3,3,3,3,3', '3:2/0:4,4']);
    r.device.publishUsed();
    const tokens: unknown[] = new Array(8);
    const lens = new Uint32Array(8);
    expect(r.driver.popUsedBatch(tokens, lens)).toBe(4);
    expect([...lens.subarray(0, 4)]).toEqual([0, 0, 1, 0]);
  });
});
