import { VringError } from './errors.js';

/**
 * One descriptor chain taken from a ring by the device side: its buffers as
 * zero-copy views into guest memory (device-readable ones first), plus
 * copy-in/copy-out helpers. The views stay valid across a memory remap (they
 * keep the buffers they were made from).
 *
 * Two ways to reach the buffers without copying: `readable` / `writable`
 * (arrays of subarrays, made on first access) and the allocation-free segment
 * accessors (`segmentCount`, `readableCount`, `segmentBytes(i)`,
 * `segmentOffset(i)`, `segmentLength(i)`, `segmentWritable(i)`) for hot paths.
 * Both alias guest memory that the peer shares.
 */
export class DescriptorChain {
  #head: number;
  #descriptorCount: number;
  #generation: number;
  #readableLength: number;
  #writableLength: number;
  // Segment i < #segments is #bytes[i] from #spans[2i] for #spans[2i+1] bytes (readable
  // ones first). The arrays are reused by pop(reuse) and never shrunk (no reallocation per
  // pop); entries from #segments on are stale.
  #bytes: Uint8Array[];
  #spans: number[];
  #segments: number;
  #nReadable: number;
  #readable: Uint8Array[] | undefined;
  #writable: Uint8Array[] | undefined;

  /** @internal Built by the queues after validation. */
  constructor(
    head: number,
    descriptorCount: number,
    generation: number,
    bytes: Uint8Array[],
    spans: number[],
    segments: number,
    nReadable: number,
    readableLength: number,
    writableLength: number,
  ) {
    this.#head = head;
    this.#descriptorCount = descriptorCount;
    this.#generation = generation;
    this.#bytes = bytes;
    this.#spans = spans;
    this.#segments = segments;
    this.#nReadable = nReadable;
    this.#readableLength = readableLength;
    this.#writableLength = writableLength;
  }

  /**
   * @internal Empties `reuse` before a walk refills its arrays (a failed walk
   * leaves it an empty chain).
   */
  static _empty(reuse: DescriptorChain): DescriptorChain {
    reuse.#segments = 0;
    reuse.#nReadable = 0;
    reuse.#readableLength = 0;
    reuse.#writableLength = 0;
    reuse.#readable = undefined;
    reuse.#writable = undefined;
    return reuse;
  }

  /** @internal Re-initialises `reuse` (whose arrays the walk filled) or builds a new chain. */
  static _make(
    reuse: DescriptorChain | undefined,
    head: number,
    descriptorCount: number,
    generation: number,
    bytes: Uint8Array[],
    spans: number[],
    segments: number,
    nReadable: number,
    readableLength: number,
    writableLength: number,
  ): DescriptorChain {
    if (reuse === undefined) {
      return new DescriptorChain(
        head,
        descriptorCount,
        generation,
        bytes,
        spans,
        segments,
        nReadable,
        readableLength,
        writableLength,
      );
    }
    reuse.#head = head;
    reuse.#descriptorCount = descriptorCount;
    reuse.#generation = generation;
    reuse.#segments = segments;
    reuse.#nReadable = nReadable;
    reuse.#readableLength = readableLength;
    reuse.#writableLength = writableLength;
    return reuse;
  }

  /**
   * @internal Refills `reuse` as a chain of one buffer (the common case, without
   * the general walk): `len` bytes at `offset` in `bytes`, device-writable or not.
   */
  static _single(
    reuse: DescriptorChain,
    head: number,
    generation: number,
    bytes: Uint8Array,
    offset: number,
    len: number,
    writable: boolean,
  ): DescriptorChain {
    reuse.#head = head;
    // (stores skipped when the chain already holds the value: the hot path of
    // serve() refills one chain per message, mostly with the same region)
    if (reuse.#segments !== 1 || reuse.#bytes[0] !== bytes || reuse.#generation !== generation) {
      reuse.#descriptorCount = 1;
      reuse.#generation = generation;
      reuse.#bytes[0] = bytes;
      reuse.#segments = 1;
    }
    const spans = reuse.#spans;
    spans[0] = offset;
    spans[1] = len;
    reuse.#nReadable = writable ? 0 : 1;
    reuse.#readableLength = writable ? 0 : len;
    reuse.#writableLength = writable ? len : 0;
    if (reuse.#readable !== undefined || reuse.#writable !== undefined) {
      reuse.#readable = undefined;
      reuse.#writable = undefined;
    }
    return reuse;
  }

  /**
   * @internal _single() for the next chain of a serve() run, when _single()
   * filled `reuse` last (nothing else since) with the same `bytes` and
   * direction: stores only what differs from one chain to the next.
   */
  static _again(reuse: DescriptorChain, head: number, offset: number, len: number, writable: boolean): void {
    reuse.#head = head;
    const spans = reuse.#spans;
    spans[0] = offset;
    spans[1] = len;
    if (writable) reuse.#writableLength = len;
    else reuse.#readableLength = len;
    if (reuse.#readable !== undefined || reuse.#writable !== undefined) {
      reuse.#readable = undefined;
      reuse.#writable = undefined;
    }
  }

