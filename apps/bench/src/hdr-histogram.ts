import { BenchError } from './errors.js';

export interface HistogramOptions {
  /** Largest value the histogram tracks (default 2^40, i.e. 18 minutes in ns). Larger values are clamped and counted in `clamped`. */
  highestTrackableValue?: number;
  /** Decimal digits of precision kept across the whole range (1 to 5, default 3). */
  significantDigits?: number;
}

/** A compact, JSON-safe form of a histogram: only non-zero buckets. */
export interface HistogramSnapshot {
  highestTrackableValue: number;
  significantDigits: number;
  /** Pairs [countsIndex, count]. */
  counts: [number, number][];
  min: number;
  max: number;
  clamped: number;
  /** Sum and sum of squares of the recorded (truncated, clamped) values: exact mean and deviation. */
  sum: number;
  sumSquares: number;
}

const TWO_32 = 2 ** 32;

/** floor(log2(x)) for integers 1 <= x < 2^53. */
function log2floor(x: number): number {
  if (x < TWO_32) return 31 - Math.clz32(x >>> 0);
  return 63 - Math.clz32(Math.floor(x / TWO_32) >>> 0);
}

/**
 * An HDR (high dynamic range) histogram of non-negative integers, in the layout
 * of Gil Tene's HdrHistogram: values are grouped in buckets whose width doubles
 * with magnitude, each split into 2^k sub-buckets, so that any recorded value is
 * known to within 10^-significantDigits of itself (relative) at fixed memory.
 * Lowest discernible value is 1 (record nanoseconds).
 */
export class HdrHistogram {
  readonly highestTrackableValue: number;
  readonly significantDigits: number;
  readonly #subBucketHalfCountMagnitude: number;
  readonly #subBucketHalfCount: number;
  readonly #counts: Float64Array;
  #total = 0;
  #min = Number.POSITIVE_INFINITY;
  #max = 0;
  #sum = 0;
  #sumSquares = 0;
  #clamped = 0;

  constructor(options: HistogramOptions = {}) {
    const highest = options.highestTrackableValue ?? 2 ** 40;
    const digits = options.significantDigits ?? 3;
    if (!Number.isInteger(digits) || digits < 1 || digits > 5) {
      throw new BenchError(
        'OUT_OF_RANGE',
        `significantDigits must be an integer from 1 to 5 (got ${digits})`,
      );
    }
    if (!Number.isSafeInteger(highest) || highest < 2) {
      throw new BenchError(
        'OUT_OF_RANGE',
        `highestTrackableValue must be a safe integer >= 2 (got ${highest})`,
      );
    }
    this.highestTrackableValue = highest;
    this.significantDigits = digits;
    const largestSingleUnitResolution = 2 * 10 ** digits;
    const subBucketCountMagnitude = Math.ceil(Math.log2(largestSingleUnitResolution));
    this.#subBucketHalfCountMagnitude = subBucketCountMagnitude - 1;
    const subBucketCount = 2 ** subBucketCountMagnitude;
    this.#subBucketHalfCount = subBucketCount / 2;
    let smallestUntrackable = subBucketCount;
    let bucketCount = 1;
    while (smallestUntrackable <= highest) {
      smallestUntrackable *= 2;
      bucketCount++;
    }
    this.#counts = new Float64Array((bucketCount + 1) * this.#subBucketHalfCount);
  }

