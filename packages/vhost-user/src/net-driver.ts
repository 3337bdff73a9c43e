/**
 * A virtio-net driver on top of the front-end (VIRTIO 5.1.6): fills the
 * receive queue with buffer slots, transmits frames with a 12-byte
 * virtio_net_hdr, reassembles MRG_RXBUF frames.
 */
import { EventEmitter } from 'node:events';
import type { FdWatcher } from '@vipc/shm';
import type { DriverBuffer } from '@vipc/vring';
import {
  bit,
  hasBit,
  VIRTIO_NET_HDR_NUM_BUFFERS_OFFSET,
  VIRTIO_NET_HDR_SIZE,
  VirtioFeature,
  VirtioNetFeature,
} from './defs.js';
import { VhostUserError } from './errors.js';
import type { DriverQueue, FrontendQueue, VhostUserFrontend } from './frontend.js';
import { copyBytes } from './net-device.js';

/**
 * The allocation-free calls that both vring driver queues (SplitDriverQueue,
 * PackedDriverQueue, the only rings the front-end builds) have besides
 * DriverQueue's add() and popUsed().
 */
type HotDriverQueue = DriverQueue & {
  addBuffer(addr: number, len: number, token?: unknown, writable?: boolean): number;
  popUsedHead(): number;
  popUsedBatch(tokens: unknown[], lens?: Uint32Array, max?: number): number;
  readonly usedLen: number;
  readonly usedToken: unknown;
};

export interface NetDriverOptions {
  /** Queue pair (default 0). */
  pair?: number;
  /** 'event' (default): wake on call eventfds; 'poll': busy-poll the used rings. */
  mode?: 'event' | 'poll';
  /** Frames received (view valid during the call only; copy to keep). */
  onFrame?: (frame: Uint8Array) => void;
}

/** Features a virtio-net driver asks for (plus VERSION_1 from the front-end). */
export const NET_DRIVER_FEATURES = bit(VirtioNetFeature.MRG_RXBUF) | bit(VirtioNetFeature.STATUS);

/**
 * Events: 'writable' after send() returned false and transmit room came
 * back; 'error' (only if listened to) when a ring is found broken.
 */
export class VirtioNetDriver extends EventEmitter {
  readonly frontend: VhostUserFrontend;
  readonly rx: FrontendQueue;
  readonly tx: FrontendQueue;
  readonly mode: 'event' | 'poll';
  readonly stats = { sent: 0, sentBytes: 0, received: 0, receivedBytes: 0, rxErrors: 0 };
  onFrame: ((frame: Uint8Array) => void) | undefined;
  #hdr: number;
  #merge: boolean;
  #wantWritable = false;
  #watchers: FdWatcher[] = [];
  #poll: NodeJS.Immediate | undefined;
  #closed = false;
  #paused = false;
  // Used receive buffers not delivered yet (the start of a MRG_RXBUF frame whose
  // other buffers have not come back): a ring of slot numbers and lengths.
  #rxSlots: Int32Array;
  #rxLens: Int32Array;
  #rxStart = 0;
  #rxCount = 0;
  // Transmit hot path, reused from frame to frame (no allocation per frame):
  // buffer lists by chain length (#bufs[n] holds n entries, rewritten in place),
  // slot lists for the tokens of multi-slot frames (a one-slot frame's token is
  // its slot number), and each slot's guest address as a number.
  #bufs: DriverBuffer[][] = [];
  #slotLists: number[][] = [];
  #poolBase: number;
  // Tokens of the used transmit elements one popUsedBatch() call hands back
  // (as many as the ring has descriptors).
  #txUsed: unknown[];

