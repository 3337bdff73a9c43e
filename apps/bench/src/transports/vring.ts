import { nowNs } from '../cpu.js';
import { MessageKind, type Phase } from '../defs.js';
import type { EndpointContext, ReceiverEndpoint, SenderEndpoint, TransportModule } from '../endpoint-api.js';
import { PhaseClock } from '../endpoint-api.js';
import { BenchError } from '../errors.js';
import { HdrHistogram } from '../hdr-histogram.js';
import { makeMessage, ReceiverTally } from '../message.js';
import type { SenderReport, VringParams } from '../protocol.js';
import {
  type BufferSpec,
  type DescriptorChainLike,
  type DeviceQueueLike,
  type DriverQueueLike,
  loadVring,
  type QueueOptionsLike,
  type SlotDriverLike,
} from '../vring-api.js';
import { latencyReport, throughputReport } from './common.js';

/** A wait that makes no progress for this long means the peer is gone or the ring is wedged. */
const STALL_LIMIT_NS = 10e9;
/** The receiver in poll mode returns to its event loop after this much idle spinning (control messages). */
const IDLE_YIELD_NS = 1e6;
/** Token of the round-trip chain (request in slot 0, reply in slot 1). */
const PING_TOKEN = -1;

interface Doorbell {
  wait(): Promise<void>;
  kick(): void;
  close(): void;
}

interface Shared {
  params: VringParams;
  memory: unknown;
  data: Uint8Array;
  addresses: Record<string, bigint>;
  /** Kick: driver -> device. Call: device -> driver. Absent in poll mode. */
  kick: Doorbell | undefined;
  call: Doorbell | undefined;
  close(): void;
}

interface EventFdLike {
  kick(value?: number): boolean;
  watch(cb: (count: number, error?: unknown) => void): unknown;
  close(): void;
}

/**
 * One direction's eventfd. Only the waiting side watches it (the watcher
 * drains the counter, so a watch on the ringing side would steal the kicks):
 * the watch starts at the first wait().
 */
function doorbell(efd: EventFdLike, onError: (e: unknown) => void): Doorbell {
  let waiter: (() => void) | null = null;
  let pending = false;
  let watching = false;
  const watch = () => {
    watching = true;
    efd.watch((_count, error) => {
      if (error) {
        onError(error);
        return;
      }
      const w = waiter;
      if (w) {
        waiter = null;
        w();
      } else {
        pending = true;
      }
    });
  };
  return {
    wait: () => {
      if (!watching) watch();
      if (pending) {
        pending = false;
        return Promise.resolve();
      }
      return new Promise<void>((r) => {
        waiter = r;
      });
    },
    kick: () => {
      efd.kick(1);
    },
    close: () => efd.close(),
  };
}

/**
 * A doorbell between two threads: word `index` of `words` is set and notified
 * by kick(); wait() takes a pending ring or awaits one (Atomics.waitAsync, the
 * event loop keeps running). Clearing it with an exchange before the caller
 * re-checks the ring loses no kick: a ring cleared by the exchange was made
 * after its data, which the re-check then sees.
 */
function threadDoorbell(words: Int32Array, index: number): Doorbell {
  return {
    wait: async () => {
      if (Atomics.exchange(words, index, 0) !== 0) return;
      const r = Atomics.waitAsync(words, index, 0, STALL_LIMIT_NS / 1e6);
      if (r.async) await r.value;
      Atomics.exchange(words, index, 0);
    },
    kick: () => {
      Atomics.store(words, index, 1);
      Atomics.notify(words, index);
    },
    close: () => {},
  };
}

