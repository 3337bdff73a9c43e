import { checkChainLength, checkUsedBatch } from './call-checks.js';
import {
  DESCRIPTOR_SIZE,
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  RING_EVENT_FLAGS_ENABLE,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_USED,
  VIRTQ_DESC_F_WRITE,
} from './defs.js';
import { VringError } from './errors.js';
import type { GuestMemory } from './guest-memory.js';
import {
  mapPacked,
  type PackedAddresses,
  type PackedQueueOptions,
  packedAddresses,
  packedNeedEvent,
} from './packed-common.js';
import { checkPosition } from './packed-device-queue.js';
import { checkPackedSize } from './packed-layout.js';
import { frozenFeatures, QueueLifecycle } from './queue-lifecycle.js';
import type { QueueState } from './queue-state.js';
import { assertLittleEndian, toBigAddress, u32View } from './ring-views.js';
import {
  type AddOptions,
  CheckedBuffer,
  CheckedBuffers,
  type DriverBuffer,
  type UsedBuffer,
} from './split-driver-queue.js';

/**
 * The driver side of a packed virtqueue (2.8), with the same methods as
 * SplitDriverQueue. Buffer ids, chain sizes and tokens live in local memory;
 * every used descriptor is validated (id in flight, length within the chain's
 * writable capacity). The driver owns the ring: a fresh queue assumes it
 * zeroed; reset() zeroes it.
 */
export class PackedDriverQueue {
  readonly size: number;
  readonly memory: GuestMemory;
  readonly features: Readonly<{ eventIdx: boolean; indirect: boolean; inOrder: boolean }>;
  readonly addresses: Readonly<PackedAddresses>;
  #desc32!: Uint32Array;
  #desc16!: Uint16Array;
  #driverEvent!: Uint16Array;
  #deviceEvent!: Uint16Array;
  #nextAvail = 0;
  #availWrap = true;
  #nextUsed = 0;
  #usedWrap = true;
  #numFree: number;
  #freeIds: Uint16Array;
  #freeIdCount = 0;
  #chainDescs: Uint16Array;
  #chainCap: Float64Array;
  #inflight: Uint8Array;
  #tokens: unknown[];
  #inflightCount = 0;
  #fifo: Uint16Array;
  #fifoStart = 0;
  #fifoCount = 0;
  #completed: UsedBuffer[] = [];
  #usedLen = 0;
  #usedToken: unknown = undefined;
  #batchPending = false;
  #batchSlot = 0;
  #batchFlags = 0;
  #addedDescs = 0;
  #callbacks = true;
  #eventWritten = -1;
  readonly #life: QueueLifecycle;
  /** memory.generation of the ring views (set by #life; matches none once broken). */
  #gen = -1;
  #scratch = new CheckedBuffers();
  #one = new CheckedBuffer();

