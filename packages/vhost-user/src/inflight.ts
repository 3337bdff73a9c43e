/**
 * Inflight I/O tracking (vhost-user "Inflight I/O tracking",
 * INFLIGHT_SHMFD): the shared buffer the back-end allocates for
 * GET_INFLIGHT_FD and gets back with SET_INFLIGHT_FD after a restart, its two
 * per-queue layouts, the bookkeeping while a queue runs, and the recovery
 * algorithms.
 *
 * QueueRegionSplit (split rings): u64 features, u16 version, u16 desc_num,
 * u16 last_batch_head, u16 used_idx, then desc_num DescStateSplit of 16 bytes:
 * u8 inflight, u8 padding[5], u16 next, u64 counter.
 *
 * QueueRegionPacked (packed rings): u64 features, u16 version, u16 desc_num,
 * u16 free_head, u16 old_free_head, u16 used_idx, u16 old_used_idx, u8
 * used_wrap_counter, u8 old_used_wrap_counter, u8 padding[7] (32 bytes with
 * the alignment of what follows), then desc_num DescStatePacked of 32 bytes:
 * u8 inflight, u8 padding, u16 next, u16 last, u16 num, u64 counter, u16 id,
 * u16 flags, u32 len, u64 addr.
 *
 * Everything read back from a region is another process's memory: recovery
 * validates sizes, indexes, flags, counters and lists, and throws
 * `INFLIGHT_CORRUPT` naming the problem.
 */
import { type Fd, fstat, type Mapping, memfdCreate, mmap } from '@vipc/shm';
import type { GuestMemory } from '@vipc/vring';
import {
  INFLIGHT_ALIGN,
  INFLIGHT_PACKED_DESC_SIZE,
  INFLIGHT_PACKED_HEADER_SIZE,
  INFLIGHT_SPLIT_DESC_SIZE,
  INFLIGHT_SPLIT_HEADER_SIZE,
  INFLIGHT_VERSION,
} from './defs.js';
import type { DeviceQueue } from './device.js';
import { VhostUserError } from './errors.js';

/** Which queue region layout a buffer holds: split or packed virtqueues. */
export type InflightLayout = 'split' | 'packed';

/** Counters at or above this are refused (the global counter must never wrap). */
const COUNTER_LIMIT = 1n << 63n;

/** Bytes of one queue's region (64-byte aligned so that queues never share a cache line). */
export function inflightQueueSize(queueSize: number, layout: InflightLayout = 'split'): number {
  const bytes =
    layout === 'packed'
      ? INFLIGHT_PACKED_HEADER_SIZE + INFLIGHT_PACKED_DESC_SIZE * queueSize
      : INFLIGHT_SPLIT_HEADER_SIZE + INFLIGHT_SPLIT_DESC_SIZE * queueSize;
  return Math.ceil(bytes / INFLIGHT_ALIGN) * INFLIGHT_ALIGN;
}

function corrupt(message: string): VhostUserError {
  return new VhostUserError(`inflight region: ${message}`, 'INFLIGHT_CORRUPT');
}

/** One queue's split region (QueueRegionSplit) inside the inflight buffer. */
export class InflightQueue {
  readonly size: number;
  readonly #v: DataView;
  #batch: number[] = [];

  constructor(bytes: Uint8Array, size: number) {
    this.size = size;
    this.#v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  get version(): number {
    return this.#v.getUint16(8, true);
  }

  get usedIdx(): number {
    return this.#v.getUint16(14, true);
  }