async function openShared(ctx: EndpointContext): Promise<Shared> {
  const p = ctx.spec.vring;
  if (p === undefined) throw new BenchError('PROTOCOL', 'vring endpoint without vring parameters');
  const vr = await loadVring(p.layout);
  const addresses: Record<string, bigint> = {};
  for (const [k, v] of Object.entries(p.addresses)) addresses[k] = BigInt(v);
  const shared = ctx.shared?.memory;
  if (shared !== undefined) {
    const doorbells = p.doorbells;
    if (shared.byteLength < (doorbells === undefined ? p.memoryBytes : doorbells + 8))
      throw new BenchError('PROTOCOL', 'shared memory smaller than the layout');
    if (p.mode !== 'poll' && doorbells === undefined)
      throw new BenchError('PROTOCOL', `worker vring in ${p.mode} mode without doorbells`);
    const words = doorbells === undefined ? undefined : new Int32Array(shared, doorbells, 2);
    return {
      params: p,
      memory: new vr.GuestMemory([{ guestAddress: 0n, size: p.memoryBytes, buffer: shared }]),
      data: new Uint8Array(shared, 0, p.memoryBytes),
      addresses,
      kick: words && threadDoorbell(words, 0),
      call: words && threadDoorbell(words, 1),
      close: () => {},
    };
  }
  const fds = ctx.spec.fds;
  if (fds?.memory === undefined || fds.kick === undefined || fds.call === undefined) {
    throw new BenchError('PROTOCOL', 'vring process endpoint without its inherited descriptors');
  }
  const shm = await import('@vipc/shm');
  const memfd = new shm.Fd(fds.memory);
  // A plain ArrayBuffer over the mapping: payload copies at memcpy speed.
  const mapping = shm.mmap(memfd, { length: p.memoryBytes });
  memfd.close(); // the mapping keeps the memory
  const kickFd = shm.EventFd.from(new shm.Fd(fds.kick));
  const callFd = shm.EventFd.from(new shm.Fd(fds.call));
  const events = p.mode !== 'poll';
  const kick = events ? doorbell(kickFd, ctx.fail) : undefined;
  const call = events ? doorbell(callFd, ctx.fail) : undefined;
  return {
    params: p,
    memory: vr.GuestMemory.fromBuffer(mapping.buffer, 0n),
    data: new Uint8Array(mapping.buffer),
    addresses,
    kick,
    call,
    close: () => {
      kickFd.close();
      callFd.close();
      mapping.unmap();
    },
  };
}

function stalled(what: string): BenchError {
  return new BenchError(
    'ENDPOINT_TIMEOUT',
    `vring ${what}: no progress for ${STALL_LIMIT_NS / 1e9} s (peer gone?)`,
  );
}

/**
 * What the sender needs from its driver queue: the general queues (split or
 * packed, with a free list of data slots) and SplitSlotDriver (slots) each
 * have one.
 */
interface SenderRing {
  /** Reclaims every used chain; returns how many. */
  reclaim(): number;
  /** Adds up to `n` chains, each a copy of `src`; returns how many (0: no free slot). */
  addCopies(src: Uint8Array, n: number): number;
  /** Adds a round-trip request (`src`) with room for its reply; false when there is no room. */
  addPing(src: Uint8Array): boolean;
  /** The reply's length once the ping came back (-1 before). */
  readonly replyLen: number;
  /** The reply's bytes (valid once replyLen >= 0, until the next ping). */
  reply(): Uint8Array;
  /** Chains added and not yet reclaimed. */
  readonly outstanding: number;
  publish(): boolean;
  enableCallbacks(): boolean;
  disableCallbacks(): void;
}

/** SplitDriverQueue or PackedDriverQueue, over a free list of data slots (the token is the slot). */
class QueueRing implements SenderRing {
  readonly #s: Shared;
  readonly #q: DriverQueueLike;
  readonly #size: number;
  readonly #slots: number;
  readonly #free: number[] = [];
  /** popUsedBatch() output, reused. */
  readonly #tokens: unknown[] = new Array<unknown>(64).fill(undefined);
  readonly #lens = new Uint32Array(64);
  readonly #ping: BufferSpec[];
  outstanding = 0;
  replyLen = -1;

  constructor(s: Shared, q: DriverQueueLike, size: number) {
    this.#s = s;
    this.#q = q;
    this.#size = size;
    this.#slots = s.params.slots;
    for (let i = s.params.slots - 1; i >= 0; i--) this.#free.push(i);
    // a round trip: the request in slot 0, the reply into slot 1
    this.#ping = [
      { addr: this.#offset(0), len: size },
      { addr: this.#offset(1), len: size, writable: true },
    ];
  }

  #offset(slot: number): number {
    return this.#s.params.dataOffset + slot * this.#s.params.slotBytes;
  }

  reclaim(): number {
    const q = this.#q;
    const tokens = this.#tokens;
    const lens = this.#lens;
    let total = 0;
    for (;;) {
      const n = q.popUsedBatch(tokens, lens);
      for (let i = 0; i < n; i++) this.#used(tokens[i], lens[i]!);
      total += n;
      if (n < tokens.length) return total;
    }
  }