  /**
   * @internal The segment arrays of a chain, for the queues' walk that refills
   * it (users read segments through segmentBytes() and the other accessors).
   */
  static _bytes(c: DescriptorChain): Uint8Array[] {
    return c.#bytes;
  }
  /** @internal */
  static _spans(c: DescriptorChain): number[] {
    return c.#spans;
  }

  /** The id to pass to addUsed (split: head index; packed: buffer id). */
  get head(): number {
    return this.#head;
  }
  /** Ring slots the chain occupies (packed: how far the used index moves; split: 1 + next hops). */
  get descriptorCount(): number {
    return this.#descriptorCount;
  }
  /** GuestMemory generation the views were resolved in. */
  get generation(): number {
    return this.#generation;
  }
  get readableLength(): number {
    return this.#readableLength;
  }
  get writableLength(): number {
    return this.#writableLength;
  }

  // ------------------------------------------------------------------ segment views
  //
  // Allocation-free access to the chain's buffers ("segments"): for segment i,
  // the bytes of the whole guest-memory region it lies in, plus its offset and
  // length there. Nothing is allocated, unlike `readable` / `writable`, which
  // make one subarray per buffer.

  /** Buffers in the chain (after indirect tables are followed): device-readable ones first. */
  get segmentCount(): number {
    return this.#segments;
  }

  /** Device-readable buffers: segments `0 .. readableCount - 1`; the rest are device-writable. */
  get readableCount(): number {
    return this.#nReadable;
  }

  /**
   * The bytes of the whole guest-memory region that segment `i` lies in; the
   * segment is `segmentBytes(i)[segmentOffset(i) .. segmentOffset(i) + segmentLength(i)]`
   * (bounds checked by the queue when it took the chain).
   *
   * This aliases guest memory, the peer's memory too: writes to it go straight
   * to the peer, and the peer can change it at any moment, so read what you
   * validate once (copy it first when a check and a use must see the same
   * bytes). Touch only the segment's span, and only until the chain is handed
   * back (addUsed) or reused by `pop(reuse)`. After a memory remap the array
   * still refers to the old mapping; once that mapping is unmapped (its
   * ArrayBuffer detached) this throws MEMORY_UNMAPPED.
   */
  segmentBytes(i: number): Uint8Array {
    this.#check(i);
    return this.#bytesOf(i);
  }

  /** Byte offset of segment `i` in `segmentBytes(i)`. */
  segmentOffset(i: number): number {
    this.#check(i);
    return this.#spans[2 * i]!;
  }

  /** Length in bytes of segment `i` (the descriptor's len; may be 0). */
  segmentLength(i: number): number {
    this.#check(i);
    return this.#spans[2 * i + 1]!;
  }

  /** Whether segment `i` is device-writable (`i >= readableCount`). */
  segmentWritable(i: number): boolean {
    this.#check(i);
    return i >= this.#nReadable;
  }

  // (the errors are built in functions of their own: the accessors stay small
  // enough for V8 to inline them into a caller's hot loop)
  #check(i: number): void {
    // one compare for the valid case: rejects negatives, fractions, NaN and non-numbers
    if (!(i >>> 0 === i && i < this.#segments)) badSegment(i, this.#segments, this.#head);
  }

  #bytesOf(i: number): Uint8Array {
    const b = this.#bytes[i]!;
    // Regions are never empty: a zero-length view means its ArrayBuffer was detached (unmapped).
    if (b.length === 0) unmappedSegment(i, this.#head);
    return b;
  }

  #view(i: number): Uint8Array {
    const o = this.#spans[2 * i]!;
    return this.#bytesOf(i).subarray(o, o + this.#spans[2 * i + 1]!);
  }

