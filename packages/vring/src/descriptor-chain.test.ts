import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { copy } from './descriptor-chain.js';
import { splitRig } from './test-rig.js';

describe('DescriptorChain copies', () => {
  it('property: copy() equals a byte-by-byte copy for any alignment and length', () => {
    const a = new Uint8Array(new ArrayBuffer(4096), 3, 4000);
    const b = new Uint8Array(new SharedArrayBuffer(4096), 4, 4000);
    for (let i = 0; i < a.length; i++) a[i] = (i * 7 + 1) & 0xff;
    fc.assert(
      fc.property(fc.nat(1500), fc.nat(1500), fc.nat(1200), fc.boolean(), (fo, to, n, ab) => {
        const [src, dst] = ab ? [a, b] : [b, a];
        src.forEach((_, i) => {
          src[i] = (i * 13 + fo) & 0xff;
        });
        const want = Array.from(dst);
        for (let i = 0; i < n; i++) want[to + i] = src[fo + i]!;
        copy(src, fo, dst, to, n);
        expect(Array.from(dst)).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });

  it('property: copy() stays right when it rotates through more views than it caches', () => {
    const buffers = [new ArrayBuffer(2048), new SharedArrayBuffer(2048), new ArrayBuffer(2048)];
    const views = [
      new Uint8Array(buffers[0]!, 0, 1024),
      new Uint8Array(buffers[0]!, 512, 1024), // same buffer, another offset
      new Uint8Array(buffers[1]!, 4, 1024),
      new Uint8Array(buffers[2]!, 8, 1024),
      new Uint8Array(64), // a small (on-heap) array
    ];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(4), fc.nat(4), fc.nat(63), fc.nat(63), fc.nat(64)), {
          minLength: 1,
          maxLength: 20,
        }),
        (ops) => {
          for (const [si, di, fo, to, len] of ops) {
            if (si === di) continue;
            const src = views[si]!;
            const dst = views[di]!;
            const n = Math.min(len, src.length - fo, dst.length - to);
            for (let i = 0; i < n; i++) src[fo + i] = (i * 31 + si + fo) & 0xff;
            const want = Array.from(dst.subarray(0, 128));
            for (let i = 0; i < n; i++) if (to + i < 128) want[to + i] = src[fo + i]!;
            copy(src, fo, dst, to, n);
            // views 0 and 1 overlap: compare only when they do not share bytes
            if ((si <= 1 && di <= 1) === false) expect(Array.from(dst.subarray(0, 128))).toEqual(want);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('read, readInto and write across several buffers, with offsets', () => {
    const r = splitRig({ size: 8 });
    const text = 'the quick brown fox jumps over the lazy dog';
    const bytes = new TextEncoder().encode(text);
    r.bytes.set(bytes, r.off(r.data));
    r.driver.add([
      { addr: r.data, len: 10 },
      { addr: r.data + 10n, len: 1 },
      { addr: r.data + 11n, len: bytes.length - 11 },
      { addr: r.data + 1024n, len: 5, writable: true },
      { addr: r.data + 2048n + 1n, len: 300, writable: true },
    ]);
    r.driver.publish();
    const c = r.device.pop()!;
    expect(new TextDecoder().decode(c.read())).toBe(text);
    const small = new Uint8Array(12);
    expect(new TextDecoder().decode(c.read(small))).toBe(text.slice(0, 12));
    const big = new Uint8Array(100);
    expect(c.readInto(big, 50)).toBe(bytes.length);
    expect(new TextDecoder().decode(big.subarray(50, 50 + bytes.length))).toBe(text);
    expect(c.readInto(big, 90)).toBe(10);
    const reply = Uint8Array.from({ length: 400 }, (_, i) => i & 0xff);
    expect(c.write(reply, 3)).toBe(302);
    expect(Array.from(r.bytes.subarray(r.off(r.data + 1024n), r.off(r.data + 1024n) + 5))).toEqual([
      0, 0, 0, 0, 1,
    ]);
    expect(r.bytes[r.off(r.data + 2049n)]).toBe(2);
    expect(r.bytes[r.off(r.data + 2049n) + 299]).toBe(301 & 0xff);
    expect(c.write(reply, 305)).toBe(0);
  });
});