  #used(token: unknown, len: number): void {
    this.outstanding--;
    if (token === PING_TOKEN) {
      this.replyLen = len;
    } else if (typeof token === 'number' && token >= 0 && token < this.#slots) {
      this.#free.push(token);
    } else {
      throw new BenchError('PROTOCOL', `used element with an unknown token ${String(token)}`);
    }
  }

  addCopies(src: Uint8Array, n: number): number {
    const { dataOffset, slotBytes } = this.#s.params;
    const data = this.#s.data;
    const free = this.#free;
    const q = this.#q;
    const size = this.#size;
    let k = 0;
    while (k < n && free.length > 0) {
      const slot = free.pop()!;
      const off = dataOffset + slot * slotBytes;
      data.set(src, off);
      if (q.addBuffer(off, size, slot) < 0) {
        free.push(slot);
        break;
      }
      k++;
    }
    this.outstanding += k;
    return k;
  }

  addPing(src: Uint8Array): boolean {
    this.#s.data.set(src, this.#offset(0));
    this.replyLen = -1;
    if (this.#q.add(this.#ping, PING_TOKEN) < 0) return false;
    this.outstanding++;
    return true;
  }

  reply(): Uint8Array {
    const at = this.#offset(1);
    return this.#s.data.subarray(at, at + this.#size);
  }

  publish(): boolean {
    return this.#q.publish();
  }
  enableCallbacks(): boolean {
    return this.#q.enableCallbacks();
  }
  disableCallbacks(): void {
    this.#q.disableCallbacks();
  }
}

/**
 * SplitSlotDriver (IN_ORDER, one fixed slot per descriptor): a batch is one
 * addBytesBatch() call, and a round trip is two chains, the request and then
 * a device-writable slot for the reply (the device answers in order).
 */
class SlotRing implements SenderRing {
  readonly #q: SlotDriverLike;
  readonly #size: number;
  /** `src` repeated, for addBytesBatch() (rebuilt when the source changes). */
  #copies: Uint8Array[] = [];
  readonly #ids: Uint16Array;
  readonly #lens: Uint32Array;
  /** The current ping's reply slot, and whether its used element is still awaited. */
  #replyId = 0;
  #awaiting = false;
  outstanding = 0;
  replyLen = -1;

  constructor(q: SlotDriverLike, size: number, queueSize: number) {
    this.#q = q;
    this.#size = size;
    this.#ids = new Uint16Array(queueSize);
    this.#lens = new Uint32Array(queueSize);
  }

  reclaim(): number {
    // ids and lengths are needed only while a reply is awaited
    if (!this.#awaiting) {
      const n = this.#q.popUsed();
      this.outstanding -= n;
      return n;
    }
    const ids = this.#ids;
    const lens = this.#lens;
    const n = this.#q.popUsed(ids, lens);
    for (let i = 0; i < n; i++) {
      if (ids[i] === this.#replyId) {
        this.replyLen = lens[i]!;
        this.#awaiting = false;
      }
    }
    this.outstanding -= n;
    return n;
  }

  addCopies(src: Uint8Array, n: number): number {
    let copies = this.#copies;
    if (copies.length < n || copies[0] !== src) {
      copies = new Array<Uint8Array>(Math.max(n, copies.length)).fill(src);
      this.#copies = copies;
    }
    const k = this.#q.addBytesBatch(copies, 0, n);
    this.outstanding += k;
    return k;
  }

  addPing(src: Uint8Array): boolean {
    if (this.#q.freeCount() < 2) return false;
    this.#q.addBytes(src);
    this.#replyId = this.#q.add(this.#size, true);
    this.#awaiting = true;
    this.replyLen = -1;
    this.outstanding += 2;
    return true;
  }

  reply(): Uint8Array {
    // (the reply slot is free again, but nothing is added before the next ping)
    return this.#q.slot(this.#replyId).subarray(0, this.#size);
  }

  publish(): boolean {
    return this.#q.publish();
  }
  enableCallbacks(): boolean {
    return this.#q.enableCallbacks();
  }
  disableCallbacks(): void {
    this.#q.disableCallbacks();
  }
}

/** The driver side (A): adds chains of payload, reclaims used ones, measures. */
class VringSender implements SenderEndpoint {
  readonly #s: Shared;
  readonly #ring: SenderRing;
  readonly #size: number;
  readonly #local: Uint8Array;
  #kicks = 0;
  #sleeps = 0;
  #waits = 0;
  #sleptNs = 0;

