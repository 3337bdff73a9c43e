/**
 * The message API between two vipc endpoints: one vipc front-end (driver) and
 * one vipc back-end (device), each message one virtio-net frame with a small
 * header. send() waits while the ring is full (back-pressure, never silent
 * loss); received messages come in order from an async iterator (or a
 * callback); the receiver stops taking frames from the ring while its own
 * queue is above a high-water mark, so a slow reader slows the writer down
 * instead of growing memory. After a reconnect the sequence numbers drop
 * re-submitted duplicates.
 */
import { EventEmitter } from 'node:events';
import { VhostUserError } from './errors.js';
import type { VirtioNetDevice } from './net-device.js';
import type { VirtioNetDriver } from './net-driver.js';

/** Header of each message frame: magic u16 'vP', flags u16 (0), sequence u32; little-endian. */
export const MESSAGE_HEADER_SIZE = 8;
export const MESSAGE_MAGIC = 0x5076;

/** What a send that was placed at once returns (one shared, already resolved promise). */
const RESOLVED: Promise<void> = Promise.resolve();

/** What a channel needs from a frame carrier (the net driver or the net device). */
export interface FrameEndpoint {
  readonly maxFrame: number;
  trySend(frame: Uint8Array): boolean;
  trySendBatch(frames: readonly Uint8Array[]): number;
  /** Registers the one frame handler (view valid during the call). */
  setFrameHandler(handler: (frame: Uint8Array) => void): void;
  pause(): void;
  resume(): void;
  onWritable(cb: () => void): () => void;
  /** Whether frames can be sent now (link up). */
  readonly up: boolean;
  /**
   * Optional gather form of trySend (both built-in endpoints have it): places
   * one frame, `prefix` followed by `frame`, copying both, without making it
   * visible until flush(); false (nothing placed) when there is no room. With
   * it the channel sends a message without building a frame per message.
   */
  queueFrame?(frame: Uint8Array, prefix: Uint8Array): boolean;
  /** Makes the frames placed by queueFrame() visible to the peer. */
  flush?(): void;
}

/** A channel endpoint over a vipc front-end's net driver. */
export function driverEndpoint(driver: VirtioNetDriver): FrameEndpoint {
  return {
    get maxFrame() {
      return driver.maxFrame;
    },
    trySend: (f) => driver.send(f),
    trySendBatch: (fs) => driver.sendBatch(fs),
    setFrameHandler: (h) => {
      driver.onFrame = h;
    },
    pause: () => driver.pause(),
    resume: () => driver.resume(),
    onWritable: (cb) => {
      driver.on('writable', cb);
      return () => driver.off('writable', cb);
    },
    get up() {
      return true;
    },
    queueFrame: (f, prefix) => driver.queueFrame(f, prefix),
    flush: () => driver.flush(),
  };
}

/** A channel endpoint over a vipc back-end's net device (queue pair `pair`). */
export function deviceEndpoint(device: VirtioNetDevice, pair = 0): FrameEndpoint {
  return {
    maxFrame: 65535,
    trySend: (f) => device.send(f, pair),
    trySendBatch: (fs) => device.sendBatch(fs, pair),
    setFrameHandler: (h) => {
      device.onFrame = (frame, p) => {
        if (p === pair) h(frame);
      };
    },
    pause: () => device.pause(pair),
    resume: () => device.resume(pair),
    onWritable: (cb) => {
      const f = (p: number): void => {
        if (p === pair) cb();
      };
      device.on('writable', f);
      return () => device.off('writable', f);
    },
    get up() {
      return device.linkUp(pair);
    },
    queueFrame: (f, prefix) => device.queueFrame(f, prefix, pair),
    flush: () => device.flush(pair),
  };
}

export interface ChannelOptions {
  /** Received messages buffered before the channel stops taking frames (default 1024). */
  highWaterMark?: number;
  /** How often a blocked send re-checks the ring besides 'writable' events (default 20 ms). */
  retryMs?: number;
}

export interface ChannelStats {
  sent: number;
  sentBytes: number;
  received: number;
  receivedBytes: number;
  /** Frames that were not vipc messages (wrong magic or too short). */
  invalid: number;
  /** Re-submitted messages dropped by sequence number (after a reconnect). */
  duplicates: number;
}

/**
 * Events: 'message' (Uint8Array) when no iterator is used, 'invalid' (frame).
 */
