import { describe, expect, it } from 'vitest';
import {
  VIRTQ_DESC_F_AVAIL as AVAIL,
  VIRTQ_DESC_F_INDIRECT as INDIRECT,
  VIRTQ_DESC_F_NEXT as NEXT,
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  VIRTQ_DESC_F_USED as USED,
  VIRTQ_DESC_F_WRITE as WRITE,
} from './defs.js';
import type { VringError } from './errors.js';
import { PackedDeviceQueue } from './packed-device-queue.js';
import { PackedDriverQueue } from './packed-driver-queue.js';
import { addTwoChains, catchCode, type PackedRig, packedRig } from './test-rig.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

describe('packed queue round trip', () => {
  it('a chain goes driver -> device -> driver, with the ring bytes where 2.8 puts them', () => {
    const r = packedRig({ size: 4 });
    r.bytes.set(enc.encode('ping'), r.off(r.data));
    const id = r.driver.add(
      [
        { addr: r.data, len: 4 },
        { addr: r.data + 64n, len: 16, writable: true },
      ],
      't',
    );
    expect(id).toBe(0);
    const d = r.off(r.addresses.descRing);
    // not visible before publish: the head's flags are still 0
    expect(r.view.getUint16(d + 14, true)).toBe(0);
    expect(r.device.pop()).toBeNull();
    expect(r.driver.publish()).toBe(true);
    expect(r.view.getBigUint64(d, true)).toBe(r.data);
    expect(r.view.getUint32(d + 8, true)).toBe(4);
    expect(r.view.getUint16(d + 12, true)).toBe(0); // id
    expect(r.view.getUint16(d + 14, true)).toBe(AVAIL | NEXT); // wrap counter 1: AVAIL=1, USED=0
    expect(r.view.getUint16(d + 16 + 12, true)).toBe(0);
    expect(r.view.getUint16(d + 16 + 14, true)).toBe(AVAIL | WRITE);
    const c = r.device.pop()!;
    expect(c.head).toBe(0);
    expect(c.descriptorCount).toBe(2);
    expect(dec.decode(c.read())).toBe('ping');
    expect(c.write(enc.encode('pong!'))).toBe(5);
    r.device.addUsed(c.head, 5);
    expect(r.driver.popUsed()).toBeNull();
    expect(r.device.publishUsed()).toBe(true);
    // used descriptor written over the first available one: AVAIL=USED=1, WRITE (data written)
    expect(r.view.getUint16(d + 14, true)).toBe(AVAIL | USED | WRITE);
    expect(r.view.getUint32(d + 8, true)).toBe(5);
    expect(r.driver.popUsed()).toEqual({ head: 0, len: 5, token: 't' });
    expect(dec.decode(r.bytes.subarray(r.off(r.data + 64n), r.off(r.data + 64n) + 5))).toBe('pong!');
    expect(r.driver.freeCount()).toBe(4);
  });

  it.each([1, 3, 7, 8, 100])('size %i: many laps of mixed chains, completed out of order', (size) => {
    const r = packedRig({ size, features: { eventIdx: true } });
    let seq = 0;
    let got = 0;
    const pending: { head: number; n: number }[] = [];
    const expected = new Map<number, number>();
    for (let round = 0; round < 3000; round++) {
      // add chains of 1..3 descriptors while they fit
      for (;;) {
        const k = 1 + ((seq * 7) % Math.min(3, size));
        if (k > r.driver.freeCount()) break;
        const bufs = Array.from({ length: k }, (_, i) => ({
          addr: r.data + BigInt(i * 8),
          len: 8,
          writable: i === k - 1,
        }));
        const id = r.driver.add(bufs, seq);
        expect(id).toBeGreaterThanOrEqual(0);
        expected.set(seq, k);
        seq++;
        if (seq % 3 === 0) r.driver.publish();
      }
      r.driver.publish();
      for (let c = r.device.pop(); c !== null; c = r.device.pop())
        pending.push({ head: c.head, n: c.descriptorCount });
      // complete in reverse order, some now, some later
      const now = pending.splice(0, Math.max(1, pending.length - (round % 3))).reverse();
      for (const p of now) r.device.addUsed(p.head, 8);
      r.device.publishUsed();
      for (let u = r.driver.popUsed(); u !== null; u = r.driver.popUsed()) {
        expect(expected.has(u.token as number)).toBe(true);
        expected.delete(u.token as number);
        expect(u.len).toBe(8);
        got++;
      }
    }
    expect(got + pending.length).toBe(seq);
    expect(seq).toBeGreaterThan(3 * size);
  });

  it('indirect: one ring descriptor carries the table', () => {
    const r = packedRig({ size: 4, features: { indirect: true } });
    r.bytes.set([9, 8, 7], r.off(r.data));
    const id = r.driver.add(
      [
        { addr: r.data, len: 3 },
        { addr: r.data + 128n, len: 64, writable: true },
      ],
      'x',
      { indirectTable: r.data + 0x1000n },
    );
    expect(r.driver.freeCount()).toBe(3);
    r.driver.publish();
    const d = r.off(r.addresses.descRing);
    expect(r.view.getUint16(d + 14, true)).toBe(AVAIL | INDIRECT);
    expect(r.view.getUint32(d + 8, true)).toBe(32);
    const c = r.device.pop()!;
    expect([c.readableLength, c.writableLength, c.descriptorCount]).toEqual([3, 64, 1]);
    expect(Array.from(c.read())).toEqual([9, 8, 7]);
    r.device.addUsed(c.head, 64);
    r.device.publishUsed();
    expect(r.driver.popUsed()).toEqual({ head: id, len: 64, token: 'x' });
  });

  it('IN_ORDER: one used descriptor for a batch skips the whole batch', () => {
    const r = packedRig({ size: 8, features: { inOrder: true } });
    for (let i = 0; i < 3; i++) {
      r.driver.add(
        [
          { addr: r.data, len: 1 },
          { addr: r.data + 8n, len: 8, writable: true },
        ],
        i,
      );
    }
    r.driver.publish();
    const chains = [r.device.pop()!, r.device.pop()!, r.device.pop()!];
    // the device writes only the last buffer's id, at the batch's first position
    const d = r.off(r.addresses.descRing);
    r.view.setUint32(d + 8, 5, true);
    r.view.setUint16(d + 12, chains[2]!.head, true);
    r.view.setUint16(d + 14, AVAIL | USED | WRITE, true);
    // the earlier buffers were used completely (2.8.17): their whole writable capacity
    expect(r.driver.popUsed()).toEqual({ head: 0, len: 8, token: 0 });
    expect(r.driver.popUsed()).toEqual({ head: 1, len: 8, token: 1 });
    expect(r.driver.popUsed()).toEqual({ head: 2, len: 5, token: 2 });
    expect(r.driver.popUsed()).toBeNull();
    expect(r.driver.state()).toEqual({ nextAvail: 6, availWrap: true, nextUsed: 6, usedWrap: true });
  });

  it('a driver restored on an odd lap (wrap counters 0) over a zeroed ring sees nothing used until a chain completes', () => {
    const r = packedRig({ size: 4 });
    const state = { nextAvail: 0, availWrap: false, nextUsed: 0, usedWrap: false };
    const driver = new PackedDriverQueue({ memory: r.memory, size: 4, addresses: r.addresses, state });
    const device = new PackedDeviceQueue({ memory: r.memory, size: 4, addresses: r.addresses, state });
    // zero flags read as "used" for wrap 0, but nothing is in flight
    expect(driver.hasUsed()).toBe(false);
    expect(driver.popUsed()).toBeNull();
    driver.add([{ addr: r.data, len: 4 }], 'x');
    driver.publish();
    const c = device.pop()!;
    device.addUsed(c.head, 0);
    device.publishUsed();
    expect(driver.popUsed()).toEqual({ head: c.head, len: 0, token: 'x' });
    expect(driver.broken).toBeNull();
  });

  it('state snapshot and vhost-user base round trip', () => {
    const r = packedRig({ size: 5 });
    for (let i = 0; i < 7; i++) {
      r.driver.add([{ addr: r.data, len: 1 }], i);
      r.driver.publish();
      const c = r.device.pop()!;
      r.device.addUsed(c.head, 0);
      r.device.publishUsed();
      r.driver.popUsed();
    }
    const s = r.device.state();
    expect(s).toEqual({ nextAvail: 2, availWrap: false, nextUsed: 2, usedWrap: false });
    expect(r.driver.state()).toEqual(s);
    const again = new PackedDeviceQueue({ memory: r.memory, size: 5, addresses: r.addresses, state: s });
    r.driver.add([{ addr: r.data, len: 1 }], 'after');
    r.driver.publish();
    expect(again.pop()?.head).toBeDefined();
    expect(catchCode(() => again.setState({ nextAvail: 5, nextUsed: 0 }))).toBe('INVALID_ARGUMENT');
    expect(
      catchCode(() => again.setState({ nextAvail: 0, nextUsed: 1, availWrap: true, usedWrap: true })),
    ).toBe('INVALID_ARGUMENT');
  });

  it('the split names of SET_VRING_ADDR are accepted for the three areas', () => {
    const r = packedRig({ size: 4 });
    const q = new PackedDeviceQueue({
      memory: r.memory,
      size: 4,
      addresses: {
        descTable: r.addresses.descRing,
        availRing: r.addresses.driverEvent,
        usedRing: r.addresses.deviceEvent,
      },
    });
    expect(q.addresses).toEqual(r.addresses);
  });
});

