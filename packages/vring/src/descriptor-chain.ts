import { VringError } from './errors.js';

/**
 * One descriptor chain taken from a ring by the device side: its buffers as
 * zero-copy views into guest memory (device-readable ones first), plus
 * copy-in/copy-out helpers. The views stay valid across a memory remap (they
 * keep the buffers they were made from).
 */
export class DescriptorChain {
  /** The id to pass to addUsed (split: head index; packed: buffer id). */
  readonly head: number;
  /** Ring slots the chain occupies (packed: how far the used index moves; split: 1 + next hops). */
  readonly descriptorCount: number;
  /** GuestMemory generation the views were resolved in. */
  readonly generation: number;
  readonly readableLength: number;
  readonly writableLength: number;
  #bytes: Uint8Array[];
  #offsets: number[];
  #lengths: number[];
  #nReadable: number;
  #readable: Uint8Array[] | undefined;
  #writable: Uint8Array[] | undefined;

  /** @internal Built by the queues after validation. */
  constructor(
    head: number,
    descriptorCount: number,
    generation: number,
    bytes: Uint8Array[],
    offsets: number[],
    lengths: number[],
    nReadable: number,
    readableLength: number,
    writableLength: number,
  ) {
    this.head = head;
    this.descriptorCount = descriptorCount;
    this.generation = generation;
    this.#bytes = bytes;
    this.#offsets = offsets;
    this.#lengths = lengths;
    this.#nReadable = nReadable;
    this.readableLength = readableLength;
    this.writableLength = writableLength;
  }

  #view(i: number): Uint8Array {
    const o = this.#offsets[i]!;
    return this.#bytes[i]!.subarray(o, o + this.#lengths[i]!);
  }

  /** Device-readable buffers, in chain order. */
  get readable(): Uint8Array[] {
    if (this.#readable === undefined) {
      const out: Uint8Array[] = [];
      for (let i = 0; i < this.#nReadable; i++) out.push(this.#view(i));
      this.#readable = out;
    }
    return this.#readable;
  }

  /** Device-writable buffers, in chain order. */
  get writable(): Uint8Array[] {
    if (this.#writable === undefined) {
      const out: Uint8Array[] = [];
      for (let i = this.#nReadable; i < this.#bytes.length; i++) out.push(this.#view(i));
      this.#writable = out;
    }
    return this.#writable;
  }

  /**
   * Copies the readable bytes out: into `target` (as many as fit) or a new array.
   * Returns the filled part.
   */
  read(target?: Uint8Array): Uint8Array {
    const out = target ?? new Uint8Array(this.readableLength);
    const want = Math.min(out.length, this.readableLength);
    let pos = 0;
    for (let i = 0; i < this.#nReadable && pos < want; i++) {
      const o = this.#offsets[i]!;
      const n = Math.min(this.#lengths[i]!, want - pos);
      if (n === 0) continue;
      out.set(this.#bytes[i]!.subarray(o, o + n), pos);
      pos += n;
    }
    return out.subarray(0, pos);
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
    for (let i = this.#nReadable; i < this.#bytes.length && pos < src.length; i++) {
      const len = this.#lengths[i]!;
      if (skip >= len) {
        skip -= len;
        continue;
      }
      const n = Math.min(len - skip, src.length - pos);
      this.#bytes[i]!.set(
        pos === 0 && n === src.length ? src : src.subarray(pos, pos + n),
        this.#offsets[i]! + skip,
      );
      pos += n;
      skip = 0;
    }
    return pos;
  }
}
