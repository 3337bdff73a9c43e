import { checkChainLength, checkUsedBatch } from './call-checks.js';
import {
  DESCRIPTOR_SIZE,
  MAX_CHAIN_BYTES,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
} from './defs.js';
import { VringError } from './errors.js';
import type { GuestMemory } from './guest-memory.js';
import { frozenFeatures, QueueLifecycle } from './queue-lifecycle.js';
import type { QueueState } from './queue-state.js';
import { assertLittleEndian, toBigAddress, u32View } from './ring-views.js';
import {
  driverRestoreIndex,
  mapSplit,
  type SplitViews,
  splitAddresses,
  splitCallbacksOff,
  splitCallbacksOn,
  splitPublish,
  zeroSplitRings,
} from './split-common.js';
import type { SplitQueueOptions } from './split-device-queue.js';
import { checkSplitSize } from './split-layout.js';

/** One buffer of a chain the driver adds, by guest address. */
export interface DriverBuffer {
  addr: bigint | number;
  len: number;
  /** Device-writable (default false: device-readable). Writable buffers come after readable ones. */
  writable?: boolean;
}

/** A used element returned by popUsed(). */
export interface UsedBuffer {
  head: number;
  /** Bytes the device says it wrote (checked against the chain's writable capacity). */
  len: number;
  token: unknown;
}

export interface AddOptions {
  /**
   * Put the buffers in an indirect table at this guest address (16 bytes per
   * buffer, memory the caller owns until the chain is used). Needs `indirect`.
   */
  indirectTable?: bigint | number;
}

const TWO_32 = 4294967296;

/**
 * @internal Validated buffer list as lo/hi words, in typed arrays reused from
 * one add() to the next (no allocation on the hot path).
 */
export class CheckedBuffers {
  lo = new Uint32Array(8);
  hi = new Uint32Array(8);
  len = new Uint32Array(8);
  writable = new Uint8Array(8);
  count = 0;
  writableBytes = 0;

  /** Caller-side checks shared by both driver queues (no queue state changes). */
  fill(memory: GuestMemory, buffers: readonly DriverBuffer[]): this {
    if (!Array.isArray(buffers) || buffers.length === 0) {
      throw new VringError('INVALID_ARGUMENT', 'a chain needs at least one buffer');
    }
    const k = buffers.length;
    if (k > this.lo.length) {
      const cap = Math.max(k, 2 * this.lo.length);
      this.lo = new Uint32Array(cap);
      this.hi = new Uint32Array(cap);
      this.len = new Uint32Array(cap);
      this.writable = new Uint8Array(cap);
    }
    let total = 0;
    let sawWritable = false;
    let writableBytes = 0;
    for (let i = 0; i < k; i++) {
      const b = buffers[i]!;
      const len = b.len;
      if (!Number.isInteger(len) || len < 0 || len > 0xffffffff) {
        throw new VringError('INVALID_ARGUMENT', `buffer ${i}: len must be a u32 (got ${String(len)})`);
      }
      const addr = b.addr;
      let lo: number;
      let hi: number;
      if (typeof addr === 'number' && addr >= 0 && addr <= 0xffffffff && Number.isInteger(addr)) {
        // below 2^32 (the common case): no floating-point modulo (a C call in V8)
        lo = addr;
        hi = 0;
      } else if (
        typeof addr === 'number' &&
        addr >= 0 &&
        addr <= Number.MAX_SAFE_INTEGER &&
        Number.isInteger(addr)
      ) {
        lo = addr % TWO_32;
        hi = (addr - lo) / TWO_32;
      } else {
        const a = toBigAddress(addr, `buffer ${i} addr`);
        lo = Number(a & 0xffffffffn);
        hi = Number(a >> 32n);
      }
      if (memory.resolve(lo, hi, len) === undefined) {
        throw new VringError(
          'ADDRESS_OUT_OF_BOUNDS',
          `buffer ${i} (${String(addr)}+${len}) is not inside one region of guest memory`,
        );
      }
      const w = b.writable === true;
      if (w) {
        sawWritable = true;
        writableBytes += len;
      } else if (sawWritable) {
        throw new VringError('INVALID_ARGUMENT', `buffer ${i} is device-readable but follows a writable one`);
      }
      total += len;
      if (total > MAX_CHAIN_BYTES)
        throw new VringError('INVALID_ARGUMENT', 'a chain may not exceed 2^32 bytes');
      this.lo[i] = lo;
      this.hi[i] = hi;
      this.len[i] = len;
      this.writable[i] = w ? 1 : 0;
    }
    this.count = k;
    this.writableBytes = writableBytes;
    return this;
  }
}