  constructor(s: Shared, ring: SenderRing, size: number) {
    this.#s = s;
    this.#ring = ring;
    this.#size = size;
    this.#local = new Uint8Array(size);
    ring.disableCallbacks();
  }

  #publish(): void {
    if (this.#ring.publish() && this.#s.kick) {
      this.#s.kick.kick();
      this.#kicks++;
    }
  }

  /** Waits until at least one used element was reclaimed: true when done synchronously. */
  #waitUsed(): true | Promise<void> {
    if (this.#ring.reclaim() > 0) return true;
    this.#waits++;
    const p = this.#s.params;
    const start = nowNs();
    if (p.mode === 'poll' || p.mode === 'spin') {
      const spinNs = p.mode === 'poll' ? STALL_LIMIT_NS : p.spinUs * 1000;
      for (let i = 1; ; i++) {
        if (this.#ring.reclaim() > 0) return true;
        if ((i & 1023) === 0 && nowNs() - start > spinNs) {
          if (p.mode === 'poll') throw stalled('sender');
          break;
        }
      }
    }
    return this.#sleepUsed(start);
  }

  async #sleepUsed(start: number): Promise<void> {
    const call = this.#s.call;
    if (call === undefined) throw new BenchError('PROTOCOL', 'event mode without a call eventfd');
    const ring = this.#ring;
    for (;;) {
      if (ring.enableCallbacks()) {
        ring.disableCallbacks();
        if (ring.reclaim() > 0) return;
      } else {
        this.#sleeps++;
        const t = nowNs();
        await Promise.race([call.wait(), timeout(STALL_LIMIT_NS)]);
        this.#sleptNs += nowNs() - t;
        ring.disableCallbacks();
        if (ring.reclaim() > 0) return;
      }
      if (nowNs() - start > STALL_LIMIT_NS) throw stalled('sender');
    }
  }

  async #drain(): Promise<void> {
    while (this.#ring.outstanding > 0) {
      const w = this.#waitUsed();
      if (w !== true) await w;
    }
  }

  async #sendEnd(phase: Phase): Promise<void> {
    const end = makeMessage(this.#size, MessageKind.END, phase);
    while (this.#ring.addCopies(end, 1) === 0) {
      const w = this.#waitUsed();
      if (w !== true) await w;
    }
    this.#publish();
  }

  #counters(): Record<string, number> {
    const c = {
      kicks: this.#kicks,
      sleeps: this.#sleeps,
      waits: this.#waits,
      sleptUs: Math.round(this.#sleptNs / 1000),
    };
    this.#sleptNs = 0;
    this.#kicks = 0;
    this.#sleeps = 0;
    this.#waits = 0;
    return c;
  }

  async run(phase: Phase, warmupMs: number, durationMs: number): Promise<SenderReport> {
    await this.#drain();
    this.#counters();
    return phase === 'throughput'
      ? this.#throughput(warmupMs, durationMs)
      : this.#latency(warmupMs, durationMs);
  }

  async #throughput(warmupMs: number, durationMs: number): Promise<SenderReport> {
    const p = this.#s.params;
    const size = this.#size;
    const warm = makeMessage(size, MessageKind.WARM);
    const measure = makeMessage(size, MessageKind.MEASURE);
    const ring = this.#ring;
    // Batches capped in count and in bytes (at least one message each).
    const perBatch = Math.max(1, Math.min(p.batch, Math.floor(p.batchBytes / size)));
    let sent = 0;
    let measured = 0;
    let batches = 0;
    const clock = new PhaseClock(warmupMs, durationMs);
    for (;;) {
      ring.reclaim();
      const state = clock.tick();
      if (state === 2) break;
      const n = ring.addCopies(state === 1 ? measure : warm, perBatch);
      if (n > 0) {
        sent += n;
        if (state === 1) measured += n;
        batches++;
        this.#publish();
      } else {
        const w = this.#waitUsed();
        if (w !== true) await w;
      }
    }
    await this.#sendEnd('throughput');
    return throughputReport(clock, sent, measured, { ...this.#counters(), batches });
  }

  async #latency(warmupMs: number, durationMs: number): Promise<SenderReport> {
    const size = this.#size;
    const pingWarm = makeMessage(size, MessageKind.PING_WARM);
    const ping = makeMessage(size, MessageKind.PING);
    const ring = this.#ring;
    const histogram = new HdrHistogram();
    const local = this.#local;
    let sent = 0;
    let measured = 0;
    let replies = 0;
    const clock = new PhaseClock(warmupMs, durationMs);
    for (;;) {
      const state = clock.tick();
      if (state === 2) break;
      const msg = state === 1 ? ping : pingWarm;
      const t0 = nowNs();
      if (!ring.addPing(msg)) throw new BenchError('PROTOCOL', 'no descriptors for a round trip');
      sent++;
      if (state === 1) measured++;
      this.#publish();
      while (ring.replyLen < 0) {
        const w = this.#waitUsed();
        if (w !== true) await w;
      }
      local.set(ring.reply());
      const t1 = nowNs();
      if (ring.replyLen !== size || local[0] !== msg[0]) {
        throw new BenchError(
          'PROTOCOL',
          `round-trip reply of ${ring.replyLen} bytes with kind ${local[0]}, expected ${size} bytes of kind ${msg[0]}`,
        );
      }
      replies++;
      if (state === 1) histogram.record(t1 - t0);
    }
    await this.#sendEnd('latency');
    return latencyReport(clock, sent, measured, replies, histogram, this.#counters());
  }

  close(): void {
    this.#s.close();
  }
}

