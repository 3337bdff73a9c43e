/**
 * The vhost-user front-end (driver side, what DPDK calls virtio-user): owns
 * guest memory (a memfd by default: no hugepages, no root), builds the rings
 * with @vipc/vring driver queues, negotiates, sends the memory table and the
 * ring set-up, kicks.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventFd, type Fd, type Mapping, memfdCreate, mmap } from '@vipc/shm';
import * as vring from '@vipc/vring';
import { GuestMemory } from '@vipc/vring';
import {
  type Connection,
  type ConnectOptions,
  type CredentialPolicy,
  connectTo,
  VhostUserListener,
} from './connection.js';
import {
  bit,
  DeviceStatus,
  hasBit,
  ProtocolFeature as P,
  FrontendRequest as R,
  VHOST_USER_F_PROTOCOL_FEATURES,
  VirtioFeature,
} from './defs.js';
import { VhostUserError } from './errors.js';

/** The driver side of one virtqueue (split or packed). */
export interface DriverQueue {
  add(
    buffers: readonly { addr: bigint | number; len: number; writable?: boolean }[],
    token?: unknown,
  ): number;
  publish(): boolean;
  popUsed(): { head: number; len: number; token: unknown } | null;
  freeCount(): number;
  enableCallbacks(): boolean;
  disableCallbacks(): void;
  readonly broken: Error | null;
  readonly size: number;
}

export interface FrontendOptions {
  /** Virtqueues to set up (virtio-net: 2 per queue pair). */
  queueCount: number;
  /** Descriptors per queue (default 256). */
  queueSize?: number;
  /** Use packed rings (VIRTIO_F_RING_PACKED). */
  packed?: boolean;
  /** Device feature bits the driver wants (transport bits are added). */
  features?: bigint;
  /** Transport bits wanted (default VERSION_1, plus RING_PACKED when packed). */
  transportFeatures?: bigint;
  /** Protocol features wanted (default MQ, REPLY_ACK, STATUS). */
  protocolFeatures?: bigint;
  /** Buffer slots for payloads in guest memory (default 4 per descriptor). */
  bufferCount?: number;
  /** Bytes per buffer slot (default 2048). */
  bufferSize?: number;
  /** Back guest memory with huge pages (memfd MFD_HUGETLB). */
  hugetlb?: boolean;
  /** Guest (= user) address of the memory (default 0x40000000). */
  guestBase?: bigint;
  /** Ask for INFLIGHT_SHMFD: keep the back-end's inflight buffer and hand it to a restarted back-end. */
  inflight?: boolean;
  /** Reply timeout (default 10 s; DPDK can take a while to answer the first request). */
  replyTimeoutMs?: number;
}

/** One queue the front-end drives. */
export class FrontendQueue {
  readonly index: number;
  readonly ring: DriverQueue;
  /** Guest addresses of the ring parts (split: desc, avail, used; packed: desc, driver event, device event). */
  addresses: { desc: bigint; avail: bigint; used: bigint } = { desc: 0n, avail: 0n, used: 0n };
  readonly kick: EventFd;
  readonly call: EventFd;
  readonly stats = { kicks: 0 };

  constructor(index: number, ring: DriverQueue, kick: EventFd, call: EventFd) {
    this.index = index;
    this.ring = ring;
    this.kick = kick;
    this.call = call;
  }

  /** Publishes added chains and kicks the device if it wants to be kicked. */
  publish(): void {
    if (this.ring.publish()) this.notify();
  }

  notify(): void {
    if (!this.kick.fd.closed) {
      this.kick.kick();
      this.stats.kicks++;
    }
  }
}

/** Fixed-size buffer slots in guest memory. */
export class BufferPool {
  readonly slotSize: number;
  readonly count: number;
  readonly base: bigint;
  readonly bytes: Uint8Array;
  #free: number[];

  constructor(bytes: Uint8Array, base: bigint, slotSize: number, count: number) {
    this.bytes = bytes;
    this.base = base;
    this.slotSize = slotSize;
    this.count = count;
    this.#free = Array.from({ length: count }, (_, i) => count - 1 - i);
  }

  get available(): number {
    return this.#free.length;
  }

  alloc(): number {
    return this.#free.pop() ?? -1;
  }

  free(slot: number): void {
    this.#free.push(slot);
  }

  address(slot: number): bigint {
    return this.base + BigInt(slot * this.slotSize);
  }