/**
 * @internal CheckedBuffers for the one-buffer chain of addBuffer(): the same
 * caller-side checks, the address as lo/hi words.
 */
export class CheckedBuffer {
  lo = 0;
  hi = 0;

  fill(memory: GuestMemory, addr: number, len: number, writable: boolean): this {
    if (len >>> 0 !== len) {
      throw new VringError('INVALID_ARGUMENT', `buffer 0: len must be a u32 (got ${String(len)})`);
    }
    if (typeof writable !== 'boolean') {
      throw new VringError('INVALID_ARGUMENT', `writable must be a boolean (got ${String(writable)})`);
    }
    if (addr >>> 0 === addr) {
      this.lo = addr;
      this.hi = 0;
    } else if (Number.isSafeInteger(addr) && addr >= 0) {
      this.lo = addr % TWO_32;
      this.hi = (addr - this.lo) / TWO_32;
    } else {
      throw new VringError(
        'INVALID_ARGUMENT',
        `buffer 0 addr must be a non-negative safe integer (got ${String(addr)}); use add() for bigint addresses`,
      );
    }
    if (memory.resolve(this.lo, this.hi, len) === undefined) {
      throw new VringError(
        'ADDRESS_OUT_OF_BOUNDS',
        `buffer 0 (${addr}+${len}) is not inside one region of guest memory`,
      );
    }
    return this;
  }
}

/**
 * The driver side of a split virtqueue (2.7): what a vhost-user front-end or
 * virtio-user runs. The driver owns the ring memory: a fresh queue assumes it
 * zeroed; reset() zeroes it.
 *
 * The free list lives in local memory, so a hostile device cannot corrupt it;
 * every used element is validated (id in flight, length within the chain's
 * writable capacity, used.idx not running ahead).
 */
export class SplitDriverQueue {
  readonly size: number;
  readonly memory: GuestMemory;
  readonly features: Readonly<{ eventIdx: boolean; indirect: boolean; inOrder: boolean }>;
  readonly addresses: Readonly<{ descTable: bigint; availRing: bigint; usedRing: bigint }>;
  #mask: number;
  #desc!: Uint32Array;
  #avail!: Uint16Array;
  #used16!: Uint16Array;
  #used32!: Uint32Array;
  /** The four views above, for the calls that share code with the other split driver. */
  #views!: SplitViews;
  // local bookkeeping
  #freeNext: Uint16Array;
  #freeHead = 0;
  #freeTail = 0;
  #numFree: number;
  #chainLen: Uint16Array;
  #chainTail: Uint16Array;
  #chainCap: Float64Array;
  #inflight: Uint8Array;
  #tokens: unknown[];
  #fifo: Uint16Array;
  #fifoStart = 0;
  #fifoCount = 0;
  /** IN_ORDER: chains of the batch being handed out, already counted in #lastUsed. */
  #batchLeft = 0;
  /** IN_ORDER: the used length of that batch's last chain. */
  #batchLen = 0;
  #inflightCount = 0;
  #availNext = 0;
  #availPublished = 0;
  #lastUsed = 0;
  #usedShadow = 0;
  #callbacks = true;
  #usedEventWritten = -1;
  readonly #life: QueueLifecycle;
  /** memory.generation of the ring views (set by #life; matches none once broken). */
  #gen = -1;
  #scratch = new CheckedBuffers();
  #one = new CheckedBuffer();
  #usedLen = 0;
  #usedToken: unknown = undefined;

