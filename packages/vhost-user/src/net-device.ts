/**
 * A virtio-net device for the back-end (VIRTIO 5.1): the driver's transmitq
 * frames are delivered to `onFrame`, and `send()` places frames in the
 * driver's receiveq, with a 12-byte virtio_net_hdr and MRG_RXBUF.
 */
import { EventEmitter } from 'node:events';
import type { DescriptorChain } from '@vipc/vring';
import {
  bit,
  hasBit,
  VIRTIO_NET_HDR_NUM_BUFFERS_OFFSET,
  VIRTIO_NET_HDR_SIZE,
  VirtioFeature,
  VirtioNetFeature,
} from './defs.js';
import type { BackendQueue, VirtioDevice } from './device.js';
import { VhostUserError } from './errors.js';

export interface NetDeviceOptions {
  /**
   * Queue pairs (default 1). More than 1 offers VIRTIO_NET_F_MQ together with
   * VIRTIO_NET_F_CTRL_VQ, which MQ requires (VIRTIO 5.1.3.1), as DPDK's vhost
   * library does. The control queue itself stays with the front-end (QEMU and
   * DPDK virtio-user handle it and enable pairs with SET_VRING_ENABLE): the
   * device has no queue for it, and accepts MQ acknowledged without CTRL_VQ.
   */
  queuePairs?: number;
  /** Offer MRG_RXBUF (default true): a frame may span several receive buffers. */
  mergeRxBuffers?: boolean;
  /** A MAC address to offer in config space (VIRTIO_NET_F_MAC). */
  mac?: Uint8Array;
  /** An MTU to offer (VIRTIO_NET_F_MTU). */
  mtu?: number;
  /**
   * Called for each frame the driver transmitted (without its virtio_net_hdr).
   * The view points into guest memory and is valid only during the call: copy
   * it to keep it. Without a handler, frames are only counted.
   */
  onFrame?: (frame: Uint8Array, queuePair: number) => void;
  /**
   * What a transmit queue that was enabled and is then disabled does with the
   * frames the driver makes available meanwhile. 'hold' (default) leaves them
   * in the ring until the queue is enabled again, as DPDK's vhost library and
   * rust-vmm do: DPDK virtio-user disables its rings around every repeated
   * SET_MEM_TABLE while its sender keeps going, and expects nothing lost.
   * 'discard' is the spec's literal "process and discard any TX packets"
   * (counted in `stats.discarded`).
   */
  disabledTx?: 'hold' | 'discard';
  /**
   * Frames taken from a transmit ring between two looks at pause() (default 1:
   * pause() from onFrame stops the device before the next frame, as a
   * MessageChannel's high-water mark needs). A larger batch takes the frames
   * through the ring's serve() fast path, faster for a consumer that never
   * pauses; pause() then takes effect within the batch (up to `txBatch - 1`
   * more frames). An integer from 1 to 1024. Rings with an inflight region
   * (INFLIGHT_SHMFD) always go frame by frame.
   */
  txBatch?: number;
}

export interface NetStats {
  /** Frames taken from the driver's transmit queues. */
  received: number;
  receivedBytes: number;
  /** Frames placed in the driver's receive queues. */
  sent: number;
  sentBytes: number;
  /** Transmitted frames discarded because their queue was disabled (only with `disabledTx: 'discard'`). */
  discarded: number;
  /** Receive buffers handed back empty (after a memory remap while a frame was being placed). */
  returnedEmpty: number;
}

/**
 * Events: 'writable' (queuePair) after send() returned false and receive
 * buffers became available; 'link' (up: boolean).
 */