  get totalCount(): number {
    return this.#total;
  }
  /** Smallest recorded value (exact), or 0 when empty. */
  get min(): number {
    return this.#total === 0 ? 0 : this.#min;
  }
  /** Largest recorded value (exact, after clamping), or 0 when empty. */
  get max(): number {
    return this.#max;
  }
  get mean(): number {
    return this.#total === 0 ? 0 : this.#sum / this.#total;
  }
  get stdDev(): number {
    if (this.#total === 0) return 0;
    const m = this.mean;
    return Math.sqrt(Math.max(0, this.#sumSquares / this.#total - m * m));
  }
  /** Values above highestTrackableValue, recorded as highestTrackableValue. */
  get clamped(): number {
    return this.#clamped;
  }

  #countsIndex(value: number): number {
    const bucket =
      Math.max(log2floor(value), this.#subBucketHalfCountMagnitude) - this.#subBucketHalfCountMagnitude;
    const sub = Math.floor(value / 2 ** bucket);
    return ((bucket + 1) << this.#subBucketHalfCountMagnitude) + (sub - this.#subBucketHalfCount);
  }

  /** The lowest value that falls into the same counts slot as counts index `index`, and the slot's width. */
  #slot(index: number): { lowest: number; width: number } {
    let bucket = (index >> this.#subBucketHalfCountMagnitude) - 1;
    let sub = (index & (this.#subBucketHalfCount - 1)) + this.#subBucketHalfCount;
    if (bucket < 0) {
      sub -= this.#subBucketHalfCount;
      bucket = 0;
    }
    const width = 2 ** bucket;
    return { lowest: sub * width, width };
  }

  /** Records `value` (a non-negative integer; fractions are truncated) `count` times. */
  record(value: number, count = 1): void {
    if (!(value >= 0) || !Number.isFinite(value)) {
      throw new BenchError('OUT_OF_RANGE', `histogram values must be finite and >= 0 (got ${value})`);
    }
    let v = Math.floor(value);
    if (v > this.highestTrackableValue) {
      v = this.highestTrackableValue;
      this.#clamped += count;
    }
    const i = this.#countsIndex(v);
    this.#counts[i] = (this.#counts[i] ?? 0) + count;
    this.#total += count;
    this.#sum += v * count;
    this.#sumSquares += v * v * count;
    if (v < this.#min) this.#min = v;
    if (v > this.#max) this.#max = v;
  }

  /** Lowest value equivalent to `value` (same counts slot). */
  lowestEquivalentValue(value: number): number {
    return this.#slot(this.#countsIndex(Math.floor(value))).lowest;
  }

  /** Highest value equivalent to `value` (same counts slot). */
  highestEquivalentValue(value: number): number {
    const s = this.#slot(this.#countsIndex(Math.floor(value)));
    return s.lowest + s.width - 1;
  }

  /**
   * The value at `percentile` (0 to 100): the highest value equivalent to the
   * recorded value at that rank, capped at the exact maximum. 0 when empty.
   */
  valueAtPercentile(percentile: number): number {
    if (!(percentile >= 0 && percentile <= 100)) {
      throw new BenchError('OUT_OF_RANGE', `percentile must be from 0 to 100 (got ${percentile})`);
    }
    if (this.#total === 0) return 0;
    if (percentile === 0) return this.min;
    const rank = Math.max(1, Math.ceil((percentile / 100) * this.#total - 1e-9));
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i] ?? 0;
      if (seen >= rank) {
        const s = this.#slot(i);
        return Math.max(this.min, Math.min(this.#max, s.lowest + s.width - 1));
      }
    }
    return this.#max;
  }

  /** Adds every count of `other` (same layout required). */
  add(other: HdrHistogram): void {
    if (
      other.highestTrackableValue !== this.highestTrackableValue ||
      other.significantDigits !== this.significantDigits
    ) {
      throw new BenchError('INVALID_OPTION', 'histograms of different layouts cannot be added');
    }
    const snap = other.snapshot();
    this.#merge(snap);
  }

  #merge(snap: HistogramSnapshot): void {
    for (const [i, c] of snap.counts) {
      this.#counts[i] = (this.#counts[i] ?? 0) + c;
      this.#total += c;
    }
    this.#sum += snap.sum;
    this.#sumSquares += snap.sumSquares;
    if (snap.counts.length > 0) {
      if (snap.min < this.#min) this.#min = snap.min;
      if (snap.max > this.#max) this.#max = snap.max;
    }
    this.#clamped += snap.clamped;
  }

  reset(): void {
    this.#counts.fill(0);
    this.#total = 0;
    this.#min = Number.POSITIVE_INFINITY;
    this.#max = 0;
    this.#sum = 0;
    this.#sumSquares = 0;
    this.#clamped = 0;
  }

  snapshot(): HistogramSnapshot {
    const counts: [number, number][] = [];
    for (let i = 0; i < this.#counts.length; i++) {
      const c = this.#counts[i] ?? 0;
      if (c !== 0) counts.push([i, c]);
    }
    return {
      highestTrackableValue: this.highestTrackableValue,
      significantDigits: this.significantDigits,
      counts,
      min: this.min,
      max: this.#max,
      clamped: this.#clamped,
      sum: this.#sum,
      sumSquares: this.#sumSquares,
    };
  }

  /** Rebuilds a histogram from a snapshot (e.g. one posted by an endpoint); validates it. */
  static fromSnapshot(snap: HistogramSnapshot): HdrHistogram {
    const h = new HdrHistogram({
      highestTrackableValue: snap.highestTrackableValue,
      significantDigits: snap.significantDigits,
    });
    if (!Array.isArray(snap.counts)) throw new BenchError('PROTOCOL', 'histogram snapshot without counts');
    for (const pair of snap.counts) {
      const [i, c] = pair;
      if (!Number.isInteger(i) || i < 0 || i >= h.#counts.length || !Number.isInteger(c) || c <= 0) {
        throw new BenchError('PROTOCOL', `invalid histogram bucket ${JSON.stringify(pair)}`);
      }
    }
    for (const k of ['min', 'max', 'clamped', 'sum', 'sumSquares'] as const) {
      if (typeof snap[k] !== 'number' || !(snap[k] >= 0)) {
        throw new BenchError('PROTOCOL', `histogram snapshot field ${k} must be a number >= 0`);
      }
    }
    h.#merge(snap);
    return h;
  }
}
