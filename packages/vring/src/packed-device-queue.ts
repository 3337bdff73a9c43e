import { checkAddUsed, checkInOrder, checkServe, checkWritten } from './call-checks.js';
import {
  DESCRIPTOR_SIZE,
  MAX_CHAIN_BYTES,
  MAX_INDIRECT_ENTRIES,
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  RING_EVENT_FLAGS_ENABLE,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_USED,
  VIRTQ_DESC_F_WRITE,
} from './defs.js';
import { DescriptorChain } from './descriptor-chain.js';
import { VringError } from './errors.js';
import type { GuestMemory } from './guest-memory.js';
import {
  mapPacked,
  type PackedAddresses,
  type PackedQueueOptions,
  packedAddresses,
  packedNeedEvent,
} from './packed-common.js';
import { checkPackedSize } from './packed-layout.js';
import { frozenFeatures, QueueLifecycle } from './queue-lifecycle.js';
import type { QueueFeatures, QueueState } from './queue-state.js';
import { assertLittleEndian } from './ring-views.js';

/** @internal */
export function checkPosition(v: unknown, size: number, what: string): number {
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) >= size) {
    throw new VringError(
      'INVALID_ARGUMENT',
      `${what} must be a ring position below ${size} (got ${String(v)})`,
    );
  }
  return v as number;
}

/**
 * The device side of a packed virtqueue (2.8), with the same methods as
 * SplitDeviceQueue. Ownership of each descriptor is decided by its AVAIL/USED
 * bits against the device's wrap counters; chains are validated like split
 * ones (plus: a chain may not run into descriptors the device still holds, and
 * buffer ids must be below N and not already in flight).
 */
export class PackedDeviceQueue {
  readonly size: number;
  readonly memory: GuestMemory;
  readonly features: Readonly<Required<QueueFeatures>>;
  readonly addresses: Readonly<PackedAddresses>;
  #desc32!: Uint32Array;
  #desc16!: Uint16Array;
  #driverEvent!: Uint16Array;
  #deviceEvent!: Uint16Array;
  #nextAvail = 0;
  #availWrap = true;
  #nextUsed = 0;
  #usedWrap = true;
  #inflightDescs = 0;
  #inflight: Uint8Array;
  /** Writable bytes of each buffer in flight, by id (addUsed() checks against it). */
  #writable: Uint32Array;
  /** IN_ORDER: ids in flight in the order they were popped (a ring of size entries). */
  #order: Uint16Array;
  #orderStart = 0;
  #orderCount = 0;
  #chainDescs: Uint16Array;
  // used elements recorded, not yet published
  #pendingCount = 0;
  #pendingDescs = 0;
  #firstSlot = 0;
  #firstFlags = 0;
  #notify = true;
  /** The chain serve() refills. */
  #served: DescriptorChain | undefined;
  #eventWritten = -1;
  readonly #life: QueueLifecycle;
  /** memory.generation of the ring views (set by #life; matches none once broken). */
  #gen = -1;