function timeout(ns: number): Promise<void> {
  return new Promise((r) => {
    const t = setTimeout(r, ns / 1e6);
    t.unref();
  });
}

/** The device side (B): pops chains, copies payload out, echoes round trips, reports at END. */
function serve(ctx: EndpointContext, s: Shared, q: DeviceQueueLike): () => void {
  const p = s.params;
  const size = ctx.spec.size;
  const local = new Uint8Array(size);
  let closed = false;
  let yieldNow = false;
  let calls = 0;
  let sleeps = 0;
  let popped = 0;
  let sleptNs = 0;
  const tally = new ReceiverTally(size, (report) => {
    report.extra = { calls, sleeps, chains: popped, sleptUs: Math.round(sleptNs / 1000) };
    sleptNs = 0;
    calls = 0;
    sleeps = 0;
    popped = 0;
    yieldNow = true;
    ctx.receiverReport(report);
  });
  // slots: a round trip's request was read; the next chain is the buffer for its reply
  let replyDue = false;
  // Plain messages are counted in a run of one kind, handed to the tally in
  // one call (before anything else is counted, and after each serve() call).
  let runKind = -1;
  let runCount = 0;
  const flush = (): void => {
    if (runCount > 0) {
      tally.messages(runKind, runCount);
      runCount = 0;
    }
  };
  // Anything but a plain message: a round trip (echoed), END, a reply buffer, or a bad chain.
  const visitOther = (chain: DescriptorChainLike): number => {
    flush();
    if (replyDue) {
      replyDue = false;
      if (chain.readableLength !== 0 || chain.writableLength < size) {
        throw new BenchError(
          'PROTOCOL',
          `expected a round trip's reply buffer of ${size} writable bytes, got a chain of ${chain.readableLength} readable and ${chain.writableLength} writable bytes`,
        );
      }
      return chain.write(local);
    }
    if (chain.readableLength !== size) {
      throw new BenchError('PROTOCOL', `chain with ${chain.readableLength} readable bytes, expected ${size}`);
    }
    let kind: number;
    let phase: number;
    if (chain.segmentLength(0) >= 2) {
      const bytes = chain.segmentBytes(0);
      const at = chain.segmentOffset(0);
      kind = bytes[at]!;
      phase = bytes[at + 1]!;
    } else {
      // the two header bytes are split across buffers (or the message is 1 byte)
      chain.read(local);
      kind = local[0]!;
      phase = local[1] ?? 0;
    }
    if (!tally.message(kind, phase)) return 0;
    if (p.layout === 'slots') {
      chain.read(local);
      replyDue = true;
      return 0;
    }
    if (chain.writableLength < size) {
      throw new BenchError('PROTOCOL', `round-trip chain with only ${chain.writableLength} writable bytes`);
    }
    chain.read(local);
    return chain.write(local);
  };
  // One chain: its header bytes read in place (no copy). Kept small, so that
  // V8 inlines it into the ring's serve loop: the plain message of a
  // throughput phase here, everything else in visitOther().
  const visit = (chain: DescriptorChainLike): number => {
    // (one segment holding the whole message: its header bytes are in it)
    if (!replyDue && chain.segmentCount === 1 && chain.readableLength === size) {
      const kind = chain.segmentBytes(0)[chain.segmentOffset(0)]!;
      if (kind === MessageKind.MEASURE || kind === MessageKind.WARM) {
        if (kind !== runKind) {
          flush();
          runKind = kind;
        }
        runCount++;
        return 0;
      }
    }
    return visitOther(chain);
  };
  const serveBatch = (): number => {
    const n = q.serve(p.batch, visit);
    flush();
    if (n > 0) {
      popped += n;
      if (q.publishUsed() && s.call) {
        s.call.kick();
        calls++;
      }
    }
    return n;
  };

  const pollLoop = (): void => {
    try {
      let idle = 0;
      let idleSince = 0;
      while (!closed) {
        if (serveBatch() > 0) {
          // idle time counts from the last chain served: without this reset, every
          // 256 empty polls after the first idle millisecond went back to the event loop
          idle = 0;
          idleSince = 0;
          if (yieldNow) {
            yieldNow = false;
            setImmediate(pollLoop);
            return;
          }
          continue;
        }
        if ((++idle & 255) === 0) {
          const t = nowNs();
          if (idleSince === 0) idleSince = t;
          else if (t - idleSince > IDLE_YIELD_NS) {
            setImmediate(pollLoop);
            return;
          }
        }
        if (yieldNow) {
          yieldNow = false;
          setImmediate(pollLoop);
          return;
        }
      }
    } catch (err) {
      ctx.fail(err);
    }
  };

  const eventLoop = async (): Promise<void> => {
    const kick = s.kick;
    if (kick === undefined) throw new BenchError('PROTOCOL', 'event mode without a kick eventfd');
    q.disableNotifications();
    while (!closed) {
      if (serveBatch() > 0) {
        if (yieldNow) {
          yieldNow = false;
          await new Promise((r) => setImmediate(r));
        }
        continue;
      }
      if (p.mode === 'spin') {
        const until = nowNs() + p.spinUs * 1000;
        let found = false;
        for (let i = 1; ; i++) {
          if (q.hasAvailable()) {
            found = true;
            break;
          }
          if ((i & 63) === 0 && nowNs() > until) break;
        }
        if (found) continue;
      }
      if (q.enableNotifications()) {
        q.disableNotifications();
        continue;
      }
      sleeps++;
      const t = nowNs();
      await kick.wait();
      sleptNs += nowNs() - t;
      q.disableNotifications();
    }
  };

  if (p.mode === 'poll') {
    q.disableNotifications();
    setImmediate(pollLoop);
  } else {
    eventLoop().catch((err) => ctx.fail(err));
  }
  return () => {
    closed = true;
  };
}