describe('packed notifications (event suppression)', () => {
  it('flags: DISABLE suppresses kicks and interrupts; enable re-checks', () => {
    const r = packedRig({ size: 8 });
    const devEv = r.off(r.addresses.deviceEvent);
    const drvEv = r.off(r.addresses.driverEvent);
    r.device.disableNotifications();
    expect(r.view.getUint16(devEv + 2, true)).toBe(RING_EVENT_FLAGS_DISABLE);
    r.driver.add([{ addr: r.data, len: 1 }]);
    expect(r.driver.publish()).toBe(false);
    expect(r.device.enableNotifications()).toBe(true);
    r.driver.add([{ addr: r.data, len: 1 }]);
    expect(r.driver.publish()).toBe(true);
    r.driver.disableCallbacks();
    expect(r.view.getUint16(drvEv + 2, true)).toBe(RING_EVENT_FLAGS_DISABLE);
    const a = r.device.pop()!;
    r.device.addUsed(a.head, 0);
    expect(r.device.publishUsed()).toBe(false);
    expect(r.driver.enableCallbacks()).toBe(true);
    const b = r.device.pop()!;
    r.device.addUsed(b.head, 0);
    expect(r.device.publishUsed()).toBe(true);
  });

  it('EVENT_IDX: descriptor-specific events with wrap counters', () => {
    const r = packedRig({ size: 4, features: { eventIdx: true } });
    const devEv = r.off(r.addresses.deviceEvent);
    expect(r.device.enableNotifications()).toBe(false);
    expect(r.view.getUint16(devEv, true)).toBe(0x8000); // offset 0, wrap 1
    expect(r.view.getUint16(devEv + 2, true)).toBe(RING_EVENT_FLAGS_DESC);
    r.driver.add([{ addr: r.data, len: 1 }]);
    expect(r.driver.publish()).toBe(true); // crosses position 0
    r.driver.add([{ addr: r.data, len: 1 }]);
    expect(r.driver.publish()).toBe(false); // the device has not asked for position 1
    r.device.pop();
    r.device.pop();
    expect(r.device.pop()).toBeNull(); // re-arms at position 2
    expect(r.view.getUint16(devEv, true)).toBe(0x8002);
    r.driver.add([{ addr: r.data, len: 1 }]);
    r.driver.add([{ addr: r.data, len: 1 }]); // positions 2, 3: next avail wraps to 0 (wrap 0)
    expect(r.driver.publish()).toBe(true);
    expect(r.driver.state()).toEqual({ nextAvail: 0, availWrap: false, nextUsed: 0, usedWrap: true });
    // driver side: used events
    r.device.addUsed(0, 0);
    expect(r.device.publishUsed()).toBe(true); // driver event area is zero: ENABLE
    expect(r.driver.popUsed()).not.toBeNull();
    expect(r.driver.popUsed()).toBeNull(); // re-arms at position 1
    r.device.addUsed(1, 0);
    expect(r.device.publishUsed()).toBe(true);
    r.driver.disableCallbacks();
    r.device.pop();
    r.device.pop();
    r.device.addUsed(2, 0);
    r.device.addUsed(3, 0);
    expect(r.device.publishUsed()).toBe(false);
    expect(r.driver.enableCallbacks()).toBe(true);
  });
});

