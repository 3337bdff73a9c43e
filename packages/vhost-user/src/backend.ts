/**
 * The vhost-user back-end (device side): answers the front-end's requests,
 * maps its memory, runs the rings through a VirtioDevice.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventFd, type Fd } from '@vipc/shm';
import * as vring from '@vipc/vring';
import { closeAll, type Message } from './codec.js';
import {
  type Connection,
  type CredentialPolicy,
  connectTo,
  type ListenOptions,
  VhostUserListener,
} from './connection.js';
import {
  bit,
  DeviceStatus,
  hasBit,
  ProtocolFeature as P,
  FrontendRequest as R,
  VHOST_USER_F_PROTOCOL_FEATURES,
  VHOST_USER_VRING_IDX_MASK,
  VHOST_USER_VRING_NOFD_MASK,
  VirtioFeature,
} from './defs.js';
import { BackendQueue, type VirtioDevice } from './device.js';
import { VhostUserError } from './errors.js';
import { InflightBuffer, type InflightLayout, PackedTracker, SplitTracker } from './inflight.js';
import { MemoryMap } from './memory-map.js';
import type { MemoryRegionDescription, PayloadBodies, VringAddress, VringState } from './messages.js';

export interface BackendOptions {
  device: VirtioDevice;
  /**
   * 'event' (default): process a queue when its kick eventfd fires.
   * 'poll': busy-poll started queues on the event loop (lowest latency, one core).
   */
  mode?: 'event' | 'poll';
  /** Transport feature bits offered besides the device's (default VERSION_1, INDIRECT_DESC, EVENT_IDX, RING_PACKED when available). */
  transportFeatures?: bigint;
  /** Protocol features offered (default MQ, REPLY_ACK, STATUS, RESET_DEVICE, CONFIGURE_MEM_SLOTS, CONFIG if the device has config). */
  protocolFeatures?: bigint;
  /** Memory slots (GET_MAX_MEM_SLOTS; default 32). */
  maxMemSlots?: number;
  /** Seals every region fd must carry (e.g. Seal.SHRINK). */
  requireSeals?: number;
  /**
   * Offer INFLIGHT_SHMFD (split and packed rings): the back-end keeps the
   * spec's inflight buffer, and a restarted back-end given it with
   * SET_INFLIGHT_FD repairs it and re-processes what was inflight (default false).
   */
  inflight?: boolean;
  /** Where protocol problems are reported (default: nowhere; they are also emitted as 'connection-error'). */
  log?: (line: string) => void;
}

function defaultTransport(): bigint {
  return (
    bit(VirtioFeature.VERSION_1) |
    bit(VirtioFeature.RING_INDIRECT_DESC) |
    bit(VirtioFeature.RING_EVENT_IDX) |
    bit(VirtioFeature.RING_PACKED)
  );
}

/** Event mode: empty polling rounds after a busy one before kicks are re-enabled. */
const NAPI_IDLE_ROUNDS = 16;

/** Requests whose explicit reply we cannot produce on failure: the connection closes instead. */
const MUST_REPLY = new Set<number>([
  R.GET_FEATURES,
  R.GET_PROTOCOL_FEATURES,
  R.GET_VRING_BASE,
  R.GET_QUEUE_NUM,
  R.GET_MAX_MEM_SLOTS,
  R.GET_STATUS,
  R.GET_INFLIGHT_FD,
]);

/** Requests that always get a u64 status reply (0 = success) even without REPLY_ACK. */
const U64_STATUS_REPLY = new Set<number>([
  R.IOTLB_MSG,
  R.POSTCOPY_END,
  R.CHECK_DEVICE_STATE,
  R.SET_DEVICE_STATE_FD,
]);

/**
 * Events: 'connect' (Connection), 'disconnect' (reason), 'connection-error'
 * (VhostUserError: the reason a connection was closed), 'queue-start' and
 * 'queue-stop' (BackendQueue: GET_VRING_BASE, or a device reset),
 * 'queue-error' (BackendQueue, Error), 'status' (device status: each
 * SET_STATUS, and DEVICE_NEEDS_RESET added when a queue fails), 'memory'
 * (region count after each change),
 * 'memory-table' ({ regions, remapped }: every SET_MEM_TABLE, also an identical one).
 */
export class VhostUserBackend extends EventEmitter {
  readonly device: VirtioDevice;
  readonly mode: 'event' | 'poll';
  readonly offeredFeatures: bigint;
  readonly offeredProtocolFeatures: bigint;
  readonly memoryMap: MemoryMap;
  readonly queues: BackendQueue[];
  #log: (line: string) => void;
  #conn: Connection | undefined;
  #features = 0n;
  #featuresSet = false;
  #protocolFeatures = 0n;
  #status = 0;
  #owner = false;
  #pollTimer: NodeJS.Immediate | undefined;
  #inflight: InflightBuffer | undefined;
  #closed = false;
  /** connect() calls waiting for their socket: close() aborts them. */
  readonly #connecting = new Set<AbortController>();