  constructor(opts: PackedQueueOptions) {
    assertLittleEndian();
    checkPackedSize(opts.size);
    this.size = opts.size;
    this.memory = opts.memory;
    this.features = frozenFeatures(opts.features);
    this.addresses = Object.freeze(packedAddresses(opts.addresses));
    this.#inflight = new Uint8Array(opts.size);
    this.#writable = new Uint32Array(opts.size);
    this.#order = new Uint16Array(opts.size);
    this.#chainDescs = new Uint16Array(opts.size);
    this.#life = new QueueLifecycle(
      opts.memory,
      () => this.#map(),
      (gen) => {
        this.#gen = gen;
      },
    );
    this.#life.map();
    if (opts.state) this.setState(opts.state);
  }

  #map(): void {
    const v = mapPacked(this.memory, this.size, this.addresses);
    this.#desc32 = v.desc32;
    this.#desc16 = v.desc16;
    this.#driverEvent = v.driverEvent;
    this.#deviceEvent = v.deviceEvent;
  }

  #refresh(): void {
    if (this.#gen !== this.memory.generation) this.#life.resync();
    if (this.#desc32.length === 0 || this.#driverEvent.length === 0 || this.#deviceEvent.length === 0)
      this.#life.unmapped();
  }

  get broken(): VringError | null {
    return this.#life.broken;
  }

  // The head's flags as loaded (atomically) by the last #isAvail(): the walk uses this copy.
  #headFlags = 0;

  #isAvail(slot: number): boolean {
    const flags = Atomics.load(this.#desc16, 8 * slot + 7);
    this.#headFlags = flags;
    const w = this.#availWrap;
    return ((flags & VIRTQ_DESC_F_AVAIL) !== 0) === w && ((flags & VIRTQ_DESC_F_USED) !== 0) !== w;
  }

  hasAvailable(): boolean {
    this.#refresh();
    return this.#isAvail(this.#nextAvail);
  }

  #armEvent(): void {
    const offWrap = this.#nextAvail | (this.#availWrap ? 0x8000 : 0);
    Atomics.store(this.#deviceEvent, 0, offWrap);
    Atomics.store(this.#deviceEvent, 1, RING_EVENT_FLAGS_DESC);
    this.#eventWritten = offWrap;
  }

  /** The next available chain, validated, or null; `reuse` as in SplitDeviceQueue.pop(). */
  pop(reuse?: DescriptorChain): DescriptorChain | null {
    this.#refresh();
    return this.#next(reuse);
  }

  /** As SplitDeviceQueue.serve(): pop, visit, record used, up to `max` chains; then publishUsed(). */
  serve(max: number, visit: (chain: DescriptorChain) => number): number {
    checkServe(max, visit);
    this.#refresh();
    let n = 0;
    while (n < max) {
      // visit() may have remapped the memory
      if (this.#gen !== this.memory.generation) this.#refresh();
      const chain = this.#next(this.#served);
      if (chain === null) break;
      this.#served = chain;
      const written = visit(chain);
      checkWritten(written, chain.writableLength, 'buffer', chain.head);
      checkInOrder(chain.head, this.#oldest(), 'buffer id');
      this.#recordUsed(chain.head, written);
      n++;
    }
    return n;
  }

  #next(reuse: DescriptorChain | undefined): DescriptorChain | null {
    if (!this.#isAvail(this.#nextAvail)) {
      if (!this.features.eventIdx || !this.#notify) return null;
      const offWrap = this.#nextAvail | (this.#availWrap ? 0x8000 : 0);
      if (this.#eventWritten === offWrap) return null;
      this.#armEvent();
      if (!this.#isAvail(this.#nextAvail)) return null;
    }
    return this.#walk(reuse);
  }

  // Running totals of the chain being walked (#segment() adds to them).
  #wSawWritable = false;
  #wReadable = 0;
  #wWritable = 0;
  #wNReadable = 0;
  #wSegments = 0;

  /**
   * One buffer of the chain being walked: the ordering and length rules, the
   * bounds check, then the segment is recorded. `entry` is the indirect table
   * entry (-1 for a ring descriptor); it and `slot` only name the place in errors.
   */
  #segment(
    bytes: Uint8Array[],
    spans: number[],
    lo: number,
    hi: number,
    len: number,
    writable: boolean,
    slot: number,
    entry: number,
    start: number,
  ): void {
    if (writable) {
      this.#wSawWritable = true;
      this.#wWritable += len;
    } else {
      if (this.#wSawWritable) {
        this.#life.fail(
          'READABLE_AFTER_WRITABLE',
          `${where(slot, entry)} is device-readable but follows a writable one`,
        );
      }
      this.#wReadable += len;
      this.#wNReadable++;
    }
    if (this.#wReadable + this.#wWritable > MAX_CHAIN_BYTES) {
      this.#life.fail('CHAIN_TOO_LONG', `the chain at ring position ${start} is longer than 2^32 bytes`);
    }
    const memory = this.memory;
    const e = memory.resolve(lo, hi, len);
    if (e === undefined)
      this.#life.fail(
        'ADDRESS_OUT_OF_BOUNDS',
        `${where(slot, entry)} (${addrText(lo, hi)}+${len}) is outside guest memory`,
      );
    const k = this.#wSegments;
    bytes[k] = e.bytes;
    spans[2 * k] = memory.resolvedOffset;
    spans[2 * k + 1] = len;
    this.#wSegments = k + 1;
  }

  #walk(reuse: DescriptorChain | undefined): DescriptorChain {
    const n = this.size;
    const memory = this.memory;
    const d32 = this.#desc32;
    const room = n - this.#inflightDescs;
    let slot = this.#nextAvail;
    let count = 0;
    let id = 0;
    this.#wSawWritable = false;
    this.#wReadable = 0;
    this.#wWritable = 0;
    this.#wNReadable = 0;
    this.#wSegments = 0;
    const bytes: Uint8Array[] =
      reuse === undefined ? [] : DescriptorChain._bytes(DescriptorChain._empty(reuse));
    const spans: number[] = reuse === undefined ? [] : DescriptorChain._spans(reuse);
    const start = this.#nextAvail;
    let wrap = this.#availWrap;
    for (;;) {
      if (count >= room) {
        this.#life.fail(
          'AVAIL_INDEX_OVERRUN',
          `the chain at ring position ${start} runs past ${room} free descriptors into ones the device still holds`,
        );
      }
      count++;
      // Read the descriptor once (the head's flags were loaded atomically just before).
      const w = slot << 2;
      const lo = d32[w]!;
      const hi = d32[w + 1]!;
      const len = d32[w + 2]!;
      const idFlags = d32[w + 3]!;
      id = idFlags & 0xffff;
      // the head's flags come from the atomic load that proved ownership (read once)
      const flags = count === 1 ? this.#headFlags : idFlags >>> 16;
      // Every descriptor of the chain must be available, not only the head (2.8.1):
      // AVAIL equal to the wrap counter of its lap, USED not.
      if (
        count > 1 &&
        (((flags & VIRTQ_DESC_F_AVAIL) !== 0) !== wrap || ((flags & VIRTQ_DESC_F_USED) !== 0) === wrap)
      ) {
        this.#life.fail(
          'DESCRIPTOR_NOT_AVAILABLE',
          `the chain at ring position ${start} continues (NEXT) into ring position ${slot}, which the driver has not made available`,
        );
      }
      if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) {
        if (!this.features.indirect) {
          this.#life.fail(
            'INDIRECT_NOT_NEGOTIATED',
            `${where(slot, -1)} is indirect, but VIRTIO_F_INDIRECT_DESC was not negotiated`,
          );
        }
        if ((flags & VIRTQ_DESC_F_NEXT) !== 0 || count > 1) {
          this.#life.fail(
            'INDIRECT_WITH_NEXT',
            `${where(slot, -1)} is indirect inside a list linked by NEXT`,
          );
        }
        if (len === 0 || len % DESCRIPTOR_SIZE !== 0 || len / DESCRIPTOR_SIZE > MAX_INDIRECT_ENTRIES) {
          this.#life.fail(
            'INVALID_INDIRECT_TABLE',
            `indirect table at ${where(slot, -1)} has length ${len}, not a non-zero multiple of 16 of at most ${MAX_INDIRECT_ENTRIES} entries`,
          );
        }
        const e = memory.resolve(lo, hi, len);
        if (e === undefined) {
          this.#life.fail(
            'ADDRESS_OUT_OF_BOUNDS',
            `indirect table ${addrText(lo, hi)}+${len} at ${where(slot, -1)} is outside guest memory`,
          );
        }
        const off = e.bytes.byteOffset + memory.resolvedOffset;
        const table =
          off % 4 === 0
            ? new Uint32Array(e.bytes.buffer, off, len >>> 2)
            : new Uint32Array(e.bytes.slice(memory.resolvedOffset, memory.resolvedOffset + len).buffer);
        const entries = len / DESCRIPTOR_SIZE;
        for (let i = 0; i < entries; i++) {
          const t = i << 2;
          const tflags = table[t + 3]! >>> 16;
          if ((tflags & VIRTQ_DESC_F_INDIRECT) !== 0) {
            this.#life.fail(
              'NESTED_INDIRECT',
              `entry ${i} of the indirect table at ${where(slot, -1)} is itself indirect`,
            );
          }
          // Only WRITE is valid in an indirect table; NEXT and the id are ignored (2.8.14).
          this.#segment(
            bytes,
            spans,
            table[t]!,
            table[t + 1]!,
            table[t + 2]!,
            (tflags & VIRTQ_DESC_F_WRITE) !== 0,
            slot,
            i,
            start,
          );
        }
        break;
      }
      this.#segment(bytes, spans, lo, hi, len, (flags & VIRTQ_DESC_F_WRITE) !== 0, slot, -1, start);
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) break;
      if (slot + 1 === n) {
        slot = 0;
        wrap = !wrap;
      } else slot++;
    }
    if (id >= n)
      this.#life.fail(
        'INVALID_BUFFER_ID',
        `the chain at ring position ${start} has buffer id ${id}, not below ${n}`,
      );
    if (this.#inflight[id] !== 0) {
      this.#life.fail(
        'INVALID_BUFFER_ID',
        `buffer id ${id} (ring position ${start}) is already in use by the device`,
      );
    }
    // Validated: commit.
    this.#inflight[id] = 1;
    this.#writable[id] = this.#wWritable;
    if (this.features.inOrder) {
      this.#order[(this.#orderStart + this.#orderCount) % n] = id;
      this.#orderCount++;
    }
    this.#chainDescs[id] = count;
    this.#inflightDescs += count;
    const next = this.#nextAvail + count;
    if (next >= n) {
      this.#nextAvail = next - n;
      this.#availWrap = !this.#availWrap;
    } else {
      this.#nextAvail = next;
    }
    return DescriptorChain._make(
      reuse,
      id,
      count,
      this.#gen,
      bytes,
      spans,
      this.#wSegments,
      this.#wNReadable,
      this.#wReadable,
      this.#wWritable,
    );
  }

  /** Records a used element for buffer id `head` (visible at the next publishUsed()). */
  addUsed(head: number, writtenLen: number): void {
    this.#refresh();
    checkAddUsed(this.#inflight, this.#writable, head, writtenLen, 'buffer id', this.#oldest());
    this.#recordUsed(head, writtenLen);
  }

  /** IN_ORDER: the buffer id that must complete next; -1 without the feature. */
  #oldest(): number {
    return this.features.inOrder && this.#orderCount > 0 ? this.#order[this.#orderStart]! : -1;
  }

  #recordUsed(head: number, writtenLen: number): void {
    if (this.features.inOrder) {
      this.#orderStart = (this.#orderStart + 1) % this.size;
      this.#orderCount--;
    }
    let slot = this.#nextUsed + this.#pendingDescs;
    let wrap = this.#usedWrap;
    if (slot >= this.size) {
      slot -= this.size;
      wrap = !wrap;
    }
    const w = slot << 2;
    const d32 = this.#desc32;
    d32[w + 2] = writtenLen;
    const flags =
      (wrap ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0) | (writtenLen > 0 ? VIRTQ_DESC_F_WRITE : 0);
    if (this.#pendingCount === 0) {
      // The first element's flags are stored last, at publishUsed(): the batch appears at once.
      this.#desc16[8 * slot + 6] = head;
      this.#firstSlot = slot;
      this.#firstFlags = flags;
    } else {
      d32[w + 3] = head | (flags << 16);
    }
    this.#inflight[head] = 0;
    this.#pendingCount++;
    this.#pendingDescs += this.#chainDescs[head]!;
  }

  publishUsed(): boolean {
    this.#refresh();
    if (this.#pendingCount === 0) return false;
    Atomics.store(this.#desc16, 8 * this.#firstSlot + 7, this.#firstFlags);
    const k = this.#pendingDescs;
    this.#inflightDescs -= k;
    const next = this.#nextUsed + k;
    if (next >= this.size) {
      this.#nextUsed = next - this.size;
      this.#usedWrap = !this.#usedWrap;
    } else {
      this.#nextUsed = next;
    }
    this.#pendingCount = 0;
    this.#pendingDescs = 0;
    return packedNeedEvent(
      this.#driverEvent,
      this.features.eventIdx,
      this.size,
      this.#nextUsed,
      this.#usedWrap,
      k,
    );
  }

  enableNotifications(): boolean {
    this.#refresh();
    this.#notify = true;
    if (this.features.eventIdx) this.#armEvent();
    else Atomics.store(this.#deviceEvent, 1, RING_EVENT_FLAGS_ENABLE);
    return this.#isAvail(this.#nextAvail);
  }

  disableNotifications(): void {
    this.#refresh();
    this.#notify = false;
    Atomics.store(this.#deviceEvent, 1, RING_EVENT_FLAGS_DISABLE);
    this.#eventWritten = -1;
  }

  state(): QueueState {
    return {
      nextAvail: this.#nextAvail,
      availWrap: this.#availWrap,
      nextUsed: this.#nextUsed,
      usedWrap: this.#usedWrap,
    };
  }

  /**
   * Restores positions and wrap counters (SET_VRING_BASE / reconnect). The
   * descriptors between nextUsed and nextAvail count as held by the device, but
   * their buffer ids are unknown, so addUsed() accepts only ids popped afterwards.
   */
  setState(s: QueueState): void {
    const nextAvail = checkPosition(s.nextAvail, this.size, 'nextAvail');
    const nextUsed = checkPosition(s.nextUsed, this.size, 'nextUsed');
    const availWrap = s.availWrap !== false;
    const usedWrap = s.usedWrap !== false;
    // Descriptors between nextUsed and nextAvail are still held by the device.
    const held = availWrap === usedWrap ? nextAvail - nextUsed : nextAvail + this.size - nextUsed;
    if (held < 0 || held > this.size) {
      throw new VringError('INVALID_ARGUMENT', 'nextUsed/usedWrap are ahead of nextAvail/availWrap');
    }
    this.#nextAvail = nextAvail;
    this.#nextUsed = nextUsed;
    this.#availWrap = availWrap;
    this.#usedWrap = usedWrap;
    this.#inflightDescs = held;
    this.#inflight.fill(0);
    this.#orderStart = 0;
    this.#orderCount = 0;
    this.#pendingCount = 0;
    this.#pendingDescs = 0;
    this.#eventWritten = -1;
  }

  reset(): void {
    this.#life.reset();
    this.#notify = true;
    this.setState({ nextAvail: 0, nextUsed: 0, availWrap: true, usedWrap: true });
  }
}

function addrText(lo: number, hi: number): string {
  return `0x${((BigInt(hi) << 32n) | BigInt(lo)).toString(16)}`;
}

/** Names a descriptor in an error message (built only when a rule is broken). */
function where(slot: number, entry: number): string {
  return entry < 0
    ? `descriptor at ring position ${slot}`
    : `indirect entry ${entry} at descriptor at ring position ${slot}`;
}