/** A hostile packed driver writing the descriptor ring directly. */
function hostile(r: PackedRig) {
  const d = r.off(r.addresses.descRing);
  return {
    desc(slot: number, addr: bigint, len: number, id: number, flags: number, wrap = true) {
      r.view.setBigUint64(d + 16 * slot, addr, true);
      r.view.setUint32(d + 16 * slot + 8, len, true);
      r.view.setUint16(d + 16 * slot + 12, id, true);
      r.view.setUint16(d + 16 * slot + 14, flags | (wrap ? AVAIL : USED), true);
    },
    table(at: bigint, entries: [bigint, number, number][]) {
      entries.forEach(([addr, len, flags], i) => {
        const o = r.off(at) + 16 * i;
        r.view.setBigUint64(o, addr, true);
        r.view.setUint32(o + 8, len, true);
        r.view.setUint16(o + 14, flags, true);
      });
    },
  };
}

function expectViolation(r: PackedRig, code: string) {
  const before = r.device.state();
  let err: VringError | undefined;
  try {
    r.device.pop();
  } catch (e) {
    err = e as VringError;
  }
  expect(err?.code).toBe(code);
  expect(r.device.broken).toBe(err);
  expect(r.device.state()).toEqual(before);
  expect(catchCode(() => r.device.pop())).toBe('QUEUE_BROKEN');
  expect(catchCode(() => r.device.publishUsed())).toBe('QUEUE_BROKEN');
}