export class MessageChannel extends EventEmitter implements AsyncIterable<Uint8Array> {
  readonly endpoint: FrameEndpoint;
  readonly stats: ChannelStats = {
    sent: 0,
    sentBytes: 0,
    received: 0,
    receivedBytes: 0,
    invalid: 0,
    duplicates: 0,
  };
  #seq = 0;
  #lastSeen = -1;
  #queue: Uint8Array[] = [];
  #head = 0;
  #waiters: ((r: IteratorResult<Uint8Array>) => void)[] = [];
  #hwm: number;
  #retryMs: number;
  #paused = false;
  #closed = false;
  #sending: Promise<void> = RESOLVED;
  /** Sends waiting for room (a new send goes behind them, to keep the order). */
  #waitingSends = 0;
  /** The message header, rewritten for each message (the endpoint copies it). */
  readonly #header = new Uint8Array(MESSAGE_HEADER_SIZE);

  constructor(endpoint: FrameEndpoint, options: ChannelOptions = {}) {
    super();
    this.endpoint = endpoint;
    this.#hwm = options.highWaterMark ?? 1024;
    this.#retryMs = options.retryMs ?? 20;
    endpoint.setFrameHandler((f) => this.#onFrame(f));
    this.#header[0] = MESSAGE_MAGIC & 0xff;
    this.#header[1] = MESSAGE_MAGIC >> 8;
  }

  /** Largest message send() takes. */
  get maxMessage(): number {
    return this.endpoint.maxFrame - MESSAGE_HEADER_SIZE;
  }

  #check(msg: Uint8Array): void {
    if (!(msg instanceof Uint8Array))
      throw new VhostUserError('a message is a Uint8Array', 'INVALID_ARGUMENT');
    if (msg.length > this.maxMessage) {
      throw new VhostUserError(
        `message of ${msg.length} bytes exceeds ${this.maxMessage}`,
        'INVALID_ARGUMENT',
      );
    }
  }

  /** A whole frame (header and message), for endpoints without queueFrame(). */
  #frame(msg: Uint8Array, seq: number): Uint8Array {
    this.#check(msg);
    const f = new Uint8Array(MESSAGE_HEADER_SIZE + msg.length);
    f.set(this.#header.subarray(0, 4), 0);
    f[4] = seq & 0xff;
    f[5] = (seq >>> 8) & 0xff;
    f[6] = (seq >>> 16) & 0xff;
    f[7] = seq >>> 24;
    f.set(msg, MESSAGE_HEADER_SIZE);
    return f;
  }

