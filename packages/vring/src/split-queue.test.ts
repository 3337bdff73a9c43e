import { describe, expect, it } from 'vitest';
import { VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_USED_F_NO_NOTIFY } from './defs.js';
import { vringNeedEvent } from './notification.js';
import { PackedDeviceQueue } from './packed-device-queue.js';
import { stateToVringBase, vringBaseToState } from './queue-state.js';
import { SplitDeviceQueue } from './split-device-queue.js';
import { SplitDriverQueue } from './split-driver-queue.js';
import { addTwoChains, catchCode, packedRig, splitRig } from './test-rig.js';

const enc = new TextEncoder();

describe('split queue round trip', () => {
  it('a chain of readable and writable buffers goes driver -> device -> driver', () => {
    const r = splitRig({ size: 8 });
    const out = r.data;
    const inA = r.data + 256n;
    const inB = r.data + 512n;
    r.bytes.set(enc.encode('hello, device'), r.off(out));
    const head = r.driver.add(
      [
        { addr: out, len: 13 },
        { addr: inA, len: 4, writable: true },
        { addr: Number(inB), len: 100, writable: true },
      ],
      'token-1',
    );
    expect(head).toBe(0);
    expect(r.driver.freeCount()).toBe(5);
    expect(r.device.pop()).toBeNull(); // not published yet
    expect(r.driver.publish()).toBe(true);
    const chain = r.device.pop()!;
    expect(chain.head).toBe(head);
    expect(chain.readableLength).toBe(13);
    expect(chain.writableLength).toBe(104);
    expect(new TextDecoder().decode(chain.read())).toBe('hello, device');
    expect(chain.writable.map((w) => w.length)).toEqual([4, 100]);
    expect(chain.write(enc.encode('0123456789'))).toBe(10);
    expect(r.device.pop()).toBeNull();
    expect(r.driver.popUsed()).toBeNull();
    r.device.addUsed(chain.head, 10);
    expect(r.device.publishUsed()).toBe(true);
    expect(r.driver.popUsed()).toEqual({ head, len: 10, token: 'token-1' });
    expect(r.driver.freeCount()).toBe(8);
    expect(new TextDecoder().decode(r.bytes.subarray(r.off(inA), r.off(inA) + 4))).toBe('0123');
    expect(new TextDecoder().decode(r.bytes.subarray(r.off(inB), r.off(inB) + 6))).toBe('456789');
  });

  it('writes the ring bytes where the spec puts them', () => {
    const r = splitRig({ size: 4 });
    r.driver.add([
      { addr: r.data + 0x10n, len: 0x20 },
      { addr: r.data + 0x40n, len: 8, writable: true },
    ]);
    r.driver.publish();
    const v = r.view;
    const d = r.off(r.addresses.descTable);
    const a = r.off(r.addresses.availRing);
    // desc[0] = {addr, len 0x20, flags NEXT, next 1}; desc[1] = {addr, len 8, flags WRITE}
    expect(v.getBigUint64(d, true)).toBe(r.data + 0x10n);
    expect(v.getUint32(d + 8, true)).toBe(0x20);
    expect(v.getUint16(d + 12, true)).toBe(1);
    expect(v.getUint16(d + 14, true)).toBe(1);
    expect(v.getBigUint64(d + 16, true)).toBe(r.data + 0x40n);
    expect(v.getUint16(d + 16 + 12, true)).toBe(2);
    // avail: flags 0, idx 1, ring[0] = 0
    expect(v.getUint16(a, true)).toBe(0);
    expect(v.getUint16(a + 2, true)).toBe(1);
    expect(v.getUint16(a + 4, true)).toBe(0);
    const chain = r.device.pop()!;
    r.device.addUsed(chain.head, 5);
    r.device.publishUsed();
    const u = r.off(r.addresses.usedRing);
    expect(v.getUint16(u + 2, true)).toBe(1);
    expect(v.getUint32(u + 4, true)).toBe(0);
    expect(v.getUint32(u + 8, true)).toBe(5);
  });

  it('many batches wrap the u16 indexes and reuse descriptors', () => {
    const r = splitRig({ size: 16, features: { eventIdx: true } });
    let sent = 0;
    let got = 0;
    for (let round = 0; round < 16000; round++) {
      const batch = 1 + (round % 8); // 2 descriptors each: at most 16
      for (let i = 0; i < batch; i++) {
        const slot = BigInt((sent % 16) * 64);
        r.view.setUint32(r.off(r.data + slot), sent, true);
        expect(
          r.driver.add(
            [
              { addr: r.data + slot, len: 4 },
              { addr: r.data + 2048n + slot, len: 4, writable: true },
            ],
            sent,
          ),
        ).toBeGreaterThanOrEqual(0);
        sent++;
      }
      r.driver.publish();
      for (let c = r.device.pop(); c !== null; c = r.device.pop()) {
        const n = new DataView(c.read().buffer.slice(0)).getUint32(0, true);
        const word = new Uint8Array(4);
        new DataView(word.buffer).setUint32(0, n ^ 0xffffffff, true);
        c.write(word);
        r.device.addUsed(c.head, 4);
      }
      r.device.publishUsed();
      for (let u = r.driver.popUsed(); u !== null; u = r.driver.popUsed()) {
        expect(u.token).toBe(got);
        got++;
      }
    }
    expect(got).toBe(sent);
    expect(sent).toBeGreaterThan(65536);
    expect(r.driver.freeCount()).toBe(16);
  });

  it('add returns -1 when the ring is full', () => {
    const r = splitRig({ size: 2 });
    expect(
      r.driver.add([
        { addr: r.data, len: 1 },
        { addr: r.data, len: 1 },
      ]),
    ).toBe(0);
    expect(r.driver.add([{ addr: r.data, len: 1 }])).toBe(-1);
    expect(r.driver.freeCount()).toBe(0);
  });

  it('refuses bad buffers from its own caller without breaking', () => {
    const r = splitRig({ size: 4 });
    expect(catchCode(() => r.driver.add([]))).toBe('INVALID_ARGUMENT');
    expect(catchCode(() => r.driver.add([{ addr: 1n << 40n, len: 1 }]))).toBe('ADDRESS_OUT_OF_BOUNDS');
    expect(
      catchCode(() =>
        r.driver.add([
          { addr: r.data, len: 1, writable: true },
          { addr: r.data, len: 1 },
        ]),
      ),
    ).toBe('INVALID_ARGUMENT');
    expect(r.driver.broken).toBeNull();
    expect(r.driver.freeCount()).toBe(4);
  });

  it('indirect tables carry a whole chain in one ring descriptor', () => {
    const r = splitRig({ size: 4, features: { indirect: true } });
    const table = r.data + 0x1000n;
    r.bytes.set([1, 2, 3], r.off(r.data));
    const head = r.driver.add(
      [
        { addr: r.data, len: 3 },
        { addr: r.data + 16n, len: 2 },
        { addr: r.data + 64n, len: 32, writable: true },
      ],
      'ind',
      { indirectTable: table },
    );
    expect(r.driver.freeCount()).toBe(3);
    r.driver.publish();
    const c = r.device.pop()!;
    expect(c.readable.length).toBe(2);
    expect(c.writableLength).toBe(32);
    expect(Array.from(c.read()).slice(0, 3)).toEqual([1, 2, 3]);
    r.device.addUsed(c.head, 32);
    r.device.publishUsed();
    expect(r.driver.popUsed()).toEqual({ head, len: 32, token: 'ind' });
    expect(r.driver.freeCount()).toBe(4);
  });
});

