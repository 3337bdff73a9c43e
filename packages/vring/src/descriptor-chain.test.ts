import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { copy, type DescriptorChain } from './descriptor-chain.js';
import {
  addTwoChains,
  catchCode,
  type PackedRig,
  packedRig,
  type RigOptions,
  type SplitRig,
  splitRig,
} from './test-rig.js';

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

describe('DescriptorChain segment views (allocation-free accessors)', () => {
  type Rig = SplitRig | PackedRig;
  const rigs: [string, (o?: RigOptions) => Rig][] = [
    ['split', (o) => splitRig(o)],
    ['packed', (o) => packedRig(o)],
  ];

  /** Segment i as a subarray made from the accessors. */
  const seg = (c: DescriptorChain, i: number): Uint8Array =>
    c.segmentBytes(i).subarray(c.segmentOffset(i), c.segmentOffset(i) + c.segmentLength(i));

  for (const [name, make] of rigs) {
    describe(name, () => {
      it('a multi-segment chain: counts, offsets, lengths, writable flags, and the bytes alias guest memory', () => {
        const r = make({ size: 8 });
        const layout = [
          { addr: r.data + 3n, len: 10 },
          { addr: r.data + 100n, len: 0 }, // zero-length buffers are legal
          { addr: r.data + 200n, len: 33 },
          { addr: r.data + 1024n, len: 5, writable: true },
          { addr: r.data + 4097n, len: 300, writable: true },
        ];
        for (let i = 0; i < 400; i++) r.bytes[r.off(r.data) + i] = (i * 7 + 3) & 0xff;
        r.driver.add(layout, 'x');
        r.driver.publish();
        const c = r.device.pop()!;
        expect(c.segmentCount).toBe(5);
        expect(c.readableCount).toBe(3);
        const region = c.segmentBytes(0);
        for (let i = 0; i < layout.length; i++) {
          const b = layout[i]!;
          // every segment lies in the one region, at the guest address's offset
          expect(c.segmentBytes(i)).toBe(region);
          expect(region.buffer).toBe(r.buffer);
          expect(region.byteOffset + c.segmentOffset(i)).toBe(r.off(b.addr));
          expect(c.segmentLength(i)).toBe(b.len);
          expect(c.segmentWritable(i)).toBe(b.writable === true);
        }
        // the same bytes as the readable / writable views and as read()
        const views = [...c.readable, ...c.writable];
        views.forEach((v, i) => {
          const s = seg(c, i);
          expect(s.buffer).toBe(v.buffer);
          expect(s.byteOffset).toBe(v.byteOffset);
          expect(s.length).toBe(v.length);
        });
        const joined = [0, 1, 2].flatMap((i) => Array.from(seg(c, i)));
        expect(joined).toEqual(Array.from(c.read()));
        // writes through a segment land in guest memory (no copy in between)
        const w = c.segmentBytes(4);
        w[c.segmentOffset(4) + 299] = 0xab;
        expect(r.bytes[r.off(r.data + 4097n) + 299]).toBe(0xab);
        // and what the peer writes is seen through it
        r.bytes[r.off(r.data + 3n)] = 0x5a;
        expect(c.segmentBytes(0)[c.segmentOffset(0)]).toBe(0x5a);
      });

      it('an indirect chain lists the buffers of its table, not the table', () => {
        const r = make({ size: 4, features: { indirect: true } });
        r.driver.add(
          [
            { addr: r.data + 8n, len: 12 },
            { addr: r.data + 512n, len: 64, writable: true },
          ],
          'i',
          { indirectTable: r.data + 0x2000n },
        );
        r.driver.publish();
        const c = r.device.pop()!;
        expect(c.segmentCount).toBe(2);
        expect(c.readableCount).toBe(1);
        expect(c.segmentBytes(0).byteOffset + c.segmentOffset(0)).toBe(r.off(r.data + 8n));
        expect(c.segmentLength(1)).toBe(64);
        expect(c.segmentWritable(0)).toBe(false);
        expect(c.segmentWritable(1)).toBe(true);
      });

      it('out-of-range or non-integer indexes are INVALID_ARGUMENT for every accessor', () => {
        const r = make({ size: 4 });
        addTwoChains(r, 16);
        const c = r.device.pop()!;
        expect(c.segmentCount).toBe(2);
        const accessors = [
          (i: number) => c.segmentBytes(i),
          (i: number) => c.segmentOffset(i),
          (i: number) => c.segmentLength(i),
          (i: number) => c.segmentWritable(i),
        ];
        for (const get of accessors) {
          for (const bad of [-1, 2, 3, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 32, '0' as never]) {
            expect(catchCode(() => get(bad))).toBe('INVALID_ARGUMENT');
          }
          expect(catchCode(() => get(1))).toBeUndefined();
        }
        // the message names the index and the range
        expect(() => c.segmentLength(2)).toThrow(/segment index 2 .* 0 to 1/);
      });

      it('a chain reused by pop(reuse) shows the new chain; stale segments are out of range', () => {
        const r = make({ size: 4 });
        r.driver.add(
          [
            { addr: r.data, len: 4 },
            { addr: r.data + 16n, len: 4 },
            { addr: r.data + 64n, len: 8, writable: true },
          ],
          'a',
        );
        r.driver.add([{ addr: r.data + 256n, len: 20 }], 'b');
        r.driver.publish();
        const c = r.device.pop()!;
        expect(c.segmentCount).toBe(3);
        r.device.addUsed(c.head, 0);
        const d = r.device.pop(c)!;
        expect(d).toBe(c);
        expect(d.segmentCount).toBe(1);
        expect(d.readableCount).toBe(1);
        expect(d.segmentLength(0)).toBe(20);
        expect(d.segmentBytes(0).byteOffset + d.segmentOffset(0)).toBe(r.off(r.data + 256n));
        expect(catchCode(() => d.segmentLength(1))).toBe('INVALID_ARGUMENT');
        expect(catchCode(() => d.segmentBytes(2))).toBe('INVALID_ARGUMENT');
      });

      it('a segment whose mapping was unmapped (detached buffer) throws MEMORY_UNMAPPED; offsets and lengths stay readable', () => {
        const r = make({ size: 4 });
        addTwoChains(r, 8);
        const c = r.device.pop()!;
        const copy = r.buffer.slice(0);
        r.memory.replace([{ guestAddress: r.base, size: copy.byteLength, buffer: copy }]);
        // before the unmap the chain still works on the old mapping
        expect(c.segmentBytes(0).buffer).toBe(r.buffer);
        structuredClone(r.buffer, { transfer: [r.buffer as ArrayBuffer] });
        expect(r.buffer.byteLength).toBe(0);
        expect(catchCode(() => c.segmentBytes(0))).toBe('MEMORY_UNMAPPED');
        expect(catchCode(() => c.segmentBytes(1))).toBe('MEMORY_UNMAPPED');
        expect(() => c.segmentBytes(1)).toThrow(/buffer 1 of chain .* unmapped/);
        expect(c.segmentLength(1)).toBe(8);
        expect(c.segmentWritable(1)).toBe(true);
        expect(c.segmentOffset(0)).toBeGreaterThanOrEqual(0);
        // the next chain is resolved in the new mapping
        expect(r.device.pop()!.segmentBytes(0).buffer).toBe(copy);
      });

      it('property: the segments of any chain add up to its readable and writable bytes, in order', () => {
        fc.assert(
          fc.property(
            fc.array(fc.tuple(fc.nat(300), fc.boolean()), { minLength: 1, maxLength: 8 }),
            (spec) => {
              const r = make({ size: 8 });
              // readable ones first, each buffer at its own 512-byte spot
              const sorted = [...spec].sort((a, b) => Number(a[1]) - Number(b[1]));
              const bufs = sorted.map(([len, w], i) => ({
                addr: r.data + BigInt(512 * i + (i % 4)),
                len,
                writable: w,
              }));
              for (let i = 0; i < 8 * 512; i++) r.bytes[r.off(r.data) + i] = (i * 31 + 7) & 0xff;
              expect(r.driver.add(bufs)).toBeGreaterThanOrEqual(0);
              r.driver.publish();
              const c = r.device.pop()!;
              expect(c.segmentCount).toBe(bufs.length);
              let readable = 0;
              let writable = 0;
              const readBytes: number[] = [];
              for (let i = 0; i < c.segmentCount; i++) {
                expect(c.segmentWritable(i)).toBe(i >= c.readableCount);
                expect(c.segmentLength(i)).toBe(bufs[i]!.len);
                if (c.segmentWritable(i)) writable += c.segmentLength(i);
                else {
                  readable += c.segmentLength(i);
                  readBytes.push(...seg(c, i));
                }
              }
              expect(c.readableCount).toBe(bufs.filter((b) => !b.writable).length);
              expect(readable).toBe(c.readableLength);
              expect(writable).toBe(c.writableLength);
              expect(readBytes).toEqual(Array.from(c.read()));
            },
          ),
          { numRuns: 100 },
        );
      });
    });
  }
});