  constructor(opts: PackedQueueOptions) {
    assertLittleEndian();
    checkPackedSize(opts.size);
    const n = opts.size;
    this.size = n;
    this.memory = opts.memory;
    this.features = frozenFeatures(opts.features);
    this.addresses = Object.freeze(packedAddresses(opts.addresses));
    this.#numFree = n;
    this.#freeIds = new Uint16Array(n);
    this.#chainDescs = new Uint16Array(n);
    this.#chainCap = new Float64Array(n);
    this.#inflight = new Uint8Array(n);
    this.#tokens = new Array<unknown>(n).fill(undefined);
    this.#fifo = new Uint16Array(n);
    this.#initIds();
    this.#life = new QueueLifecycle(
      opts.memory,
      () => this.#map(),
      (gen) => {
        this.#gen = gen;
      },
    );
    this.#life.map();
    if (opts.state) {
      const s = opts.state;
      const a = checkPosition(s.nextAvail, n, 'nextAvail');
      const u = checkPosition(s.nextUsed, n, 'nextUsed');
      if (a !== u || (s.availWrap !== false) !== (s.usedWrap !== false)) {
        throw new VringError(
          'INVALID_ARGUMENT',
          'a driver can only be restored with nothing in flight (avail = used)',
        );
      }
      this.#nextAvail = a;
      this.#nextUsed = u;
      this.#availWrap = this.#usedWrap = s.availWrap !== false;
    }
  }

  #initIds(): void {
    const n = this.size;
    // a stack popped from the end: ids come out 0, 1, 2, ...
    for (let i = 0; i < n; i++) this.#freeIds[i] = n - 1 - i;
    this.#freeIdCount = n;
    this.#numFree = n;
    this.#inflight.fill(0);
    this.#tokens.fill(undefined);
    this.#inflightCount = 0;
    this.#fifoStart = 0;
    this.#fifoCount = 0;
    this.#completed = [];
    this.#usedToken = undefined;
    this.#batchPending = false;
    this.#addedDescs = 0;
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

  freeCount(): number {
    return this.#numFree;
  }

  /** The used position after `k` descriptors from `slot` (no array allocated). */
  #advanceUsed(slot: number, k: number): void {
    const p = slot + k;
    if (p >= this.size) {
      this.#nextUsed = p - this.size;
      this.#usedWrap = !this.#usedWrap;
    } else {
      this.#nextUsed = p;
    }
  }

  /** Chains added and not yet returned by popUsed(). */
  inFlight(): number {
    return this.#inflightCount + this.#completed.length;
  }

  add(buffers: readonly DriverBuffer[], token?: unknown, options?: AddOptions): number {
    this.#refresh();
    const c = this.#scratch.fill(this.memory, buffers);
    checkChainLength(c.count, this.size);
    let k = c.count;
    let indirect: { lo: number; hi: number; len: number } | undefined;
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
        t[w + 3] = (c.writable[i] ? VIRTQ_DESC_F_WRITE : 0) << 16;
      }
      indirect = {
        lo: Number(tableAddr & 0xffffffffn),
        hi: Number(tableAddr >> 32n),
        len: k * DESCRIPTOR_SIZE,
      };
      k = 1;
    }
    if (k > this.#numFree) return -1;
    const id = this.#freeIds[--this.#freeIdCount]!;
    const d32 = this.#desc32;
    const n = this.size;
    let slot = this.#nextAvail;
    let wrap = this.#availWrap;
    for (let i = 0; i < k; i++) {
      const w = slot << 2;
      let flags = wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
      if (indirect) {
        d32[w] = indirect.lo;
        d32[w + 1] = indirect.hi;
        d32[w + 2] = indirect.len;
        flags |= VIRTQ_DESC_F_INDIRECT;
      } else {
        d32[w] = c.lo[i]!;
        d32[w + 1] = c.hi[i]!;
        d32[w + 2] = c.len[i]!;
        if (c.writable[i]) flags |= VIRTQ_DESC_F_WRITE;
        if (i + 1 < k) flags |= VIRTQ_DESC_F_NEXT;
      }
      this.#storeIdFlags(slot, id, flags);
      if (++slot === n) {
        slot = 0;
        wrap = !wrap;
      }
    }
    this.#nextAvail = slot;
    this.#availWrap = wrap;
    return this.#track(id, k, c.writableBytes, token);
  }

  /**
   * A chain's descriptor id and flags: the first of a batch has its flags held
   * back, stored last by publish() (2.8.6); the others go straight in.
   */
  #storeIdFlags(slot: number, id: number, flags: number): void {
    if (!this.#batchPending) {
      this.#desc16[8 * slot + 6] = id;
      this.#batchPending = true;
      this.#batchSlot = slot;
      this.#batchFlags = flags;
    } else {
      this.#desc32[(slot << 2) + 3] = id | (flags << 16);
    }
  }

  /** The bookkeeping of a chain just written: `descs` ring descriptors, `cap` writable bytes. */
  #track(id: number, descs: number, cap: number, token: unknown): number {
    this.#numFree -= descs;
    this.#addedDescs += descs;
    this.#chainDescs[id] = descs;
    this.#chainCap[id] = cap;
    this.#inflight[id] = 1;
    this.#tokens[id] = token;
    this.#inflightCount++;
    if (this.features.inOrder) {
      this.#fifo[(this.#fifoStart + this.#fifoCount) % this.size] = id;
      this.#fifoCount++;
    }
    return id;
  }

  /** As SplitDriverQueue.addBuffer(): a chain of one buffer, no buffer array. */
  addBuffer(addr: number, len: number, token?: unknown, writable = false): number {
    this.#refresh();
    const b = this.#one.fill(this.memory, addr, len, writable);
    if (this.#numFree === 0) return -1;
    const id = this.#freeIds[--this.#freeIdCount]!;
    const slot = this.#nextAvail;
    const w = slot << 2;
    const d32 = this.#desc32;
    d32[w] = b.lo;
    d32[w + 1] = b.hi;
    d32[w + 2] = len;
    const flags =
      (this.#availWrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED) | (writable ? VIRTQ_DESC_F_WRITE : 0);
    this.#storeIdFlags(slot, id, flags);
    if (slot + 1 === this.size) {
      this.#nextAvail = 0;
      this.#availWrap = !this.#availWrap;
    } else {
      this.#nextAvail = slot + 1;
    }
    return this.#track(id, 1, writable ? len : 0, token);
  }

  publish(): boolean {
    this.#refresh();
    if (!this.#batchPending) return false;
    Atomics.store(this.#desc16, 8 * this.#batchSlot + 7, this.#batchFlags);
    this.#batchPending = false;
    const k = this.#addedDescs;
    this.#addedDescs = 0;
    return packedNeedEvent(
      this.#deviceEvent,
      this.features.eventIdx,
      this.size,
      this.#nextAvail,
      this.#availWrap,
      k,
    );
  }

  #isUsed(): boolean {
    // Flags are necessary but not sufficient (2.8.1): with nothing in flight no
    // descriptor can be used, whatever its flags say (a zeroed ring looks used
    // to a driver whose used wrap counter is 0).
    if (this.#inflightCount === 0) return false;
    const flags = Atomics.load(this.#desc16, 8 * this.#nextUsed + 7);
    const w = this.#usedWrap;
    return ((flags & VIRTQ_DESC_F_AVAIL) !== 0) === w && ((flags & VIRTQ_DESC_F_USED) !== 0) === w;
  }

  hasUsed(): boolean {
    this.#refresh();
    return this.#completed.length > 0 || this.#isUsed();
  }

  #armEvent(): void {
    const offWrap = this.#nextUsed | (this.#usedWrap ? 0x8000 : 0);
    Atomics.store(this.#driverEvent, 0, offWrap);
    Atomics.store(this.#driverEvent, 1, RING_EVENT_FLAGS_DESC);
    this.#eventWritten = offWrap;
  }

  /** The next used element, validated, or null (allocates the result; see popUsedHead()). */
  popUsed(): UsedBuffer | null {
    const head = this.popUsedHead();
    return head < 0 ? null : { head, len: this.#usedLen, token: this.#usedToken };
  }

  /**
   * Like popUsed() without allocating: the buffer id of the next used element
   * (same validation), or -1 when there is none; its length and token are in
   * `usedLen` and `usedToken` until the next call.
   */
  popUsedHead(): number {
    this.#refresh();
    return this.#nextUsedHead();
  }

  /** As SplitDriverQueue.popUsedBatch(): up to `max` used elements' tokens (and lengths) in one call. */
  popUsedBatch(tokens: unknown[], lens?: Uint32Array, max = tokens.length): number {
    checkUsedBatch(tokens, lens, max);
    this.#refresh();
    const limit = Math.min(max, tokens.length, lens === undefined ? max : lens.length);
    let n = 0;
    if (!this.features.inOrder && limit > 0) n = this.#usedRun(tokens, lens, limit);
    while (n < limit) {
      let head: number;
      try {
        head = this.#nextUsedHead();
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
   * popUsedBatch() without IN_ORDER: the used descriptors already written, up
   * to `limit`, in one loop over locals (each one's flags loaded atomically).
   * Stops before one that fails a check (#nextUsedHead() then reports it) or
   * at the first not yet used (#nextUsedHead() then arms the event).
   */
  #usedRun(tokens: unknown[], lens: Uint32Array | undefined, limit: number): number {
    if (this.#completed.length > 0) return 0;
    const d16 = this.#desc16;
    const d32 = this.#desc32;
    const size = this.size;
    const inflight = this.#inflight;
    const cap = this.#chainCap;
    const toks = this.#tokens;
    const chainDescs = this.#chainDescs;
    const freeIds = this.#freeIds;
    let slot = this.#nextUsed;
    let wrap = this.#usedWrap;
    let freeIdCount = this.#freeIdCount;
    let numFree = this.#numFree;
    let n = 0;
    for (; n < limit; n++) {
      const flags = Atomics.load(d16, 8 * slot + 7);
      if (((flags & VIRTQ_DESC_F_AVAIL) !== 0) !== wrap || ((flags & VIRTQ_DESC_F_USED) !== 0) !== wrap)
        break;
      const w = slot << 2;
      const idFlags = d32[w + 3]!;
      const id = idFlags & 0xffff;
      const usedLen = ((idFlags >>> 16) & VIRTQ_DESC_F_WRITE) !== 0 ? d32[w + 2]! : 0;
      if (id >= size || inflight[id] !== 1 || usedLen > cap[id]!) break;
      tokens[n] = toks[id];
      if (lens !== undefined) lens[n] = usedLen;
      toks[id] = undefined;
      inflight[id] = 0;
      const k = chainDescs[id]!;
      numFree += k;
      freeIds[freeIdCount++] = id;
      const p = slot + k;
      if (p >= size) {
        slot = p - size;
        wrap = !wrap;
      } else {
        slot = p;
      }
    }
    this.#nextUsed = slot;
    this.#usedWrap = wrap;
    this.#freeIdCount = freeIdCount;
    this.#numFree = numFree;
    this.#inflightCount -= n;
    if (n > 0) {
      this.#usedLen = lens === undefined ? 0 : lens[n - 1]!;
      this.#usedToken = tokens[n - 1];
    }
    return n;
  }

  #nextUsedHead(): number {
    if (this.#completed.length > 0) {
      const u = this.#completed.shift()!;
      this.#usedLen = u.len;
      this.#usedToken = u.token;
      return u.head;
    }
    if (!this.#isUsed()) {
      if (!this.features.eventIdx || !this.#callbacks) return -1;
      if (this.#eventWritten === (this.#nextUsed | (this.#usedWrap ? 0x8000 : 0))) return -1;
      this.#armEvent();
      if (!this.#isUsed()) return -1;
    }
    const n = this.size;
    const slot = this.#nextUsed;
    const w = slot << 2;
    const len = this.#desc32[w + 2]!;
    const idFlags = this.#desc32[w + 3]!;
    const id = idFlags & 0xffff;
    const usedLen = ((idFlags >>> 16) & VIRTQ_DESC_F_WRITE) !== 0 ? len : 0;
    if (id >= n || this.#inflight[id] !== 1) {
      this.#life.fail(
        'INVALID_USED_ID',
        `the used descriptor at ring position ${slot} has buffer id ${id}, not one in flight`,
      );
    }
    if (usedLen > this.#chainCap[id]!) {
      this.#life.fail(
        'INVALID_USED_LENGTH',
        `the used descriptor at ring position ${slot} says ${usedLen} bytes, but buffer ${id} has ${this.#chainCap[id]} writable`,
      );
    }
    if (!this.features.inOrder) {
      this.#advanceUsed(slot, this.#chainDescs[id]!);
      this.#usedLen = usedLen;
      this.#usedToken = this.#release(id);
      return id;
    }
    // IN_ORDER (2.8.17): one used descriptor for a batch; every earlier buffer was
    // used too, completely: its length is its whole writable capacity.
    let descs = 0;
    const out: UsedBuffer[] = [];
    for (;;) {
      const front = this.#fifo[this.#fifoStart]!;
      this.#fifoStart = (this.#fifoStart + 1) % n;
      this.#fifoCount--;
      descs += this.#chainDescs[front]!;
      const frontLen = front === id ? usedLen : this.#chainCap[front]!;
      out.push({ head: front, len: frontLen, token: this.#release(front) });
      if (front === id) break;
    }
    this.#advanceUsed(slot, descs);
    const first = out.shift()!;
    this.#completed.push(...out);
    this.#usedLen = first.len;
    this.#usedToken = first.token;
    return first.head;
  }

  /** Length of the element the last popUsedHead() returned. */
  get usedLen(): number {
    return this.#usedLen;
  }

  /** Token of the element the last popUsedHead() returned. */
  get usedToken(): unknown {
    return this.#usedToken;
  }

  /** Frees buffer `id`; returns its token. */
  #release(id: number): unknown {
    const token = this.#tokens[id];
    this.#tokens[id] = undefined;
    this.#inflight[id] = 0;
    this.#inflightCount--;
    this.#numFree += this.#chainDescs[id]!;
    this.#freeIds[this.#freeIdCount++] = id;
    return token;
  }

  enableCallbacks(): boolean {
    this.#refresh();
    this.#callbacks = true;
    if (this.features.eventIdx) this.#armEvent();
    else Atomics.store(this.#driverEvent, 1, RING_EVENT_FLAGS_ENABLE);
    return this.#completed.length > 0 || this.#isUsed();
  }

  disableCallbacks(): void {
    this.#refresh();
    this.#callbacks = false;
    Atomics.store(this.#driverEvent, 1, RING_EVENT_FLAGS_DISABLE);
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

  reset(): void {
    this.#life.reset();
    this.#refresh();
    new Uint8Array(this.#desc32.buffer, this.#desc32.byteOffset, this.#desc32.byteLength).fill(0);
    this.#driverEvent.fill(0);
    this.#deviceEvent.fill(0);
    this.#initIds();
    this.#nextAvail = 0;
    this.#nextUsed = 0;
    this.#availWrap = true;
    this.#usedWrap = true;
    this.#callbacks = true;
    this.#eventWritten = -1;
  }
}