  constructor(frontend: VhostUserFrontend, options: NetDriverOptions = {}) {
    super();
    const pair = options.pair ?? 0;
    const rx = frontend.queues[2 * pair];
    const tx = frontend.queues[2 * pair + 1];
    if (!frontend.started || rx === undefined || tx === undefined) {
      throw new VhostUserError(`the front-end has no started queue pair ${pair}`, 'INVALID_STATE');
    }
    this.frontend = frontend;
    this.rx = rx;
    this.tx = tx;
    this.mode = options.mode ?? 'event';
    this.onFrame = options.onFrame;
    const f = frontend.features;
    this.#merge = hasBit(f, VirtioNetFeature.MRG_RXBUF);
    this.#hdr = hasBit(f, VirtioFeature.VERSION_1) || this.#merge ? VIRTIO_NET_HDR_SIZE : 10;
    const pool = frontend.pool;
    // A number when every slot address is a safe integer (always, with the
    // front-end's layout); else -1, and add() gets BigInt addresses.
    const end = pool.base + BigInt(pool.count) * BigInt(pool.slotSize);
    this.#poolBase = end <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(pool.base) : -1;
    const rxSize = rx.ring.size;
    this.#rxSlots = new Int32Array(rxSize);
    this.#rxLens = new Int32Array(rxSize);
    this.#txUsed = new Array<unknown>(tx.ring.size).fill(undefined);
    this.#refill();
    if (this.mode === 'event') {
      this.#watchers.push(this.rx.call.watch(() => this.#serviceRx()));
      this.#watchers.push(this.tx.call.watch(() => this.#serviceTx()));
    } else {
      this.rx.ring.disableCallbacks();
      this.tx.ring.disableCallbacks();
      const loop = (): void => {
        if (this.#closed) return;
        this.poll();
        this.#poll = setImmediate(loop);
      };
      this.#poll = setImmediate(loop);
    }
  }

  /** Largest frame send() takes: the transmit chain may span up to 16 slots. */
  get maxFrame(): number {
    return 16 * this.frontend.pool.slotSize - this.#hdr;
  }

  #refill(): void {
    const pool = this.frontend.pool;
    const ring = this.rx.ring as HotDriverQueue;
    const base = this.#poolBase;
    let added = 0;
    // keep half of the slots for transmission
    while (ring.freeCount() > 0 && pool.available > pool.count / 2) {
      const slot = pool.alloc();
      if (base >= 0) ring.addBuffer(base + slot * pool.slotSize, pool.slotSize, slot, true);
      else ring.add([{ addr: pool.address(slot), len: pool.slotSize, writable: true }], slot);
      added++;
    }
    if (added > 0) this.rx.publish();
  }

  /** Processes both used rings once (poll mode calls this in a loop; safe to call anytime). */
  poll(): void {
    this.#serviceTx(false);
    this.#serviceRx(false);
  }

