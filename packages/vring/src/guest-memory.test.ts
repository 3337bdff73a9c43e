import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VringError } from './errors.js';
import { GuestMemory } from './guest-memory.js';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof VringError) return e.code;
    throw e;
  }
  return undefined;
}

describe('GuestMemory', () => {
  it('translates addresses inside a region to views of its buffer', () => {
    const buf = new ArrayBuffer(8192);
    const mem = new GuestMemory([{ guestAddress: 0x10000n, size: 4096, buffer: buf, byteOffset: 4096 }]);
    const v = mem.slice(0x10010n, 4);
    v.set([1, 2, 3, 4]);
    expect(new Uint8Array(buf, 4096 + 0x10, 4)).toEqual(new Uint8Array([1, 2, 3, 4]));
    expect(mem.slice(0x10000 + 4092, 4).length).toBe(4);
    expect(mem.slice(0x11000n, 0).length).toBe(0);
  });

  it('refuses ranges that leave the region or straddle two regions', () => {
    const mem = new GuestMemory([
      { guestAddress: 0n, size: 4096, buffer: new ArrayBuffer(4096) },
      { guestAddress: 4096n, size: 4096, buffer: new ArrayBuffer(4096) },
    ]);
    expect(mem.slice(4090, 6).length).toBe(6);
    expect(code(() => mem.slice(4090, 7))).toBe('ADDRESS_OUT_OF_BOUNDS');
    expect(code(() => mem.slice(8192n, 1))).toBe('ADDRESS_OUT_OF_BOUNDS');
    expect(code(() => mem.slice(-1, 1))).toBe('INVALID_ARGUMENT');
    expect(code(() => mem.slice(1n << 64n, 1))).toBe('INVALID_ARGUMENT');
  });

  it('is exact above 2^53 and never wraps at 2^64', () => {
    const top = (1n << 64n) - 4096n;
    const mid = (1n << 53n) + 1n; // not representable as a double
    const a = new ArrayBuffer(4096);
    const b = new ArrayBuffer(4096);
    const mem = new GuestMemory([
      { guestAddress: top, size: 4096, buffer: a },
      { guestAddress: mid, size: 4096, buffer: b },
    ]);
    mem.slice(top + 4095n, 1)[0] = 7;
    expect(new Uint8Array(a)[4095]).toBe(7);
    mem.slice(mid, 1)[0] = 9;
    expect(new Uint8Array(b)[0]).toBe(9);
    // one byte below the region: a double would round mid - 1 to mid
    expect(code(() => mem.slice(mid - 1n, 1))).toBe('ADDRESS_OUT_OF_BOUNDS');
    expect(code(() => mem.slice(top + 4095n, 2))).toBe('ADDRESS_OUT_OF_BOUNDS');
    // the hot path with hi/lo words
    const hi = Number(top >> 32n);
    const lo = Number(top & 0xffffffffn);
    expect(mem.resolve(lo, hi, 4096)?.region.guestAddress).toBe(top);
    expect(mem.resolve(lo, hi, 4097)).toBeUndefined();
    expect(mem.resolve(0xffffffff, 0xffffffff, 2)).toBeUndefined();
  });

  it('validates regions: size, buffer bounds, overlap, u64 range', () => {
    const buf = new ArrayBuffer(4096);
    expect(code(() => new GuestMemory([{ guestAddress: 0n, size: 0, buffer: buf }]))).toBe('INVALID_REGION');
    expect(code(() => new GuestMemory([{ guestAddress: 0n, size: 4097, buffer: buf }]))).toBe(
      'INVALID_REGION',
    );
    expect(code(() => new GuestMemory([{ guestAddress: 0n, size: 4096, buffer: buf, byteOffset: 1 }]))).toBe(
      'INVALID_REGION',
    );
    expect(code(() => new GuestMemory([{ guestAddress: (1n << 64n) - 10n, size: 4096, buffer: buf }]))).toBe(
      'INVALID_REGION',
    );
    expect(
      code(
        () =>
          new GuestMemory([
            { guestAddress: 0n, size: 4096, buffer: buf },
            { guestAddress: 4095n, size: 1, buffer: buf },
          ]),
      ),
    ).toBe('REGION_OVERLAP');
  });

  it('replace() swaps the table atomically and bumps the generation; bad tables change nothing', () => {
    const a = new ArrayBuffer(4096);
    const b = new ArrayBuffer(8192);
    const mem = GuestMemory.fromBuffer(a);
    const g0 = mem.generation;
    const old = mem.slice(0, 16); // a view taken before the remap stays on its buffer
    mem.replace([{ guestAddress: 0n, size: 8192, buffer: b }]);
    expect(mem.generation).toBe(g0 + 1);
    expect(mem.slice(4096, 16).buffer).toBe(b);
    expect(old.buffer).toBe(a);
    expect(
      code(() =>
        mem.replace([
          { guestAddress: 0n, size: 1, buffer: a },
          { guestAddress: 0n, size: 1, buffer: a },
        ]),
      ),
    ).toBe('REGION_OVERLAP');
    expect(mem.generation).toBe(g0 + 1);
    expect(mem.slice(4096, 16).buffer).toBe(b);
  });

  it('addRegion / removeRegion', () => {
    const mem = new GuestMemory();
    expect(code(() => mem.slice(0, 1))).toBe('ADDRESS_OUT_OF_BOUNDS');
    mem.addRegion({ guestAddress: 0x1000n, size: 4096, buffer: new ArrayBuffer(4096) });
    mem.addRegion({ guestAddress: 0x3000n, size: 4096, buffer: new ArrayBuffer(4096) });
    expect(mem.regions.map((r) => r.guestAddress)).toEqual([0x1000n, 0x3000n]);
    expect(code(() => mem.removeRegion(0x1000n, 10))).toBe('REGION_NOT_FOUND');
    mem.removeRegion(0x1000n, 4096);
    expect(mem.contains(0x1000n, 1)).toBe(false);
    expect(mem.contains(0x3000n, 4096)).toBe(true);
  });

  it('userToGuest translates front-end virtual addresses', () => {
    const mem = new GuestMemory([
      { guestAddress: 0n, size: 4096, buffer: new ArrayBuffer(4096), userAddress: 0x7f0000000000n },
    ]);
    expect(mem.userToGuest(0x7f0000000010n, 16)).toBe(0x10n);
    expect(code(() => mem.userToGuest(0x7f0000000ff0n, 17))).toBe('ADDRESS_OUT_OF_BOUNDS');
    expect(code(() => mem.userToGuest(0x10n, 1))).toBe('ADDRESS_OUT_OF_BOUNDS');
  });

  it('property: slice succeeds exactly when the range is inside one region (BigInt oracle)', () => {
    const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    fc.assert(
      fc.property(
        fc.array(fc.record({ start: u64, size: fc.integer({ min: 1, max: 65536 }) }), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.oneof(u64, fc.bigInt({ min: 0n, max: 1n << 20n })),
        fc.integer({ min: 0, max: 70000 }),
        (specs, addr, len) => {
          const regions = specs.map((s) => ({
            guestAddress: s.start > (1n << 64n) - BigInt(s.size) ? (1n << 64n) - BigInt(s.size) : s.start,
            size: s.size,
            buffer: new ArrayBuffer(s.size),
          }));
          let mem: GuestMemory;
          try {
            mem = new GuestMemory(regions);
          } catch (e) {
            expect((e as VringError).code).toBe('REGION_OVERLAP');
            return;
          }
          const inside = regions.some(
            (r) => addr >= r.guestAddress && addr + BigInt(len) <= r.guestAddress + BigInt(r.size),
          );
          expect(mem.contains(addr, len)).toBe(inside);
          const lo = Number(addr & 0xffffffffn);
          const hi = Number(addr >> 32n);
          expect(mem.resolve(lo, hi, len) !== undefined).toBe(inside);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