  #desc(i: number): number {
    return INFLIGHT_SPLIT_HEADER_SIZE + i * INFLIGHT_SPLIT_DESC_SIZE;
  }

  inflight(head: number): boolean {
    return this.#v.getUint8(this.#desc(head)) === 1;
  }

  counter(head: number): bigint {
    return this.#v.getBigUint64(this.#desc(head) + 8, true);
  }

  /** A fresh region (version 0 means uninitialised): nothing inflight, used_idx as in the ring. */
  init(usedIdx: number): void {
    new Uint8Array(this.#v.buffer, this.#v.byteOffset, this.#v.byteLength).fill(0);
    this.#v.setUint16(8, INFLIGHT_VERSION, true);
    this.#v.setUint16(10, this.size, true);
    this.#v.setUint16(14, usedIdx, true);
  }

  /** "When receiving available buffers": counter, then inflight = 1. */
  fetched(head: number, counter: bigint): void {
    const d = this.#desc(head);
    this.#v.setBigUint64(d + 8, counter, true);
    this.#v.setUint8(d, 1);
  }

  /** "When supplying used buffers", steps 1-3: chain the head into the last batch. */
  used(head: number): void {
    this.#v.setUint16(this.#desc(head) + 6, this.#v.getUint16(12, true), true);
    this.#v.setUint16(12, head, true);
    this.#batch.push(head);
  }

  /** After used.idx was stored: inflight = 0 for the batch, used_idx = used.idx. */
  published(usedIdx: number): void {
    for (const h of this.#batch) this.#v.setUint8(this.#desc(h), 0);
    this.#batch = [];
    this.#v.setUint16(14, usedIdx, true);
  }

  /**
   * "When reconnecting": repairs the last batch if the old back-end died
   * between storing used.idx and clearing the batch, then returns the heads
   * still inflight in the order they were fetched (counter order).
   */
  recover(ringUsedIdx: number): number[] {
    const v = this.#v;
    if (this.version !== INFLIGHT_VERSION)
      throw corrupt(`version ${this.version} is not ${INFLIGHT_VERSION}`);
    if (v.getUint16(10, true) !== this.size) {
      throw corrupt(`it describes ${v.getUint16(10, true)} descriptors, the queue has ${this.size}`);
    }
    const batch = (ringUsedIdx - this.usedIdx) & 0xffff;
    if (batch > this.size) throw corrupt(`used_idx is ${batch} entries behind the used ring`);
    let head = v.getUint16(12, true);
    for (let i = 0; i < batch; i++) {
      if (head >= this.size) throw corrupt(`the last batch list points past the queue (${head})`);
      v.setUint8(this.#desc(head), 0);
      head = v.getUint16(this.#desc(head) + 6, true);
    }
    v.setUint16(14, ringUsedIdx, true);
    const heads: number[] = [];
    for (let i = 0; i < this.size; i++) {
      const f = v.getUint8(this.#desc(i));
      if (f > 1) throw corrupt(`descriptor ${i} has inflight = ${f}, not 0 or 1`);
      if (f === 1) {
        if (this.counter(i) >= COUNTER_LIMIT) throw corrupt(`descriptor ${i} has counter ${this.counter(i)}`);
        heads.push(i);
      }
    }
    heads.sort((a, b) => {
      const x = this.counter(a);
      const y = this.counter(b);
      return x < y ? -1 : x > y ? 1 : 0;
    });
    return heads;
  }

  /** The largest counter in the region (the global counter resumes above it; absurd ones are ignored). */
  maxCounter(): bigint {
    let m = 0n;
    for (let i = 0; i < this.size; i++) {
      const c = this.counter(i);
      if (c > m && c < COUNTER_LIMIT) m = c;
    }
    return m;
  }
}

/** One descriptor as the driver wrote it in the packed descriptor ring. */
export interface PackedDescriptor {
  addr: bigint;
  len: number;
  id: number;
  flags: number;
}

/** One DescStatePacked entry, decoded. */
export interface PackedEntry extends PackedDescriptor {
  inflight: number;
  next: number;
  last: number;
  num: number;
  counter: bigint;
}

/** What packed recovery found. */
export interface PackedRecovery {
  /** Buffer ids (of each chain's last descriptor) still inflight, in fetch (counter) order. */
  ids: number[];
  /** Their head entries in the region, same order. */
  entries: number[];
  /** The device's used position and wrap counter to resume at. */
  usedIdx: number;
  usedWrap: boolean;
  /** Whether the last batch had reached the ring and was committed (else it was rolled back). */
  committedBatch: boolean | undefined;
}

/** Packed descriptor flags (VIRTIO 2.8.1): the ownership bits the recovery compares. */
const F_AVAIL = 1 << 7;
const F_USED = 1 << 15;

/**
 * One queue's packed region (QueueRegionPacked). The entries form a free list
 * (linked by `next`, ending at desc_num); each chain the device takes occupies
 * one entry per descriptor, taken from the free list in order, and its head
 * entry holds num, last, counter and inflight.
 */
export class PackedInflightQueue {
  readonly size: number;
  readonly #v: DataView;

  constructor(bytes: Uint8Array, size: number) {
    this.size = size;
    this.#v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  get version(): number {
    return this.#v.getUint16(8, true);
  }
  get descNum(): number {
    return this.#v.getUint16(10, true);
  }
  get freeHead(): number {
    return this.#v.getUint16(12, true);
  }
  get oldFreeHead(): number {
    return this.#v.getUint16(14, true);
  }
  get usedIdx(): number {
    return this.#v.getUint16(16, true);
  }
  get oldUsedIdx(): number {
    return this.#v.getUint16(18, true);
  }
  get usedWrap(): number {
    return this.#v.getUint8(20);
  }
  get oldUsedWrap(): number {
    return this.#v.getUint8(21);
  }

  #d(i: number): number {
    return INFLIGHT_PACKED_HEADER_SIZE + i * INFLIGHT_PACKED_DESC_SIZE;
  }

  /** Entry i, decoded (for tests and diagnostics). */
  entry(i: number): PackedEntry {
    const v = this.#v;
    const d = this.#d(i);
    return {
      inflight: v.getUint8(d),
      next: v.getUint16(d + 2, true),
      last: v.getUint16(d + 4, true),
      num: v.getUint16(d + 6, true),
      counter: v.getBigUint64(d + 8, true),
      id: v.getUint16(d + 16, true),
      flags: v.getUint16(d + 18, true),
      len: v.getUint32(d + 20, true),
      addr: v.getBigUint64(d + 24, true),
    };
  }

  /**
   * A fresh region: every entry free (next = i + 1, the list ends at
   * desc_num), nothing inflight, the device's used position as given. The
   * version is written last, so a region half initialised reads as
   * uninitialised.
   */
  init(usedIdx: number, usedWrap: boolean): void {
    const v = this.#v;
    new Uint8Array(v.buffer, v.byteOffset, v.byteLength).fill(0);
    v.setUint16(10, this.size, true);
    for (let i = 0; i < this.size; i++) v.setUint16(this.#d(i) + 2, i + 1, true);
    v.setUint16(16, usedIdx, true);
    v.setUint16(18, usedIdx, true);
    v.setUint8(20, usedWrap ? 1 : 0);
    v.setUint8(21, usedWrap ? 1 : 0);
    v.setUint16(8, INFLIGHT_VERSION, true);
  }

  /**
   * "When receiving available buffers", for the descriptors of one chain in
   * ring order: the head entry (old_free_head) gets num, counter, inflight and
   * last; each descriptor is copied into the entry at free_head, which then
   * moves along the free list. Returns the head entry.
   */
  fetch(descs: readonly PackedDescriptor[], counter: bigint): number {
    const v = this.#v;
    const n = this.size;
    if (descs.length === 0 || descs.length > n) {
      throw new VhostUserError(`a chain of ${descs.length} descriptors cannot be tracked`, 'INVALID_STATE');
    }
    const head = v.getUint16(14, true);
    if (head >= n) throw new VhostUserError('inflight free list is exhausted', 'INVALID_STATE');
    const h = this.#d(head);
    for (let k = 0; k < descs.length; k++) {
      const d = descs[k]!;
      const free = v.getUint16(12, true);
      if (free >= n) throw new VhostUserError('inflight free list is exhausted', 'INVALID_STATE');
      if (k === 0) {
        v.setUint16(h + 6, 0, true);
        v.setBigUint64(h + 8, counter, true);
        v.setUint8(h, 1);
      }
      const last = k === descs.length - 1;
      if (last) v.setUint16(h + 4, free, true);
      v.setUint16(h + 6, v.getUint16(h + 6, true) + 1, true);
      const e = this.#d(free);
      v.setBigUint64(e + 24, d.addr, true);
      v.setUint32(e + 20, d.len, true);
      v.setUint16(e + 18, d.flags, true);
      v.setUint16(e + 16, d.id, true);
      const next = v.getUint16(e + 2, true);
      v.setUint16(12, next, true);
      if (last) v.setUint16(14, next, true);
    }
    return head;
  }

  /**
   * "When supplying used buffers", before the ring's flags are written: each
   * chain's entries go back to the front of the free list, and used_idx (with
   * its wrap counter) moves on by the descriptors the batch covers.
   */
  release(heads: readonly number[]): void {
    const v = this.#v;
    const n = this.size;
    let used = v.getUint16(16, true);
    let wrap = v.getUint8(20);
    for (const e of heads) {
      const d = this.#d(e);
      const last = v.getUint16(d + 4, true);
      v.setUint16(this.#d(last) + 2, v.getUint16(12, true), true);
      v.setUint16(12, e, true);
      used += v.getUint16(d + 6, true);
      if (used >= n) {
        used -= n;
        wrap ^= 1;
      }
    }
    v.setUint16(16, used, true);
    v.setUint8(20, wrap);
  }

  /** After the ring's flags were written: the batch is no longer inflight; old_* = current. */
  commit(heads: readonly number[]): void {
    const v = this.#v;
    for (const e of heads) v.setUint8(this.#d(e), 0);
    v.setUint16(14, v.getUint16(12, true), true);
    v.setUint16(18, v.getUint16(16, true), true);
    v.setUint8(21, v.getUint8(20));
  }

  /**
   * "When reconnecting". `ringFlags(pos)` reads the flags of the descriptor
   * ring entry at `pos`. Decides whether an unfinished batch reached the
   * ring (commit) or not (roll back), clears inflight along the free list,
   * then validates the chains still inflight (each a list of `num` entries
   * ending at `last`, disjoint, with distinct buffer ids and counters) and
   * returns them in fetch order.
   */
  recover(ringFlags: (pos: number) => number): PackedRecovery {
    const v = this.#v;
    const n = this.size;
    if (this.version !== INFLIGHT_VERSION)
      throw corrupt(`version ${this.version} is not ${INFLIGHT_VERSION}`);
    if (this.descNum !== n) throw corrupt(`it describes ${this.descNum} descriptors, the queue has ${n}`);
    for (const [name, value, max] of [
      ['free_head', this.freeHead, n],
      ['old_free_head', this.oldFreeHead, n],
      ['used_idx', this.usedIdx, n - 1],
      ['old_used_idx', this.oldUsedIdx, n - 1],
      ['used_wrap_counter', this.usedWrap, 1],
      ['old_used_wrap_counter', this.oldUsedWrap, 1],
    ] as const) {
      if (value > max) throw corrupt(`${name} is ${value}, above ${max}`);
    }
    let committedBatch: boolean | undefined;
    if (this.usedIdx !== this.oldUsedIdx || this.usedWrap !== this.oldUsedWrap) {
      // Was the batch's first used descriptor written? Then the ring no longer
      // shows it available in the old wrap: commit the update.
      const w = this.oldUsedWrap === 1;
      const availFlags = (w ? F_AVAIL : 0) | (w ? 0 : F_USED);
      const f = ringFlags(this.oldUsedIdx);
      committedBatch = (f & (F_AVAIL | F_USED)) !== availFlags;
      if (committedBatch) {
        v.setUint16(14, this.freeHead, true);
        v.setUint16(18, this.usedIdx, true);
        v.setUint8(21, this.usedWrap);
      }
    }
    // roll back whatever is still in progress
    v.setUint16(12, this.oldFreeHead, true);
    v.setUint16(16, this.oldUsedIdx, true);
    v.setUint8(20, this.oldUsedWrap);
    // 0 = unseen, 1 = on the free list, 2 = part of an inflight chain
    const owner = new Uint8Array(n);
    let free = this.freeHead;
    for (let steps = 0; free !== n; steps++) {
      if (free > n) throw corrupt(`the free list points past the queue (${free})`);
      if (owner[free] !== 0) throw corrupt(`the free list loops at entry ${free}`);
      if (steps >= n) throw corrupt('the free list is longer than the queue');
      owner[free] = 1;
      const d = this.#d(free);
      v.setUint8(d, 0);
      free = v.getUint16(d + 2, true);
    }
    const entries: number[] = [];
    const ids: number[] = [];
    const idSeen = new Uint8Array(n);
    const counters = new Set<bigint>();
    for (let i = 0; i < n; i++) {
      const d = this.#d(i);
      const f = v.getUint8(d);
      if (f > 1) throw corrupt(`entry ${i} has inflight = ${f}, not 0 or 1`);
      if (f === 0) continue;
      const num = v.getUint16(d + 6, true);
      const last = v.getUint16(d + 4, true);
      const counter = v.getBigUint64(d + 8, true);
      if (num < 1 || num > n) throw corrupt(`inflight entry ${i} has num = ${num} (queue of ${n})`);
      if (last >= n) throw corrupt(`inflight entry ${i} has last = ${last}, past the queue`);
      if (counter >= COUNTER_LIMIT) throw corrupt(`inflight entry ${i} has counter ${counter}`);
      if (counters.has(counter)) throw corrupt(`two inflight chains have counter ${counter}`);
      counters.add(counter);
      let e = i;
      for (let k = 0; ; k++) {
        if (owner[e] !== 0) {
          throw corrupt(
            `inflight chain at entry ${i} runs into entry ${e}, which is ${owner[e] === 1 ? 'free' : 'in another chain'}`,
          );
        }
        owner[e] = 2;
        if (k === num - 1) break;
        e = v.getUint16(this.#d(e) + 2, true);
        if (e >= n) throw corrupt(`inflight chain at entry ${i} points past the queue (${e})`);
      }
      if (e !== last) throw corrupt(`inflight chain at entry ${i} ends at entry ${e}, its last is ${last}`);
      const id = v.getUint16(this.#d(last) + 16, true);
      if (id >= n) throw corrupt(`inflight chain at entry ${i} has buffer id ${id}, not below ${n}`);
      if (idSeen[id]) throw corrupt(`buffer id ${id} is inflight twice`);
      idSeen[id] = 1;
      entries.push(i);
    }
    entries.sort((a, b) => {
      const x = v.getBigUint64(this.#d(a) + 8, true);
      const y = v.getBigUint64(this.#d(b) + 8, true);
      return x < y ? -1 : x > y ? 1 : 0;
    });
    for (const i of entries) ids.push(v.getUint16(this.#d(v.getUint16(this.#d(i) + 4, true)) + 16, true));
    return { ids, entries, usedIdx: this.usedIdx, usedWrap: this.usedWrap === 1, committedBatch };
  }

  /** The largest counter in the region (the global counter resumes above it; absurd ones are ignored). */
  maxCounter(): bigint {
    let m = 0n;
    for (let i = 0; i < this.size; i++) {
      const c = this.#v.getBigUint64(this.#d(i) + 8, true);
      if (c > m && c < COUNTER_LIMIT) m = c;
    }
    return m;
  }
}

/**
 * @internal The bookkeeping a tracked queue runs (BackendQueue calls it around
 * pop, addUsed and publishing).
 */
export interface InflightTracker {
  /** A chain was taken: `head` as pop() returned it, `descriptors` ring entries. */
  fetched(head: number, descriptors: number, ring: DeviceQueue): void;
  /** A used element was recorded for `head`. */
  used(head: number): void;
  /** Just before the ring's used elements are published. */
  publishing(): void;
  /** Just after. */
  published(ring: DeviceQueue): void;
}

/** @internal Split rings: entries indexed by head. */
export class SplitTracker implements InflightTracker {
  readonly buffer: InflightBuffer;
  readonly queue: InflightQueue;
  constructor(buffer: InflightBuffer, queue: InflightQueue) {
    this.buffer = buffer;
    this.queue = queue;
  }
  fetched(head: number): void {
    this.buffer.counter++;
    this.queue.fetched(head, this.buffer.counter);
  }
  used(head: number): void {
    this.queue.used(head);
  }
  publishing(): void {}
  published(ring: DeviceQueue): void {
    this.queue.published(ring.state().nextUsed);
  }
}

/**
 * @internal Packed rings: each chain's descriptors are read back from the
 * descriptor ring (where pop() found them) into free entries; used chains are
 * released when their batch is published, so a chain taken meanwhile never
 * reuses the entries of one not yet completed in the ring.
 */
export class PackedTracker implements InflightTracker {
  readonly buffer: InflightBuffer;
  readonly queue: PackedInflightQueue;
  readonly #memory: GuestMemory;
  /** Guest address of the descriptor ring (updated when a new memory table moves it). */
  descRing: bigint;
  readonly #entryOf: Int32Array;
  #batch: number[] = [];

  constructor(buffer: InflightBuffer, queue: PackedInflightQueue, memory: GuestMemory, descRing: bigint) {
    this.buffer = buffer;
    this.queue = queue;
    this.#memory = memory;
    this.descRing = descRing;
    this.#entryOf = new Int32Array(queue.size).fill(-1);
  }

  fetched(head: number, descriptors: number, ring: DeviceQueue): void {
    const n = this.queue.size;
    const after = ring.state().nextAvail;
    let pos = (after - descriptors + n * 2) % n;
    const descs: PackedDescriptor[] = [];
    for (let k = 0; k < descriptors; k++) {
      const b = this.#memory.slice(this.descRing + BigInt(pos * 16), 16);
      const dv = new DataView(b.buffer, b.byteOffset, 16);
      descs.push({
        addr: dv.getBigUint64(0, true),
        len: dv.getUint32(8, true),
        id: dv.getUint16(12, true),
        flags: dv.getUint16(14, true),
      });
      pos = pos + 1 === n ? 0 : pos + 1;
    }
    this.buffer.counter++;
    this.#entryOf[head] = this.queue.fetch(descs, this.buffer.counter);
  }

  used(head: number): void {
    const e = this.#entryOf[head];
    if (e === undefined || e < 0) return; // taken before tracking began
    this.#entryOf[head] = -1;
    this.#batch.push(e);
  }

  publishing(): void {
    if (this.#batch.length > 0) this.queue.release(this.#batch);
  }

  published(): void {
    if (this.#batch.length === 0) return;
    this.queue.commit(this.#batch);
    this.#batch = [];
  }
}

/** The whole inflight buffer: one region per queue, all of one layout. */
export class InflightBuffer implements Disposable {
  readonly fd: Fd;
  readonly numQueues: number;
  readonly queueSize: number;
  readonly mmapSize: number;
  readonly mmapOffset: number;
  readonly #mapping: Mapping<ArrayBuffer>;
  #layout: InflightLayout | undefined;
  #split: InflightQueue[] | undefined;
  #packed: PackedInflightQueue[] | undefined;
  /** The global counter (resumes above the largest counter in the regions). */
  counter = 0n;

  private constructor(
    fd: Fd,
    mmapOffset: number,
    mapped: number,
    numQueues: number,
    queueSize: number,
    layout: InflightLayout | undefined,
  ) {
    this.fd = fd;
    this.numQueues = numQueues;
    this.queueSize = queueSize;
    this.mmapSize = mapped;
    this.mmapOffset = mmapOffset;
    this.#layout = layout;
    if (fstat(fd).size < mmapOffset + mapped) {
      throw new VhostUserError(
        `inflight fd holds ${fstat(fd).size} bytes, less than ${mmapOffset} + ${mapped}`,
        'REGION_FD_TOO_SMALL',
      );
    }
    // map from offset 0 (mmap_offset need not be page aligned)
    this.#mapping = mmap(fd, { length: mmapOffset + mapped, offset: 0 });
  }

  /** The layout, once known (given at creation, or fixed by the first queue asked for). */
  get layout(): InflightLayout | undefined {
    return this.#layout;
  }

  static validate(numQueues: number, queueSize: number): void {
    if (numQueues < 1 || numQueues > 256 || queueSize < 1 || queueSize > 32768) {
      throw new VhostUserError(
        `inflight buffer for ${numQueues} queues of ${queueSize} is out of range`,
        'INVALID_PARAMETER',
      );
    }
  }

  /**
   * GET_INFLIGHT_FD: a new zeroed buffer in a memfd. Without a layout (the
   * ring type is not negotiated yet) it is sized for the larger, packed one
   * and either layout fits.
   */
  static create(numQueues: number, queueSize: number, layout?: InflightLayout): InflightBuffer {
    InflightBuffer.validate(numQueues, queueSize);
    const size = inflightQueueSize(queueSize, layout ?? 'packed') * numQueues;
    const fd = memfdCreate('vipc-inflight', { size });
    try {
      return new InflightBuffer(fd, 0, size, numQueues, queueSize, layout);
    } catch (err) {
      fd.close();
      throw err;
    }
  }

  /**
   * SET_INFLIGHT_FD: the buffer a front-end kept for us. Takes ownership of
   * fd. Maps at most what the layout needs (the packed one when the layout is
   * not known yet), and at least what the split one does.
   */
  static adopt(
    fd: Fd,
    mmapSize: bigint,
    mmapOffset: bigint,
    numQueues: number,
    queueSize: number,
    layout?: InflightLayout,
  ): InflightBuffer {
    try {
      InflightBuffer.validate(numQueues, queueSize);
      const need = inflightQueueSize(queueSize, layout ?? 'split') * numQueues;
      const most = inflightQueueSize(queueSize, layout ?? 'packed') * numQueues;
      if (mmapSize < BigInt(need) || mmapOffset > BigInt(Number.MAX_SAFE_INTEGER - most)) {
        throw new VhostUserError(
          `inflight mmap_size ${mmapSize} (offset ${mmapOffset}) does not hold ${numQueues} ${layout ?? 'split'} regions of ${queueSize}`,
          'INVALID_PARAMETER',
        );
      }
      const mapped = mmapSize < BigInt(most) ? Number(mmapSize) : most;
      return new InflightBuffer(fd, Number(mmapOffset), mapped, numQueues, queueSize, layout);
    } catch (err) {
      fd.close();
      throw err;
    }
  }

  #regions(layout: InflightLayout): Uint8Array[] {
    if (this.#layout !== undefined && this.#layout !== layout) {
      throw new VhostUserError(
        `the inflight buffer holds ${this.#layout} regions, a ${layout} queue cannot use it`,
        'INVALID_STATE',
      );
    }
    const per = inflightQueueSize(this.queueSize, layout);
    if (per * this.numQueues > this.mmapSize) {
      throw new VhostUserError(
        `inflight buffer of ${this.mmapSize} bytes is too small for ${this.numQueues} ${layout} regions of ${this.queueSize} (${per * this.numQueues})`,
        'INVALID_PARAMETER',
      );
    }
    this.#layout = layout;
    return Array.from(
      { length: this.numQueues },
      (_, i) => new Uint8Array(this.#mapping.buffer, this.mmapOffset + i * per, per),
    );
  }

  #resume(max: bigint): void {
    if (max > this.counter) this.counter = max;
  }

  /** Queue i's split region (fixes the layout to split). */
  splitQueue(i: number): InflightQueue {
    if (this.#split === undefined) {
      this.#split = this.#regions('split').map((b) => new InflightQueue(b, this.queueSize));
      for (const q of this.#split) this.#resume(q.maxCounter());
    }
    return this.#queue(this.#split, i);
  }

  /** Queue i's packed region (fixes the layout to packed). */
  packedQueue(i: number): PackedInflightQueue {
    if (this.#packed === undefined) {
      this.#packed = this.#regions('packed').map((b) => new PackedInflightQueue(b, this.queueSize));
      for (const q of this.#packed) this.#resume(q.maxCounter());
    }
    return this.#queue(this.#packed, i);
  }

  #queue<T>(list: T[], i: number): T {
    const q = list[i];
    if (q === undefined) {
      throw new VhostUserError(
        `inflight buffer has no queue ${i} (${this.numQueues} queues)`,
        'INVALID_ARGUMENT',
      );
    }
    return q;
  }

  /** Zeroes every region (version 0: uninitialised), e.g. after RESET_DEVICE. */
  clear(): void {
    new Uint8Array(this.#mapping.buffer, this.mmapOffset, this.mmapSize).fill(0);
    this.counter = 0n;
  }

  close(): void {
    this.#mapping.unmap();
    this.fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
