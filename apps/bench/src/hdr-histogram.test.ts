import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BenchError } from './errors.js';
import { HdrHistogram } from './hdr-histogram.js';

/** The exact value at a percentile by the same rank rule (ceil(p/100 * n), at least 1). */
function exactPercentile(sorted: number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length - 1e-9));
  return sorted[rank - 1]!;
}

describe('HdrHistogram', () => {
  it('is exact below 2048 (one slot per value at 3 digits)', () => {
    const h = new HdrHistogram();
    for (let v = 0; v < 2048; v++) h.record(v);
    expect(h.totalCount).toBe(2048);
    expect(h.min).toBe(0);
    expect(h.max).toBe(2047);
    expect(h.valueAtPercentile(50)).toBe(1023);
    expect(h.valueAtPercentile(100)).toBe(2047);
    for (const v of [0, 1, 7, 1000, 2047]) {
      expect(h.lowestEquivalentValue(v)).toBe(v);
      expect(h.highestEquivalentValue(v)).toBe(v);
    }
  });

  it('groups larger values in slots of doubling width', () => {
    const h = new HdrHistogram();
    expect(h.lowestEquivalentValue(4096)).toBe(4096);
    expect(h.highestEquivalentValue(4096)).toBe(4099);
    expect(h.highestEquivalentValue(4095)).toBe(4095);
    expect(h.lowestEquivalentValue(4097)).toBe(4096);
    expect(h.lowestEquivalentValue(1_000_000)).toBe(999_936);
    expect(h.highestEquivalentValue(1_000_000)).toBe(1_000_447);
    // Beyond 2^32: the slot arithmetic must not wrap like 32-bit operators would.
    const big = 2 ** 35 + 12345;
    expect(h.lowestEquivalentValue(big)).toBeLessThanOrEqual(big);
    expect(h.highestEquivalentValue(big)).toBeGreaterThanOrEqual(big);
    expect((h.highestEquivalentValue(big) - h.lowestEquivalentValue(big)) / big).toBeLessThan(1e-3);
  });

  it('reports the tail of a skewed distribution', () => {
    const h = new HdrHistogram();
    h.record(1000, 9990);
    h.record(1_000_000, 10);
    expect(h.valueAtPercentile(50)).toBe(1000);
    expect(h.valueAtPercentile(99)).toBe(1000);
    expect(h.valueAtPercentile(99.9)).toBe(1000);
    expect(h.valueAtPercentile(99.95)).toBe(1_000_000);
    expect(h.max).toBe(1_000_000);
    expect(h.mean).toBeCloseTo((1000 * 9990 + 1_000_000 * 10) / 10000, 6);
  });

  it('clamps values above the trackable range and counts them', () => {
    const h = new HdrHistogram({ highestTrackableValue: 10_000 });
    h.record(20_000);
    h.record(5);
    expect(h.clamped).toBe(1);
    expect(h.max).toBe(10_000);
    expect(h.valueAtPercentile(100)).toBe(10_000);
  });

  it('refuses bad input with typed errors', () => {
    const h = new HdrHistogram();
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => h.record(bad)).toThrow(BenchError);
    }
    expect(() => h.valueAtPercentile(101)).toThrow(BenchError);
    expect(() => h.valueAtPercentile(-0.1)).toThrow(BenchError);
    expect(() => new HdrHistogram({ significantDigits: 6 })).toThrow(BenchError);
    expect(() => new HdrHistogram({ highestTrackableValue: 1 })).toThrow(BenchError);
    const snap = h.snapshot();
    expect(() => HdrHistogram.fromSnapshot({ ...snap, counts: [[-1, 1]] })).toThrow(
      /invalid histogram bucket/,
    );
    expect(() => HdrHistogram.fromSnapshot({ ...snap, counts: [[1e9, 1]] })).toThrow(
      /invalid histogram bucket/,
    );
    expect(() => HdrHistogram.fromSnapshot({ ...snap, counts: [[3, 0.5]] })).toThrow(
      /invalid histogram bucket/,
    );
    expect(() => HdrHistogram.fromSnapshot({ ...snap, sum: Number.NaN })).toThrow(/sum/);
  });

  it('is empty-safe', () => {
    const h = new HdrHistogram();
    expect(h.valueAtPercentile(99)).toBe(0);
    expect(h.min).toBe(0);
    expect(h.max).toBe(0);
    expect(h.mean).toBe(0);
    expect(h.stdDev).toBe(0);
  });

  it('property: percentiles are within the precision of the exact ones, ordered, and capped by min/max', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 0, max: 2 ** 40 })), {
          minLength: 1,
          maxLength: 400,
        }),
        fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { minLength: 1, maxLength: 8 }),
        (values, percentiles) => {
          const h = new HdrHistogram();
          for (const v of values) h.record(v);
          const sorted = [...values].sort((a, b) => a - b);
          expect(h.totalCount).toBe(values.length);
          expect(h.min).toBe(sorted[0]);
          expect(h.max).toBe(sorted[sorted.length - 1]);
          for (const p of percentiles) {
            const got = h.valueAtPercentile(p);
            const exact = p === 0 ? sorted[0]! : exactPercentile(sorted, p);
            expect(got).toBeGreaterThanOrEqual(exact);
            expect(got - exact).toBeLessThanOrEqual(Math.max(0, exact / 1000));
            expect(got).toBeGreaterThanOrEqual(h.min);
            expect(got).toBeLessThanOrEqual(h.max);
          }
          const ps = [...percentiles].sort((a, b) => a - b).map((p) => h.valueAtPercentile(p));
          for (let i = 1; i < ps.length; i++) expect(ps[i]).toBeGreaterThanOrEqual(ps[i - 1]!);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: adding histograms equals recording everything in one; snapshots round-trip', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 10 ** 9 }), { maxLength: 200 }),
        fc.array(fc.integer({ min: 0, max: 10 ** 9 }), { maxLength: 200 }),
        (xs, ys) => {
          const a = new HdrHistogram();
          const b = new HdrHistogram();
          const all = new HdrHistogram();
          for (const x of xs) {
            a.record(x);
            all.record(x);
          }
          for (const y of ys) {
            b.record(y);
            all.record(y);
          }
          a.add(b);
          // Sums of squares reach 10^20: compare them relatively (float addition order differs).
          const same = (x: HdrHistogram, y: HdrHistogram) => {
            const { sumSquares: sx, ...rx } = x.snapshot();
            const { sumSquares: sy, ...ry } = y.snapshot();
            expect(rx).toEqual(ry);
            expect(Math.abs(sx - sy)).toBeLessThanOrEqual(Math.max(sx, sy) * 1e-12);
          };
          same(a, all);
          const back = HdrHistogram.fromSnapshot(JSON.parse(JSON.stringify(all.snapshot())));
          same(back, all);
          for (const p of [50, 99, 99.9]) expect(back.valueAtPercentile(p)).toBe(all.valueAtPercentile(p));
          expect(back.mean).toBeCloseTo(all.mean, 6);
        },
      ),
      { numRuns: 200 },
    );
  });
});