export class VirtioNetDevice extends EventEmitter implements VirtioDevice {
  readonly type = 'net';
  readonly features: bigint;
  readonly queueCount: number;
  readonly queueNum: number;
  readonly stats: NetStats = {
    received: 0,
    receivedBytes: 0,
    sent: 0,
    sentBytes: 0,
    discarded: 0,
    returnedEmpty: 0,
  };
  onFrame: ((frame: Uint8Array, queuePair: number) => void) | undefined;
  #queues: readonly BackendQueue[] = [];
  #negotiated = 0n;
  #hdrSize = VIRTIO_NET_HDR_SIZE;
  readonly #txBatch: number;
  // The transmit ring being drained and the handler its frames go to (read once per drain).
  #txPair = 0;
  #txHandler: ((frame: Uint8Array, pair: number) => void) | undefined;
  /** One transmitted frame: counted and handed to the handler. */
  #txFrame(chain: DescriptorChain): void {
    const len = chain.readableLength - this.#hdrSize;
    if (len >= 0) {
      this.stats.received++;
      this.stats.receivedBytes += len;
      const handler = this.#txHandler;
      if (handler !== undefined) handler(frameView(chain, this.#hdrSize), this.#txPair);
    }
  }
  /** #txFrame() for serve(): nothing written. */
  readonly #txVisit = (chain: DescriptorChain): number => {
    this.#txFrame(chain);
    return 0;
  };
  #mac: Uint8Array | undefined;
  #mtu: number | undefined;
  /** Receive chains popped but not filled yet, per pair. */
  #held: DescriptorChain[][];
  /**
   * How many of #held[pair] are held: the arrays are never truncated (setting
   * an array's length is a runtime call, per frame here), entries from the
   * count on are stale.
   */
  #heldCount: number[];
  #wantWritable: boolean[];
  #paused: boolean[];
  /** MRG_RXBUF negotiated (read per frame; a bigint test would allocate). */
  #merge = false;
  /** Receive chains done with (used), refilled by the next pop instead of new ones. */
  #spare: DescriptorChain[] = [];
  readonly #holdDisabled: boolean;

  constructor(options: NetDeviceOptions = {}) {
    super();
    if (
      options.disabledTx !== undefined &&
      options.disabledTx !== 'hold' &&
      options.disabledTx !== 'discard'
    ) {
      throw new VhostUserError("disabledTx must be 'hold' or 'discard'", 'INVALID_ARGUMENT');
    }
    this.#holdDisabled = options.disabledTx !== 'discard';
    const txBatch = options.txBatch ?? 1;
    if (!Number.isInteger(txBatch) || txBatch < 1 || txBatch > 1024) {
      throw new VhostUserError(
        `txBatch must be an integer from 1 to 1024 (got ${String(options.txBatch)})`,
        'INVALID_ARGUMENT',
      );
    }
    this.#txBatch = txBatch;
    const pairs = options.queuePairs ?? 1;
    if (!Number.isInteger(pairs) || pairs < 1 || pairs > 128) {
      throw new VhostUserError('queuePairs must be an integer from 1 to 128', 'INVALID_ARGUMENT');
    }
    this.queueCount = 2 * pairs;
    this.queueNum = pairs;
    let f = 0n;
    if (options.mergeRxBuffers !== false) f |= bit(VirtioNetFeature.MRG_RXBUF);
    // 5.1.3.1: MQ requires CTRL_VQ, and a device offers no feature without those it requires
    if (pairs > 1) f |= bit(VirtioNetFeature.MQ) | bit(VirtioNetFeature.CTRL_VQ);
    if (options.mac) {
      if (options.mac.length !== 6) throw new VhostUserError('a MAC address is 6 bytes', 'INVALID_ARGUMENT');
      this.#mac = Uint8Array.from(options.mac);
      f |= bit(VirtioNetFeature.MAC);
    }
    if (options.mtu !== undefined) {
      if (!Number.isInteger(options.mtu) || options.mtu < 68 || options.mtu > 65535) {
        throw new VhostUserError('mtu must be an integer from 68 to 65535', 'INVALID_ARGUMENT');
      }
      this.#mtu = options.mtu;
      f |= bit(VirtioNetFeature.MTU);
    }
    f |= bit(VirtioNetFeature.STATUS);
    this.features = f;
    this.onFrame = options.onFrame;
    this.#held = Array.from({ length: pairs }, () => []);
    this.#heldCount = Array.from({ length: pairs }, () => 0);
    this.#wantWritable = Array.from({ length: pairs }, () => false);
    this.#paused = Array.from({ length: pairs }, () => false);
  }

  attach(queues: readonly BackendQueue[]): void {
    this.#queues = queues;
    this.#heldCount.fill(0);
  }

  setFeatures(features: bigint): void {
    this.#negotiated = features;
    this.#merge = hasBit(features, VirtioNetFeature.MRG_RXBUF);
    // VIRTIO 5.1.6: the 12-byte header with VERSION_1 or MRG_RXBUF, else 10 bytes.
    this.#hdrSize =
      hasBit(features, VirtioFeature.VERSION_1) || hasBit(features, VirtioNetFeature.MRG_RXBUF)
        ? VIRTIO_NET_HDR_SIZE
        : 10;
  }

  get negotiatedFeatures(): bigint {
    return this.#negotiated;
  }

  /** Whether receive queue `pair` is started and enabled (frames can be sent). */
  linkUp(pair = 0): boolean {
    const q = this.#queues[2 * pair];
    return q?.ready === true && q.enabled;
  }

