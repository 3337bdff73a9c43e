import { VIRTQ_DESC_F_WRITE } from './defs.js';
import { VringError } from './errors.js';
import type { GuestMemory } from './guest-memory.js';
import { frozenFeatures, QueueLifecycle } from './queue-lifecycle.js';
import type { QueueState } from './queue-state.js';
import { assertLittleEndian, toBigAddress } from './ring-views.js';
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

export interface SplitSlotOptions extends SplitQueueOptions {
  /** Guest address of slot 0; slot `i` is the `slotSize` bytes at `slots + i * slotSize`. */
  slots: bigint | number;
  /** Bytes per slot (1 to 2^32 - 1); `size * slotSize` bytes must lie inside one region. */
  slotSize: number;
}

/**
 * The driver side of a split virtqueue (2.7) for the common shape of an IPC
 * ring: every chain is one buffer, and each of the queue's `size` descriptors
 * owns one fixed buffer, its slot, in an area the driver set aside. What it
 * saves over SplitDriverQueue: no buffer address to check per chain (the slot
 * area is checked once, and again after a remap), no tokens (a chain is its
 * slot id), no free list walk; with IN_ORDER, one used element may complete a
 * whole run of chains (2.7.9) and costs one check.
 *
 * It validates every used element as SplitDriverQueue does (id in flight,
 * length within the slot's writable bytes, used.idx not running ahead, with
 * IN_ORDER a run that used.idx covers); a violation breaks the queue with the
 * same error codes. The bookkeeping lives in local memory, out of the device's
 * reach. Like SplitDriverQueue, it owns the rings (a fresh queue assumes them
 * zeroed; reset() zeroes them).
 */
export class SplitSlotDriver {
  readonly size: number;
  readonly slotSize: number;
  readonly memory: GuestMemory;
  readonly features: Readonly<{ eventIdx: boolean; indirect: boolean; inOrder: boolean }>;
  readonly addresses: Readonly<{ descTable: bigint; availRing: bigint; usedRing: bigint }>;
  /** Guest address of slot 0. */
  readonly slots: bigint;
  #mask: number;
  #desc!: Uint32Array;
  #avail!: Uint16Array;
  #used16!: Uint16Array;
  #used32!: Uint32Array;
  /** The four views above, for the calls that share code with the other split driver. */
  #rings!: SplitViews;
  /** The slot area. */
  #area!: Uint8Array;
  #views: (Uint8Array | undefined)[];
  // Guest address words of each slot.
  #slotLo: Uint32Array;
  #slotHi: Uint32Array;
  /**
   * IN_ORDER: the chain added at avail index `a` is slot `a & mask`, so the
   * chains in flight are the slots from lastUsed on, in ring order, and no free
   * list is needed (the device must return them in that order).
   */
  readonly #inOrder: boolean;
  // Without IN_ORDER: free slot ids, a FIFO ring, and which ids are in flight.
  #free: Uint16Array;
  #freeStart = 0;
  #inflight: Uint8Array;
  #freeCount: number;
  /** Writable bytes of each id in flight (0 for a device-readable slot). */
  #cap: Uint32Array;
  #availNext = 0;
  #availPublished = 0;
  #lastUsed = 0;
  #usedShadow = 0;
  #callbacks = true;
  #usedEventWritten = -1;
  readonly #life: QueueLifecycle;
  #gen = -1;

