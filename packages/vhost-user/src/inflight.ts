/**
 * Inflight I/O tracking (vhost-user "Inflight I/O tracking",
 * INFLIGHT_SHMFD), split virtqueues: the shared buffer the back-end allocates
 * for GET_INFLIGHT_FD and gets back with SET_INFLIGHT_FD after a restart, its
 * QueueRegionSplit / DescStateSplit layout, the bookkeeping while a queue
 * runs, and the recovery algorithm.
 *
 * QueueRegionSplit: u64 features, u16 version, u16 desc_num, u16
 * last_batch_head, u16 used_idx, then desc_num DescStateSplit of 16 bytes:
 * u8 inflight, u8 padding[5], u16 next, u64 counter.
 */
import { type Fd, fstat, type Mapping, memfdCreate, mmap } from '@vipc/shm';
import { INFLIGHT_SPLIT_DESC_SIZE, INFLIGHT_SPLIT_HEADER_SIZE, INFLIGHT_VERSION } from './defs.js';
import { VhostUserError } from './errors.js';

/** Bytes of one queue's region (64-byte aligned so that queues never share a cache line). */
export function inflightQueueSize(queueSize: number): number {
  return Math.ceil((INFLIGHT_SPLIT_HEADER_SIZE + INFLIGHT_SPLIT_DESC_SIZE * queueSize) / 64) * 64;
}

/** One queue's region inside the inflight buffer. */
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
    if (v.getUint16(10, true) !== this.size) {
      throw new VhostUserError(
        `inflight region describes ${v.getUint16(10, true)} descriptors, the queue has ${this.size}`,
        'INVALID_PARAMETER',
      );
    }
    const batch = (ringUsedIdx - this.usedIdx) & 0xffff;
    if (batch > this.size) {
      throw new VhostUserError(
        `inflight used_idx is ${batch} entries behind the used ring`,
        'INVALID_PARAMETER',
      );
    }
    let head = v.getUint16(12, true);
    for (let i = 0; i < batch; i++) {
      if (head >= this.size)
        throw new VhostUserError('inflight batch list points past the queue', 'INVALID_PARAMETER');
      v.setUint8(this.#desc(head), 0);
      head = v.getUint16(this.#desc(head) + 6, true);
    }
    v.setUint16(14, ringUsedIdx, true);
    const heads: number[] = [];
    for (let i = 0; i < this.size; i++) if (this.inflight(i)) heads.push(i);
    heads.sort((a, b) => {
      const x = this.counter(a);
      const y = this.counter(b);
      return x < y ? -1 : x > y ? 1 : 0;
    });
    return heads;
  }

  /** The largest counter in the region (the global counter resumes above it). */
  maxCounter(): bigint {
    let m = 0n;
    for (let i = 0; i < this.size; i++) {
      const c = this.counter(i);
      if (c > m) m = c;
    }
    return m;
  }
}

/** The whole inflight buffer: one region per queue. */
export class InflightBuffer implements Disposable {
  readonly fd: Fd;
  readonly numQueues: number;
  readonly queueSize: number;
  readonly mmapSize: number;
  readonly mmapOffset: number;
  readonly #mapping: Mapping<ArrayBuffer>;
  readonly queues: InflightQueue[];
  counter = 0n;

  private constructor(fd: Fd, mmapOffset: number, numQueues: number, queueSize: number) {
    const per = inflightQueueSize(queueSize);
    this.fd = fd;
    this.numQueues = numQueues;
    this.queueSize = queueSize;
    this.mmapSize = per * numQueues;
    this.mmapOffset = mmapOffset;
    if (fstat(fd).size < mmapOffset + this.mmapSize) {
      throw new VhostUserError(
        `inflight fd holds ${fstat(fd).size} bytes, less than ${mmapOffset} + ${this.mmapSize}`,
        'REGION_FD_TOO_SMALL',
      );
    }
    // map from offset 0 (mmap_offset need not be page aligned)
    this.#mapping = mmap(fd, { length: mmapOffset + this.mmapSize, offset: 0 });
    this.queues = Array.from(
      { length: numQueues },
      (_, i) => new InflightQueue(new Uint8Array(this.#mapping.buffer, mmapOffset + i * per, per), queueSize),
    );
    for (const q of this.queues) if (q.maxCounter() > this.counter) this.counter = q.maxCounter();
  }

  static validate(numQueues: number, queueSize: number): void {
    if (numQueues < 1 || numQueues > 256 || queueSize < 1 || queueSize > 32768) {
      throw new VhostUserError(
        `inflight buffer for ${numQueues} queues of ${queueSize} is out of range`,
        'INVALID_PARAMETER',
      );
    }
  }

  /** GET_INFLIGHT_FD: a new zeroed buffer in a memfd. */
  static create(numQueues: number, queueSize: number): InflightBuffer {
    InflightBuffer.validate(numQueues, queueSize);
    const fd = memfdCreate('vipc-inflight', { size: inflightQueueSize(queueSize) * numQueues });
    try {
      return new InflightBuffer(fd, 0, numQueues, queueSize);
    } catch (err) {
      fd.close();
      throw err;
    }
  }

  /** SET_INFLIGHT_FD: the buffer a front-end kept for us. Takes ownership of fd. */
  static adopt(
    fd: Fd,
    mmapSize: bigint,
    mmapOffset: bigint,
    numQueues: number,
    queueSize: number,
  ): InflightBuffer {
    try {
      InflightBuffer.validate(numQueues, queueSize);
      const per = inflightQueueSize(queueSize);
      if (mmapSize < BigInt(per * numQueues) || mmapOffset > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new VhostUserError(
          `inflight mmap_size ${mmapSize} is too small for ${numQueues} queues of ${queueSize}`,
          'INVALID_PARAMETER',
        );
      }
      return new InflightBuffer(fd, Number(mmapOffset), numQueues, queueSize);
    } catch (err) {
      fd.close();
      throw err;
    }
  }

  close(): void {
    this.#mapping.unmap();
    this.fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