describe('notifications', () => {
  it('vringNeedEvent follows the spec formula with u16 wrap-around', () => {
    expect(vringNeedEvent(0, 1, 0)).toBe(true);
    expect(vringNeedEvent(1, 1, 0)).toBe(false);
    expect(vringNeedEvent(5, 10, 0)).toBe(true);
    expect(vringNeedEvent(10, 10, 0)).toBe(false);
    expect(vringNeedEvent(0xffff, 2, 0xfffe)).toBe(true);
    expect(vringNeedEvent(1, 2, 0xfffe)).toBe(true);
    expect(vringNeedEvent(2, 2, 0xfffe)).toBe(false);
    for (let old = 0; old < 70000; old += 997) {
      for (let d = 0; d < 8; d++) {
        for (let e = -3; e < 10; e++) {
          const o = old & 0xffff;
          const n = (old + d) & 0xffff;
          const ev = (old + e) & 0xffff;
          expect(vringNeedEvent(ev, n, o)).toBe(e >= 0 && e < d);
        }
      }
    }
  });

  it('flags: NO_NOTIFY suppresses kicks, NO_INTERRUPT suppresses used notifications', () => {
    const r = splitRig({ size: 8 });
    const usedFlags = r.off(r.addresses.usedRing);
    const availFlags = r.off(r.addresses.availRing);
    r.device.disableNotifications();
    expect(r.view.getUint16(usedFlags, true)).toBe(VIRTQ_USED_F_NO_NOTIFY);
    r.driver.add([{ addr: r.data, len: 1 }]);
    expect(r.driver.publish()).toBe(false);
    expect(r.device.enableNotifications()).toBe(true); // lost-wakeup guard: a chain is waiting
    expect(r.view.getUint16(usedFlags, true)).toBe(0);
    r.driver.add([{ addr: r.data, len: 1 }]);
    expect(r.driver.publish()).toBe(true);
    r.driver.disableCallbacks();
    expect(r.view.getUint16(availFlags, true)).toBe(VIRTQ_AVAIL_F_NO_INTERRUPT);
    const a = r.device.pop()!;
    r.device.addUsed(a.head, 0);
    expect(r.device.publishUsed()).toBe(false);
    expect(r.driver.enableCallbacks()).toBe(true);
    const b = r.device.pop()!;
    r.device.addUsed(b.head, 0);
    expect(r.device.publishUsed()).toBe(true);
    expect(r.device.publishUsed()).toBe(false); // nothing new
  });

  it('EVENT_IDX: one kick per crossing of avail_event, flags stay 0', () => {
    const r = splitRig({ size: 8, features: { eventIdx: true } });
    const usedFlags = r.off(r.addresses.usedRing);
    const availEvent = r.off(r.addresses.usedRing) + 4 + 8 * 8;
    const usedEvent = r.off(r.addresses.availRing) + 4 + 2 * 8;
    r.driver.add([{ addr: r.data, len: 1 }]);
    expect(r.driver.publish()).toBe(true); // avail_event 0, 0 -> 1
    r.driver.add([{ addr: r.data, len: 1 }]);
    expect(r.driver.publish()).toBe(false); // device has not asked again
    r.device.disableNotifications();
    expect(r.view.getUint16(usedFlags, true)).toBe(0);
    r.device.pop();
    r.device.pop();
    expect(r.device.pop()).toBeNull(); // notifications disabled: avail_event stays
    expect(r.view.getUint16(availEvent, true)).toBe(0);
    expect(r.device.enableNotifications()).toBe(false);
    expect(r.view.getUint16(availEvent, true)).toBe(2);
    r.driver.add([{ addr: r.data, len: 1 }]);
    r.driver.add([{ addr: r.data, len: 1 }]);
    expect(r.driver.publish()).toBe(true); // 2 -> 4 crosses 2
    // device side: used_event
    r.device.addUsed(0, 0);
    expect(r.device.publishUsed()).toBe(true); // used_event 0
    r.device.addUsed(1, 0);
    expect(r.device.publishUsed()).toBe(false);
    expect(r.driver.popUsed()).not.toBeNull();
    expect(r.driver.popUsed()).not.toBeNull();
    expect(r.driver.popUsed()).toBeNull(); // writes used_event = 2
    expect(r.view.getUint16(usedEvent, true)).toBe(2);
    r.device.pop();
    r.device.addUsed(2, 0);
    expect(r.device.publishUsed()).toBe(true);
  });

  it('EVENT_IDX: an empty pop() re-arms avail_event so a kick-driven device never misses one', () => {
    const r = splitRig({ size: 8, features: { eventIdx: true } });
    for (let i = 0; i < 50; i++) {
      r.driver.add([{ addr: r.data, len: 1 }], i);
      expect(r.driver.publish()).toBe(true);
      const c = r.device.pop()!;
      expect(r.device.pop()).toBeNull();
      r.device.addUsed(c.head, 0);
      expect(r.device.publishUsed()).toBe(true);
      expect(r.driver.popUsed()?.token).toBe(i);
      expect(r.driver.popUsed()).toBeNull();
    }
  });
});

