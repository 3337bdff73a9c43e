/**
 * A virtio-net driver on top of the front-end (VIRTIO 5.1.6): fills the
 * receive queue with buffer slots, transmits frames with a 12-byte
 * virtio_net_hdr, reassembles MRG_RXBUF frames.
 */
import { EventEmitter } from 'node:events';
import type { FdWatcher } from '@vipc/shm';
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

/**
 * The allocation-free used-ring calls that both vring driver queues
 * (SplitDriverQueue, PackedDriverQueue, the only rings the front-end builds)
 * have besides DriverQueue's popUsed().
 */
type HotDriverQueue = DriverQueue & {
  popUsedHead(): number;
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
  #pendingRx: { slot: number; len: number }[] = [];
  #paused = false;

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
    const ring = this.rx.ring;
    let added = 0;
    // keep half of the slots for transmission
    while (ring.freeCount() > 0 && pool.available > pool.count / 2) {
      const slot = pool.alloc();
      ring.add([{ addr: pool.address(slot), len: pool.slotSize, writable: true }], slot);
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
      for (;;) {
        while (ring.popUsedHead() !== -1) {
          const slots = ring.usedToken as number[];
          for (let i = 0; i < slots.length; i++) pool.free(slots[i]!);
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
          this.#pendingRx.push({ slot: ring.usedToken as number, len: ring.usedLen });
          this.#deliver();
        }
        if (!rearm || !ring.enableCallbacks()) break;
      }
      // slots of delivered frames go back to the ring
      this.#refill();
    });
  }

  /** Delivers complete frames from the pending receive buffers. */
  #deliver(): void {
    const pool = this.frontend.pool;
    const hdr = this.#hdr;
    while (this.#pendingRx.length > 0) {
      const first = this.#pendingRx[0]!;
      if (first.len < hdr) {
        // a runt (e.g. a buffer handed back empty): count and recycle
        this.stats.rxErrors++;
        this.#pendingRx.shift();
        pool.free(first.slot);
        continue;
      }
      const head = pool.view(first.slot, first.len);
      const nb = this.#merge
        ? head[VIRTIO_NET_HDR_NUM_BUFFERS_OFFSET]! | (head[VIRTIO_NET_HDR_NUM_BUFFERS_OFFSET + 1]! << 8)
        : 1;
      if (nb < 1 || nb > this.rx.ring.size) {
        this.stats.rxErrors++;
        this.#pendingRx.shift();
        pool.free(first.slot);
        continue;
      }
      if (this.#pendingRx.length < nb) return; // the rest of the frame has not been used yet
      const parts = this.#pendingRx.splice(0, nb);
      let frame: Uint8Array;
      if (nb === 1) frame = head.subarray(hdr);
      else {
        const total = parts.reduce((a, p) => a + p.len, 0) - hdr;
        frame = new Uint8Array(total);
        let o = 0;
        parts.forEach((p, i) => {
          const v = pool.view(p.slot, p.len).subarray(i === 0 ? hdr : 0);
          frame.set(v, o);
          o += v.length;
        });
      }
      this.stats.received++;
      this.stats.receivedBytes += frame.length;
      this.onFrame?.(frame);
      for (const p of parts) pool.free(p.slot);
    }
  }

  #place(frame: Uint8Array): boolean {
    const pool = this.frontend.pool;
    const total = this.#hdr + frame.length;
    const n = Math.ceil(total / pool.slotSize);
    if (n > 16)
      throw new VhostUserError(`frame of ${frame.length} bytes exceeds ${this.maxFrame}`, 'INVALID_ARGUMENT');
    if (this.tx.ring.freeCount() < n || pool.available < n) {
      this.#serviceTx(false);
      if (this.tx.ring.freeCount() < n || pool.available < n) {
        this.#wantWritable = true;
        return false;
      }
    }
    const slots: number[] = [];
    const buffers: { addr: bigint; len: number }[] = [];
    let off = 0; // offset in the frame
    for (let i = 0; i < n; i++) {
      const s = pool.alloc();
      slots.push(s);
      const v = pool.view(s);
      let w = 0;
      if (i === 0) {
        v.fill(0, 0, this.#hdr);
        w = this.#hdr;
      }
      const take = Math.min(pool.slotSize - w, frame.length - off);
      v.set(frame.subarray(off, off + take), w);
      off += take;
      buffers.push({ addr: pool.address(s), len: w + take });
    }
    const head = this.tx.ring.add(buffers, slots);
    if (head < 0) {
      for (const s of slots) pool.free(s);
      this.#wantWritable = true;
      return false;
    }
    this.stats.sent++;
    this.stats.sentBytes += frame.length;
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
    for (const f of frames) {
      if (!this.#place(f)) break;
      n++;
    }
    if (n > 0) this.tx.publish();
    return n;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#watchers) w.close();
    if (this.#poll) clearImmediate(this.#poll);
  }
}