describe('packed device side: what the driver wrote', () => {
  it('a buffer id >= N is INVALID_BUFFER_ID', () => {
    const r = packedRig({ size: 4 });
    hostile(r).desc(0, r.data, 4, 4, 0);
    expectViolation(r, 'INVALID_BUFFER_ID');
  });

  it('a buffer id already in flight is INVALID_BUFFER_ID', () => {
    const r = packedRig({ size: 4 });
    const h = hostile(r);
    h.desc(0, r.data, 4, 1, 0);
    h.desc(1, r.data, 4, 1, 0);
    expect(r.device.pop()?.head).toBe(1);
    expectViolation(r, 'INVALID_BUFFER_ID');
  });

  it('a chain running into descriptors the device still holds is AVAIL_INDEX_OVERRUN (no loop)', () => {
    const r = packedRig({ size: 4 });
    const h = hostile(r);
    for (let i = 0; i < 4; i++) h.desc(i, r.data, 4, 0, NEXT); // NEXT everywhere: would go round forever
    expectViolation(r, 'AVAIL_INDEX_OVERRUN');
  });

  it('a chain continuing (NEXT) into a descriptor not made available is DESCRIPTOR_NOT_AVAILABLE', () => {
    const r = packedRig({ size: 4 });
    hostile(r).desc(0, r.data, 4, 0, NEXT); // slot 1 is still zero: never made available
    expectViolation(r, 'DESCRIPTOR_NOT_AVAILABLE');
  });

  it('past the end of the ring a chain continues into the next lap: flags of the old lap are refused', () => {
    for (const ok of [true, false]) {
      const r = packedRig({ size: 4 });
      const h = hostile(r);
      for (let i = 0; i < 3; i++) h.desc(i, r.data, 4, i, 0);
      for (let i = 0; i < 3; i++) r.device.addUsed(r.device.pop()!.head, 0);
      r.device.publishUsed(); // slots 0-2 now hold used descriptors of lap 1
      h.desc(3, r.data, 4, 3, NEXT);
      // slot 0 of lap 2 is available with AVAIL=0 USED=1; left as it is, it is lap 1's used descriptor
      if (ok) h.desc(0, r.data, 4, 3, 0, false);
      if (ok) {
        const c = r.device.pop()!;
        expect(c.descriptorCount).toBe(2);
        expect(c.head).toBe(3);
      } else {
        expectViolation(r, 'DESCRIPTOR_NOT_AVAILABLE');
      }
    }
  });

  it('a chain of exactly N descriptors is fine; the next one overruns', () => {
    const r = packedRig({ size: 4 });
    const h = hostile(r);
    for (let i = 0; i < 4; i++) h.desc(i, r.data, 4, 2, i < 3 ? NEXT : 0);
    expect(r.device.pop()?.descriptorCount).toBe(4);
    // the driver wraps and makes slot 0 available again (wrap 0) while the device holds all 4
    h.desc(0, r.data, 4, 1, 0, false);
    expectViolation(r, 'AVAIL_INDEX_OVERRUN');
  });

  it.each([0, 8, 24 + 1])('an indirect table of length %i is INVALID_INDIRECT_TABLE', (len) => {
    const r = packedRig({ size: 4, features: { indirect: true } });
    hostile(r).desc(0, r.data + 0x1000n, len, 0, INDIRECT);
    expectViolation(r, 'INVALID_INDIRECT_TABLE');
  });

  it('INDIRECT without the feature is INDIRECT_NOT_NEGOTIATED', () => {
    const r = packedRig({ size: 4 });
    hostile(r).desc(0, r.data + 0x1000n, 16, 0, INDIRECT);
    expectViolation(r, 'INDIRECT_NOT_NEGOTIATED');
  });

  it('INDIRECT with NEXT, or inside a NEXT list, is INDIRECT_WITH_NEXT', () => {
    const r = packedRig({ size: 4, features: { indirect: true } });
    const h = hostile(r);
    h.table(r.data + 0x1000n, [[r.data, 4, 0]]);
    h.desc(0, r.data + 0x1000n, 16, 0, INDIRECT | NEXT);
    expectViolation(r, 'INDIRECT_WITH_NEXT');
    const r2 = packedRig({ size: 4, features: { indirect: true } });
    const h2 = hostile(r2);
    h2.table(r2.data + 0x1000n, [[r2.data, 4, 0]]);
    h2.desc(0, r2.data, 4, 0, NEXT);
    h2.desc(1, r2.data + 0x1000n, 16, 0, INDIRECT);
    expectViolation(r2, 'INDIRECT_WITH_NEXT');
  });

  it('an indirect entry inside the table is NESTED_INDIRECT', () => {
    const r = packedRig({ size: 4, features: { indirect: true } });
    const h = hostile(r);
    h.table(r.data + 0x1000n, [
      [r.data, 4, 0],
      [r.data + 0x1000n, 32, INDIRECT],
    ]);
    h.desc(0, r.data + 0x1000n, 32, 0, INDIRECT);
    expectViolation(r, 'NESTED_INDIRECT');
  });

  it('a readable descriptor after a writable one is READABLE_AFTER_WRITABLE (ring and indirect)', () => {
    const r = packedRig({ size: 4 });
    const h = hostile(r);
    h.desc(0, r.data, 4, 0, NEXT | WRITE);
    h.desc(1, r.data, 4, 0, 0);
    expectViolation(r, 'READABLE_AFTER_WRITABLE');
    const r2 = packedRig({ size: 4, features: { indirect: true } });
    const h2 = hostile(r2);
    h2.table(r2.data + 0x1000n, [
      [r2.data, 4, WRITE],
      [r2.data, 4, 0],
    ]);
    h2.desc(0, r2.data + 0x1000n, 32, 0, INDIRECT);
    expectViolation(r2, 'READABLE_AFTER_WRITABLE');
  });

  it.each([
    ['past the end of memory', (r: PackedRig) => r.data + BigInt(r.dataBytes) - 2n, 4],
    ['above 2^53', () => (1n << 53n) + 4096n, 1],
    ['wrapping past 2^64', () => (1n << 64n) - 8n, 16],
  ])('a buffer %s is ADDRESS_OUT_OF_BOUNDS', (_, addr, len) => {
    const r = packedRig({ size: 4 });
    hostile(r).desc(0, addr(r), len, 0, 0);
    expectViolation(r, 'ADDRESS_OUT_OF_BOUNDS');
  });

  it('a descriptor with the wrong wrap bits is not available (ownership)', () => {
    const r = packedRig({ size: 4 });
    const h = hostile(r);
    h.desc(0, r.data, 4, 0, 0, false); // AVAIL=0, USED=1: an old used descriptor
    expect(r.device.pop()).toBeNull();
    r.view.setUint16(r.off(r.addresses.descRing) + 14, AVAIL | USED, true);
    expect(r.device.pop()).toBeNull();
    expect(r.device.broken).toBeNull();
  });
});