  #guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (this.listenerCount('error') > 0) this.emit('error', err);
      this.close();
    }
  }

  #serviceTx(rearm = this.mode === 'event'): void {
    this.#guard(() => {
      const pool = this.frontend.pool;
      const ring = this.tx.ring as HotDriverQueue;
      const used = this.#txUsed;
      for (;;) {
        // every used element, in batches (a broken element ends the batch before
        // it: the next call throws, after the valid ones were reclaimed)
        for (let n = ring.popUsedBatch(used); n > 0; n = ring.popUsedBatch(used)) {
          for (let k = 0; k < n; k++) {
            const t = used[k] as number | number[];
            if (typeof t === 'number') pool.free(t);
            else {
              for (let i = 0; i < t.length; i++) pool.free(t[i]!);
              this.#slotLists.push(t);
            }
          }
        }
        if (!rearm || !ring.enableCallbacks()) break;
      }
      if (this.#wantWritable && ring.freeCount() > 0) {
        this.#wantWritable = false;
        this.emit('writable');
      }
    });
  }

  /** Stops taking received frames (receiver back-pressure); resume() continues. */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    queueMicrotask(() => this.#serviceRx());
  }

  get paused(): boolean {
    return this.#paused;
  }

  #serviceRx(rearm = this.mode === 'event'): void {
    this.#guard(() => {
      const ring = this.rx.ring as HotDriverQueue;
      for (;;) {
        if (this.#paused) return;
        while (!this.#paused && ring.popUsedHead() !== -1) {
          // #deliver() leaves fewer than one frame's buffers (nb <= ring size) pending
          if (this.#rxCount === this.#rxSlots.length) {
            this.stats.rxErrors++;
            this.#dropPending(1);
          }
          const k = (this.#rxStart + this.#rxCount) % this.#rxSlots.length;
          this.#rxSlots[k] = ring.usedToken as number;
          this.#rxLens[k] = ring.usedLen;
          this.#rxCount++;
          this.#deliver();
        }
        if (!rearm || !ring.enableCallbacks()) break;
      }
      // slots of delivered frames go back to the ring
      this.#refill();
    });
  }

  /** Drops the first `n` pending receive buffers, giving their slots back to the pool. */
  #dropPending(n: number): void {
    const pool = this.frontend.pool;
    const cap = this.#rxSlots.length;
    for (let i = 0; i < n; i++) pool.free(this.#rxSlots[(this.#rxStart + i) % cap]!);
    this.#rxStart = (this.#rxStart + n) % cap;
    this.#rxCount -= n;
  }

  /** Delivers complete frames from the pending receive buffers. */
  #deliver(): void {
    const pool = this.frontend.pool;
    const bytes = pool.bytes;
    const slotSize = pool.slotSize;
    const hdr = this.#hdr;
    const cap = this.#rxSlots.length;
    while (this.#rxCount > 0) {
      const first = this.#rxStart;
      const len0 = this.#rxLens[first]!;
      const o0 = this.#rxSlots[first]! * slotSize;
      if (len0 < hdr) {
        // a runt (e.g. a buffer handed back empty): count and recycle
        this.stats.rxErrors++;
        this.#dropPending(1);
        continue;
      }
      const nb = this.#merge
        ? bytes[o0 + VIRTIO_NET_HDR_NUM_BUFFERS_OFFSET]! |
          (bytes[o0 + VIRTIO_NET_HDR_NUM_BUFFERS_OFFSET + 1]! << 8)
        : 1;
      if (nb < 1 || nb > this.rx.ring.size) {
        this.stats.rxErrors++;
        this.#dropPending(1);
        continue;
      }
      if (this.#rxCount < nb) return; // the rest of the frame has not been used yet
      if (nb === 1) {
        // one view, straight from the pool (the usual case: no copy); the
        // buffer leaves the pending ring before the handler runs (it may poll
        // again) and its slot goes back to the pool after it
        const frame = bytes.subarray(o0 + hdr, o0 + len0);
        const slot = this.#rxSlots[first]!;
        this.#rxStart = (first + 1) % cap;
        this.#rxCount--;
        this.stats.received++;
        this.stats.receivedBytes += frame.length;
        try {
          this.onFrame?.(frame);
        } finally {
          pool.free(slot);
        }
        continue;
      }
      // a frame over several buffers: copied out whole
      let total = -hdr;
      for (let i = 0; i < nb; i++) total += this.#rxLens[(first + i) % cap]!;
      const frame = new Uint8Array(total);
      let at = 0;
      for (let i = 0; i < nb; i++) {
        const k = (first + i) % cap;
        const o = this.#rxSlots[k]! * slotSize;
        const skip = i === 0 ? hdr : 0;
        frame.set(bytes.subarray(o + skip, o + this.#rxLens[k]!), at);
        at += this.#rxLens[k]! - skip;
      }
      this.#dropPending(nb); // copied: the slots can go back first
      this.stats.received++;
      this.stats.receivedBytes += frame.length;
      this.onFrame?.(frame);
    }
  }

  /** The guest address of a pool slot (a number unless the pool lies beyond 2^53). */
  #address(slot: number): number | bigint {
    const pool = this.frontend.pool;
    return this.#poolBase >= 0 ? this.#poolBase + slot * pool.slotSize : pool.address(slot);
  }

  /** The reused buffer list for chains of `n` buffers. */
  #buffers(n: number): DriverBuffer[] {
    let b = this.#bufs[n];
    if (b === undefined) {
      b = Array.from({ length: n }, () => ({ addr: 0 as number | bigint, len: 0, writable: false }));
      this.#bufs[n] = b;
    }
    return b;
  }

  /**
   * Copies `n` bytes of the frame `prefix ++ body`, from frame offset `from`,
   * to `to` in the pool (no views made when a part is copied whole).
   */
  #copyOut(prefix: Uint8Array | undefined, body: Uint8Array, from: number, to: number, n: number): void {
    const bytes = this.frontend.pool.bytes;
    const pre = prefix === undefined ? 0 : prefix.length;
    let at = from;
    let dst = to;
    let left = n;
    if (at < pre) {
      const k = Math.min(pre - at, left);
      copyBytes(prefix!, at, bytes, dst, k);
      at += k;
      dst += k;
      left -= k;
    }
    if (left > 0) copyBytes(body, at - pre, bytes, dst, left);
  }

  /**
   * Writes the frame `prefix ++ body` (after a zeroed virtio_net_hdr) into free
   * pool slots and adds it to the transmit ring, unpublished. False, with
   * nothing changed, when the ring or the pool has no room. Nothing is
   * allocated for a frame of one slot (a 2048-byte slot holds 2036 bytes).
   */
  #place(body: Uint8Array, prefix?: Uint8Array): boolean {
    if (!(body instanceof Uint8Array) || (prefix !== undefined && !(prefix instanceof Uint8Array))) {
      throw new VhostUserError('a frame is a Uint8Array', 'INVALID_ARGUMENT');
    }
    const pool = this.frontend.pool;
    const slotSize = pool.slotSize;
    const hdr = this.#hdr;
    const length = (prefix === undefined ? 0 : prefix.length) + body.length;
    const total = hdr + length;
    const n = total <= slotSize ? 1 : Math.ceil(total / slotSize);
    if (n > 16)
      throw new VhostUserError(`frame of ${length} bytes exceeds ${this.maxFrame}`, 'INVALID_ARGUMENT');
    const ring = this.tx.ring;
    if (ring.freeCount() < n || pool.available < n) {
      this.#serviceTx(false);
      if (this.#closed) throw new VhostUserError('the driver is closed', 'CLOSED');
      if (ring.freeCount() < n || pool.available < n) {
        this.#wantWritable = true;
        return false;
      }
    }
    const bytes = pool.bytes;
    let token: number | number[];
    let head: number;
    if (n === 1) {
      const s = pool.alloc();
      const o = s * slotSize;
      for (let k = 0; k < hdr; k++) bytes[o + k] = 0;
      this.#copyOut(prefix, body, 0, o + hdr, length);
      token = s;
      if (this.#poolBase >= 0) {
        // one buffer: no buffer list at all
        head = (ring as HotDriverQueue).addBuffer(this.#poolBase + o, total, s);
      } else {
        const buffers = this.#buffers(1);
        buffers[0]!.addr = pool.address(s);
        buffers[0]!.len = total;
        head = ring.add(buffers, s);
      }
    } else {
      const buffers = this.#buffers(n);
      const slots = this.#slotLists.pop() ?? [];
      slots.length = 0;
      let off = 0; // offset in the frame
      for (let i = 0; i < n; i++) {
        const s = pool.alloc();
        slots.push(s);
        let o = s * slotSize;
        let room = slotSize;
        if (i === 0) {
          for (let k = 0; k < hdr; k++) bytes[o + k] = 0;
          o += hdr;
          room -= hdr;
        }
        const take = Math.min(room, length - off);
        this.#copyOut(prefix, body, off, o, take);
        off += take;
        const b = buffers[i]!;
        b.addr = this.#address(s);
        b.len = (i === 0 ? hdr : 0) + take;
      }
      token = slots;
      head = ring.add(buffers, token);
    }
    if (head < 0) {
      if (typeof token === 'number') pool.free(token);
      else {
        for (const s of token) pool.free(s);
        this.#slotLists.push(token);
      }
      this.#wantWritable = true;
      return false;
    }
    this.stats.sent++;
    this.stats.sentBytes += length;
    return true;
  }

  /** Transmits one frame; false (nothing sent) when the ring is full: wait for 'writable'. */
  send(frame: Uint8Array): boolean {
    if (this.#closed) throw new VhostUserError('the driver is closed', 'CLOSED');
    const ok = this.#place(frame);
    if (ok) this.tx.publish();
    return ok;
  }

  /** Transmits frames in order until one does not fit; returns how many were sent (one kick). */
  sendBatch(frames: readonly Uint8Array[]): number {
    if (this.#closed) throw new VhostUserError('the driver is closed', 'CLOSED');
    let n = 0;
    try {
      while (n < frames.length && this.#place(frames[n]!)) n++;
    } finally {
      // frames placed before one that throws are still sent
      if (n > 0) this.tx.publish();
    }
    return n;
  }

  /**
   * Queues one frame, `prefix` (e.g. a protocol header) followed by `frame`,
   * without building it and without making it visible to the back-end: call
   * flush() after the last one (send() and sendBatch() flush too). False,
   * nothing queued, when the ring is full (wait for 'writable').
   */
  queueFrame(frame: Uint8Array, prefix?: Uint8Array): boolean {
    if (this.#closed) throw new VhostUserError('the driver is closed', 'CLOSED');
    return this.#place(frame, prefix);
  }

  /** Makes queued frames visible to the back-end (one avail index store, one kick if wanted). */
  flush(): void {
    if (this.#closed) return;
    this.tx.publish();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#watchers) w.close();
    if (this.#poll) clearImmediate(this.#poll);
  }
}