describe('state', () => {
  it('snapshot and restore continue where the old queue stopped', () => {
    const r = splitRig({ size: 8 });
    for (let i = 0; i < 5; i++) r.driver.add([{ addr: r.data, len: 1 }], i);
    r.driver.publish();
    for (let i = 0; i < 3; i++) {
      const c = r.device.pop()!;
      r.device.addUsed(c.head, 0);
    }
    r.device.publishUsed();
    const s = r.device.state();
    expect(s).toEqual({ nextAvail: 3, nextUsed: 3 });
    const again = new SplitDeviceQueue({ memory: r.memory, size: 8, addresses: r.addresses, state: s });
    expect(again.pop()!.head).toBe(3);
    expect(vringBaseToState(stateToVringBase(s, false), false)).toEqual(s);
    const p = { nextAvail: 0x1234, availWrap: false, nextUsed: 0x7fff, usedWrap: true };
    expect(stateToVringBase(p, true)).toBe(0xffff1234);
    expect(vringBaseToState(stateToVringBase(p, true), true)).toEqual(p);
    // DPDK's and SPDK's short packed form (the avail half only): nothing in flight
    const short = vringBaseToState(0x8000, true);
    expect(short).toEqual({ nextAvail: 0, availWrap: true, nextUsed: 0, usedWrap: true });
    const q = packedRig({ size: 8 });
    q.driver.add([{ addr: q.data, len: 4 }], 'x');
    q.driver.publish();
    const restored = new PackedDeviceQueue({
      memory: q.memory,
      size: 8,
      addresses: q.addresses,
      state: short,
    });
    expect(restored.pop()!.head).toBe(0);
    expect(catchCode(() => again.setState({ nextAvail: 70000, nextUsed: 0 }))).toBe('INVALID_ARGUMENT');
  });

  it('reset() clears a broken queue; driver reset zeroes its rings', () => {
    const r = splitRig({ size: 4 });
    r.view.setUint16(r.off(r.addresses.availRing) + 2, 100, true);
    expect(catchCode(() => r.device.pop())).toBe('AVAIL_INDEX_OVERRUN');
    expect(catchCode(() => r.device.pop())).toBe('QUEUE_BROKEN');
    r.driver.reset();
    expect(r.view.getUint16(r.off(r.addresses.availRing) + 2, true)).toBe(0);
    r.device.reset();
    expect(r.device.broken).toBeNull();
    expect(r.device.pop()).toBeNull();
    const d2 = new SplitDriverQueue({ memory: r.memory, size: 4, addresses: r.addresses });
    expect(d2.state()).toEqual({ nextAvail: 0, nextUsed: 0 });
  });
});

