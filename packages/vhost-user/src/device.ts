/**
 * What a device author implements (the back-end dispatches to it), and the
 * per-queue handle the back-end gives the device.
 */
import type { EventFd } from '@vipc/shm';
import type { DescriptorChain, GuestMemory, QueueState } from '@vipc/vring';
import { VhostUserError } from './errors.js';
import type { InflightTracker } from './inflight.js';

/** The device side of one virtqueue, split or packed (@vipc/vring). */
export interface DeviceQueue {
  pop(reuse?: DescriptorChain): DescriptorChain | null;
  addUsed(head: number, writtenLen: number): void;
  /** Pops, visits and records used for up to `max` chains (visit returns the bytes it wrote). */
  serve(max: number, visit: (chain: DescriptorChain) => number): number;
  publishUsed(): boolean;
  enableNotifications(): boolean;
  disableNotifications(): void;
  hasAvailable(): boolean;
  state(): QueueState;
  setState(s: QueueState): void;
  readonly broken: Error | null;
  readonly size: number;
}

/**
 * One virtqueue as the back-end runs it: vhost-user "Ring states" (started /
 * stopped, enabled / disabled), its eventfds, and the ring itself once the
 * front-end has described it.
 */
export class BackendQueue {
  readonly index: number;
  /** SET_VRING_NUM (0 until set). */
  size = 0;
  /**
   * Started by the first kick (or SET_VRING_KICK without fd: polling); stopped
   * by GET_VRING_BASE or a device reset (RESET_DEVICE, SET_STATUS 0).
   */
  started = false;
  /** SET_VRING_ENABLE (or SET_FEATURES without PROTOCOL_FEATURES). */
  enabled = false;
  /**
   * Enabled at least once since the ring was set up. A device may process a
   * ring disabled after that without side effects (the net device discards
   * transmit buffers only with `disabledTx: 'discard'`); one that was never
   * enabled yet (kicks that arrive between SET_VRING_KICK and
   * SET_VRING_ENABLE, e.g. after a reconnect) keeps its buffers for later.
   */
  everEnabled = false;
  /** @internal */ kick: EventFd | undefined;
  /** @internal */ call: EventFd | undefined;
  /** @internal */ err: EventFd | undefined;
  /** @internal the kick is polled (SET_VRING_KICK with the invalid-fd flag) */ pollKick = false;
  /** @internal */ ring: DeviceQueue | undefined;
  /** @internal state from SET_VRING_BASE, applied when the ring is built */ base: QueueState | undefined;
  /** @internal */ userAddresses: { desc: bigint; avail: bigint; used: bigint; flags: number } | undefined;
  /** @internal */ packed = false;
  /** @internal INFLIGHT_SHMFD bookkeeping (split or packed layout) */ inflight: InflightTracker | undefined;
  /** @internal event mode: kicks are off while the queue is busy */ napi = false;
  /** @internal */ idleRounds = 0;
  /** @internal */ scheduled = false;
  /** Set when the ring was found broken; the queue is not processed again until reset. */
  failure: Error | undefined;
  /** The guest memory the ring lives in. */
  readonly memory: GuestMemory;
  /** Counters. */
  readonly stats = { kicks: 0, calls: 0, popped: 0 };
  /** @internal set by the back-end: process this queue again soon (after the device paused it). */
  wake: () => void = () => {};

  constructor(index: number, memory: GuestMemory) {
    this.index = index;
    this.memory = memory;
  }

  /** Started, enabled or not, with a ring that is not broken: the device may process it. */
  get ready(): boolean {
    return this.started && this.ring !== undefined && this.failure === undefined;
  }

  #ring(): DeviceQueue {
    if (this.ring === undefined || !this.started) {
      throw new VhostUserError(`queue ${this.index} is not started`, 'INVALID_STATE');
    }
    return this.ring;
  }

  /**
   * The next available chain, or null. Pass a chain you are done with as
   * `reuse` to have it refilled instead of a new one allocated. Throws (and the
   * back-end marks the queue failed) on a bad ring.
   */
  pop(reuse?: DescriptorChain): DescriptorChain | null {
    const ring = this.#ring();
    const c = ring.pop(reuse);
    if (c !== null) {
      this.stats.popped++;
      this.inflight?.fetched(c.head, c.descriptorCount, ring);
    }
    return c;
  }

  hasAvailable(): boolean {
    return this.ready && this.ring!.hasAvailable();
  }

  /**
   * pop(), `visit` and addUsed() for up to `max` chains in one call (the
   * ring's serve(): `visit` returns the bytes it wrote, and may not call back
   * into this queue); returns how many. Not with an inflight region
   * (INFLIGHT_SHMFD), which records each chain between its pop and its use:
   * then it returns -1 and takes nothing (use pop() and addUsed()).
   */
  serve(max: number, visit: (chain: DescriptorChain) => number): number {
    if (this.inflight !== undefined) return -1;
    const n = this.#ring().serve(max, visit);
    this.stats.popped += n;
    return n;
  }

  /** Records a used chain (not visible until flush()). */
  addUsed(head: number, writtenLen: number): void {
    this.#ring().addUsed(head, writtenLen);
    this.inflight?.used(head);
  }

  /** Publishes recorded used chains and signals the call eventfd if the driver wants it. */
  flush(): void {
    const ring = this.#ring();
    const t = this.inflight;
    t?.publishing();
    const notify = ring.publishUsed();
    t?.published(ring);
    if (notify) this.signal();
  }

  /** Kicks the call eventfd (an interrupt to the driver). */
  signal(): void {
    if (this.call !== undefined && !this.call.fd.closed) {
      this.call.kick();
      this.stats.calls++;
    }
  }
}

/** What the back-end needs from a device. */
export interface VirtioDevice {
  /** Device type name, for logs and --print-capabilities. */
  readonly type: string;
  /** Device feature bits offered (device-specific ones; the back-end adds the transport bits). */
  readonly features: bigint;
  /** How many virtqueues the device has at most. */
  readonly queueCount: number;
  /** GET_QUEUE_NUM reply (default queueCount; virtio-net reports queue pairs). */
  readonly queueNum?: number;
  /** Largest queue size accepted (default 32768). */
  readonly maxQueueSize?: number;
  /** Called when the back-end starts serving a front-end (queues are fresh). */
  attach?(queues: readonly BackendQueue[]): void;
  /** The front-end acknowledged these features (SET_FEATURES). */
  setFeatures?(features: bigint): void;
  /**
   * A started queue has work: process it (pop, addUsed, flush). Return false
   * when the device paused the queue on purpose (it calls queue.wake() later);
   * the back-end then neither re-arms kicks nor polls it again by itself.
   */
  process(queue: BackendQueue): undefined | boolean;
  /** A queue changed state (started/stopped/enabled/disabled). */
  queueChanged?(queue: BackendQueue): void;
  /** The memory table changed; chains held across calls must be given back now. */
  memoryChanged?(): void;
  /** GET_CONFIG: `size` bytes at `offset`, or null when out of range. */
  readConfig?(offset: number, size: number): Uint8Array | null;
  /** SET_CONFIG: false refuses the write. */
  writeConfig?(offset: number, data: Uint8Array, flags: number): boolean;
  /** RESET_DEVICE or SET_STATUS 0 (device reset), or the front-end went away. */
  reset?(): void;
}
