/**
 * The slice of @vipc/vring (and @vipc/shm) the bench uses, typed locally and
 * loaded with a dynamic import: a machine where the ring package is not built
 * still runs the baselines, and reports the vring scenarios as unavailable.
 */
export interface BufferSpec {
  addr: bigint | number;
  len: number;
  writable?: boolean;
}

export interface DescriptorChainLike {
  readonly head: number;
  readonly readableLength: number;
  readonly writableLength: number;
  /** Buffers in the chain (device-readable ones first). */
  readonly segmentCount: number;
  read(target?: Uint8Array): Uint8Array;
  write(src: Uint8Array, offset?: number): number;
  /** Zero-copy segment views: the region's bytes, the segment's offset and length in them. */
  segmentBytes(i: number): Uint8Array;
  segmentOffset(i: number): number;
  segmentLength(i: number): number;
}

export interface DeviceQueueLike {
  publishUsed(): boolean;
  enableNotifications(): boolean;
  disableNotifications(): void;
  hasAvailable(): boolean;
  /** Pops, visits and records used for up to `max` chains. */
  serve(max: number, visit: (chain: DescriptorChainLike) => number): number;
}

export interface DriverQueueLike {
  add(buffers: BufferSpec[], token?: unknown): number;
  publish(): boolean;
  enableCallbacks(): boolean;
  disableCallbacks(): void;
  /** add() of a one-buffer chain without the buffer array. */
  addBuffer(addr: number, len: number, token?: unknown, writable?: boolean): number;
  /** Used tokens (and lengths) into caller arrays; returns how many. */
  popUsedBatch(tokens: unknown[], lens?: Uint32Array, max?: number): number;
}

export interface QueueOptionsLike {
  memory: unknown;
  size: number;
  addresses: Record<string, bigint>;
  features?: { eventIdx?: boolean; indirect?: boolean; inOrder?: boolean };
  /** Split device queue with IN_ORDER: one used element per run of chains. */
  batchUsed?: boolean;
}

/** SplitSlotDriver: one fixed data slot per descriptor. */
export interface SlotDriverLike {
  add(len: number, writable?: boolean): number;
  addBytes(bytes: Uint8Array): number;
  addBytesBatch(messages: readonly Uint8Array[], from?: number, to?: number): number;
  slot(id: number): Uint8Array;
  popUsed(ids?: Uint16Array, lens?: Uint32Array, max?: number): number;
  freeCount(): number;
  publish(): boolean;
  enableCallbacks(): boolean;
  disableCallbacks(): void;
}

export interface VringModule {
  GuestMemory: {
    new (regions: { guestAddress: bigint; size: number; buffer: ArrayBuffer | SharedArrayBuffer }[]): unknown;
    fromBuffer(buffer: ArrayBuffer | SharedArrayBuffer, guestAddress?: bigint): unknown;
  };
  splitLayout(
    size: number,
    opts?: { align?: number },
  ): {
    descTable: number;
    availRing: number;
    usedRing: number;
    totalBytes: number;
  };
  packedLayout(size: number): {
    descRing: number;
    driverEvent: number;
    deviceEvent: number;
    totalBytes: number;
  };
  SplitDeviceQueue: new (o: QueueOptionsLike) => DeviceQueueLike;
  PackedDeviceQueue: new (o: QueueOptionsLike) => DeviceQueueLike;
  SplitDriverQueue: new (o: QueueOptionsLike) => DriverQueueLike;
  PackedDriverQueue: new (o: QueueOptionsLike) => DriverQueueLike;
  SplitSlotDriver: new (o: QueueOptionsLike & { slots: bigint; slotSize: number }) => SlotDriverLike;
}

const REQUIRED = {
  split: ['GuestMemory', 'splitLayout', 'SplitDeviceQueue', 'SplitDriverQueue'],
  packed: ['GuestMemory', 'packedLayout', 'PackedDeviceQueue', 'PackedDriverQueue'],
  slots: ['GuestMemory', 'splitLayout', 'SplitDeviceQueue', 'SplitSlotDriver'],
} as const;

let cached: Promise<VringModule> | undefined;

/**
 * Imports @vipc/vring and checks it has what `layout` needs (default: split);
 * rejects with the reason otherwise.
 */
export async function loadVring(layout: 'split' | 'packed' | 'slots' = 'split'): Promise<VringModule> {
  const mod = await importVring();
  const missing = REQUIRED[layout].filter(
    (k) => (mod as unknown as Record<string, unknown>)[k] === undefined,
  );
  if (missing.length > 0) throw new Error(`@vipc/vring (this build) lacks ${missing.join(', ')}`);
  return mod;
}

function importVring(): Promise<VringModule> {
  cached ??= (async () => {
    let mod: Record<string, unknown>;
    try {
      mod = (await import('@vipc/vring' as string)) as Record<string, unknown>;
    } catch (err) {
      throw new Error(
        `@vipc/vring cannot be loaded (${(err as Error).message.split('\n')[0]}); build it with \`pnpm --filter @vipc/vring build\``,
      );
    }
    return mod as unknown as VringModule;
  })();
  return cached;
}

/** Queue addresses (guest address = byte offset in the shared memory) for a layout at `base`. */
export function queueAddresses(
  vr: VringModule,
  layout: 'split' | 'packed' | 'slots',
  queueSize: number,
  base: number,
): { addresses: Record<string, number>; totalBytes: number } {
  // (slots: a split ring)
  if (layout !== 'packed') {
    const l = vr.splitLayout(queueSize);
    return {
      addresses: {
        descTable: base + l.descTable,
        availRing: base + l.availRing,
        usedRing: base + l.usedRing,
      },
      totalBytes: l.totalBytes,
    };
  }
  const l = vr.packedLayout(queueSize);
  return {
    addresses: {
      descRing: base + l.descRing,
      driverEvent: base + l.driverEvent,
      deviceEvent: base + l.deviceEvent,
    },
    totalBytes: l.totalBytes,
  };
}