describe('memory remap', () => {
  it('a chain popped before replace() keeps its views; the queue follows the new mapping', () => {
    const r = splitRig({ size: 4 });
    r.bytes.set([42], r.off(r.data));
    r.driver.add([{ addr: r.data, len: 1 }], 'a');
    r.driver.add([{ addr: r.data, len: 1 }], 'b');
    r.driver.publish();
    const c = r.device.pop()!;
    // move everything to a new buffer (a copy, as after a peer remapped the same file)
    const copy = r.buffer.slice(0);
    r.memory.replace([{ guestAddress: r.base, size: copy.byteLength, buffer: copy }]);
    expect(c.read()[0]).toBe(42);
    expect(c.readable[0]!.buffer).toBe(r.buffer);
    const c2 = r.device.pop()!;
    expect(c2.readable[0]!.buffer).toBe(copy);
    expect(c2.generation).toBe(r.memory.generation);
  });

  it('a remap that drops the ring marks the queue broken', () => {
    const r = splitRig({ size: 4 });
    r.memory.replace([]);
    expect(catchCode(() => r.device.pop())).toBe('ADDRESS_OUT_OF_BOUNDS');
    expect(r.device.broken?.code).toBe('ADDRESS_OUT_OF_BOUNDS');
  });
});

describe('unmapped memory (detached ArrayBuffers)', () => {
  function detach(buf: ArrayBuffer) {
    structuredClone(buf, { transfer: [buf] });
    expect(buf.byteLength).toBe(0);
  }

  it('a chain whose mapping was closed fails with MEMORY_UNMAPPED; the queue follows the new mapping', () => {
    const r = splitRig({ size: 4 });
    addTwoChains(r, 4);
    const c = r.device.pop()!;
    const copy = r.buffer.slice(0);
    r.memory.replace([{ guestAddress: r.base, size: copy.byteLength, buffer: copy }]);
    detach(r.buffer as ArrayBuffer); // the old mapping is unmapped
    expect(catchCode(() => c.read())).toBe('MEMORY_UNMAPPED');
    expect(catchCode(() => c.write(new Uint8Array(4)))).toBe('MEMORY_UNMAPPED');
    expect(catchCode(() => c.readable)).toBe('MEMORY_UNMAPPED');
    expect(r.device.pop()!.readable[0]!.buffer).toBe(copy);
    expect(r.device.broken).toBeNull();
  });

  it('a ring whose mapping was closed under it breaks the queue with MEMORY_UNMAPPED', () => {
    const r = splitRig({ size: 4 });
    detach(r.buffer as ArrayBuffer);
    expect(catchCode(() => r.device.pop())).toBe('MEMORY_UNMAPPED');
    expect(catchCode(() => r.driver.add([{ addr: r.data, len: 1 }]))).toBe('MEMORY_UNMAPPED');
    expect(r.device.broken?.code).toBe('MEMORY_UNMAPPED');
    expect(r.memory.contains(r.data, 1)).toBe(false);
  });
});

