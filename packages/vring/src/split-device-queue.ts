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
import { checkU16, mapSplit, splitAddresses } from './split-common.js';
import { checkSplitSize } from './split-layout.js';

export interface SplitQueueOptions {
  memory: GuestMemory;
  size: number;
  addresses: QueueAddresses;
  features?: QueueFeatures;
  state?: QueueState;
}

/** Options of a split device queue. */
export interface SplitDeviceOptions extends SplitQueueOptions {
  /**
   * With IN_ORDER (`features.inOrder`): write one used element for each run of
   * completions published together (2.7.9), naming the run's last chain, as
   * long as every chain before it was written to its whole writable capacity.
   * The driver then reads one element per run instead of one per chain. Off
   * by default: some drivers (DPDK's in-order receive path) read every
   * element's length. Ignored without IN_ORDER.
   */
  batchUsed?: boolean;
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
  /** batchUsed in effect (IN_ORDER and asked for). */
  readonly #batch: boolean;
  /** batchUsed: ring slot of the open run's element (-1: none open since publishUsed()). */
  #runAt = -1;
  /** batchUsed: whether the open run's last chain was written to its whole capacity. */
  #runFull = false;
  #notify = true;
  /** serve() is running (its visit may not call back in). */
  #serving = false;
  #availEventWritten = -1;
  /** The chain serve() refills. */
  #served: DescriptorChain | undefined;
  readonly #life: QueueLifecycle;
  /** memory.generation of the ring views (set by #life; matches none once broken). */
  #gen = -1;

  constructor(opts: SplitDeviceOptions) {
    assertLittleEndian();
    checkSplitSize(opts.size);
    this.size = opts.size;
    this.#mask = opts.size - 1;
    this.memory = opts.memory;
    this.features = frozenFeatures(opts.features);
    this.#batch = this.features.inOrder && opts.batchUsed === true;
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
    this.#notServing('pop');
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
   * (give it back with addUsed(chain.head, ...)). `visit` may not call this
   * queue's pop(), serve(), addUsed(), publishUsed(), setState() or reset()
   * (INVALID_ARGUMENT): serve() keeps its indexes in locals until it returns.
   */
  serve(max: number, visit: (chain: DescriptorChain) => number): number {
    checkServe(max, visit);
    this.#notServing('serve');
    this.#refresh();
    this.#serving = true;
    try {
      return this.#serve(max, visit);
    } finally {
      this.#serving = false;
    }
  }

  /**
   * `visit` may not call back into the queue while serve() runs: serve() keeps
   * its indexes in locals until it returns, so the queue's own state is behind.
   */
  #notServing(what: string): void {
    if (this.#serving) {
      throw new VringError('INVALID_ARGUMENT', `${what}() was called from inside serve()'s visit`);
    }
  }