describe('packed driver side: what the device wrote', () => {
  function withTwo() {
    const r = packedRig({ size: 4 });
    addTwoChains(r, 16);
    const d = r.off(r.addresses.descRing);
    return {
      r,
      used(id: number, len: number, flags = AVAIL | USED | WRITE) {
        r.view.setUint32(d + 8, len, true);
        r.view.setUint16(d + 12, id, true);
        r.view.setUint16(d + 14, flags, true);
      },
    };
  }
  function expectDriverViolation(r: PackedRig, code: string) {
    const before = r.driver.state();
    expect(catchCode(() => r.driver.popUsed())).toBe(code);
    expect(r.driver.broken?.code).toBe(code);
    expect(r.driver.state()).toEqual(before);
    expect(catchCode(() => r.driver.popUsed())).toBe('QUEUE_BROKEN');
  }

  it('a used id >= N or not in flight is INVALID_USED_ID', () => {
    const a = withTwo();
    a.used(9, 0);
    expectDriverViolation(a.r, 'INVALID_USED_ID');
    const b = withTwo();
    b.used(3, 0);
    expectDriverViolation(b.r, 'INVALID_USED_ID');
  });

  it('a used length beyond the writable capacity is INVALID_USED_LENGTH', () => {
    const a = withTwo();
    a.used(0, 17);
    expectDriverViolation(a.r, 'INVALID_USED_LENGTH');
    const b = withTwo();
    b.used(1, 1);
    expectDriverViolation(b.r, 'INVALID_USED_LENGTH');
  });

  it('without WRITE in the used flags the length is ignored (reserved)', () => {
    const a = withTwo();
    a.used(1, 0xffffffff, AVAIL | USED);
    expect(a.r.driver.popUsed()).toEqual({ head: 1, len: 0, token: 'b' });
  });
});