describe('popUsedHead()', () => {
  it('returns what popUsed() would, without an object (split and packed)', () => {
    for (const rig of [splitRig({ size: 8 }), packedRig({ size: 8 })]) {
      const a = rig.driver.add([{ addr: rig.data, len: 4, writable: true }], 'a');
      const b = rig.driver.add([{ addr: rig.data + 64n, len: 4, writable: true }], 'b');
      rig.driver.publish();
      expect(rig.driver.popUsedHead()).toBe(-1);
      const cb = rig.device.pop()!;
      const cc = rig.device.pop()!;
      rig.device.addUsed(cc.head, 3);
      rig.device.addUsed(cb.head, 0);
      rig.device.publishUsed();
      expect([rig.driver.popUsedHead(), rig.driver.usedLen, rig.driver.usedToken]).toEqual([b, 3, 'b']);
      expect([rig.driver.popUsedHead(), rig.driver.usedLen, rig.driver.usedToken]).toEqual([a, 0, 'a']);
      expect(rig.driver.popUsedHead()).toBe(-1);
      expect(rig.driver.inFlight()).toBe(0);
    }
  });
});

describe('pop(reuse)', () => {
  it('refills a chain the caller is done with (split and packed)', () => {
    for (const rig of [splitRig({ size: 8 }), packedRig({ size: 8 })]) {
      rig.bytes.set([1, 2, 3, 4, 5, 6], rig.off(rig.data));
      rig.driver.add([{ addr: rig.data, len: 2 }], 'a');
      rig.driver.add(
        [
          { addr: rig.data + 2n, len: 3 },
          { addr: rig.data + 64n, len: 8, writable: true },
        ],
        'b',
      );
      rig.driver.publish();
      const c = rig.device.pop()!;
      const firstViews = c.readable;
      expect(Array.from(c.read())).toEqual([1, 2]);
      rig.device.addUsed(c.head, 0);
      const again = rig.device.pop(c)!;
      expect(again).toBe(c);
      expect(Array.from(again.read())).toEqual([3, 4, 5]);
      expect([again.readableLength, again.writableLength, again.readable.length]).toEqual([3, 8, 1]);
      expect(Array.from(firstViews[0]!)).toEqual([1, 2]); // views handed out earlier stay as they were
      expect(rig.device.pop(c)).toBeNull();
      expect(c.readableLength).toBe(3); // untouched when nothing was available
    }
  });

  it('a shorter chain refilled into a longer one shows only its own buffers (split and packed)', () => {
    for (const rig of [splitRig({ size: 8 }), packedRig({ size: 8 })]) {
      rig.bytes.set([9, 8, 7], rig.off(rig.data));
      rig.driver.add(
        [
          { addr: rig.data, len: 1 },
          { addr: rig.data + 1n, len: 1 },
          { addr: rig.data + 64n, len: 4, writable: true },
          { addr: rig.data + 128n, len: 4, writable: true },
        ],
        'long',
      );
      rig.driver.add([{ addr: rig.data + 2n, len: 1 }], 'short');
      rig.driver.publish();
      const c = rig.device.pop()!;
      expect([c.readable.length, c.writable.length]).toEqual([2, 2]);
      rig.device.addUsed(c.head, 0);
      const again = rig.device.pop(c)!;
      expect([again.readable.length, again.writable.length, again.writableLength]).toEqual([1, 0, 0]);
      expect(Array.from(again.read())).toEqual([7]);
      expect(again.write(new Uint8Array([1, 2]))).toBe(0); // no stale writable buffer is used
    }
  });

  it('a failed walk leaves the reused chain empty', () => {
    const r = splitRig({ size: 8 });
    r.driver.add([{ addr: r.data, len: 2 }]);
    r.driver.publish();
    const c = r.device.pop()!;
    const d = r.off(r.addresses.descTable);
    r.view.setUint16(r.off(r.addresses.availRing) + 4 + 2, 0, true);
    r.view.setUint32(d + 8, 0xffffffff, true); // descriptor 0 now runs out of memory
    r.view.setUint16(r.off(r.addresses.availRing) + 2, 2, true);
    r.device.addUsed(c.head, 0);
    expect(catchCode(() => r.device.pop(c))).toBe('ADDRESS_OUT_OF_BOUNDS');
    expect([c.readableLength, c.writableLength, c.readable.length, c.read().length]).toEqual([0, 0, 0, 0]);
  });
});
