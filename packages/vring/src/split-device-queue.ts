import { checkAddUsed, checkInOrder, checkServe, checkWritten } from './call-checks.js';
import {
  DESCRIPTOR_SIZE,
  MAX_CHAIN_BYTES,
  MAX_INDIRECT_ENTRIES,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_USED_F_NO_NOTIFY,
} from './defs.js';
import { DescriptorChain } from './descriptor-chain.js';
import { VringError } from './errors.js';
import type { GuestMemory } from './guest-memory.js';
import { vringNeedEvent } from './notification.js';
import { frozenFeatures, QueueLifecycle } from './queue-lifecycle.js';
import type { QueueAddresses, QueueFeatures, QueueState } from './queue-state.js';
import { assertLittleEndian } from './ring-views.js';
import { mapSplit, splitAddresses } from './split-common.js';
import { checkSplitSize } from './split-layout.js';

export interface SplitQueueOptions {
  memory: GuestMemory;
  size: number;
  addresses: QueueAddresses;
  features?: QueueFeatures;
  state?: QueueState;
}

/** @internal Thrown inside a walk; converted to a broken queue by the caller. */
export function checkU16(v: unknown, what: string): number {
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 0xffff) {
    throw new VringError('INVALID_ARGUMENT', `${what} must be a u16 (got ${String(v)})`);
  }
  return v as number;
}

/**
 * The device side of a split virtqueue (2.7): what a vhost-user back-end runs.
 *
 * Everything the driver wrote is validated (see the checklist in the README);
 * a violation marks the queue broken (`broken`), throws a VringError with the
 * rule's code, and leaves the queue's indexes where they were. Each descriptor
 * is read exactly once into locals (no time-of-check/time-of-use gap).
 */
export class SplitDeviceQueue {
  readonly size: number;
  readonly memory: GuestMemory;
  readonly features: Readonly<Required<QueueFeatures>>;
  readonly addresses: Readonly<{ descTable: bigint; availRing: bigint; usedRing: bigint }>;
  #mask: number;
  #desc!: Uint32Array;
  #avail!: Uint16Array;
  #used16!: Uint16Array;
  #used32!: Uint32Array;
  #nextAvail = 0;
  #availShadow = 0;
  #nextUsed = 0;
  #pending = 0;
  #inflight: Uint8Array;
  /** Writable bytes of each chain in flight, by head (addUsed() checks against it). */
  #writable: Uint32Array;
  /** IN_ORDER: heads in flight in the order they were popped (a ring of size entries). */
  #order: Uint16Array;
  #orderStart = 0;
  #orderCount = 0;
  #notify = true;
  #availEventWritten = -1;
  /** The chain serve() refills. */
  #served: DescriptorChain | undefined;
  readonly #life: QueueLifecycle;
  /** memory.generation of the ring views (set by #life; matches none once broken). */
  #gen = -1;