  /** Device-readable buffers, in chain order (views made on first access). */
  get readable(): Uint8Array[] {
    if (this.#readable === undefined) {
      const out: Uint8Array[] = [];
      for (let i = 0; i < this.#nReadable; i++) out.push(this.#view(i));
      this.#readable = out;
    }
    return this.#readable;
  }

  /** Device-writable buffers, in chain order (views made on first access). */
  get writable(): Uint8Array[] {
    if (this.#writable === undefined) {
      const out: Uint8Array[] = [];
      for (let i = this.#nReadable; i < this.#segments; i++) out.push(this.#view(i));
      this.#writable = out;
    }
    return this.#writable;
  }

  /**
   * Copies the readable bytes out: into `target` (as many as fit) or a new array.
   * Returns the filled part (`target` itself when it was filled exactly).
   */
  read(target?: Uint8Array): Uint8Array {
    const out = target ?? new Uint8Array(this.#readableLength);
    const n = this.readInto(out);
    return n === out.length ? out : out.subarray(0, n);
  }

  /** Copies readable bytes into `target` from `offset` on; returns how many (no allocation for small copies). */
  readInto(target: Uint8Array, offset = 0): number {
    const want = Math.min(target.length - offset, this.#readableLength);
    let pos = 0;
    const spans = this.#spans;
    for (let i = 0; i < this.#nReadable && pos < want; i++) {
      const o = spans[2 * i]!;
      const n = Math.min(spans[2 * i + 1]!, want - pos);
      if (n > 0) copy(this.#bytesOf(i), o, target, offset + pos, n);
      pos += n;
    }
    return pos;
  }

  /**
   * Copies `src` into the writable buffers, starting `offset` bytes into them.
   * Returns the number of bytes written (less than src.length if they do not fit).
   */
  write(src: Uint8Array, offset = 0): number {
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new VringError(
        'INVALID_ARGUMENT',
        `offset must be a non-negative integer (got ${String(offset)})`,
      );
    }
    let skip = offset;
    let pos = 0;
    const spans = this.#spans;
    for (let i = this.#nReadable; i < this.#segments && pos < src.length; i++) {
      const len = spans[2 * i + 1]!;
      if (skip >= len) {
        skip -= len;
        continue;
      }
      const n = Math.min(len - skip, src.length - pos);
      copy(src, pos, this.#bytesOf(i), spans[2 * i]! + skip, n);
      pos += n;
      skip = 0;
    }
    return pos;
  }
}

function badSegment(i: number, segments: number, head: number): never {
  throw new VringError(
    'INVALID_ARGUMENT',
    `segment index ${String(i)} is not an integer from 0 to ${segments - 1} (chain ${head} has ${segments} segments)`,
  );
}

function unmappedSegment(i: number, head: number): never {
  throw new VringError(
    'MEMORY_UNMAPPED',
    `buffer ${i} of chain ${head} was unmapped while the chain was in use`,
  );
}

// Word views (of the whole buffer) and byte offsets of the last four views copied
// from/to, keyed on the view objects themselves: small copies run as u32 loops,
// which V8 compiles far better than byte loops or set() with a fresh subarray,
// and the cache hit avoids the `buffer` and `byteOffset` getters, which cost
// more than a 64-byte copy. Four entries: a driver and a device in one thread use
// four views (payload source, mapping; mapping region, sink). A view's buffer and
// offset never change; a detached buffer leaves a zero-length word view (nothing
// is copied, as before).
const CACHED = 4;
const cacheViews: (Uint8Array | undefined)[] = [undefined, undefined, undefined, undefined];
const cacheWords: Uint32Array[] = [
  new Uint32Array(0),
  new Uint32Array(0),
  new Uint32Array(0),
  new Uint32Array(0),
];
const cacheOffs: number[] = [0, 0, 0, 0];
let cacheNext = 0;
// Set by wordsOf(): the byte offset of the view in its buffer.
let foundOff = 0;

function wordsOf(view: Uint8Array): Uint32Array {
  for (let i = 0; i < CACHED; i++) {
    if (cacheViews[i] === view) {
      foundOff = cacheOffs[i]!;
      return cacheWords[i]!;
    }
  }
  const buf = view.buffer;
  const w = new Uint32Array(buf, 0, buf.byteLength >>> 2);
  const k = cacheNext;
  cacheNext = (k + 1) & (CACHED - 1);
  cacheViews[k] = view;
  cacheWords[k] = w;
  foundOff = cacheOffs[k] = view.byteOffset;
  return w;
}

/**
 * @internal Copies `n` bytes from `from[fromOff..]` to `to[toOff..]` (bounds are
 * the caller's job). Small aligned copies run as word loops, larger ones with
 * `TypedArray.set`.
 */
export function copy(from: Uint8Array, fromOff: number, to: Uint8Array, toOff: number, n: number): void {
  if (n <= 512) {
    const sw = wordsOf(from);
    const src = foundOff + fromOff;
    const dw = wordsOf(to);
    const dst = foundOff + toOff;
    if (((src | dst) & 3) === 0) {
      const s = src >>> 2;
      const d = dst >>> 2;
      const words = n >>> 2;
      for (let i = 0; i < words; i++) dw[d + i] = sw[s + i]!;
      for (let i = words << 2; i < n; i++) to[toOff + i] = from[fromOff + i]!;
      return;
    }
  }
  if (n <= 16) {
    for (let i = 0; i < n; i++) to[toOff + i] = from[fromOff + i]!;
  } else if (fromOff === 0 && n === from.length) {
    to.set(from, toOff);
  } else {
    to.set(from.subarray(fromOff, fromOff + n), toOff);
  }
}
