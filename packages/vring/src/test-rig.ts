// Test-only helpers (not part of the published entry points).
import { GuestMemory } from './guest-memory.js';
import { PackedDeviceQueue } from './packed-device-queue.js';
import { PackedDriverQueue } from './packed-driver-queue.js';
import { packedLayout } from './packed-layout.js';
import type { QueueFeatures } from './queue-state.js';
import { SplitDeviceQueue } from './split-device-queue.js';
import { SplitDriverQueue } from './split-driver-queue.js';
import { splitLayout } from './split-layout.js';

/** Options of splitRig() and packedRig(). */
export interface RigOptions {
  size?: number;
  features?: QueueFeatures;
  dataBytes?: number;
  base?: bigint;
  shared?: boolean;
  /** Back the rig with this buffer (e.g. a memfd mapping); it must be large enough. */
  buffer?: ArrayBuffer | SharedArrayBuffer;
}

/** What both rigs have: one region holding the rings (4 KiB rounded up) and then the data area. */
interface RigMemory {
  memory: GuestMemory;
  buffer: ArrayBuffer | SharedArrayBuffer;
  bytes: Uint8Array;
  view: DataView;
  base: bigint;
  /** Guest address of the data area (after the rings, 4 KiB aligned). */
  data: bigint;
  dataBytes: number;
  /** Byte offset in `buffer` of a guest address. */
  off(addr: bigint | number): number;
}

function rigMemory(ringTotalBytes: number, opts: RigOptions): RigMemory {
  const base = opts.base ?? 0x10000n;
  const ringBytes = Math.ceil(ringTotalBytes / 4096) * 4096;
  const dataBytes = opts.dataBytes ?? 65536;
  const total = ringBytes + dataBytes;
  const buffer = opts.buffer ?? (opts.shared ? new SharedArrayBuffer(total) : new ArrayBuffer(total));
  const memory = new GuestMemory([{ guestAddress: base, size: total, buffer }]);
  return {
    memory,
    buffer,
    bytes: new Uint8Array(buffer),
    view: new DataView(buffer),
    base,
    data: base + BigInt(ringBytes),
    dataBytes,
    off: (addr) => Number(BigInt(addr) - base),
  };
}

/** Guest addresses of a split ring laid out as `ring` from `base`. */
export function splitRingAt(
  base: bigint,
  ring: ReturnType<typeof splitLayout>,
): { descTable: bigint; availRing: bigint; usedRing: bigint } {
  return {
    descTable: base + BigInt(ring.descTable),
    availRing: base + BigInt(ring.availRing),
    usedRing: base + BigInt(ring.usedRing),
  };
}

/** Guest addresses of a packed ring laid out as `ring` from `base`. */
export function packedRingAt(
  base: bigint,
  ring: ReturnType<typeof packedLayout>,
): { descRing: bigint; driverEvent: bigint; deviceEvent: bigint } {
  return {
    descRing: base + BigInt(ring.descRing),
    driverEvent: base + BigInt(ring.driverEvent),
    deviceEvent: base + BigInt(ring.deviceEvent),
  };
}

export interface SplitRig extends RigMemory {
  ring: ReturnType<typeof splitLayout>;
  addresses: { descTable: bigint; availRing: bigint; usedRing: bigint };
  driver: SplitDriverQueue;
  device: SplitDeviceQueue;
}

export function splitRig(opts: RigOptions = {}): SplitRig {
  const size = opts.size ?? 8;
  const ring = splitLayout(size);
  const m = rigMemory(ring.totalBytes, opts);
  const { memory, base } = m;
  const addresses = splitRingAt(base, ring);
  const features = opts.features ?? {};
  return {
    ...m,
    ring,
    addresses,
    driver: new SplitDriverQueue({ memory, size, addresses, features }),
    device: new SplitDeviceQueue({ memory, size, addresses, features }),
  };
}

export function catchCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    const c = (e as { code?: string }).code;
    if (c === undefined) throw e;
    return c;
  }
  return undefined;
}

export interface PackedRig extends RigMemory {
  size: number;
  addresses: { descRing: bigint; driverEvent: bigint; deviceEvent: bigint };
  driver: PackedDriverQueue;
  device: PackedDeviceQueue;
}

export function packedRig(opts: RigOptions = {}): PackedRig {
  const size = opts.size ?? 8;
  const ring = packedLayout(size);
  const m = rigMemory(ring.totalBytes, opts);
  const { memory, base } = m;
  const addresses = packedRingAt(base, ring);
  const features = opts.features ?? {};
  return {
    ...m,
    size,
    addresses,
    driver: new PackedDriverQueue({ memory, size, addresses, features }),
    device: new PackedDeviceQueue({ memory, size, addresses, features }),
  };
}

/**
 * Adds and publishes two chains: 'a' (4 readable bytes at `data`, then
 * `writable` device-writable bytes at `data` + 64) and 'b' (4 readable bytes at `data`).
 */
export function addTwoChains(r: SplitRig | PackedRig, writable: number): void {
  r.driver.add(
    [
      { addr: r.data, len: 4 },
      { addr: r.data + 64n, len: writable, writable: true },
    ],
    'a',
  );
  r.driver.add([{ addr: r.data, len: 4 }], 'b');
  r.driver.publish();
}

/** Every view of a chain lies inside one region of `memory` (not just inside its buffer). */
export function viewsInside(memory: GuestMemory, views: Uint8Array[]): boolean {
  return views.every((v) =>
    memory.regions.some(
      (r) =>
        r.buffer === v.buffer &&
        v.byteOffset >= (r.byteOffset ?? 0) &&
        v.byteOffset + v.length <= (r.byteOffset ?? 0) + r.size,
    ),
  );
}

/** A small deterministic PRNG (xorshift32) for fuzz loops. */
export function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}