  constructor(options: BackendOptions) {
    super();
    this.device = options.device;
    this.mode = options.mode ?? 'event';
    this.#log = options.log ?? (() => {});
    this.offeredFeatures =
      options.device.features |
      (options.transportFeatures ?? defaultTransport()) |
      bit(VHOST_USER_F_PROTOCOL_FEATURES);
    let pf = bit(P.MQ) | bit(P.REPLY_ACK) | bit(P.STATUS) | bit(P.RESET_DEVICE) | bit(P.CONFIGURE_MEM_SLOTS);
    if (options.device.readConfig) pf |= bit(P.CONFIG);
    if (options.inflight) pf |= bit(P.INFLIGHT_SHMFD);
    this.offeredProtocolFeatures = options.protocolFeatures ?? pf;
    this.memoryMap = new MemoryMap({
      maxRegions: options.maxMemSlots ?? 32,
      ...(options.requireSeals !== undefined ? { requireSeals: options.requireSeals } : {}),
    });
    this.queues = Array.from({ length: options.device.queueCount }, (_, i) => {
      const q = new BackendQueue(i, this.memoryMap.memory);
      q.wake = () => this.#schedule(q);
      return q;
    });
  }

  /** Negotiated virtio features (SET_FEATURES). */
  get features(): bigint {
    return this.#features;
  }

  get protocolFeatures(): bigint {
    return this.#protocolFeatures;
  }

  get status(): number {
    return this.#status;
  }

  get connected(): boolean {
    return this.#conn !== undefined && !this.#conn.closed;
  }

  #hasProtocol(n: number): boolean {
    return hasBit(this.#protocolFeatures, n);
  }

  /**
   * Serves one front-end until it disconnects or violates the protocol (the
   * connection is closed and 'connection-error' says why). Resolves then; the
   * back-end is ready for the next front-end.
   */
  async serve(conn: Connection): Promise<void> {
    if (this.#closed) throw new VhostUserError('the back-end is closed', 'CLOSED');
    if (this.connected) {
      conn.close();
      throw new VhostUserError('the back-end already serves a front-end', 'INVALID_STATE');
    }
    this.#conn = conn;
    this.#resetSession();
    this.device.attach?.(this.queues);
    this.emit('connect', conn);
    let reason = 'the front-end disconnected';
    try {
      for (;;) {
        let msg: Message;
        try {
          msg = await conn.receive();
        } catch (err) {
          if (err instanceof VhostUserError && (err.code === 'PEER_CLOSED' || err.code === 'CLOSED')) break;
          throw err;
        }
        this.#dispatch(conn, msg);
      }
    } catch (err) {
      const e =
        err instanceof VhostUserError
          ? err
          : new VhostUserError(`back-end failure: ${(err as Error).message}`, 'INVALID_STATE', {
              cause: err,
            });
      reason = e.message;
      this.#log(`vhost-user back-end: closing the connection: ${e.message}`);
      if (this.listenerCount('connection-error') > 0) this.emit('connection-error', e);
    } finally {
      conn.close();
      this.#conn = undefined;
      this.#resetSession();
      this.device.reset?.();
      this.emit('disconnect', reason);
    }
  }

  /**
   * Server mode: listens on `path` and serves each front-end in turn (one at
   * a time; another connecting meanwhile is refused).
   */
  listen(path: string, options: Omit<ListenOptions, 'role'> = {}): VhostUserListener {
    const listener = VhostUserListener.listen(path, { ...options, role: 'backend' });
    listener.on('connection', (conn: Connection) => {
      if (this.connected) {
        this.#log('vhost-user back-end: refusing a second front-end');
        conn.close();
        return;
      }
      this.serve(conn).catch(() => {});
    });
    return listener;
  }

  /**
   * Client mode: connects to a front-end listening on `path` (waiting for it
   * up to `timeoutMs`) and serves it; with `reconnect`, connects again each
   * time the front-end goes away, until close(). Resolves when done (close()
   * also ends a wait for the socket at once).
   */
  async connect(
    path: string,
    options: { reconnect?: boolean; timeoutMs?: number; intervalMs?: number; policy?: CredentialPolicy } = {},
  ): Promise<void> {
    do {
      let conn: Connection;
      const abort = new AbortController();
      this.#connecting.add(abort);
      try {
        conn = await connectTo(path, {
          role: 'backend',
          timeoutMs: options.timeoutMs ?? 10_000,
          signal: abort.signal,
          ...(options.policy ? { policy: options.policy } : {}),
        });
      } catch (err) {
        if (this.#closed) return;
        if (!options.reconnect) throw err;
        await sleep(options.intervalMs ?? 100);
        continue;
      } finally {
        this.#connecting.delete(abort);
      }
      await this.serve(conn);
      if (options.reconnect && !this.#closed) await sleep(options.intervalMs ?? 100);
    } while (options.reconnect && !this.#closed);
  }

  close(): void {
    this.#closed = true;
    for (const a of this.#connecting) a.abort();
    this.#conn?.close();
    this.#resetSession();
  }

  #resetSession(): void {
    for (const q of this.queues) this.#dropQueue(q, true);
    this.memoryMap.clear();
    this.#inflight?.close();
    this.#inflight = undefined;
    this.#features = 0n;
    this.#featuresSet = false;
    this.#protocolFeatures = 0n;
    this.#status = 0;
    this.#owner = false;
    this.#stopPolling();
  }

  /**
   * A device reset (RESET_DEVICE, or SET_STATUS 0: VIRTIO 2.1 "writing 0
   * resets the device"): every ring is stopped as GET_VRING_BASE would stop
   * it, without processing what is pending, and forgotten (size, base,
   * addresses, eventfds, enable state, a failure), features and status go back
   * to 0. Memory, protocol features and ownership stay: the front-end sets the
   * rings up again from scratch.
   */
  #resetDevice(): void {
    for (const q of this.queues) {
      const wasStarted = q.started;
      this.#dropQueue(q, true);
      if (wasStarted) {
        this.emit('queue-stop', q);
        this.device.queueChanged?.(q);
      }
    }
    // what the inflight buffer recorded belongs to the rings just reset: never recover it
    this.#inflight?.clear();
    this.#features = 0n;
    this.#featuresSet = false;
    this.#status = 0;
    this.device.reset?.();
  }

  #dropQueue(q: BackendQueue, full: boolean): void {
    q.kick?.close();
    q.kick = undefined;
    q.pollKick = false;
    q.started = false;
    q.ring = undefined;
    q.inflight = undefined;
    q.everEnabled = q.enabled;
    if (full) {
      q.call?.close();
      q.call = undefined;
      q.err?.close();
      q.err = undefined;
      q.enabled = false;
      q.everEnabled = false;
      q.size = 0;
      q.base = undefined;
      q.userAddresses = undefined;
      q.failure = undefined;
    }
  }

  // ---- dispatch ----

  #dispatch(conn: Connection, msg: Message): void {
    const replyAck = msg.needReply && this.#hasProtocol(P.REPLY_ACK);
    try {
      const explicit = this.#handle(conn, msg);
      if (!explicit && U64_STATUS_REPLY.has(msg.request)) conn.reply(msg.request, 'u64', 0n);
      else if (!explicit && replyAck) conn.reply(msg.request, 'u64', 0n);
    } catch (err) {
      closeAll(msg.fds);
      if (!(err instanceof VhostUserError)) throw err;
      // A failure the front-end can be told about: REPLY_ACK or a u64 status reply.
      if (!MUST_REPLY.has(msg.request) && (replyAck || U64_STATUS_REPLY.has(msg.request))) {
        this.#log(`vhost-user back-end: ${msg.name} failed: ${err.message}`);
        if (this.listenerCount('request-error') > 0) this.emit('request-error', err, msg.name);
        conn.reply(msg.request, 'u64', 1n);
        return;
      }
      throw err;
    }
  }

  #queue(index: number, what: string): BackendQueue {
    const q = this.queues[index];
    if (q === undefined) {
      throw new VhostUserError(
        `${what}: queue index ${index} out of range (the device has ${this.queues.length})`,
        'INVALID_QUEUE_INDEX',
      );
    }
    return q;
  }