  process(queue: BackendQueue): undefined | boolean {
    const pair = queue.index >> 1;
    if ((queue.index & 1) === 0) {
      // receiveq: the driver added buffers
      if (this.#wantWritable[pair]) {
        this.#wantWritable[pair] = false;
        this.emit('writable', pair);
      }
      return undefined;
    }
    if (this.#paused[pair]) return false;
    // never enabled yet, or paused by the driver (disabledTx 'hold'): leave the
    // buffers for when it is enabled (SET_VRING_ENABLE wakes the queue)
    if (!queue.enabled && (!queue.everEnabled || this.#holdDisabled)) return false;
    this.#drainTx(queue, pair);
    return this.#paused[pair] ? false : undefined;
  }

  /**
   * Stops taking frames from transmit queue `pair` (receiver back-pressure:
   * the driver's ring fills up and its sends wait). resume() takes them again.
   */
  pause(pair = 0): void {
    this.#paused[pair] = true;
  }

  resume(pair = 0): void {
    if (!this.#paused[pair]) return;
    this.#paused[pair] = false;
    this.#queues[2 * pair + 1]?.wake();
  }

  #drainTx(q: BackendQueue, pair: number): void {
    this.#txPair = pair;
    this.#txHandler = this.onFrame;
    const batch = this.#txBatch;
    if (batch > 1 && q.enabled && q.inflight === undefined) {
      // txBatch: the ring's serve(), pause() looked at once per batch
      for (;;) {
        if (this.#paused[pair]) break;
        const n = q.serve(batch, this.#txVisit);
        if (n <= 0) break;
        q.flush();
        if (n < batch) break;
      }
      return;
    }
    let n = 0;
    let spare: DescriptorChain | undefined;
    for (;;) {
      if (this.#paused[pair]) break;
      // each chain is done with before the next pop: recycle it (no allocation per frame)
      const chain = q.pop(spare);
      if (chain === null) break;
      spare = chain;
      n++;
      if (!q.enabled) {
        // started but disabled, disabledTx 'discard': process and discard (vhost-user "Ring states")
        this.stats.discarded++;
        q.addUsed(chain.head, 0);
        continue;
      }
      this.#txFrame(chain);
      q.addUsed(chain.head, 0);
      if (n % 64 === 0) q.flush();
    }
    if (n > 0) q.flush();
  }

  queueChanged(queue: BackendQueue): void {
    // A receive ring that stopped (GET_VRING_BASE) or restarted takes back the
    // chains held from its previous run: they belong to that run. Not returned
    // used: the restarted ring makes them available again from its base.
    if ((queue.index & 1) !== 0 || queue.started) return;
    const pair = queue.index >> 1;
    const n = this.#heldCount[pair] ?? 0;
    if (n === 0) return;
    const held = this.#held[pair]!;
    for (let k = 0; k < n; k++) this.#spare.push(held[k]!);
    this.#heldCount[pair] = 0;
  }

  memoryChanged(): void {
    // Held receive chains point into mappings that are going away: give them back empty.
    this.#queues.forEach((q, i) => {
      if ((i & 1) !== 0) return;
      const held = this.#held[i >> 1]!;
      const n = this.#heldCount[i >> 1]!;
      this.#heldCount[i >> 1] = 0;
      if (n === 0 || !q.ready) return;
      for (let k = 0; k < n; k++) {
        const c = held[k]!;
        q.addUsed(c.head, 0);
        this.stats.returnedEmpty++;
        this.#spare.push(c);
      }
      q.flush();
    });
  }

  reset(): void {
    this.#heldCount.fill(0);
    this.#negotiated = 0n;
    this.#merge = false;
  }

  /** The `used`-th receive chain of `pair`: one held already, or the next one popped (and held). */
  #nextChain(q: BackendQueue, pair: number, used: number): DescriptorChain | null {
    const n = this.#heldCount[pair]!;
    const held = this.#held[pair]!;
    if (used < n) return held[used]!;
    const spare = this.#spare.pop();
    const c = q.pop(spare);
    if (c !== null) {
      held[n] = c;
      this.#heldCount[pair] = n + 1;
    } else if (spare !== undefined) this.#spare.push(spare);
    return c;
  }

  /**
   * Places one frame in receive queue `pair`. Returns false, sending nothing,
   * when the driver has not posted enough buffers (back-pressure: wait for
   * 'writable'); throws INVALID_STATE when the link is down.
   */
  send(frame: Uint8Array, pair = 0): boolean {
    const ok = this.#place(frame, undefined, pair);
    if (ok) this.#queues[2 * pair]!.flush();
    return ok;
  }

  /** Places frames in order until one does not fit; returns how many were sent. */
  sendBatch(frames: readonly Uint8Array[], pair = 0): number {
    let n = 0;
    try {
      while (n < frames.length && this.#place(frames[n]!, undefined, pair)) n++;
    } finally {
      // frames placed before one that throws are still sent
      if (n > 0) this.#queues[2 * pair]!.flush();
    }
    return n;
  }

  /**
   * Places one frame, `prefix` (e.g. a protocol header) followed by `frame`,
   * without building it and without making it visible to the driver: call
   * flush(pair) after the last one (send() and sendBatch() flush too). False,
   * nothing placed, when the driver has not posted enough buffers (wait for
   * 'writable').
   */
  queueFrame(frame: Uint8Array, prefix?: Uint8Array, pair = 0): boolean {
    return this.#place(frame, prefix, pair);
  }

  /** Makes the frames placed in receive queue `pair` visible to the driver (and calls it if it wants). */
  flush(pair = 0): void {
    const q = this.#queues[2 * pair];
    if (q === undefined) throw new VhostUserError(`no queue pair ${pair}`, 'INVALID_ARGUMENT');
    if (q.ready) q.flush();
  }

  /**
   * Writes `hdr ++ prefix ++ frame` into the gathered chains and hands them
   * back as used. Nothing is allocated when the chain holding the header also
   * holds the whole frame (the usual case: DPDK and vipc drivers post one
   * 2 KiB buffer per chain); other layouts go through DescriptorChain.write().
   */
  #place(frame: Uint8Array, prefix: Uint8Array | undefined, pair: number): boolean {
    if (!(frame instanceof Uint8Array) || (prefix !== undefined && !(prefix instanceof Uint8Array))) {
      throw new VhostUserError('a frame is a Uint8Array', 'INVALID_ARGUMENT');
    }
    const q = this.#queues[2 * pair];
    if (q === undefined) throw new VhostUserError(`no queue pair ${pair}`, 'INVALID_ARGUMENT');
    if (!q.ready || !q.enabled) {
      throw new VhostUserError(`receive queue ${2 * pair} is not running (link down)`, 'INVALID_STATE');
    }
    const hdrSize = this.#hdrSize;
    const pre = prefix === undefined ? 0 : prefix.length;
    const length = pre + frame.length;
    // 5.1.6.3.2: with VIRTIO_NET_F_MTU, no received frame beyond the MTU plus the
    // Ethernet header (14 bytes, 18 with an 802.1Q tag)
    if (
      this.#mtu !== undefined &&
      length > this.#mtu + 18 &&
      hasBit(this.#negotiated, VirtioNetFeature.MTU)
    ) {
      throw new VhostUserError(
        `frame of ${length} bytes is longer than the MTU ${this.#mtu} plus an Ethernet header allows`,
        'INVALID_ARGUMENT',
      );
    }
    const total = hdrSize + length;
    const merge = this.#merge;
    const held = this.#held[pair]!;
    // Gather enough buffers first, so that nothing is written unless the frame fits.
    let room = 0;
    let count = 0;
    while (room < total) {
      const c = this.#nextChain(q, pair, count);
      if (c === null) {
        this.#wantWritable[pair] = true;
        return false;
      }
      if (!merge && c.writableLength < total) {
        throw new VhostUserError(
          `frame of ${length} bytes does not fit the driver's ${c.writableLength}-byte receive buffer (no MRG_RXBUF)`,
          'INVALID_ARGUMENT',
        );
      }
      room += c.writableLength;
      count++;
      if (count > 0xffff)
        throw new VhostUserError('frame needs too many receive buffers', 'INVALID_ARGUMENT');
    }
    const first = held[0]!;
    // The first writable segment of the first chain (a receive chain may carry
    // device-readable buffers before its writable ones).
    const seg = first.readableCount;
    if (count === 1 && seg < first.segmentCount && first.segmentLength(seg) >= total) {
      const bytes = first.segmentBytes(seg);
      const o = first.segmentOffset(seg);
      for (let k = 0; k < hdrSize; k++) bytes[o + k] = 0;
      if (hdrSize === VIRTIO_NET_HDR_SIZE) bytes[o + VIRTIO_NET_HDR_NUM_BUFFERS_OFFSET] = 1;
      if (pre > 0) copyBytes(prefix!, 0, bytes, o + hdrSize, pre);
      copyBytes(frame, 0, bytes, o + hdrSize + pre, frame.length);
      q.addUsed(first.head, total);
    } else {
      this.#placeSpread(q, held, count, frame, prefix);
    }
    // the chains are used: recycle them for the next pops
    const spare = this.#spare;
    for (let i = 0; i < count; i++) spare.push(held[i]!);
    const n = this.#heldCount[pair]!;
    for (let i = count; i < n; i++) held[i - count] = held[i]!;
    this.#heldCount[pair] = n - count;
    this.stats.sent++;
    this.stats.sentBytes += length;
    return true;
  }

  /** #place() for a frame over several chains, or a chain of several writable buffers. */
  #placeSpread(
    q: BackendQueue,
    held: DescriptorChain[],
    count: number,
    frame: Uint8Array,
    prefix: Uint8Array | undefined,
  ): void {
    const hdrSize = this.#hdrSize;
    const hdr = new Uint8Array(hdrSize);
    if (hdrSize === VIRTIO_NET_HDR_SIZE) {
      hdr[VIRTIO_NET_HDR_NUM_BUFFERS_OFFSET] = count & 0xff;
      hdr[VIRTIO_NET_HDR_NUM_BUFFERS_OFFSET + 1] = count >> 8;
    }
    const parts = prefix === undefined ? [hdr, frame] : [hdr, prefix, frame];
    let part = 0; // the part being written and the offset in it
    let at = 0;
    for (let i = 0; i < count; i++) {
      const c = held[i]!;
      let w = 0;
      while (part < parts.length && w < c.writableLength) {
        const p = parts[part]!;
        const n = c.write(at === 0 ? p : p.subarray(at), w);
        w += n;
        at += n;
        if (at === p.length) {
          part++;
          at = 0;
        }
      }
      q.addUsed(c.head, w);
    }
  }
  readConfig(offset: number, size: number): Uint8Array | null {
    // VIRTIO 5.1.4: mac[6], status u16, max_virtqueue_pairs u16, mtu u16
    const cfg = new Uint8Array(12);
    if (this.#mac) cfg.set(this.#mac, 0);
    cfg[6] = this.linkUp(0) ? 1 : 0; // VIRTIO_NET_S_LINK_UP
    cfg[8] = this.queueNum & 0xff;
    cfg[9] = this.queueNum >> 8;
    if (this.#mtu !== undefined) {
      cfg[10] = this.#mtu & 0xff;
      cfg[11] = this.#mtu >> 8;
    }
    if (offset + size > cfg.length) return null;
    return cfg.slice(offset, offset + size);
  }
}

/**
 * The frame in a transmit chain (after its `hdr`-byte virtio_net_hdr) as one
 * view, made straight from the chain's segments: a single allocation for the
 * two layouts drivers use (header and frame in one buffer, e.g. DPDK
 * virtio-user and Linux; or the header in a buffer of its own) instead of the
 * `readable` array plus a view per buffer plus a sub-view. Other layouts (a
 * frame spread over several buffers) are copied out. A chain whose mapping
 * went away throws MEMORY_UNMAPPED (from segmentBytes(), or from read()).
 * @internal exported for tests only (not re-exported by the package).
 */
export function frameView(chain: DescriptorChain, hdr: number): Uint8Array {
  const total = chain.readableLength;
  const readable = chain.readableCount;
  if (readable > 0) {
    const len0 = chain.segmentLength(0);
    if (len0 === total) {
      const o = chain.segmentOffset(0);
      return chain.segmentBytes(0).subarray(o + hdr, o + total);
    }
    if (readable > 1 && len0 === hdr && chain.segmentLength(1) === total - hdr) {
      const o = chain.segmentOffset(1);
      return chain.segmentBytes(1).subarray(o, o + total - hdr);
    }
  }
  return chain.read().subarray(hdr);
}

/**
 * Copies `n` bytes from `from[fromOff..]` to `to[toOff..]` (bounds are the
 * caller's). Allocation-free for small copies and for whole arrays; only a
 * large part of an array takes a subarray.
 * @internal shared by the net device and driver (not re-exported).
 */
export function copyBytes(from: Uint8Array, fromOff: number, to: Uint8Array, toOff: number, n: number): void {
  if (n <= 32) {
    for (let i = 0; i < n; i++) to[toOff + i] = from[fromOff + i]!;
  } else if (fromOff === 0 && n === from.length) {
    to.set(from, toOff);
  } else {
    to.set(from.subarray(fromOff, fromOff + n), toOff);
  }
}
