import { VringError } from '../errors.js';
import { PackedDeviceQueue } from '../packed-device-queue.js';
import { PackedDriverQueue } from '../packed-driver-queue.js';
import type { PackedQueueAddresses } from '../queue-state.js';
import { SplitDeviceQueue } from '../split-device-queue.js';
import { type DriverBuffer, SplitDriverQueue } from '../split-driver-queue.js';
import { createTestQueueMemory, type TestQueueMemory, type TestQueueOptions } from './queue-memory.js';

/** What a MockDriver gets back for a chain. */
export interface MockUsed {
  token: unknown;
  /** Bytes the device said it wrote. */
  len: number;
  /** Those bytes, copied out of the writable buffers. */
  data: Uint8Array;
}

export interface MockSendOptions {
  /** Device-writable bytes to offer after the readable data (default 0). */
  writable?: number;
  /** Split the readable data into buffers of at most this many bytes (default: one buffer). */
  segment?: number;
  /** Put the chain in an indirect table (needs features.indirect). */
  indirect?: boolean;
  token?: unknown;
  /** Publish at once (default true). */
  publish?: boolean;
}

/**
 * A virtio driver for tests: owns a ring and buffer space in a fresh buffer,
 * sends byte strings as chains and collects what the device wrote. Point the
 * device under test at `memory` and `addresses` (or take `deviceQueue()`).
 */
export class MockDriver {
  readonly mem: TestQueueMemory;
  readonly queue: SplitDriverQueue | PackedDriverQueue;
  /** publish() calls that asked for a kick. */
  kicks = 0;
  #slots: number[];
  #inflight = new Map<number, { slot: number; writable: { addr: bigint; len: number }[]; token: unknown }>();
  #bytes: Uint8Array;

  constructor(opts: TestQueueOptions = {}) {
    this.mem = createTestQueueMemory(opts);
    const q = { memory: this.mem.memory, size: this.mem.size, features: this.mem.features };
    this.queue =
      this.mem.kind === 'split'
        ? new SplitDriverQueue({ ...q, addresses: this.mem.addresses as never })
        : new PackedDriverQueue({ ...q, addresses: this.mem.addresses as PackedQueueAddresses });
    this.#slots = Array.from({ length: this.mem.size }, (_, i) => this.mem.size - 1 - i);
    this.#bytes = new Uint8Array(this.mem.buffer);
  }

  get memory() {
    return this.mem.memory;
  }
  get addresses() {
    return this.mem.addresses;
  }
  get size() {
    return this.mem.size;
  }

  /** A device queue over the same ring (to drive the device side by hand). */
  deviceQueue(): SplitDeviceQueue | PackedDeviceQueue {
    const q = { memory: this.mem.memory, size: this.mem.size, features: this.mem.features };
    return this.mem.kind === 'split'
      ? new SplitDeviceQueue({ ...q, addresses: this.mem.addresses as never })
      : new PackedDeviceQueue({ ...q, addresses: this.mem.addresses as PackedQueueAddresses });
  }

  /**
   * Adds one chain: `data` as device-readable bytes, then `writable` bytes of
   * device-writable space. Returns the head id, or -1 when the ring is full.
   */
  send(data: Uint8Array | string, opts: MockSendOptions = {}): number {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    const writable = opts.writable ?? 0;
    const seg = opts.segment ?? Math.max(1, bytes.length);
    const nReadable = bytes.length === 0 ? 0 : Math.ceil(bytes.length / seg);
    const tableBytes = opts.indirect ? 16 * (nReadable + (writable > 0 ? 1 : 0)) + 15 : 0;
    const need = bytes.length + writable + tableBytes;
    if (need > this.mem.slotBytes) {
      throw new VringError(
        'INVALID_ARGUMENT',
        `a chain of ${need} bytes does not fit a ${this.mem.slotBytes}-byte slot`,
      );
    }
    if (nReadable === 0 && writable === 0)
      throw new VringError('INVALID_ARGUMENT', 'a chain needs some bytes');
    const slot = this.#slots.pop();
    if (slot === undefined) return -1;
    const base = this.mem.data + BigInt(slot * this.mem.slotBytes);
    this.#bytes.set(bytes, this.mem.offsetOf(base));
    const buffers: DriverBuffer[] = [];
    for (let o = 0; o < bytes.length; o += seg) {
      buffers.push({ addr: base + BigInt(o), len: Math.min(seg, bytes.length - o) });
    }
    const w = writable > 0 ? [{ addr: base + BigInt(bytes.length), len: writable }] : [];
    for (const b of w) buffers.push({ ...b, writable: true });
    const table = base + BigInt(bytes.length + writable);
    const head = this.queue.add(
      buffers,
      undefined,
      opts.indirect ? { indirectTable: (table + 15n) & ~15n } : undefined,
    );
    if (head < 0) {
      this.#slots.push(slot);
      return -1;
    }
    this.#inflight.set(head, { slot, writable: w, token: opts.token });
    if (opts.publish !== false) this.publish();
    return head;
  }

  publish(): boolean {
    const kick = this.queue.publish();
    if (kick) this.kicks++;
    return kick;
  }

  /** Every used chain returned so far, with the bytes the device wrote. */
  collect(): MockUsed[] {
    const out: MockUsed[] = [];
    for (let u = this.queue.popUsed(); u !== null; u = this.queue.popUsed()) {
      const rec = this.#inflight.get(u.head);
      if (rec === undefined)
        throw new VringError('INVALID_USED_ID', `used head ${u.head} was not sent by this MockDriver`);
      this.#inflight.delete(u.head);
      this.#slots.push(rec.slot);
      const data = new Uint8Array(u.len);
      let pos = 0;
      for (const w of rec.writable) {
        const n = Math.min(w.len, u.len - pos);
        const o = this.mem.offsetOf(w.addr);
        data.set(this.#bytes.subarray(o, o + n), pos);
        pos += n;
      }
      out.push({ token: rec.token, len: u.len, data });
    }
    return out;
  }

  /** Chains sent and not collected yet. */
  get pending(): number {
    return this.#inflight.size;
  }
}
