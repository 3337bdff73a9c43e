/**
 * The vhost-user front-end (driver side, what DPDK calls virtio-user): owns
 * guest memory (a memfd by default: no hugepages, no root), builds the rings
 * with @vipc/vring driver queues, negotiates, sends the memory table and the
 * ring set-up, kicks.
 */
import { EventEmitter } from 'node:events';
import { EventFd, type Fd, type Mapping, memfdCreate, mmap } from '@vipc/shm';
import * as vring from '@vipc/vring';
import { GuestMemory } from '@vipc/vring';
import { type Connection, type ConnectOptions, connectTo } from './connection.js';
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
  /** Reply timeout (default 10 s; DPDK can take a while to answer the first request). */
  replyTimeoutMs?: number;
}

/** One queue the front-end drives. */
export class FrontendQueue {
  readonly index: number;
  readonly ring: DriverQueue;
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
 * Events: 'disconnect' (the back-end closed the connection).
 */
export class VhostUserFrontend extends EventEmitter implements AsyncDisposable {
  readonly connection: Connection;
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

  constructor(connection: Connection, options: FrontendOptions) {
    super();
    this.connection = connection;
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
      protocolFeatures: options.protocolFeatures ?? bit(P.MQ) | bit(P.REPLY_ACK) | bit(P.STATUS),
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
    connection.on('close', () => {
      if (!this.#closed) this.emit('disconnect');
    });
  }

  /** Connects to a back-end listening on `path` and runs the handshake. */
  static async connect(
    path: string,
    options: FrontendOptions & Omit<ConnectOptions, 'role'> = { queueCount: 2 },
  ): Promise<VhostUserFrontend> {
    const conn = await connectTo(path, {
      ...options,
      role: 'frontend',
      replyTimeoutMs: options.replyTimeoutMs ?? 10_000,
    });
    const fe = new VhostUserFrontend(conn, options);
    try {
      await fe.start();
    } catch (err) {
      fe.close();
      throw err;
    }
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
  async #set<K extends 'u64' | 'vringState' | 'vringAddress' | 'memoryTable' | 'none'>(
    request: number,
    kind: K,
    body: Parameters<Connection['send']>[2] & unknown,
    fds: readonly Fd[] = [],
  ): Promise<void> {
    if (!this.#ack()) {
      this.connection.send(request, kind, body as never, { fds });
      return;
    }
    const reply = await this.connection.request(request, kind, body as never, 'u64', {
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
    return (await this.connection.request(request, 'none', undefined, 'u64')).body;
  }

  /** The handshake, in DPDK virtio-user's order. */
  async start(): Promise<void> {
    if (this.#started) return;
    const o = this.options;
    const c = this.connection;
    c.send(R.SET_OWNER, 'none', undefined);
    this.#backendFeatures = await this.#get(R.GET_FEATURES);
    const protocol = hasBit(this.#backendFeatures, VHOST_USER_F_PROTOCOL_FEATURES);
    if (protocol) {
      const offered = await this.#get(R.GET_PROTOCOL_FEATURES);
      this.#protocolFeatures = offered & o.protocolFeatures;
      c.send(R.SET_PROTOCOL_FEATURES, 'u64', this.#protocolFeatures);
      if (hasBit(this.#protocolFeatures, P.MQ)) {
        const n = await this.#get(R.GET_QUEUE_NUM);
        this.emit('queue-num', n);
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
    this.#features = (wanted & this.#backendFeatures) | (protocol ? bit(VHOST_USER_F_PROTOCOL_FEATURES) : 0n);
    const status = hasBit(this.#protocolFeatures, P.STATUS);
    if (status) await this.#set(R.SET_STATUS, 'u64', BigInt(DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER));
    await this.#set(R.SET_FEATURES, 'u64', this.#features);
    if (status) {
      await this.#set(
        R.SET_STATUS,
        'u64',
        BigInt(DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK),
      );
      const st = await this.#get(R.GET_STATUS);
      if ((st & BigInt(DeviceStatus.FEATURES_OK)) === 0n) {
        throw new VhostUserError(
          `the back-end did not accept the features (status 0x${st.toString(16)})`,
          'FEATURE_NOT_NEGOTIATED',
        );
      }
    }
    await this.sendMemoryTable();
    const qf = vring.queueFeatures(this.#features);
    for (let i = 0; i < o.queueCount; i++) {
      const base = this.#ringBase[i]!;
      const n = o.queueSize;
      let ring: DriverQueue;
      let addr: { desc: bigint; avail: bigint; used: bigint };
      if (o.packed) {
        const desc = base;
        const driverEvent = base + BigInt(alignUp(16 * n, 64));
        const deviceEvent = driverEvent + 32n;
        const Packed = (vring as Record<string, unknown>).PackedDriverQueue as new (
          x: unknown,
        ) => DriverQueue;
        ring = new Packed({
          memory: this.memory,
          size: n,
          addresses: { descRing: desc, driverEvent, deviceEvent },
          features: qf,
        });
        addr = { desc, avail: driverEvent, used: deviceEvent };
      } else {
        const l = vring.splitLayout(n, { align: 4096 });
        const a = {
          descTable: base + BigInt(l.descTable),
          availRing: base + BigInt(l.availRing),
          usedRing: base + BigInt(l.usedRing),
        };
        ring = new vring.SplitDriverQueue({ memory: this.memory, size: n, addresses: a, features: qf });
        addr = { desc: a.descTable, avail: a.availRing, used: a.usedRing };
      }
      const kick = EventFd.create();
      const call = EventFd.create();
      this.queues.push(new FrontendQueue(i, ring, kick, call));
      await this.#set(R.SET_VRING_NUM, 'vringState', { index: i, num: n });
      // packed: avail and used wrap counters start at 1 (bits 15 and 31)
      await this.#set(R.SET_VRING_BASE, 'vringState', { index: i, num: o.packed ? 0x80008000 : 0 });
      await this.#set(R.SET_VRING_ADDR, 'vringAddress', {
        index: i,
        flags: 0,
        descUserAddr: addr.desc,
        usedUserAddr: addr.used,
        availUserAddr: addr.avail,
        logGuestAddr: 0n,
      });
      await this.#set(R.SET_VRING_CALL, 'u64', BigInt(i), [call.fd]);
      await this.#set(R.SET_VRING_KICK, 'u64', BigInt(i), [kick.fd]);
    }
    if (protocol) {
      for (let i = 0; i < o.queueCount; i++)
        await this.#set(R.SET_VRING_ENABLE, 'vringState', { index: i, num: 1 });
    }
    if (status) {
      await this.#set(
        R.SET_STATUS,
        'u64',
        BigInt(
          DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK | DeviceStatus.DRIVER_OK,
        ),
      );
    }
    this.#started = true;
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

  /** Orderly shutdown: disable and stop every ring (GET_VRING_BASE), then close. Returns the bases. */
  async stop(): Promise<number[]> {
    const bases: number[] = [];
    if (this.#started && !this.connection.closed) {
      if (hasBit(this.#features, VHOST_USER_F_PROTOCOL_FEATURES)) {
        for (const q of this.queues)
          await this.#set(R.SET_VRING_ENABLE, 'vringState', { index: q.index, num: 0 });
      }
      for (const q of this.queues) {
        const r = await this.connection.request(
          R.GET_VRING_BASE,
          'vringState',
          { index: q.index, num: 0 },
          'vringState',
        );
        bases.push(r.body.num);
      }
    }
    this.close();
    return bases;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.connection.close();
    for (const q of this.queues) {
      q.kick.close();
      q.call.close();
    }
    this.memfd.close();
    this.#mapping.unmap();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}
