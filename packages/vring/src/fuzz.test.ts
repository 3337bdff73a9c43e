// A bounded mutation fuzzer: real driver output, a few bytes of the shared
// ring flipped, then both sides run. Bounded by iterations AND seconds
// (VRING_FUZZ_SECONDS, VRING_FUZZ_ITERATIONS raise the bounds for a long local run).
import { describe, expect, it } from 'vitest';
import { VringError } from './errors.js';
import { type PackedRig, packedRig, prng, type SplitRig, splitRig, viewsInside } from './test-rig.js';

const SECONDS = Number(process.env.VRING_FUZZ_SECONDS ?? 4);
const ITERATIONS = Number(process.env.VRING_FUZZ_ITERATIONS ?? 20_000);
const INTERESTING = [
  0, 1, 2, 3, 4, 7, 8, 15, 16, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0xfffffff0, 0xffffffff,
];

function mutate(rand: () => number, bytes: Uint8Array, view: DataView, lo: number, hi: number) {
  const edits = 1 + (rand() % 4);
  for (let e = 0; e < edits; e++) {
    const at = lo + (rand() % (hi - lo));
    switch (rand() % 4) {
      case 0:
        bytes[at] = rand() & 0xff;
        break;
      case 1:
        bytes[at] = bytes[at]! ^ (1 << (rand() % 8));
        break;
      case 2:
        if (at + 2 <= hi) view.setUint16(at & ~1, INTERESTING[rand() % INTERESTING.length]! & 0xffff, true);
        break;
      default:
        if ((at & ~3) + 4 <= hi)
          view.setUint32(at & ~3, INTERESTING[rand() % INTERESTING.length]! >>> 0, true);
    }
  }
}

function run(fn: () => void, codes: Map<string, number>) {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof VringError)) throw e; // anything else is a bug
    codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
  }
}

function fuzz(kind: 'split' | 'packed', seed: number) {
  const rand = prng(seed);
  const codes = new Map<string, number>();
  let chains = 0;
  let iterations = 0;
  const stop = Date.now() + SECONDS * 1000;
  while (iterations < ITERATIONS && Date.now() < stop) {
    iterations++;
    const size = [1, 2, 4, 8, 16][rand() % 5]!;
    const features = { indirect: rand() % 2 === 0, eventIdx: rand() % 2 === 0, inOrder: rand() % 4 === 0 };
    const r: SplitRig | PackedRig =
      kind === 'split'
        ? splitRig({ size, features, dataBytes: 8192 })
        : packedRig({ size, features, dataBytes: 8192 });
    const { driver, device } = r;
    const ringEnd = Number(r.data - r.base);
    const tables = ringEnd + 4096; // indirect tables live here
    // real driver output
    for (let c = 0, n = 1 + (rand() % size); c < n; c++) {
      const k = 1 + (rand() % 3);
      const bufs = Array.from({ length: k }, (_, i) => ({
        addr: r.data + BigInt(rand() % 2048),
        len: rand() % 64,
        writable: i === k - 1 && rand() % 2 === 0,
      }));
      const indirect = features.indirect && rand() % 2 === 0;
      run(() => {
        driver.add(bufs, c, indirect ? { indirectTable: r.data + 4096n + BigInt(c * 64) } : undefined);
      }, codes);
    }
    run(() => driver.publish(), codes);
    // a hostile driver (or a bit flip) edits the rings or the indirect tables
    if (rand() % 3 === 0) mutate(rand, r.bytes, r.view, tables, tables + 1024);
    else mutate(rand, r.bytes, r.view, 0, ringEnd);
    // half the iterations go through the one-call paths (serve, popUsedBatch)
    const oneCall = rand() % 2 === 0;
    if (oneCall) {
      run(() => {
        device.serve(size + 2, (c) => {
          chains++;
          expect(viewsInside(r.memory, [...c.readable, ...c.writable])).toBe(true);
          c.read();
          return c.write(new Uint8Array(32).fill(0xab));
        });
      }, codes);
    }
    for (let i = 0; i < size + 2 && device.broken === null && !oneCall; i++) {
      let empty = false;
      run(() => {
        const c = device.pop();
        if (c === null) {
          empty = true;
          return;
        }
        chains++;
        expect(viewsInside(r.memory, [...c.readable, ...c.writable])).toBe(true);
        c.read();
        device.addUsed(c.head, c.write(new Uint8Array(32).fill(0xab)));
      }, codes);
      if (empty) break;
    }
    run(() => device.publishUsed(), codes);
    // a hostile device edits the used side
    if (rand() % 2 === 0) mutate(rand, r.bytes, r.view, 0, ringEnd);
    const tokens = new Set<unknown>();
    if (oneCall) {
      const out: unknown[] = new Array(size + 2);
      const lens = new Uint32Array(size + 2);
      for (let i = 0; i < size + 2 && driver.broken === null; i++) {
        let n = 0;
        run(() => {
          n = driver.popUsedBatch(out, lens, 1 + (rand() % (size + 2)));
        }, codes);
        for (let k = 0; k < n; k++) {
          expect(tokens.has(out[k])).toBe(false);
          tokens.add(out[k]);
        }
        if (n === 0) break;
      }
    }
    for (let i = 0; i < size + 2 && driver.broken === null && !oneCall; i++) {
      let empty = false;
      run(() => {
        const u = driver.popUsed();
        if (u === null) {
          empty = true;
          return;
        }
        expect(tokens.has(u.token)).toBe(false);
        tokens.add(u.token);
      }, codes);
      if (empty) break;
    }
    expect(driver.freeCount()).toBeLessThanOrEqual(size);
  }
  return { iterations, chains, codes };
}

describe('fuzz (bounded)', () => {
  for (const kind of ['split', 'packed'] as const) {
    it(`${kind}: mutated rings only ever produce VringErrors and in-bounds chains`, () => {
      const seed = Number(process.env.VRING_FUZZ_SEED ?? Date.now() % 0xffffffff);
      const res = fuzz(kind, seed);
      console.log(
        `vring fuzz ${kind}: seed ${seed}, ${res.iterations} iterations, ${res.chains} chains, ` +
          [...res.codes].map(([c, n]) => `${c}=${n}`).join(' '),
      );
      expect(res.iterations).toBeGreaterThan(100);
      expect(res.chains).toBeGreaterThan(100);
      expect(res.codes.size).toBeGreaterThanOrEqual(3);
    });
  }
});