  constructor(opts: SplitQueueOptions) {
    assertLittleEndian();
    checkSplitSize(opts.size);
    this.size = opts.size;
    this.#mask = opts.size - 1;
    this.memory = opts.memory;
    this.features = frozenFeatures(opts.features);
    this.addresses = Object.freeze(splitAddresses(opts.addresses));
    this.#inflight = new Uint8Array(opts.size);
    this.#writable = new Uint32Array(opts.size);
    this.#order = new Uint16Array(opts.size);
    this.#life = new QueueLifecycle(
      opts.memory,
      () => this.#mapRings(),
      (gen) => {
        this.#gen = gen;
      },
    );
    this.#life.map();
    if (opts.state) this.setState(opts.state);
  }

  #mapRings(): void {
    const v = mapSplit(this.memory, this.size, this.addresses);
    this.#desc = v.desc;
    this.#avail = v.avail;
    this.#used16 = v.used16;
    this.#used32 = v.used32;
  }

  #refresh(): void {
    if (this.#gen !== this.memory.generation) this.#life.resync();
    if (this.#desc.length === 0 || this.#avail.length === 0 || this.#used16.length === 0)
      this.#life.unmapped();
  }

  /** The first violation found, or null. A broken queue is never processed again (until reset()). */
  get broken(): VringError | null {
    return this.#life.broken;
  }

  /** Whether the driver has made chains available that pop() has not taken yet. */
  hasAvailable(): boolean {
    this.#refresh();
    if (this.#availShadow !== this.#nextAvail) return true;
    return this.#loadAvailIdx() !== this.#nextAvail;
  }

  #loadAvailIdx(): number {
    const idx = Atomics.load(this.#avail, 1);
    if (((idx - this.#nextAvail) & 0xffff) > this.size) {
      this.#life.fail(
        'AVAIL_INDEX_OVERRUN',
        `avail.idx ${idx} is ${(idx - this.#nextAvail) & 0xffff} ahead of the next avail index ${this.#nextAvail}, more than the queue size ${this.size}`,
      );
    }
    this.#availShadow = idx;
    return idx;
  }

  /**
   * The next available chain, validated, or null when there is none. Throws a
   * VringError (and the queue is broken) when the driver wrote something invalid.
   * Pass a chain you are done with as `reuse` to have it refilled instead of a
   * new one allocated (its earlier views stay valid; it is emptied first).
   */
  pop(reuse?: DescriptorChain): DescriptorChain | null {
    this.#refresh();
    return this.#next(reuse);
  }

  /**
   * Serves up to `max` available chains in one pass: pops each (validated like
   * pop()), calls `visit(chain)`, and records a used element with the number of
   * bytes `visit` returns it wrote to the chain's writable buffers (0 for a
   * chain it only read). The chain object is reused from one call to the next:
   * keep its views, never the object. Call publishUsed() afterwards. Returns
   * the number of chains served. If `visit` throws, its chain stays taken
   * (give it back with addUsed(chain.head, ...)).
   */
  serve(max: number, visit: (chain: DescriptorChain) => number): number {
    checkServe(max, visit);
    this.#refresh();
    const room = Math.min(max, this.size - this.#pending);
    let n = 0;
    while (n < room) {
      // visit() may have remapped the memory
      if (this.#gen !== this.memory.generation) this.#refresh();
      const chain = this.#next(this.#served);
      if (chain === null) break;
      this.#served = chain;
      const written = visit(chain);
      const head = chain.head;
      checkWritten(written, chain.writableLength, 'chain', head);
      checkInOrder(head, this.#oldest(), 'chain');
      this.#recordUsed(head, written);
      n++;
    }
    return n;
  }

  #next(reuse: DescriptorChain | undefined): DescriptorChain | null {
    if (this.#availShadow === this.#nextAvail) {
      if (this.#loadAvailIdx() === this.#nextAvail) {
        // Empty. With EVENT_IDX, ask for a kick at the next chain, then look again
        // (the driver may have published between our load and our store).
        if (!this.features.eventIdx || !this.#notify || this.#availEventWritten === this.#nextAvail)
          return null;
        Atomics.store(this.#used16, 2 + 4 * this.size, this.#nextAvail);
        this.#availEventWritten = this.#nextAvail;
        if (this.#loadAvailIdx() === this.#nextAvail) return null;
      }
    }
    const slot = this.#nextAvail & this.#mask;
    const head = this.#avail[2 + slot]!;
    if (head >= this.size) {
      this.#life.fail(
        'INVALID_DESCRIPTOR_INDEX',
        `avail.ring[${slot}] holds head ${head}, not below the queue size ${this.size}`,
      );
    }
    if (this.#inflight[head] !== 0) {
      this.#life.fail(
        'INVALID_DESCRIPTOR_INDEX',
        `head ${head} was made available again while still in use by the device`,
      );
    }
    const chain = this.#walk(head, reuse);
    this.#inflight[head] = 1;
    this.#writable[head] = chain.writableLength;
    if (this.features.inOrder) {
      this.#order[(this.#orderStart + this.#orderCount) & this.#mask] = head;
      this.#orderCount++;
    }
    this.#nextAvail = (this.#nextAvail + 1) & 0xffff;
    return chain;
  }

  #walk(head: number, reuse: DescriptorChain | undefined): DescriptorChain {
    const memory = this.memory;
    let table = this.#desc;
    let tableSize = this.size;
    let idx = head;
    let hops = 0;
    let maxHops = this.size;
    let inIndirect = false;
    let sawWritable = false;
    let readableLength = 0;
    let writableLength = 0;
    let nReadable = 0;
    let count = 0;
    let segments = 0;
    const bytes: Uint8Array[] =
      reuse === undefined ? [] : DescriptorChain._bytes(DescriptorChain._empty(reuse));
    const spans: number[] = reuse === undefined ? [] : DescriptorChain._spans(reuse);
    for (;;) {
      if (++hops > maxHops) {
        this.#life.fail(
          'DESCRIPTOR_LOOP',
          `chain at head ${head} has more than ${maxHops} descriptors${inIndirect ? ' in its indirect table' : ''}: a loop`,
        );
      }
      count++;
      // Read the descriptor once; only the copies below are used.
      const w = idx << 2;
      const lo = table[w]!;
      const hi = table[w + 1]!;
      const len = table[w + 2]!;
      const fn = table[w + 3]!;
      const flags = fn & 0xffff;
      const next = fn >>> 16;
      if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) {
        if (!this.features.indirect) {
          this.#life.fail(
            'INDIRECT_NOT_NEGOTIATED',
            `descriptor ${idx} of chain ${head} is indirect, but VIRTIO_F_INDIRECT_DESC was not negotiated`,
          );
        }
        if (inIndirect)
          this.#life.fail(
            'NESTED_INDIRECT',
            `indirect table of chain ${head} holds another indirect descriptor (${idx})`,
          );
        if ((flags & VIRTQ_DESC_F_NEXT) !== 0) {
          this.#life.fail(
            'INDIRECT_WITH_NEXT',
            `descriptor ${idx} of chain ${head} has both INDIRECT and NEXT`,
          );
        }
        if (len === 0 || len % DESCRIPTOR_SIZE !== 0) {
          this.#life.fail(
            'INVALID_INDIRECT_TABLE',
            `indirect table of chain ${head} has length ${len}, not a non-zero multiple of 16`,
          );
        }
        if (len / DESCRIPTOR_SIZE > MAX_INDIRECT_ENTRIES) {
          this.#life.fail(
            'INVALID_INDIRECT_TABLE',
            `indirect table of chain ${head} has ${len / DESCRIPTOR_SIZE} entries, more than ${MAX_INDIRECT_ENTRIES}`,
          );
        }
        const e = memory.resolve(lo, hi, len);
        if (e === undefined) {
          this.#life.fail(
            'ADDRESS_OUT_OF_BOUNDS',
            `indirect table ${addrText(lo, hi)}+${len} of chain ${head} is outside guest memory`,
          );
        }
        const off = e.bytes.byteOffset + memory.resolvedOffset;
        table =
          off % 4 === 0
            ? new Uint32Array(e.bytes.buffer, off, len >>> 2)
            : // Unaligned table: take a private copy (read once, like every descriptor).
              new Uint32Array(e.bytes.slice(memory.resolvedOffset, memory.resolvedOffset + len).buffer);
        tableSize = len / DESCRIPTOR_SIZE;
        maxHops = tableSize;
        hops = 0;
        idx = 0;
        inIndirect = true;
        continue;
      }
      if ((flags & VIRTQ_DESC_F_WRITE) !== 0) {
        sawWritable = true;
        writableLength += len;
      } else {
        if (sawWritable) {
          this.#life.fail(
            'READABLE_AFTER_WRITABLE',
            `descriptor ${idx} of chain ${head} is device-readable but follows a writable one`,
          );
        }
        readableLength += len;
        nReadable++;
      }
      if (readableLength + writableLength > MAX_CHAIN_BYTES) {
        this.#life.fail('CHAIN_TOO_LONG', `chain at head ${head} is longer than 2^32 bytes`);
      }
      const e = memory.resolve(lo, hi, len);
      if (e === undefined) {
        this.#life.fail(
          'ADDRESS_OUT_OF_BOUNDS',
          `descriptor ${idx} of chain ${head} (${addrText(lo, hi)}+${len}) is outside guest memory`,
        );
      }
      bytes[segments] = e.bytes;
      spans[2 * segments] = memory.resolvedOffset;
      spans[2 * segments + 1] = len;
      segments++;
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) break;
      if (next >= tableSize) {
        this.#life.fail(
          'INVALID_DESCRIPTOR_INDEX',
          `descriptor ${idx} of chain ${head} points to ${next}, beyond the ${inIndirect ? 'indirect table' : 'descriptor table'} of ${tableSize}`,
        );
      }
      idx = next;
    }
    return DescriptorChain._make(
      reuse,

      head,
      count,
      this.#gen,
      bytes,
      spans,
      segments,
      nReadable,
      readableLength,
      writableLength,
    );
  }

  /** Records a used element (visible to the driver at the next publishUsed()). */
  addUsed(head: number, writtenLen: number): void {
    this.#refresh();
    checkAddUsed(this.#inflight, this.#writable, head, writtenLen, 'chain', this.#oldest());
    if (this.#pending >= this.size) {
      throw new VringError(
        'INVALID_ARGUMENT',
        `more than ${this.size} used elements recorded without publishUsed()`,
      );
    }
    this.#recordUsed(head, writtenLen);
  }

  /** IN_ORDER: the head that must complete next; -1 without the feature. */
  #oldest(): number {
    return this.features.inOrder && this.#orderCount > 0 ? this.#order[this.#orderStart]! : -1;
  }

  #recordUsed(head: number, writtenLen: number): void {
    this.#inflight[head] = 0;
    if (this.features.inOrder) {
      this.#orderStart = (this.#orderStart + 1) & this.#mask;
      this.#orderCount--;
    }
    const slot = (this.#nextUsed + this.#pending) & this.#mask;
    const used32 = this.#used32;
    used32[1 + 2 * slot] = head;
    used32[2 + 2 * slot] = writtenLen;
    this.#pending++;
  }

  /**
   * Makes every recorded used element visible with one used.idx store. Returns
   * true when the driver must be notified (flags or EVENT_IDX).
   */
  publishUsed(): boolean {
    this.#refresh();
    if (this.#pending === 0) return false;
    const old = this.#nextUsed;
    const idx = (old + this.#pending) & 0xffff;
    Atomics.store(this.#used16, 1, idx);
    this.#nextUsed = idx;
    this.#pending = 0;
    if (this.features.eventIdx) return vringNeedEvent(Atomics.load(this.#avail, 2 + this.size), idx, old);
    return (Atomics.load(this.#avail, 0) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  }

  /**
   * Asks the driver for kicks again, then re-checks the ring: returns true when
   * chains are already available (process them instead of sleeping).
   */
  enableNotifications(): boolean {
    this.#refresh();
    this.#notify = true;
    if (this.features.eventIdx) {
      Atomics.store(this.#used16, 2 + 4 * this.size, this.#nextAvail);
      this.#availEventWritten = this.#nextAvail;
    } else {
      Atomics.store(this.#used16, 0, 0);
    }
    return this.hasAvailable();
  }

  /** Asks the driver not to kick (a hint; with EVENT_IDX at most one more kick comes). */
  disableNotifications(): void {
    this.#refresh();
    this.#notify = false;
    if (!this.features.eventIdx) Atomics.store(this.#used16, 0, VIRTQ_USED_F_NO_NOTIFY);
  }

  state(): QueueState {
    return { nextAvail: this.#nextAvail, nextUsed: this.#nextUsed };
  }

  /** Restores indexes (SET_VRING_BASE / reconnect). Pending used elements and in-flight tracking are dropped. */
  setState(s: QueueState): void {
    const nextAvail = checkU16(s.nextAvail, 'nextAvail');
    const nextUsed = checkU16(s.nextUsed, 'nextUsed');
    this.#nextAvail = nextAvail;
    this.#availShadow = nextAvail;
    this.#nextUsed = nextUsed;
    this.#pending = 0;
    this.#inflight.fill(0);
    this.#orderStart = 0;
    this.#orderCount = 0;
    this.#availEventWritten = -1;
  }

  /** Back to the initial state (indexes 0, not broken). Guest memory is not touched. */
  reset(): void {
    this.#life.reset();
    this.#notify = true;
    this.setState({ nextAvail: 0, nextUsed: 0 });
  }
}

function addrText(lo: number, hi: number): string {
  return `0x${((BigInt(hi) << 32n) | BigInt(lo)).toString(16)}`;
}