  constructor(opts: SplitQueueOptions) {
    assertLittleEndian();
    checkSplitSize(opts.size);
    const n = opts.size;
    this.size = n;
    this.#mask = n - 1;
    this.memory = opts.memory;
    this.features = frozenFeatures(opts.features);
    this.addresses = Object.freeze(splitAddresses(opts.addresses));
    this.#freeNext = new Uint16Array(n);
    this.#chainLen = new Uint16Array(n);
    this.#chainTail = new Uint16Array(n);
    this.#chainCap = new Float64Array(n);
    this.#inflight = new Uint8Array(n);
    this.#tokens = new Array<unknown>(n).fill(undefined);
    this.#fifo = new Uint16Array(n);
    this.#numFree = n;
    this.#initFreeList();
    this.#life = new QueueLifecycle(
      opts.memory,
      () => this.#mapRings(),
      (gen) => {
        this.#gen = gen;
      },
    );
    this.#life.map();
    if (opts.state) this.#restore(opts.state);
  }

  #initFreeList(): void {
    const n = this.size;
    for (let i = 0; i < n; i++) this.#freeNext[i] = (i + 1) & this.#mask;
    this.#freeHead = 0;
    this.#freeTail = n - 1;
    this.#numFree = n;
    this.#chainLen.fill(0);
    this.#inflight.fill(0);
    this.#tokens.fill(undefined);
    this.#fifoStart = 0;
    this.#fifoCount = 0;
    this.#batchLeft = 0;
    this.#inflightCount = 0;
  }

  #mapRings(): void {
    const v = mapSplit(this.memory, this.size, this.addresses);
    this.#views = v;
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

  get broken(): VringError | null {
    return this.#life.broken;
  }

  /** Free descriptors (a direct chain of k buffers needs k; an indirect one needs 1). */
  freeCount(): number {
    return this.#numFree;
  }

  /** Chains added and not yet returned by popUsed(). */
  inFlight(): number {
    return this.#inflightCount;
  }

  /**
   * Adds one chain; returns its head id, or -1 if there are not enough free
   * descriptors. Not visible to the device until publish().
   */
  add(buffers: readonly DriverBuffer[], token?: unknown, options?: AddOptions): number {
    this.#refresh();
    const c = this.#scratch.fill(this.memory, buffers);
    checkChainLength(c.count, this.size);
    const k = c.count;
    if (options?.indirectTable !== undefined) {
      if (!this.features.indirect) {
        throw new VringError(
          'INVALID_ARGUMENT',
          'indirect tables need the indirect feature (VIRTIO_F_INDIRECT_DESC)',
        );
      }
      if (this.#numFree < 1) return -1;
      const tableAddr = toBigAddress(options.indirectTable, 'indirectTable');
      const bytes = this.memory.slice(tableAddr, k * DESCRIPTOR_SIZE);
      if (bytes.byteOffset % 4 !== 0) {
        throw new VringError('MISALIGNED_RING', 'the indirect table must be 4-byte aligned in its buffer');
      }
      const t = u32View(bytes);
      for (let i = 0; i < k; i++) {
        const w = i << 2;
        t[w] = c.lo[i]!;
        t[w + 1] = c.hi[i]!;
        t[w + 2] = c.len[i]!;
        t[w + 3] =
          (c.writable[i] ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < k ? VIRTQ_DESC_F_NEXT | ((i + 1) << 16) : 0);
      }
      const head = this.#take(1);
      const w = head << 2;
      const d = this.#desc;
      d[w] = Number(tableAddr & 0xffffffffn);
      d[w + 1] = Number(tableAddr >> 32n);
      d[w + 2] = k * DESCRIPTOR_SIZE;
      d[w + 3] = VIRTQ_DESC_F_INDIRECT;
      this.#chainTail[head] = head;
      return this.#queue(head, 1, c.writableBytes, token);
    }
    if (k > this.#numFree) return -1;
    const head = this.#freeHead;
    const d = this.#desc;
    let idx = head;
    for (let i = 0; i < k; i++) {
      const next = this.#freeNext[idx]!;
      const w = idx << 2;
      d[w] = c.lo[i]!;
      d[w + 1] = c.hi[i]!;
      d[w + 2] = c.len[i]!;
      d[w + 3] =
        (c.writable[i] ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < k ? VIRTQ_DESC_F_NEXT | (next << 16) : 0);
      if (i + 1 < k) idx = next;
    }
    this.#freeHead = this.#freeNext[idx]!;
    this.#numFree -= k;
    this.#chainTail[head] = idx;
    return this.#queue(head, k, c.writableBytes, token);
  }

  /**
   * add() for the common chain of one buffer, without the buffer array: the
   * buffer at guest address `addr` (a safe integer) of `len` bytes,
   * device-readable unless `writable`. Same checks and result as add().
   */
  addBuffer(addr: number, len: number, token?: unknown, writable = false): number {
    this.#refresh();
    const b = this.#one.fill(this.memory, addr, len, writable);
    if (this.#numFree === 0) return -1;
    const head = this.#freeHead;
    const w = head << 2;
    const d = this.#desc;
    d[w] = b.lo;
    d[w + 1] = b.hi;
    d[w + 2] = len;
    d[w + 3] = writable ? VIRTQ_DESC_F_WRITE : 0;
    this.#freeHead = this.#freeNext[head]!;
    this.#numFree--;
    this.#chainTail[head] = head;
    return this.#queue(head, 1, writable ? len : 0, token);
  }

  #take(k: number): number {
    const head = this.#freeHead;
    let idx = head;
    for (let i = 1; i < k; i++) idx = this.#freeNext[idx]!;
    this.#freeHead = this.#freeNext[idx]!;
    this.#numFree -= k;
    return head;
  }

  #queue(head: number, k: number, cap: number, token: unknown): number {
    this.#chainLen[head] = k;
    this.#chainCap[head] = cap;
    this.#inflight[head] = 1;
    this.#tokens[head] = token;
    if (this.features.inOrder) {
      this.#fifo[(this.#fifoStart + this.#fifoCount) & this.#mask] = head;
      this.#fifoCount++;
    }
    this.#inflightCount++;
    this.#avail[2 + (this.#availNext & this.#mask)] = head;
    this.#availNext = (this.#availNext + 1) & 0xffff;
    return head;
  }

  /** Publishes the added chains with one avail.idx store. Returns true when the device must be kicked. */
  publish(): boolean {
    this.#refresh();
    const idx = this.#availNext;
    const old = this.#availPublished;
    if (idx === old) return false;
    this.#availPublished = idx;
    return splitPublish(this.#views, this.size, this.features.eventIdx, idx, old);
  }

  #loadUsedIdx(): number {
    const idx = Atomics.load(this.#used16, 1);
    const ahead = (idx - this.#lastUsed) & 0xffff;
    // (chains of an IN_ORDER batch not yet handed out are in flight, but counted in #lastUsed)
    if (ahead > this.#inflightCount - this.#batchLeft) {
      this.#life.fail(
        'USED_INDEX_OVERRUN',
        `used.idx ${idx} is ${ahead} ahead of the last used index ${this.#lastUsed}, but only ${this.#inflightCount - this.#batchLeft} chains in flight are not yet accounted for`,
      );
    }
    this.#usedShadow = idx;
    return idx;
  }

  /** Whether the device has returned chains popUsed() has not taken yet. */
  hasUsed(): boolean {
    this.#refresh();
    if (this.#batchLeft > 0 || this.#usedShadow !== this.#lastUsed) return true;
    return this.#loadUsedIdx() !== this.#lastUsed;
  }

  /** The next used element, validated, or null (allocates the result; see popUsedHead()). */
  popUsed(): UsedBuffer | null {
    const head = this.popUsedHead();
    return head < 0 ? null : { head, len: this.#usedLen, token: this.#usedToken };
  }

  /** Length of the element the last popUsedHead() returned. */
  get usedLen(): number {
    return this.#usedLen;
  }

  /** Token of the element the last popUsedHead() returned. */
  get usedToken(): unknown {
    return this.#usedToken;
  }

  /**
   * Like popUsed() without allocating: the head of the next used element (same
   * validation), or -1 when there is none; its length and token are in
   * `usedLen` and `usedToken` until the next call.
   */
  popUsedHead(): number {
    this.#refresh();
    return this.#nextUsed();
  }

  /**
   * Pops up to `max` used elements (default and at most `tokens.length`) in one
   * call: their tokens into `tokens[0..n)` and, when given, their lengths into
   * `lens[0..n)`. Returns n. Same validation as popUsedHead(); no allocation.
   */
  popUsedBatch(tokens: unknown[], lens?: Uint32Array, max = tokens.length): number {
    checkUsedBatch(tokens, lens, max);
    this.#refresh();
    const limit = Math.min(max, tokens.length, lens === undefined ? max : lens.length);
    let n = 0;
    if (!this.features.inOrder && limit > 0) n = this.#usedRun(tokens, lens, limit);
    while (n < limit) {
      let head: number;
      try {
        head = this.#nextUsed();
      } catch (err) {
        // The elements before the bad one were valid: hand them over; the queue is
        // broken, so the next call reports it.
        if (n > 0) return n;
        throw err;
      }
      if (head < 0) break;
      tokens[n] = this.#usedToken;
      if (lens !== undefined) lens[n] = this.#usedLen;
      n++;
    }
    return n;
  }

  /**
   * popUsedBatch() without IN_ORDER: the used elements already published, up to
   * `limit`, in one loop over locals. Stops before an element that fails a check
   * (#nextUsed() then reports it) or when the ring is empty (#nextUsed() then
   * arms EVENT_IDX).
   */
  #usedRun(tokens: unknown[], lens: Uint32Array | undefined, limit: number): number {
    let last = this.#lastUsed;
    if (this.#usedShadow === last && this.#loadUsedIdx() === last) return 0;
    const k = Math.min(limit, (this.#usedShadow - last) & 0xffff);
    const used32 = this.#used32;
    const mask = this.#mask;
    const size = this.size;
    const inflight = this.#inflight;
    const cap = this.#chainCap;
    const toks = this.#tokens;
    const chainLen = this.#chainLen;
    const chainTail = this.#chainTail;
    const freeNext = this.#freeNext;
    let freeHead = this.#freeHead;
    let freeTail = this.#freeTail;
    let numFree = this.#numFree;
    let n = 0;
    for (; n < k; n++) {
      const slot = last & mask;
      const id = used32[1 + 2 * slot]!;
      const len = used32[2 + 2 * slot]!;
      if (id >= size || inflight[id] !== 1 || len > cap[id]!) break;
      tokens[n] = toks[id];
      if (lens !== undefined) lens[n] = len;
      toks[id] = undefined;
      inflight[id] = 0;
      const tail = chainTail[id]!;
      if (numFree === 0) {
        freeHead = id;
        freeTail = tail;
      } else {
        freeNext[tail] = freeHead;
        freeHead = id;
      }
      numFree += chainLen[id]!;
      last = (last + 1) & 0xffff;
    }
    this.#lastUsed = last;
    this.#freeHead = freeHead;
    this.#freeTail = freeTail;
    this.#numFree = numFree;
    this.#inflightCount -= n;
    if (n > 0) {
      this.#usedLen = lens === undefined ? 0 : lens[n - 1]!;
      this.#usedToken = tokens[n - 1];
    }
    return n;
  }

  #nextUsed(): number {
    if (this.#batchLeft > 0) return this.#nextOfBatch();
    if (this.#usedShadow === this.#lastUsed) {
      if (this.#loadUsedIdx() === this.#lastUsed) {
        if (!this.features.eventIdx || !this.#callbacks || this.#usedEventWritten === this.#lastUsed)
          return -1;
        Atomics.store(this.#avail, 2 + this.size, this.#lastUsed);
        this.#usedEventWritten = this.#lastUsed;
        if (this.#loadUsedIdx() === this.#lastUsed) return -1;
      }
    }
    const slot = this.#lastUsed & this.#mask;
    const id = this.#used32[1 + 2 * slot]!;
    const len = this.#used32[2 + 2 * slot]!;
    if (id >= this.size || this.#inflight[id] !== 1) {
      this.#life.fail('INVALID_USED_ID', `used.ring[${slot}].id ${id} is not the head of a chain in flight`);
    }
    if (len > this.#chainCap[id]!) {
      this.#life.fail(
        'INVALID_USED_LENGTH',
        `used.ring[${slot}].len ${len} exceeds the ${this.#chainCap[id]} writable bytes of chain ${id}`,
      );
    }
    if (this.features.inOrder) {
      // IN_ORDER batching (2.7.9): the element at the batch's first position names
      // the batch's last chain, and used.idx moved by the size of the batch.
      // (id is in flight, so it is in the FIFO of chains in flight: the walk ends)
      let k = 1;
      while (k < this.#fifoCount && this.#fifo[(this.#fifoStart + k - 1) & this.#mask] !== id) k++;
      const moved = (this.#usedShadow - this.#lastUsed) & 0xffff;
      if (k > moved) {
        this.#life.fail(
          'INVALID_USED_ID',
          `used.ring[${slot}].id ${id} ends a batch of ${k} chains, but used.idx moved by only ${moved}`,
        );
      }
      // Validated: now update state.
      this.#lastUsed = (this.#lastUsed + k) & 0xffff;
      this.#batchLeft = k;
      this.#batchLen = len;
      return this.#nextOfBatch();
    }
    // Validated: now update state.
    this.#lastUsed = (this.#lastUsed + 1) & 0xffff;
    return this.#complete(id, len);
  }

  /**
   * IN_ORDER: hands out the next chain of a batch already validated and counted
   * in lastUsed. The chains before the last were used completely (2.7.9): their
   * length is their whole writable capacity; the last one has the element's.
   */
  #nextOfBatch(): number {
    const head = this.#fifo[this.#fifoStart]!;
    this.#fifoStart = (this.#fifoStart + 1) & this.#mask;
    this.#fifoCount--;
    this.#batchLeft--;
    return this.#complete(head, this.#batchLeft === 0 ? this.#batchLen : this.#chainCap[head]!);
  }

  /** Hands chain `head` back: its token and `len` become usedToken/usedLen, its descriptors free. */
  #complete(head: number, len: number): number {
    this.#usedToken = this.#tokens[head];
    this.#usedLen = len;
    this.#tokens[head] = undefined;
    this.#inflight[head] = 0;
    this.#inflightCount--;
    this.#release(head);
    return head;
  }

  #release(head: number): void {
    const k = this.#chainLen[head]!;
    const tail = this.#chainTail[head]!;
    if (this.#numFree === 0) {
      this.#freeHead = head;
    } else if (this.features.inOrder) {
      // FIFO free list: descriptors are reused in ring order, as in-order devices expect.
      this.#freeNext[this.#freeTail] = head;
    } else {
      this.#freeNext[tail] = this.#freeHead;
      this.#freeHead = head;
    }
    if (this.#numFree === 0 || this.features.inOrder) this.#freeTail = tail;
    this.#numFree += k;
  }

  /**
   * Asks the device for used-buffer notifications again, then re-checks:
   * returns true when used elements are already waiting.
   */
  enableCallbacks(): boolean {
    this.#refresh();
    this.#callbacks = true;
    splitCallbacksOn(this.#views, this.size, this.features.eventIdx, this.#lastUsed);
    if (this.features.eventIdx) this.#usedEventWritten = this.#lastUsed;
    return this.hasUsed();
  }

  /** Asks the device not to notify (a hint; with EVENT_IDX at most one more notification comes). */
  disableCallbacks(): void {
    this.#refresh();
    this.#callbacks = false;
    splitCallbacksOff(this.#views, this.features.eventIdx);
  }

  state(): QueueState {
    return { nextAvail: this.#availNext, nextUsed: this.#lastUsed };
  }

  #restore(s: QueueState): void {
    const a = driverRestoreIndex(s);
    this.#availNext = a;
    this.#availPublished = a;
    this.#lastUsed = a;
    this.#usedShadow = a;
  }

  /** Zeroes the rings (the driver owns them) and returns to the initial state. */
  reset(): void {
    this.#life.reset();
    this.#refresh();
    zeroSplitRings(this.#views);
    this.#initFreeList();
    this.#availNext = 0;
    this.#availPublished = 0;
    this.#lastUsed = 0;
    this.#usedShadow = 0;
    this.#callbacks = true;
    this.#usedEventWritten = -1;
    this.#usedToken = undefined;
  }
}