  view(slot: number, len = this.slotSize): Uint8Array {
    const o = slot * this.slotSize;
    return this.bytes.subarray(o, o + len);
  }
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/**
 * Events: 'disconnect' (the back-end closed the connection), 'reconnect'
 * (a new back-end took over), 'reconnect-error' (an attempt failed; retried).
 */
export class VhostUserFrontend extends EventEmitter implements AsyncDisposable {
  #connection!: Connection;
  readonly options: Required<Omit<FrontendOptions, 'hugetlb'>> & { hugetlb: boolean };
  readonly memory: GuestMemory;
  readonly memfd: Fd;
  readonly pool: BufferPool;
  queues: FrontendQueue[] = [];
  #mapping: Mapping<ArrayBuffer>;
  #ringBase: bigint[] = [];
  #features = 0n;
  #protocolFeatures = 0n;
  #backendFeatures = 0n;
  #started = false;
  #closed = false;
  #listener: VhostUserListener | undefined;
  #inflight: { fd: Fd; mmapSize: bigint; mmapOffset: bigint } | undefined;

  constructor(connection: Connection, options: FrontendOptions) {
    super();
    this.#attach(connection);
    const queueSize = options.queueSize ?? 256;
    const packed = options.packed ?? false;
    const bufferSize = options.bufferSize ?? 2048;
    const bufferCount = options.bufferCount ?? options.queueCount * queueSize * 2;
    this.options = {
      queueCount: options.queueCount,
      queueSize,
      packed,
      features: options.features ?? 0n,
      transportFeatures:
        options.transportFeatures ??
        bit(VirtioFeature.VERSION_1) | (packed ? bit(VirtioFeature.RING_PACKED) : 0n),
      protocolFeatures:
        options.protocolFeatures ??
        bit(P.MQ) | bit(P.REPLY_ACK) | bit(P.STATUS) | (options.inflight ? bit(P.INFLIGHT_SHMFD) : 0n),
      inflight: options.inflight ?? false,
      bufferCount,
      bufferSize,
      hugetlb: options.hugetlb ?? false,
      guestBase: options.guestBase ?? 0x40000000n,
      replyTimeoutMs: options.replyTimeoutMs ?? 10_000,
    };
    // Layout: the rings (each 4 KiB aligned), then the buffer slots.
    const ringBytes = packed
      ? vring.packedLayout(queueSize).totalBytes
      : vring.splitLayout(queueSize, { align: 4096 }).totalBytes;
    const ringStride = alignUp(ringBytes, 4096);
    const poolOffset = ringStride * options.queueCount;
    const page = this.options.hugetlb ? 2 * 1024 * 1024 : 4096;
    const size = alignUp(poolOffset + bufferSize * bufferCount, page);
    this.memfd = memfdCreate('vipc-guest', { size, ...(this.options.hugetlb ? { hugetlb: true } : {}) });
    this.#mapping = mmap(this.memfd);
    const base = this.options.guestBase;
    this.memory = new GuestMemory([
      { guestAddress: base, size, buffer: this.#mapping.buffer, userAddress: base },
    ]);
    for (let i = 0; i < options.queueCount; i++) this.#ringBase.push(base + BigInt(i * ringStride));
    this.pool = new BufferPool(
      new Uint8Array(this.#mapping.buffer, poolOffset, bufferSize * bufferCount),
      base + BigInt(poolOffset),
      bufferSize,
      bufferCount,
    );
  }

  /** The current connection to the back-end. */
  get connection(): Connection {
    return this.#connection;
  }

  #attach(connection: Connection): void {
    this.#connection = connection;
    connection.on('close', () => {
      if (!this.#closed && connection === this.#connection) this.emit('disconnect');
    });
  }

  /** Connects to a back-end listening on `path` and runs the handshake. */
  static async connect(
    path: string,
    options: FrontendOptions & Omit<ConnectOptions, 'role'> & { reconnect?: boolean } = { queueCount: 2 },
  ): Promise<VhostUserFrontend> {
    const open = (timeoutMs: number): Promise<Connection> =>
      connectTo(path, {
        ...options,
        timeoutMs,
        role: 'frontend',
        replyTimeoutMs: options.replyTimeoutMs ?? 10_000,
      });
    const conn = await open(options.timeoutMs ?? 0);
    const fe = new VhostUserFrontend(conn, options);
    try {
      await fe.start();
    } catch (err) {
      fe.close();
      throw err;
    }
    if (options.reconnect) {
      // client mode: when the back-end goes away, connect again (it may restart at the same path)
      const again = async (): Promise<void> => {
        while (!fe.#closed) {
          try {
            await fe.reconnect(await open(60_000));
            return;
          } catch (err) {
            if (fe.#closed) return;
            fe.emit('reconnect-error', err);
            await sleep(100);
          }
        }
      };
      fe.on('disconnect', () => {
        void again();
      });
    }
    return fe;
  }

  /**
   * Server mode: listens on `path`, runs the handshake with the first back-end
   * that connects, and with each later one after a disconnect (a restarted
   * back-end resumes where the old one stopped). The listener closes with the
   * front-end.
   */
  static async listen(
    path: string,
    options: FrontendOptions & { policy?: CredentialPolicy; timeoutMs?: number },
  ): Promise<VhostUserFrontend> {
    const listener = VhostUserListener.listen(path, {
      role: 'frontend',
      replyTimeoutMs: options.replyTimeoutMs ?? 10_000,
      ...(options.policy ? { policy: options.policy } : {}),
    });
    const signal = AbortSignal.timeout(options.timeoutMs ?? 60_000);
    let conn: Connection;
    try {
      conn = await listener.next({ signal });
    } catch (err) {
      listener.close();
      throw err;
    }
    const fe = new VhostUserFrontend(conn, options);
    fe.#listener = listener;
    try {
      await fe.start();
    } catch (err) {
      fe.close();
      throw err;
    }
    const again = async (): Promise<void> => {
      while (!fe.#closed) {
        try {
          await fe.reconnect(await listener.next());
          return;
        } catch (err) {
          if (fe.#closed) return;
          fe.emit('reconnect-error', err);
        }
      }
    };
    fe.on('disconnect', () => {
      void again();
    });
    return fe;
  }

  get features(): bigint {
    return this.#features;
  }

  get protocolFeatures(): bigint {
    return this.#protocolFeatures;
  }

  get backendFeatures(): bigint {
    return this.#backendFeatures;
  }

  get started(): boolean {
    return this.#started;
  }

  #ack(): boolean {
    return hasBit(this.#protocolFeatures, P.REPLY_ACK);
  }

  /** A request with no explicit reply: with REPLY_ACK, wait for the ack and check it. */
  async #set<K extends 'u64' | 'vringState' | 'vringAddress' | 'memoryTable' | 'inflight' | 'none'>(
    request: number,
    kind: K,
    body: Parameters<Connection['send']>[2] & unknown,
    fds: readonly Fd[] = [],
  ): Promise<void> {
    if (!this.#ack()) {
      this.#connection.send(request, kind, body as never, { fds });
      return;
    }
    const reply = await this.#connection.request(request, kind, body as never, 'u64', {
      fds,
      needReply: true,
    });
    if (reply.body !== 0n) {
      throw new VhostUserError(
        `the back-end failed request ${request} (status ${reply.body})`,
        'REQUEST_FAILED',
      );
    }
  }

  async #get(request: number): Promise<bigint> {
    return (await this.#connection.request(request, 'none', undefined, 'u64')).body;
  }

  /** The handshake, in DPDK virtio-user's order. */
  async start(): Promise<void> {
    if (this.#started) return;
    await this.#handshake(false);
    this.#started = true;
  }

  /**
   * Runs the handshake again over a new connection (the back-end restarted),
   * keeping guest memory, rings and eventfds. Split rings restart at the used
   * index in memory, packed rings at the driver's used position: whatever the
   * old back-end took but did not complete is processed again (re-submission),
   * so nothing the driver made available is lost.
   */
  async reconnect(connection: Connection): Promise<void> {
    if (this.#closed) throw new VhostUserError('the front-end is closed', 'CLOSED');
    this.#connection.close();
    this.#attach(connection);
    await this.#handshake(true);
    // the new back-end starts its rings on a kick; work may already be waiting
    for (const q of this.queues) q.notify();
    this.emit('reconnect');
  }

  #ringAddresses(i: number): { desc: bigint; avail: bigint; used: bigint } {
    const base = this.#ringBase[i]!;
    const n = this.options.queueSize;
    if (this.options.packed) {
      const l = vring.packedLayout(n);
      return {
        desc: base + BigInt(l.descRing),
        avail: base + BigInt(l.driverEvent),
        used: base + BigInt(l.deviceEvent),
      };
    }
    const l = vring.splitLayout(n, { align: 4096 });
    return {
      desc: base + BigInt(l.descTable),
      avail: base + BigInt(l.availRing),
      used: base + BigInt(l.usedRing),
    };
  }

  /** SET_VRING_BASE for queue i: initial, or where a restarted back-end must resume. */
  #base(i: number, again: boolean): number {
    if (!this.options.packed) {
      if (!again) return 0;
      const used = this.#ringAddresses(i).used;
      const b = this.memory.slice(used + 2n, 2);
      return b[0]! | (b[1]! << 8);
    }
    if (!again) return 0x80008000; // avail and used wrap counters start at 1 (bits 15 and 31)
    const s = (this.queues[i]!.ring as unknown as { state(): vring.QueueState }).state();
    const pos = s.nextUsed & 0x7fff;
    const wrap = s.usedWrap === false ? 0 : 1;
    return (pos | (wrap << 15) | (pos << 16) | (wrap << 31)) >>> 0;
  }

  async #handshake(again: boolean): Promise<void> {
    const o = this.options;
    const c = this.#connection;
    c.send(R.SET_OWNER, 'none', undefined);
    this.#backendFeatures = await this.#get(R.GET_FEATURES);
    const protocol = hasBit(this.#backendFeatures, VHOST_USER_F_PROTOCOL_FEATURES);
    this.#protocolFeatures = 0n;
    if (protocol) {
      const offered = await this.#get(R.GET_PROTOCOL_FEATURES);
      this.#protocolFeatures = offered & o.protocolFeatures;
      c.send(R.SET_PROTOCOL_FEATURES, 'u64', this.#protocolFeatures);
      if (hasBit(this.#protocolFeatures, P.MQ)) {
        const n = await this.#get(R.GET_QUEUE_NUM);
        if (n * 2n < BigInt(o.queueCount) && n < BigInt(o.queueCount)) {
          throw new VhostUserError(
            `the back-end supports ${n} queues, ${o.queueCount} wanted`,
            'FEATURE_NOT_NEGOTIATED',
          );
        }
      }
    }
    const wanted = o.features | o.transportFeatures;
    const missing =
      wanted & ~this.#backendFeatures & (bit(VirtioFeature.VERSION_1) | bit(VirtioFeature.RING_PACKED));
    if (missing !== 0n) {
      throw new VhostUserError(
        `the back-end lacks required features 0x${missing.toString(16)} (offers 0x${this.#backendFeatures.toString(16)})`,
        'FEATURE_NOT_NEGOTIATED',
      );
    }
    const features = (wanted & this.#backendFeatures) | (protocol ? bit(VHOST_USER_F_PROTOCOL_FEATURES) : 0n);
    if (again && features !== this.#features) {
      throw new VhostUserError(
        `the restarted back-end negotiates different features (0x${features.toString(16)}, was 0x${this.#features.toString(16)})`,
        'FEATURE_NOT_NEGOTIATED',
      );
    }
    this.#features = features;
    const status = hasBit(this.#protocolFeatures, P.STATUS);
    const S = DeviceStatus;
    if (status) await this.#set(R.SET_STATUS, 'u64', BigInt(S.ACKNOWLEDGE | S.DRIVER));
    await this.#set(R.SET_FEATURES, 'u64', this.#features);
    if (status) {
      await this.#set(R.SET_STATUS, 'u64', BigInt(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK));
      const st = await this.#get(R.GET_STATUS);
      if ((st & BigInt(S.FEATURES_OK)) === 0n) {
        throw new VhostUserError(
          `the back-end did not accept the features (status 0x${st.toString(16)})`,
          'FEATURE_NOT_NEGOTIATED',
        );
      }
    }
    if (hasBit(this.#protocolFeatures, P.INFLIGHT_SHMFD)) {
      const want = { numQueues: o.queueCount, queueSize: o.queueSize };
      if (this.#inflight === undefined) {
        const r = await this.#connection.request(
          R.GET_INFLIGHT_FD,
          'inflight',
          { mmapSize: 0n, mmapOffset: 0n, ...want },
          'inflight',
          { replyFds: { exactly: 1 } },
        );
        this.#inflight = { fd: r.fds[0]!, mmapSize: r.body.mmapSize, mmapOffset: r.body.mmapOffset };
      }
      const f = this.#inflight;
      await this.#set(
        R.SET_INFLIGHT_FD,
        'inflight',
        { mmapSize: f.mmapSize, mmapOffset: f.mmapOffset, ...want },
        [f.fd],
      );
    }
    await this.sendMemoryTable();
    const qf = vring.queueFeatures(this.#features);
    for (let i = 0; i < o.queueCount; i++) {
      const n = o.queueSize;
      const addr = this.#ringAddresses(i);
      if (!again) {
        const ring: DriverQueue = o.packed
          ? new vring.PackedDriverQueue({
              memory: this.memory,
              size: n,
              addresses: { descRing: addr.desc, driverEvent: addr.avail, deviceEvent: addr.used },
              features: qf,
            })
          : new vring.SplitDriverQueue({
              memory: this.memory,
              size: n,
              addresses: { descTable: addr.desc, availRing: addr.avail, usedRing: addr.used },
              features: qf,
            });
        this.queues.push(new FrontendQueue(i, ring, EventFd.create(), EventFd.create()));
      }
      const q = this.queues[i]!;
      q.addresses = addr;
      await this.#set(R.SET_VRING_NUM, 'vringState', { index: i, num: n });
      await this.#set(R.SET_VRING_BASE, 'vringState', { index: i, num: this.#base(i, again) });
      await this.#set(R.SET_VRING_ADDR, 'vringAddress', {
        index: i,
        flags: 0,
        descUserAddr: addr.desc,
        usedUserAddr: addr.used,
        availUserAddr: addr.avail,
        logGuestAddr: 0n,
      });
      await this.#set(R.SET_VRING_CALL, 'u64', BigInt(i), [q.call.fd]);
      await this.#set(R.SET_VRING_KICK, 'u64', BigInt(i), [q.kick.fd]);
    }
    if (protocol) {
      for (let i = 0; i < o.queueCount; i++) {
        await this.#set(R.SET_VRING_ENABLE, 'vringState', { index: i, num: 1 });
      }
    }
    if (status) {
      await this.#set(R.SET_STATUS, 'u64', BigInt(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK));
    }
  }

  /** (Re-)sends SET_MEM_TABLE: one region, the memfd. */
  async sendMemoryTable(): Promise<void> {
    const r = this.memory.regions[0]!;
    await this.#set(
      R.SET_MEM_TABLE,
      'memoryTable',
      {
        regions: [
          { guestAddress: r.guestAddress, size: BigInt(r.size), userAddress: r.userAddress!, mmapOffset: 0n },
        ],
      },
      [this.memfd],
    );
  }

  /**
   * SET_VRING_ENABLE for one ring (PROTOCOL_FEATURES negotiated): DPDK's
   * virtio-user pauses its rings this way around a repeated SET_MEM_TABLE.
   */
  async setQueueEnabled(index: number, enabled: boolean): Promise<void> {
    if (!Number.isInteger(index) || index < 0 || index >= this.queues.length) {
      throw new VhostUserError(
        `queue ${index} does not exist (${this.queues.length} queues)`,
        'INVALID_ARGUMENT',
      );
    }
    if (!hasBit(this.#features, VHOST_USER_F_PROTOCOL_FEATURES)) {
      throw new VhostUserError('SET_VRING_ENABLE needs VHOST_USER_F_PROTOCOL_FEATURES', 'INVALID_STATE');
    }
    await this.#set(R.SET_VRING_ENABLE, 'vringState', { index, num: enabled ? 1 : 0 });
  }

  /**
   * Orderly shutdown: disable and stop every ring (GET_VRING_BASE), then close
   * (also when the back-end fails a request or answers for the wrong queue:
   * UNEXPECTED_REPLY). Returns the bases.
   */
  async stop(): Promise<number[]> {
    const bases: number[] = [];
    try {
      if (this.#started && !this.connection.closed) {
        if (hasBit(this.#features, VHOST_USER_F_PROTOCOL_FEATURES)) {
          for (const q of this.queues)
            await this.#set(R.SET_VRING_ENABLE, 'vringState', { index: q.index, num: 0 });
        }
        for (const q of this.queues) {
          const r = await this.#connection.request(
            R.GET_VRING_BASE,
            'vringState',
            { index: q.index, num: 0 },
            'vringState',
          );
          // the reply names the ring it describes: a base for another ring is no answer
          if (r.body.index !== q.index) {
            throw new VhostUserError(
              `GET_VRING_BASE for queue ${q.index} was answered for queue ${r.body.index}`,
              'UNEXPECTED_REPLY',
            );
          }
          bases.push(r.body.num);
        }
      }
    } finally {
      this.close();
    }
    return bases;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener?.close();
    this.#connection.close();
    for (const q of this.queues) {
      q.kick.close();
      q.call.close();
    }
    this.memfd.close();
    this.#inflight?.fd.close();
    this.#mapping.unmap();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}