  #serve(max: number, visit: (chain: DescriptorChain) => number): number {
    const room = Math.min(max, this.size - this.#pending);
    let n = 0;
    while (n < room) {
      // visit() may have remapped the memory
      if (this.#gen !== this.memory.generation) this.#refresh();
      n += this.#serveRun(room - n, visit);
      if (n === room) break;
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

  /**
   * serve()'s fast path, over locals: up to `limit` chains that are one direct
   * descriptor each and already published. It stops, before taking it, at
   * anything else (another kind of chain, or a check that fails: #next() then
   * takes or reports it), at a remap, and when the ring is empty. A chain is
   * recorded as the device's only if visit() throws (the state #next() would
   * have left): otherwise it is used before anything else can look.
   */
  #serveRun(limit: number, visit: (chain: DescriptorChain) => number): number {
    const reuse = this.#served;
    // (IN_ORDER with chains popped before: serve() must complete those first)
    if (reuse === undefined || this.#orderCount !== 0) return 0;
    let next = this.#nextAvail;
    if (this.#availShadow === next && this.#loadAvailIdx() === next) return 0;
    const k = Math.min(limit, (this.#availShadow - next) & 0xffff);
    const memory = this.memory;
    const gen = this.#gen;
    const avail = this.#avail;
    const desc = this.#desc;
    const used32 = this.#used32;
    const inflight = this.#inflight;
    const mask = this.#mask;
    const size = this.size;
    const batch = this.#batch;
    let usedAt = (this.#nextUsed + this.#pending) & mask;
    let pending = this.#pending;
    let runAt = this.#runAt;
    let runFull = this.#runFull;
    // the region the last buffer was in (memory.resolve() for any other)
    let rStart = 0;
    let rEnd = -1;
    let rBytes = NO_BYTES;
    let thrownHead = -1;
    let thrownCap = 0;
    // what _single() last filled `reuse` with in this run (_again() for more of the same)
    let lastBytes: Uint8Array | undefined;
    let lastWritable = false;
    let n = 0;
    try {
      for (; n < k; n++) {
        if (memory.generation !== gen) break;
        const head = avail[2 + (next & mask)]!;
        if (head >= size || inflight[head] !== 0) break;
        const w = head << 2;
        const fn = desc[w + 3]!;
        if ((fn & (VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_INDIRECT)) !== 0) break;
        const lo = desc[w]!;
        const hi = desc[w + 1]!;
        const len = desc[w + 2]!;
        // (inexact above 2^53, where no cached region reaches: resolve() decides)
        const addr = hi * TWO_32 + lo;
        let bytes: Uint8Array;
        let offset: number;
        if (addr >= rStart && len <= rEnd - addr && rBytes.length !== 0) {
          bytes = rBytes;
          offset = addr - rStart;
        } else {
          const e = memory.resolve(lo, hi, len);
          if (e === undefined) break;
          bytes = e.bytes;
          offset = memory.resolvedOffset;
          if (e.startNum >= 0) {
            rStart = e.startNum;
            rEnd = e.endNum;
            rBytes = e.bytes;
          }
        }
        const writable = (fn & VIRTQ_DESC_F_WRITE) !== 0;
        const cap = writable ? len : 0;
        if (bytes === lastBytes && writable === lastWritable) {
          DescriptorChain._again(reuse, head, offset, len, writable);
        } else {
          DescriptorChain._single(reuse, head, gen, bytes, offset, len, writable);
          lastBytes = bytes;
          lastWritable = writable;
        }
        next = (next + 1) & 0xffff;
        let written: number;
        try {
          written = visit(reuse);
          if (written !== 0) checkWritten(written, cap, 'chain', head);
        } catch (err) {
          // the chain stays taken (give it back with addUsed): recorded below
          thrownHead = head;
          thrownCap = cap;
          throw err;
        }
        if (batch && runAt >= 0 && runFull) {
          used32[1 + 2 * runAt] = head;
          used32[2 + 2 * runAt] = written;
        } else {
          used32[1 + 2 * usedAt] = head;
          used32[2 + 2 * usedAt] = written;
          if (batch) runAt = usedAt;
        }
        usedAt = (usedAt + 1) & mask;
        runFull = written === cap;
        pending++;
      }
    } finally {
      this.#nextAvail = next;
      if (this.features.inOrder) this.#orderStart = (this.#orderStart + n) & mask;
      this.#pending = pending;
      this.#runAt = runAt;
      this.#runFull = runFull;
      if (thrownHead >= 0) this.#taken(thrownHead, thrownCap);
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
    this.#taken(head, chain.writableLength);
    this.#nextAvail = (this.#nextAvail + 1) & 0xffff;
    return chain;
  }

  /** Validated chain `head` (`writable` bytes) is the device's now (until addUsed). */
  #taken(head: number, writable: number): void {
    this.#inflight[head] = 1;
    this.#writable[head] = writable;
    if (this.features.inOrder) {
      this.#order[(this.#orderStart + this.#orderCount) & this.#mask] = head;
      this.#orderCount++;
    }
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
    this.#notServing('addUsed');
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
    const used32 = this.#used32;
    if (this.#batch && this.#runAt >= 0 && this.#runFull) {
      // the open run grows: its element now names this chain (2.7.9)
      used32[1 + 2 * this.#runAt] = head;
      used32[2 + 2 * this.#runAt] = writtenLen;
    } else {
      const slot = (this.#nextUsed + this.#pending) & this.#mask;
      used32[1 + 2 * slot] = head;
      used32[2 + 2 * slot] = writtenLen;
      if (this.#batch) this.#runAt = slot;
    }
    this.#runFull = writtenLen === this.#writable[head];
    this.#pending++;
  }

  /**
   * Makes every recorded used element visible with one used.idx store. Returns
   * true when the driver must be notified (flags or EVENT_IDX).
   */
  publishUsed(): boolean {
    this.#notServing('publishUsed');
    this.#refresh();
    if (this.#pending === 0) return false;
    const old = this.#nextUsed;
    const idx = (old + this.#pending) & 0xffff;
    Atomics.store(this.#used16, 1, idx);
    this.#nextUsed = idx;
    this.#pending = 0;
    this.#runAt = -1;
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
    this.#notServing('setState');
    const nextAvail = checkU16(s.nextAvail, 'nextAvail');
    const nextUsed = checkU16(s.nextUsed, 'nextUsed');
    this.#nextAvail = nextAvail;
    this.#availShadow = nextAvail;
    this.#nextUsed = nextUsed;
    this.#pending = 0;
    this.#runAt = -1;
    this.#inflight.fill(0);
    this.#orderStart = 0;
    this.#orderCount = 0;
    this.#availEventWritten = -1;
  }

  /** Back to the initial state (indexes 0, not broken). Guest memory is not touched. */
  reset(): void {
    this.#notServing('reset');
    this.#life.reset();
    this.#notify = true;
    this.setState({ nextAvail: 0, nextUsed: 0 });
  }
}

const TWO_32 = 4294967296;
const NO_BYTES: Uint8Array = new Uint8Array(0);

function addrText(lo: number, hi: number): string {
  return `0x${((BigInt(hi) << 32n) | BigInt(lo)).toString(16)}`;
}