  /** Places `msg` with the next sequence number; false (nothing placed) when there is no room. */
  #place(msg: Uint8Array): boolean {
    this.#check(msg);
    const h = this.#header;
    const seq = this.#seq;
    h[4] = seq & 0xff;
    h[5] = (seq >>> 8) & 0xff;
    h[6] = (seq >>> 16) & 0xff;
    h[7] = seq >>> 24;
    if (!this.endpoint.queueFrame!(msg, h)) return false;
    this.#seq = (seq + 1) >>> 0;
    this.stats.sent++;
    this.stats.sentBytes += msg.length;
    return true;
  }

  /** Sends now if there is room; false (nothing sent) when the ring is full. Throws RING_FULL never. */
  trySend(msg: Uint8Array): boolean {
    if (this.#closed) throw new VhostUserError('the channel is closed', 'CLOSED');
    if (!this.endpoint.up) return false;
    if (this.endpoint.queueFrame !== undefined) {
      const ok = this.#place(msg);
      if (ok) this.endpoint.flush!();
      return ok;
    }
    const ok = this.endpoint.trySend(this.#frame(msg, this.#seq));
    if (ok) {
      this.#seq = (this.#seq + 1) >>> 0;
      this.stats.sent++;
      this.stats.sentBytes += msg.length;
    }
    return ok;
  }

  /**
   * Sends one message, waiting while the ring is full. Sends keep their order.
   * A message that fits is placed before send() returns, and nothing is
   * allocated for it (the promise returned is a shared resolved one).
   */
  send(msg: Uint8Array): Promise<void> {
    if (this.#waitingSends === 0) {
      try {
        if (this.#closed) throw new VhostUserError('the channel is closed', 'CLOSED');
        if (this.endpoint.up && this.endpoint.queueFrame !== undefined && this.#place(msg)) {
          this.endpoint.flush!();
          return RESOLVED;
        }
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.sendBatch([msg]);
  }

  /**
   * Sends messages in order with as few kicks as possible (one per 64),
   * waiting while the ring is full. What fits is placed before sendBatch()
   * returns; the rest follows as room comes back.
   */
  sendBatch(msgs: readonly Uint8Array[]): Promise<void> {
    let start = 0;
    if (this.#waitingSends === 0) {
      try {
        start = this.#sendFrom(msgs, 0);
      } catch (err) {
        return Promise.reject(err);
      }
      if (start === msgs.length) return RESOLVED;
    }
    this.#waitingSends++;
    const run = async (): Promise<void> => {
      try {
        let i = start;
        for (;;) {
          i = this.#sendFrom(msgs, i);
          if (i === msgs.length) return;
          await this.#writable();
        }
      } finally {
        this.#waitingSends--;
      }
    };
    const p = this.#sending.then(run, run);
    this.#sending = p.catch(() => undefined);
    return p;
  }

  /**
   * Places `msgs` from index `i` on while they fit, flushing every 64 (and at
   * the end, also when a message is refused); returns the index of the first
   * one not sent. Throws CLOSED, or INVALID_ARGUMENT at a bad message (those
   * before it are sent).
   */
  #sendFrom(msgs: readonly Uint8Array[], i: number): number {
    if (this.#closed) throw new VhostUserError('the channel is closed', 'CLOSED');
    const ep = this.endpoint;
    if (!ep.up) return i;
    if (ep.queueFrame === undefined) {
      // an endpoint without the gather form: whole frames, up to 64 per call
      while (i < msgs.length) {
        const frames: Uint8Array[] = [];
        for (let k = i; k < msgs.length && frames.length < 64; k++) {
          frames.push(this.#frame(msgs[k]!, (this.#seq + (k - i)) >>> 0));
        }
        const n = ep.trySendBatch(frames);
        for (let k = 0; k < n; k++) this.stats.sentBytes += msgs[i + k]!.length;
        this.stats.sent += n;
        this.#seq = (this.#seq + n) >>> 0;
        i += n;
        if (n < frames.length) break;
      }
      return i;
    }
    let unflushed = 0;
    try {
      while (i < msgs.length && this.#place(msgs[i]!)) {
        i++;
        if (++unflushed === 64) {
          ep.flush!();
          unflushed = 0;
        }
      }
    } finally {
      if (unflushed > 0) ep.flush!();
    }
    return i;
  }

  #writable(): Promise<void> {
    return new Promise((resolve) => {
      let off = (): void => {};
      const t = setTimeout(() => {
        off();
        resolve();
      }, this.#retryMs);
      off = this.endpoint.onWritable(() => {
        clearTimeout(t);
        off();
        resolve();
      });
    });
  }

  #onFrame(f: Uint8Array): void {
    if (f.length < MESSAGE_HEADER_SIZE) {
      this.stats.invalid++;
      return;
    }
    // the frame aliases guest memory the peer can still write: read each field once
    if ((f[0]! | (f[1]! << 8)) !== MESSAGE_MAGIC) {
      this.stats.invalid++;
      if (this.listenerCount('invalid') > 0) this.emit('invalid', f.slice());
      return;
    }
    const seq = (f[4]! | (f[5]! << 8) | (f[6]! << 16) | (f[7]! << 24)) >>> 0;
    if (this.#lastSeen >= 0 && ((seq - this.#lastSeen) | 0) <= 0) {
      this.stats.duplicates++;
      return;
    }
    this.#lastSeen = seq;
    const msg = f.slice(MESSAGE_HEADER_SIZE);
    this.stats.received++;
    this.stats.receivedBytes += msg.length;
    const w = this.#waiters.shift();
    if (w) {
      w({ value: msg, done: false });
      return;
    }
    if (this.#waiters.length === 0 && this.listenerCount('message') > 0) {
      this.emit('message', msg);
      return;
    }
    this.#queue.push(msg);
    if (this.#queue.length - this.#head >= this.#hwm && !this.#paused) {
      this.#paused = true;
      this.endpoint.pause();
    }
  }

  /** The next message (waits for one). Resolves undefined once the channel is closed. */
  async receive(): Promise<Uint8Array | undefined> {
    const r = await this.#next();
    return r.done ? undefined : r.value;
  }

  #next(): Promise<IteratorResult<Uint8Array>> {
    if (this.#head < this.#queue.length) {
      const value = this.#queue[this.#head]!;
      this.#queue[this.#head++] = undefined as never;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      if (this.#paused && this.#queue.length - this.#head <= this.#hwm / 2) {
        this.#paused = false;
        this.endpoint.resume();
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => this.#next(),
      return: async () => ({ value: undefined, done: true }),
    };
  }

  /** Ends iteration (buffered messages are still handed out first). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w({ value: undefined, done: true });
    if (this.#paused) this.endpoint.resume();
  }
}