  constructor(opts: SplitSlotOptions) {
    assertLittleEndian();
    checkSplitSize(opts.size);
    const n = opts.size;
    const slotSize = opts.slotSize;
    if (!Number.isInteger(slotSize) || slotSize < 1 || slotSize > 0xffffffff) {
      throw new VringError('INVALID_ARGUMENT', `slotSize must be a u32 above 0 (got ${String(slotSize)})`);
    }
    this.size = n;
    this.slotSize = slotSize;
    this.#mask = n - 1;
    this.memory = opts.memory;
    this.features = frozenFeatures(opts.features);
    this.addresses = Object.freeze(splitAddresses(opts.addresses));
    this.slots = toBigAddress(opts.slots, 'slots');
    this.#views = new Array<Uint8Array | undefined>(n).fill(undefined);
    this.#slotLo = new Uint32Array(n);
    this.#slotHi = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const a = this.slots + BigInt(i) * BigInt(slotSize);
      this.#slotLo[i] = Number(a & 0xffffffffn);
      this.#slotHi[i] = Number((a >> 32n) & 0xffffffffn);
    }
    this.#inOrder = this.features.inOrder;
    this.#free = new Uint16Array(n);
    this.#freeCount = n;
    this.#inflight = new Uint8Array(n);
    this.#cap = new Uint32Array(n);
    this.#initSlots();
    this.#life = new QueueLifecycle(
      opts.memory,
      () => this.#map(),
      (gen) => {
        this.#gen = gen;
      },
    );
    this.#life.map();
    if (opts.state) this.#restore(opts.state);
  }

  #initSlots(): void {
    for (let i = 0; i < this.size; i++) this.#free[i] = i;
    this.#freeStart = 0;
    this.#freeCount = this.size;
    this.#inflight.fill(0);
  }

  #map(): void {
    const v = mapSplit(this.memory, this.size, this.addresses);
    this.#rings = v;
    const total = this.size * this.slotSize;
    // (slice() throws ADDRESS_OUT_OF_BOUNDS when the area is not inside one region)
    const area = this.memory.slice(this.slots, total);
    this.#desc = v.desc;
    this.#avail = v.avail;
    this.#used16 = v.used16;
    this.#used32 = v.used32;
    this.#area = area;
    this.#views.fill(undefined);
  }

  #refresh(): void {
    if (this.#gen !== this.memory.generation) this.#life.resync();
    if (this.#desc.length === 0 || this.#area.length === 0) this.#life.unmapped();
  }

  get broken(): VringError | null {
    return this.#life.broken;
  }

  /** Slots free to add(). */
  freeCount(): number {
    return this.#freeCount;
  }

  /** Chains added and not yet returned by popUsed(). */
  inFlight(): number {
    return this.size - this.#freeCount;
  }

  /**
   * The bytes of slot `id` (a view into guest memory, made once per mapping):
   * write a message there after add() and before publish(), or read what the
   * device wrote after popUsed() returned the id. The device shares this
   * memory: bytes it may write can change under you until the slot is back.
   */
  slot(id: number): Uint8Array {
    if (!(id >>> 0 === id && id < this.size)) {
      throw new VringError(
        'INVALID_ARGUMENT',
        `slot id must be an integer from 0 to ${this.size - 1} (got ${String(id)})`,
      );
    }
    this.#refresh();
    let v = this.#views[id];
    if (v === undefined) {
      v = this.#area.subarray(id * this.slotSize, (id + 1) * this.slotSize);
      this.#views[id] = v;
    }
    return v;
  }

  /**
   * Takes the next free slot for a chain of its first `len` bytes
   * (device-readable, or device-writable when `writable`); returns the slot id,
   * or -1 when every slot is in flight. Fill the slot (slot(id)) before
   * publish(): until then the device does not see the chain.
   */
  add(len: number, writable = false): number {
    this.#refresh();
    if (!(len >>> 0 === len && len <= this.slotSize)) {
      throw new VringError(
        'INVALID_ARGUMENT',
        `len must be an integer from 0 to the slot size ${this.slotSize} (got ${String(len)})`,
      );
    }
    if (typeof writable !== 'boolean') {
      throw new VringError('INVALID_ARGUMENT', `writable must be a boolean (got ${String(writable)})`);
    }
    if (this.#freeCount === 0) return -1;
    return this.#take(len, writable);
  }

  /**
   * add() for a device-readable chain holding a copy of `bytes` (at most the
   * slot size): copies them into the next free slot. Returns the slot id, or
   * -1 (nothing copied) when every slot is in flight.
   */
  addBytes(bytes: Uint8Array): number {
    this.#refresh();
    if (!(bytes instanceof Uint8Array) || bytes.length > this.slotSize) {
      throw new VringError(
        'INVALID_ARGUMENT',
        `addBytes() takes a Uint8Array of at most the slot size ${this.slotSize} bytes (got ${bytes instanceof Uint8Array ? `${bytes.length} bytes` : typeof bytes})`,
      );
    }
    if (this.#freeCount === 0) return -1;
    const id = this.#take(bytes.length, false);
    this.#area.set(bytes, id * this.slotSize);
    return id;
  }

  /**
   * addBytes() for `messages[from..to)` in one call: copies each into the next
   * free slot, in order, until the slots run out. Returns how many were added
   * (fewer than asked when the ring filled up: send the rest later). A message
   * that is not a Uint8Array of at most the slot size throws INVALID_ARGUMENT
   * naming its index; the messages before it stay added (publish() sends
   * them), nothing from it on is.
   */
  addBytesBatch(messages: readonly Uint8Array[], from = 0, to = messages.length): number {
    this.#refresh();
    if (!Array.isArray(messages)) {
      throw new VringError('INVALID_ARGUMENT', 'addBytesBatch(): messages must be an array of Uint8Array');
    }
    if (!(from >>> 0 === from && to >>> 0 === to && from <= to && to <= messages.length)) {
      throw new VringError(
        'INVALID_ARGUMENT',
        `addBytesBatch(): from ${String(from)} and to ${String(to)} must be indexes with 0 <= from <= to <= ${messages.length}`,
      );
    }
    const end = Math.min(to, from + this.#freeCount);
    const slotSize = this.slotSize;
    const area = this.#area;
    for (let i = from; i < end; i++) {
      const m = messages[i];
      if (!(m instanceof Uint8Array) || m.length > slotSize) this.#badMessage(m, i, from);
      area.set(m, this.#take(m.length, false) * slotSize);
    }
    return end - from;
  }

  #badMessage(m: unknown, i: number, from: number): never {
    throw new VringError(
      'INVALID_ARGUMENT',
      `addBytesBatch(): messages[${i}] must be a Uint8Array of at most the slot size ${this.slotSize} bytes (got ${m instanceof Uint8Array ? `${m.length} bytes` : typeof m}); the ${i - from} before it were added`,
    );
  }

  #take(len: number, writable: boolean): number {
    const mask = this.#mask;
    const at = this.#availNext;
    let id: number;
    if (this.#inOrder) {
      id = at & mask;
    } else {
      id = this.#free[this.#freeStart]!;
      this.#freeStart = (this.#freeStart + 1) & mask;
      this.#inflight[id] = 1;
    }
    this.#freeCount--;
    const w = id << 2;
    const d = this.#desc;
    d[w] = this.#slotLo[id]!;
    d[w + 1] = this.#slotHi[id]!;
    d[w + 2] = len;
    d[w + 3] = writable ? VIRTQ_DESC_F_WRITE : 0;
    this.#avail[2 + (at & mask)] = id;
    this.#cap[id] = writable ? len : 0;
    this.#availNext = (at + 1) & 0xffff;
    return id;
  }

  /** Publishes the added chains with one avail.idx store. Returns true when the device must be kicked. */
  publish(): boolean {
    this.#refresh();
    const idx = this.#availNext;
    const old = this.#availPublished;
    if (idx === old) return false;
    this.#availPublished = idx;
    return splitPublish(this.#rings, this.size, this.features.eventIdx, idx, old);
  }

  /** used.idx, checked against the chains in flight that are not yet accounted for. */
  #loadUsedIdx(): number {
    const idx = Atomics.load(this.#used16, 1);
    const ahead = (idx - this.#lastUsed) & 0xffff;
    if (ahead > this.size - this.#freeCount) {
      this.#life.fail(
        'USED_INDEX_OVERRUN',
        `used.idx ${idx} is ${ahead} ahead of the last used index ${this.#lastUsed}, but only ${this.size - this.#freeCount} chains are in flight`,
      );
    }
    this.#usedShadow = idx;
    return idx;
  }

  /** Whether the device has returned chains popUsed() has not taken yet. */
  hasUsed(): boolean {
    this.#refresh();
    if (this.#usedShadow !== this.#lastUsed) return true;
    return this.#loadUsedIdx() !== this.#lastUsed;
  }

  /**
   * Takes up to `max` used chains (default and at most `ids.length`, or the
   * queue size without `ids`), in the order the device returned them: their
   * slot ids into `ids[0..n)` when given (a sender that does not need them
   * leaves it out), and the bytes the device wrote into `lens[0..n)` when
   * given (0 for a device-readable slot). Returns n. Every element is validated; the elements
   * before a bad one are handed over, and the next call throws. With IN_ORDER,
   * a run the device completed with one element is taken whole or not at all,
   * so `max` should be at least the queue size (or the largest batch) to take
   * every run.
   */
  popUsed(
    ids?: Uint16Array | Uint32Array | number[],
    lens?: Uint32Array,
    max = ids === undefined ? this.size : ids.length,
  ): number {
    if (
      !(ids === undefined || ids instanceof Uint16Array || ids instanceof Uint32Array || Array.isArray(ids))
    ) {
      throw new VringError(
        'INVALID_ARGUMENT',
        'popUsed(): ids must be a Uint16Array, a Uint32Array or an array when given',
      );
    }
    if (lens !== undefined && !(lens instanceof Uint32Array)) {
      throw new VringError('INVALID_ARGUMENT', 'popUsed(): lens must be a Uint32Array when given');
    }
    if (typeof max !== 'number' || max >>> 0 !== max) {
      throw new VringError(
        'INVALID_ARGUMENT',
        `popUsed(): max must be a non-negative integer (got ${String(max)})`,
      );
    }
    this.#refresh();
    const limit = Math.min(max, ids === undefined ? max : ids.length, lens === undefined ? max : lens.length);
    let last = this.#lastUsed;
    if (this.#usedShadow === last && this.#loadUsedIdx() === last) {
      // Empty. With EVENT_IDX, ask for a notification at the next element, then
      // look again (the device may have published between the load and the store).
      if (!this.#armUsedEvent() || this.#loadUsedIdx() === last) return 0;
    }
    const used32 = this.#used32;
    const mask = this.#mask;
    const size = this.size;
    const cap = this.#cap;
    let ahead = (this.#usedShadow - last) & 0xffff;
    let n = 0;
    if (this.#inOrder) {
      // An element completes every chain from the oldest in flight up to the one
      // it names (2.7.9): the slots from `last` on, in ring order.
      while (ahead > 0 && n < limit) {
        const slot = last & mask;
        const id = used32[1 + 2 * slot]!;
        const len = used32[2 + 2 * slot]!;
        const k = ((id - last) & mask) + 1;
        if (id >= size || k > ahead || len > cap[id]!) {
          // The elements before are valid: hand them over; the next call reports this one.
          if (n === 0) this.#badElement(slot, id, len, k, ahead);
          break;
        }
        if (k > limit - n) break; // the whole run at the next call
        if (ids !== undefined) for (let j = 0; j < k; j++) ids[n + j] = (last + j) & mask;
        if (lens !== undefined) {
          // chains a run skips were used whole: their writable capacity (2.7.9)
          for (let j = 0; j < k - 1; j++) lens[n + j] = cap[(last + j) & mask]!;
          lens[n + k - 1] = len;
        }
        n += k;
        last = (last + k) & 0xffff;
        ahead -= k;
      }
    } else {
      const inflight = this.#inflight;
      const free = this.#free;
      let freeEnd = (this.#freeStart + this.#freeCount) & mask;
      const k = Math.min(ahead, limit);
      for (; n < k; n++) {
        const slot = last & mask;
        const id = used32[1 + 2 * slot]!;
        const len = used32[2 + 2 * slot]!;
        if (id >= size || inflight[id] !== 1 || len > cap[id]!) {
          if (n === 0) this.#badElement(slot, id, len, 1, ahead);
          break;
        }
        if (ids !== undefined) ids[n] = id;
        if (lens !== undefined) lens[n] = len;
        inflight[id] = 0;
        free[freeEnd] = id;
        freeEnd = (freeEnd + 1) & mask;
        last = (last + 1) & 0xffff;
      }
    }
    this.#lastUsed = last;
    this.#freeCount += n;
    return n;
  }

  /** Breaks the queue for the used element at ring slot `slot`, naming the rule it broke. */
  #badElement(slot: number, id: number, len: number, k: number, ahead: number): never {
    if (id >= this.size || (!this.#inOrder && this.#inflight[id] !== 1)) {
      this.#life.fail('INVALID_USED_ID', `used.ring[${slot}].id ${id} is not a slot in flight`);
    }
    if (len > this.#cap[id]!) {
      this.#life.fail(
        'INVALID_USED_LENGTH',
        `used.ring[${slot}].len ${len} exceeds the ${this.#cap[id]} writable bytes of slot ${id}`,
      );
    }
    this.#life.fail(
      'INVALID_USED_ID',
      `used.ring[${slot}].id ${id} ends a batch of ${k} chains, but used.idx moved by only ${ahead}`,
    );
  }

  /**
   * EVENT_IDX with callbacks on: asks for a notification at the next used
   * element (once per index). Returns whether it wrote used_event.
   */
  #armUsedEvent(): boolean {
    if (!this.features.eventIdx || !this.#callbacks || this.#usedEventWritten === this.#lastUsed)
      return false;
    Atomics.store(this.#avail, 2 + this.size, this.#lastUsed);
    this.#usedEventWritten = this.#lastUsed;
    return true;
  }

  /**
   * Asks the device for used-buffer notifications again, then re-checks:
   * returns true when used elements are already waiting.
   */
  enableCallbacks(): boolean {
    this.#refresh();
    this.#callbacks = true;
    splitCallbacksOn(this.#rings, this.size, this.features.eventIdx, this.#lastUsed);
    if (this.features.eventIdx) this.#usedEventWritten = this.#lastUsed;
    return this.hasUsed();
  }

  /** Asks the device not to notify (a hint; with EVENT_IDX at most one more notification comes). */
  disableCallbacks(): void {
    this.#refresh();
    this.#callbacks = false;
    splitCallbacksOff(this.#rings, this.features.eventIdx);
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
    zeroSplitRings(this.#rings);
    this.#initSlots();
    this.#availNext = 0;
    this.#availPublished = 0;
    this.#lastUsed = 0;
    this.#usedShadow = 0;
    this.#callbacks = true;
    this.#usedEventWritten = -1;
  }
}