  #needProtocol(n: number, what: string): void {
    if (!this.#hasProtocol(n)) {
      const name = Object.entries(P).find(([, v]) => v === n)?.[0] ?? String(n);
      throw new VhostUserError(
        `${what} needs protocol feature ${name}, which was not negotiated`,
        'FEATURE_NOT_NEGOTIATED',
      );
    }
  }

  /** Handles one request; returns true when it sent an explicit reply. */
  #handle(conn: Connection, msg: Message): boolean {
    const body = msg.body;
    switch (msg.request) {
      case R.SET_OWNER:
        this.#owner = true;
        return false;
      case R.RESET_OWNER:
        // Deprecated; the spec recommends ignoring it or disabling all rings.
        for (const q of this.queues) q.enabled = false;
        return false;
      case R.GET_FEATURES:
        conn.reply(msg.request, 'u64', this.offeredFeatures);
        return true;
      case R.SET_FEATURES:
        this.#setFeatures(body as bigint);
        return false;
      case R.GET_PROTOCOL_FEATURES:
        conn.reply(msg.request, 'u64', this.offeredProtocolFeatures);
        return true;
      case R.SET_PROTOCOL_FEATURES: {
        const pf = body as bigint;
        if ((pf & ~this.offeredProtocolFeatures) !== 0n) {
          throw new VhostUserError(
            `SET_PROTOCOL_FEATURES 0x${pf.toString(16)} has bits never offered (0x${this.offeredProtocolFeatures.toString(16)})`,
            'INVALID_PARAMETER',
          );
        }
        this.#protocolFeatures = pf;
        conn.options = { ...conn.options, xenMmap: hasBit(pf, P.XEN_MMAP) };
        return false;
      }
      case R.GET_QUEUE_NUM:
        this.#needProtocol(P.MQ, 'GET_QUEUE_NUM');
        conn.reply(msg.request, 'u64', BigInt(this.device.queueNum ?? this.device.queueCount));
        return true;
      case R.SET_MEM_TABLE:
        this.#setMemTable((body as PayloadBodies['memoryTable']).regions, msg.fds);
        return false;
      case R.ADD_MEM_REG:
        this.#needProtocol(P.CONFIGURE_MEM_SLOTS, 'ADD_MEM_REG');
        this.memoryMap.add(body as MemoryRegionDescription, msg.fds[0]!);
        this.#memoryChanged();
        return false;
      case R.REM_MEM_REG:
        this.#needProtocol(P.CONFIGURE_MEM_SLOTS, 'REM_MEM_REG');
        this.memoryMap.remove(body as MemoryRegionDescription);
        this.#memoryChanged();
        return false;
      case R.GET_MAX_MEM_SLOTS:
        this.#needProtocol(P.CONFIGURE_MEM_SLOTS, 'GET_MAX_MEM_SLOTS');
        conn.reply(msg.request, 'u64', BigInt(this.memoryMap.maxRegions));
        return true;
      case R.SET_VRING_NUM:
        this.#setVringNum(body as VringState);
        return false;
      case R.SET_VRING_ADDR:
        this.#setVringAddr(body as VringAddress);
        return false;
      case R.SET_VRING_BASE:
        this.#setVringBase(body as VringState);
        return false;
      case R.GET_VRING_BASE: {
        const s = body as VringState;
        const q = this.#queue(s.index, 'GET_VRING_BASE');
        conn.reply(msg.request, 'vringState', { index: s.index, num: this.#stopQueue(q) });
        return true;
      }
      case R.SET_VRING_KICK:
      case R.SET_VRING_CALL:
      case R.SET_VRING_ERR:
        this.#setVringFd(msg);
        return false;
      case R.SET_VRING_ENABLE: {
        const s = body as VringState;
        // The spec says this comes after PROTOCOL_FEATURES is negotiated, but DPDK's
        // virtio-user sends it earlier when it reconnects (server=1): only record it.
        const q = this.#queue(s.index, 'SET_VRING_ENABLE');
        if (s.num > 1)
          throw new VhostUserError(
            `SET_VRING_ENABLE: num must be 0 or 1 (got ${s.num})`,
            'INVALID_PARAMETER',
          );
        // Work the driver made available while the ring was enabled is processed as such.
        if (s.num === 0 && q.enabled && q.ready) this.#processOnce(q);
        q.enabled = s.num === 1;
        if (q.enabled) q.everEnabled = true;
        this.device.queueChanged?.(q);
        if (q.enabled) this.#schedule(q);
        return false;
      }
      case R.SET_STATUS: {
        this.#needProtocol(P.STATUS, 'SET_STATUS');
        const st = body as bigint;
        if (st > 0xffn)
          throw new VhostUserError(
            `SET_STATUS: status 0x${st.toString(16)} is not a u8`,
            'INVALID_PARAMETER',
          );
        if (st === 0n) {
          // VIRTIO 2.1: writing 0 resets the device (its rings included)
          this.#resetDevice();
        } else {
          // DEVICE_NEEDS_RESET stays until the reset it asks for
          this.#status = Number(st) | (this.#status & DeviceStatus.DEVICE_NEEDS_RESET);
        }
        this.emit('status', this.#status);
        return false;
      }
      case R.GET_STATUS:
        this.#needProtocol(P.STATUS, 'GET_STATUS');
        conn.reply(msg.request, 'u64', BigInt(this.#status));
        return true;
      case R.RESET_DEVICE:
        this.#needProtocol(P.RESET_DEVICE, 'RESET_DEVICE');
        this.#resetDevice();
        return false;
      case R.GET_CONFIG:
        this.#getConfig(conn, body as PayloadBodies['config']);
        return true;
      case R.SET_CONFIG: {
        const c = body as PayloadBodies['config'];
        this.#needProtocol(P.CONFIG, 'SET_CONFIG');
        if (!this.device.writeConfig?.(c.offset, c.data, c.flags)) {
          throw new VhostUserError(
            `SET_CONFIG at ${c.offset}+${c.size} refused by the device`,
            'INVALID_PARAMETER',
          );
        }
        return false;
      }
      case R.GET_INFLIGHT_FD: {
        this.#needProtocol(P.INFLIGHT_SHMFD, 'GET_INFLIGHT_FD');
        const d = body as PayloadBodies['inflight'];
        const buf = InflightBuffer.create(d.numQueues, d.queueSize, this.#inflightLayout());
        this.#replaceInflight(buf);
        conn.reply(
          msg.request,
          'inflight',
          { mmapSize: BigInt(buf.mmapSize), mmapOffset: 0n, numQueues: d.numQueues, queueSize: d.queueSize },
          [buf.fd],
        );
        return true;
      }
      case R.SET_INFLIGHT_FD: {
        this.#needProtocol(P.INFLIGHT_SHMFD, 'SET_INFLIGHT_FD');
        const d = body as PayloadBodies['inflight'];
        const buf = InflightBuffer.adopt(
          msg.fds[0]!,
          d.mmapSize,
          d.mmapOffset,
          d.numQueues,
          d.queueSize,
          this.#inflightLayout(),
        );
        this.#replaceInflight(buf);
        return false;
      }
      case R.VRING_KICK: {
        this.#needProtocol(P.INBAND_NOTIFICATIONS, 'VRING_KICK');
        return false;
      }
      default:
        // Everything else needs a feature this back-end never offers
        // (LOG_SHMFD, RARP, MTU, BACKEND_REQ, CROSS_ENDIAN, CRYPTO_SESSION,
        // PAGEFAULT, INFLIGHT_SHMFD, SHARED_OBJECT, DEVICE_STATE, IOMMU).
        throw new VhostUserError(
          `${msg.name} is not supported by this back-end (its feature was not offered)`,
          'FEATURE_NOT_NEGOTIATED',
        );
    }
  }

  /**
   * GET_CONFIG. vhost-user: the reply's payload size matches the request's, and
   * a zero-length payload tells the front-end the read failed (the message
   * header alone, without even the config header, as DPDK's vhost library and
   * libvhost-user send it). Any failure is answered so, REPLY_ACK or not: the
   * request solicits a reply of its own, which REPLY_ACK does not change.
   */
  #getConfig(conn: Connection, c: PayloadBodies['config']): void {
    let data: Uint8Array | null = null;
    let problem: VhostUserError | undefined;
    try {
      this.#needProtocol(P.CONFIG, 'GET_CONFIG');
      data = this.device.readConfig?.(c.offset, c.size) ?? null;
      if (data === null || data.length !== c.size) {
        problem = new VhostUserError(
          `GET_CONFIG at ${c.offset}+${c.size}: the device has no such range`,
          'INVALID_PARAMETER',
        );
      }
    } catch (err) {
      problem =
        err instanceof VhostUserError
          ? err
          : new VhostUserError(`GET_CONFIG: the device failed: ${(err as Error).message}`, 'INVALID_STATE', {
              cause: err,
            });
    }
    if (problem !== undefined || data === null) {
      this.#log(`vhost-user back-end: GET_CONFIG failed: ${problem?.message}`);
      if (this.listenerCount('request-error') > 0) this.emit('request-error', problem, 'GET_CONFIG');
      conn.reply(R.GET_CONFIG, 'none', undefined);
      return;
    }
    conn.reply(R.GET_CONFIG, 'config', { ...c, data });
  }

  /**
   * The inflight layout the queues need: packed when VIRTIO_F_RING_PACKED was
   * negotiated (as DPDK and QEMU decide it). Unknown before SET_FEATURES (QEMU
   * may ask for the buffer first): then the ring build decides.
   */
  #inflightLayout(): InflightLayout | undefined {
    if (!this.#featuresSet) return undefined;
    return hasBit(this.#features, VirtioFeature.RING_PACKED) ? 'packed' : 'split';
  }

  /**
   * A new inflight buffer (GET_ or SET_INFLIGHT_FD): queues stop recording
   * into the old one before it is unmapped, and pick the new one up when
   * their ring is built next.
   */
  #replaceInflight(buf: InflightBuffer): void {
    for (const q of this.queues) q.inflight = undefined;
    this.#inflight?.close();
    this.#inflight = buf;
  }

  #setFeatures(f: bigint): void {
    if ((f & ~this.offeredFeatures) !== 0n) {
      throw new VhostUserError(
        `SET_FEATURES 0x${f.toString(16)} has bits never offered (0x${this.offeredFeatures.toString(16)})`,
        'INVALID_PARAMETER',
      );
    }
    if (this.queues.some((q) => q.started) && this.#featuresSet && ((f ^ this.#features) & ~bit(26)) !== 0n) {
      throw new VhostUserError('SET_FEATURES may not change ring features while rings run', 'OUT_OF_ORDER');
    }
    this.#features = f;
    this.#featuresSet = true;
    if (!hasBit(f, VHOST_USER_F_PROTOCOL_FEATURES)) {
      // vhost-user "Ring states": without PROTOCOL_FEATURES every ring is enabled at once.
      for (const q of this.queues) {
        q.enabled = true;
        q.everEnabled = true;
      }
    }
    this.device.setFeatures?.(f);
  }

  #setMemTable(regions: MemoryRegionDescription[], fds: Fd[]): void {
    const changed = this.memoryMap.setTable(regions, fds);
    if (changed) this.#memoryChanged();
    this.emit('memory-table', { regions: regions.length, remapped: changed });
  }

  #memoryChanged(): void {
    this.device.memoryChanged?.();
    // Ring addresses are user addresses: re-translate for every ring that has a ring built.
    for (const q of this.queues) {
      if (q.ring === undefined) {
        // started before its memory was known: it can run now
        if (q.started && q.failure === undefined) {
          this.#buildRing(q);
          this.#schedule(q);
        }
        continue;
      }
      const state = q.ring.state();
      q.ring = undefined;
      q.base = state;
      this.#buildRing(q);
    }
    this.emit('memory', this.memoryMap.regionCount);
  }

  #setVringNum(s: VringState): void {
    const q = this.#queue(s.index, 'SET_VRING_NUM');
    if (q.ring !== undefined) {
      throw new VhostUserError(`SET_VRING_NUM on running queue ${s.index}`, 'OUT_OF_ORDER');
    }
    const max = Math.min(this.device.maxQueueSize ?? 32768, 32768);
    const packed = hasBit(this.#features, VirtioFeature.RING_PACKED);
    const ok = s.num >= 1 && s.num <= max && (packed || (s.num & (s.num - 1)) === 0);
    if (!ok) {
      throw new VhostUserError(
        `SET_VRING_NUM: queue size ${s.num} is invalid (${packed ? '1' : 'a power of two from 1'} to ${max})`,
        'INVALID_PARAMETER',
      );
    }
    q.size = s.num;
  }

  #setVringAddr(a: VringAddress): void {
    const q = this.#queue(a.index, 'SET_VRING_ADDR');
    if (q.size === 0)
      throw new VhostUserError(`SET_VRING_ADDR for queue ${a.index} before SET_VRING_NUM`, 'OUT_OF_ORDER');
    // Ring addresses are user addresses, translated through the memory table
    // (vhost-user "Memory access"): without one there is nothing to translate
    // them with (DPDK's vhost library and rust-vmm refuse this too).
    if (this.memoryMap.regionCount === 0) {
      throw new VhostUserError(
        `SET_VRING_ADDR for queue ${a.index} before SET_MEM_TABLE: its ring addresses cannot be translated`,
        'OUT_OF_ORDER',
      );
    }
    const next = { desc: a.descUserAddr, avail: a.availUserAddr, used: a.usedUserAddr, flags: a.flags };
    const cur = q.userAddresses;
    if (
      q.ring !== undefined &&
      cur &&
      (cur.desc !== next.desc || cur.avail !== next.avail || cur.used !== next.used)
    ) {
      throw new VhostUserError(`SET_VRING_ADDR may not move running queue ${a.index}`, 'OUT_OF_ORDER');
    }
    // Checked now, not first at SET_VRING_KICK: the front-end learns which
    // address is wrong from this request's reply, and the queue keeps its old
    // addresses. (A later memory table is checked again when the ring is built.)
    try {
      this.#ringParts(q, next);
    } catch (err) {
      const e = err as VhostUserError;
      throw new VhostUserError(`SET_VRING_ADDR for queue ${a.index}: ${e.message}`, e.code, { cause: err });
    }
    q.userAddresses = next;
    if (q.started && q.ring === undefined) {
      this.#buildRing(q);
      this.#schedule(q);
    }
  }

  #setVringBase(s: VringState): void {
    const q = this.#queue(s.index, 'SET_VRING_BASE');
    if (q.ring !== undefined) {
      throw new VhostUserError(`SET_VRING_BASE on running queue ${s.index}`, 'OUT_OF_ORDER');
    }
    const packed = hasBit(this.#features, VirtioFeature.RING_PACKED);
    if (!packed) {
      if (s.num > 0xffff)
        throw new VhostUserError(`SET_VRING_BASE: split base ${s.num} is not a u16`, 'INVALID_PARAMETER');
      q.base = { nextAvail: s.num, nextUsed: s.num };
      return;
    }
    // vring reads DPDK's short form (the avail half only) as used = avail
    q.base = vring.vringBaseToState(s.num, true);
  }

  #setVringFd(msg: Message): void {
    const v = msg.body as bigint;
    const index = Number(v & BigInt(VHOST_USER_VRING_IDX_MASK));
    const noFd = (v & BigInt(VHOST_USER_VRING_NOFD_MASK)) !== 0n;
    const q = this.#queue(index, msg.name);
    let efd: EventFd | undefined;
    if (!noFd) {
      try {
        efd = EventFd.from(msg.fds[0]!);
      } catch (err) {
        throw new VhostUserError(`${msg.name}: ${(err as Error).message}`, 'INCORRECT_FDS', { cause: err });
      }
    }
    if (msg.request === R.SET_VRING_CALL) {
      q.call?.close();
      q.call = efd;
      return;
    }
    if (msg.request === R.SET_VRING_ERR) {
      q.err?.close();
      q.err = efd;
      return;
    }
    // SET_VRING_KICK
    q.kick?.close();
    q.kick = efd;
    q.pollKick = noFd;
    if (noFd) {
      // No kicks will come: the ring is polled, and started now.
      this.#start(q);
      return;
    }
    efd!.watch((count, error) => {
      if (error) return;
      q.stats.kicks += count;
      if (!q.started) this.#start(q);
      else this.#process(q);
    });
    // The spec starts a ring on its first kick; DPDK's vhost library and
    // rust-vmm start it here, at SET_VRING_KICK, and so do we: a front-end that
    // reconnects with a full ring (DPDK virtio-user, server=1) never kicks again.
    if (!q.started) this.#start(q);
  }

  #start(q: BackendQueue): void {
    q.started = true;
    this.#buildRing(q);
    this.emit('queue-start', q);
    this.device.queueChanged?.(q);
    this.#schedule(q);
    if (this.mode === 'poll' || q.pollKick) this.#startPolling();
  }

  /**
   * The guest addresses of a ring's three parts, from its user addresses and
   * the negotiated layout: each part whole inside one memory region and
   * aligned as VIRTIO 2.7 (split) and 2.8 (packed) require. Throws
   * ADDRESS_NOT_MAPPED or INVALID_PARAMETER naming the part.
   */
  #ringParts(
    q: BackendQueue,
    ua: { desc: bigint; avail: bigint; used: bigint },
  ): { desc: bigint; avail: bigint; used: bigint } {
    const n = q.size;
    const parts: [string, bigint, number, number][] = hasBit(this.#features, VirtioFeature.RING_PACKED)
      ? [
          ['descriptor ring', ua.desc, 16 * n, 16],
          ['driver event area', ua.avail, 4, 4],
          ['device event area', ua.used, 4, 4],
        ]
      : [
          ['descriptor table', ua.desc, 16 * n, 16],
          ['available ring', ua.avail, 6 + 2 * n, 2],
          ['used ring', ua.used, 6 + 8 * n, 4],
        ];
    const [desc, avail, used] = parts.map(([what, addr, len, align]) => {
      const guest = this.memoryMap.userToGuest(addr, len, what);
      if (guest % BigInt(align) !== 0n) {
        throw new VhostUserError(
          `${what} at user address 0x${addr.toString(16)} (guest 0x${guest.toString(16)}) is not ${align}-byte aligned`,
          'INVALID_PARAMETER',
        );
      }
      return guest;
    });
    return { desc: desc!, avail: avail!, used: used! };
  }

  /** Builds the @vipc/vring device queue once size, addresses and memory are known. */
  #buildRing(q: BackendQueue): void {
    if (
      q.ring !== undefined ||
      q.size === 0 ||
      q.userAddresses === undefined ||
      this.memoryMap.regionCount === 0
    )
      return;
    const packed = hasBit(this.#features, VirtioFeature.RING_PACKED);
    const n = q.size;
    const ua = q.userAddresses;
    const features = vring.queueFeatures(this.#features);
    try {
      const parts = this.#ringParts(q, ua);
      if (packed) {
        const { desc, avail: driverEvent, used: deviceEvent } = parts;
        let state = q.base ?? { nextAvail: 0, availWrap: true, nextUsed: 0, usedWrap: true };
        const buf = this.#inflight;
        let tracker: PackedTracker | undefined;
        if (buf !== undefined && q.index < buf.numQueues && buf.queueSize === n) {
          const iq = buf.packedQueue(q.index);
          const usedWrap = state.usedWrap !== false;
          const prev = q.inflight;
          if (
            prev instanceof PackedTracker &&
            prev.queue === iq &&
            iq.usedIdx === state.nextUsed &&
            iq.usedWrap === (usedWrap ? 1 : 0)
          ) {
            // the same session's ring rebuilt (a new memory table): keep tracking,
            // reading descriptors where the new table puts the ring
            tracker = prev;
            tracker.descRing = desc;
          } else if (iq.version === 0 || prev !== undefined) {
            // a fresh region, or the front-end moved the ring (stop, new base): start over there
            iq.init(state.nextUsed, usedWrap);
          } else {
            // vhost-user "When reconnecting" (packed): commit or roll back the last
            // batch, free what is on the free list, and re-process what is inflight.
            // The region knows the device's used position, which the ring does not
            // show; our devices complete in order, so the inflight chains are those
            // from there on: the ring restarts at it and tracking starts afresh.
            const memory = this.memoryMap.memory;
            const r = iq.recover((pos) => {
              const b = memory.slice(desc + BigInt(pos * 16 + 14), 2);
              return b[0]! | (b[1]! << 8);
            });
            if (r.usedIdx !== state.nextUsed || r.usedWrap !== usedWrap) {
              this.emit('queue-resync', q, state.nextUsed, r.usedIdx);
            }
            state = {
              nextAvail: r.usedIdx,
              availWrap: r.usedWrap,
              nextUsed: r.usedIdx,
              usedWrap: r.usedWrap,
            };
            iq.init(r.usedIdx, r.usedWrap);
            if (r.ids.length > 0) this.emit('inflight-resubmit', q, r.ids);
          }
          tracker ??= new PackedTracker(buf, iq, this.memoryMap.memory, desc);
        }
        q.ring = new vring.PackedDeviceQueue({
          memory: this.memoryMap.memory,
          size: n,
          addresses: { descRing: desc, driverEvent, deviceEvent },
          features,
          state,
        });
        q.inflight = tracker;
      } else {
        const { desc: descTable, avail: availRing, used: usedRing } = parts;
        // vhost-user SET_VRING_BASE: the next used index is read from the used ring itself.
        const usedIdx = new DataView(this.memoryMap.memory.slice(usedRing + 2n, 2).slice().buffer).getUint16(
          0,
          true,
        );
        let nextAvail = q.base?.nextAvail ?? 0;
        if (nextAvail !== usedIdx) {
          // As DPDK's vhost library does: a base that disagrees with the used ring
          // (a front-end that reconnected after a crash sends 0) restarts at the
          // used index. Chains taken but never completed are taken again: transmit
          // buffers may be seen twice, receive buffers are not leaked.
          this.emit('queue-resync', q, nextAvail, usedIdx);
          nextAvail = usedIdx;
        }
        const buf = this.#inflight;
        let tracker: SplitTracker | undefined;
        if (buf !== undefined && q.index < buf.numQueues && buf.queueSize === n) {
          const iq = buf.splitQueue(q.index);
          const prev = q.inflight;
          if (prev instanceof SplitTracker && prev.queue === iq) {
            // the same session's ring rebuilt: keep tracking (entries are indexed by head)
            tracker = prev;
          } else if (iq.version === 0) iq.init(usedIdx);
          else {
            // vhost-user "When reconnecting": repair the last batch, then re-process
            // what was inflight. Our devices complete in order, so the inflight
            // chains are exactly those from the used index on.
            const heads = iq.recover(usedIdx);
            if (heads.length > 0) {
              nextAvail = usedIdx;
              this.emit('inflight-resubmit', q, heads);
            }
          }
          tracker ??= new SplitTracker(buf, iq);
        }
        q.inflight = tracker;
        q.ring = new vring.SplitDeviceQueue({
          memory: this.memoryMap.memory,
          size: n,
          addresses: { descTable, availRing, usedRing },
          features,
          state: { nextAvail, nextUsed: usedIdx },
        });
      }
    } catch (err) {
      q.ring = undefined;
      q.inflight = undefined;
      const e =
        err instanceof VhostUserError
          ? err
          : new VhostUserError(`queue ${q.index}: ${(err as Error).message}`, 'ADDRESS_NOT_MAPPED', {
              cause: err,
            });
      this.#fail(q, e);
      return;
    }
    if (this.mode === 'poll') q.ring.disableNotifications();
  }

  /** GET_VRING_BASE: stops the ring and returns its base. */
  #stopQueue(q: BackendQueue): number {
    const packed = hasBit(this.#features, VirtioFeature.RING_PACKED);
    const wasStarted = q.started;
    // Stop after the last kick's work: chains already available are processed
    // first, and the base reported is where that processing left the ring.
    if (q.ready) this.#processOnce(q);
    let state = q.base ?? { nextAvail: 0, nextUsed: 0, availWrap: true, usedWrap: true };
    if (q.ring !== undefined) {
      try {
        state = q.ring.state();
      } catch {
        // a broken ring still reports where it stopped
      }
    }
    q.kick?.close();
    q.kick = undefined;
    q.pollKick = false;
    q.started = false;
    q.ring = undefined;
    q.base = state;
    if (wasStarted) {
      this.emit('queue-stop', q);
      this.device.queueChanged?.(q);
    }
    return vring.stateToVringBase(state, packed);
  }

  #fail(q: BackendQueue, err: Error): void {
    if (q.failure !== undefined) return;
    q.failure = err;
    this.#log(`vhost-user back-end: queue ${q.index} failed: ${err.message}`);
    q.err?.kick();
    // VIRTIO 2.1.2: "The device SHOULD set DEVICE_NEEDS_RESET when it enters an
    // error state that a reset is needed": a failed queue is never processed
    // again until RESET_DEVICE or SET_STATUS 0. The front-end reads it with
    // GET_STATUS (STATUS); the config change notification the spec also asks
    // for needs a back-end channel this back-end does not offer, so the queue's
    // error eventfd (SET_VRING_ERR) is what signals it.
    if ((this.#status & DeviceStatus.DEVICE_NEEDS_RESET) === 0) {
      this.#status |= DeviceStatus.DEVICE_NEEDS_RESET;
      this.emit('status', this.#status);
    }
    if (this.listenerCount('queue-error') > 0) this.emit('queue-error', q, err);
  }

  #schedule(q: BackendQueue): void {
    if (this.mode === 'poll') return; // the poll loop picks it up
    queueMicrotask(() => this.#process(q));
  }

  /** Runs the device on a queue until it has no more work (event mode), re-arming notifications. */
  #process(q: BackendQueue): void {
    if (!q.ready) {
      if (q.started && q.ring === undefined) this.#buildRing(q);
      if (!q.ready) return;
    }
    try {
      const before = q.stats.popped;
      if (this.device.process(q) === false) return;
      if (this.mode === 'poll' || q.pollKick) return;
      const ring = q.ring!;
      if (q.stats.popped !== before) {
        // Busy: keep kicks off and look again on the next loop turn (NAPI style),
        // so a steady stream costs no eventfd wake-ups.
        if (!q.napi) {
          ring.disableNotifications();
          q.napi = true;
        }
        q.idleRounds = 0;
        this.#later(q);
        return;
      }
      if (q.napi && ++q.idleRounds < NAPI_IDLE_ROUNDS) {
        this.#later(q);
        return;
      }
      q.napi = false;
      // lost-wakeup guard: re-enable kicks, then look again
      if (ring.enableNotifications()) this.#later(q);
    } catch (err) {
      const broken = q.ring?.broken;
      // VhostUserError: the inflight bookkeeping could not record a chain
      if (broken || err instanceof vring.VringError || err instanceof VhostUserError) {
        this.#fail(
          q,
          new VhostUserError(`queue ${q.index} is broken: ${(err as Error).message}`, 'QUEUE_BROKEN', {
            cause: err,
          }),
        );
        return;
      }
      throw err;
    }
  }

  #later(q: BackendQueue): void {
    if (q.scheduled) return;
    q.scheduled = true;
    setImmediate(() => {
      q.scheduled = false;
      if (this.connected) this.#process(q);
    });
  }

  /** Runs every ready queue once; the device is told to process even without a kick. */
  pollOnce(): void {
    for (const q of this.queues) if (q.ready) this.#processOnce(q);
  }

  #processOnce(q: BackendQueue): void {
    try {
      this.device.process(q);
    } catch (err) {
      this.#fail(
        q,
        new VhostUserError(`queue ${q.index} is broken: ${(err as Error).message}`, 'QUEUE_BROKEN', {
          cause: err,
        }),
      );
    }
  }

  #startPolling(): void {
    if (this.#pollTimer !== undefined) return;
    const loop = (): void => {
      this.#pollTimer = undefined;
      if (!this.connected) return;
      const polled = this.queues.filter((q) => q.ready && (this.mode === 'poll' || q.pollKick));
      if (polled.length === 0) return;
      for (const q of polled) this.#processOnce(q);
      this.#pollTimer = setImmediate(loop);
    };
    this.#pollTimer = setImmediate(loop);
  }

  #stopPolling(): void {
    if (this.#pollTimer !== undefined) clearImmediate(this.#pollTimer);
    this.#pollTimer = undefined;
  }

  /** Whether the driver set DRIVER_OK (with STATUS), or any queue is started. */
  get running(): boolean {
    return (this.#status & DeviceStatus.DRIVER_OK) !== 0 || this.queues.some((q) => q.started);
  }

  /** SET_OWNER seen. */
  get owned(): boolean {
    return this.#owner;
  }
}