/** Either side's queue over the shared ring. */
function queueOptions(s: Shared): QueueOptionsLike {
  return {
    memory: s.memory,
    size: s.params.queueSize,
    addresses: s.addresses,
    // slots: SplitSlotDriver's fast path, in-order use (2.7.9)
    features: { eventIdx: s.params.eventIdx, inOrder: s.params.layout === 'slots' },
  };
}

export const vring: TransportModule = {
  async createReceiver(ctx: EndpointContext): Promise<ReceiverEndpoint> {
    const s = await openShared(ctx);
    const vr = await loadVring(s.params.layout);
    const layout = s.params.layout;
    const q =
      layout === 'packed'
        ? new vr.PackedDeviceQueue(queueOptions(s))
        : // slots: one used element per run of chains served together
          new vr.SplitDeviceQueue({ ...queueOptions(s), batchUsed: layout === 'slots' });
    const stop = serve(ctx, s, q);
    return {
      close: () => {
        stop();
        s.close();
      },
    };
  },
  async createSender(ctx: EndpointContext): Promise<SenderEndpoint> {
    const s = await openShared(ctx);
    const p = s.params;
    const vr = await loadVring(p.layout);
    const size = ctx.spec.size;
    if (p.layout === 'slots') {
      const q = new vr.SplitSlotDriver({
        ...queueOptions(s),
        slots: BigInt(p.dataOffset),
        slotSize: p.slotBytes,
      });
      return new VringSender(s, new SlotRing(q, size, p.queueSize), size);
    }
    const Queue = p.layout === 'split' ? vr.SplitDriverQueue : vr.PackedDriverQueue;
    return new VringSender(s, new QueueRing(s, new Queue(queueOptions(s)), size), size);
  },
};
