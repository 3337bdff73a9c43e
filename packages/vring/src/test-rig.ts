// Test-only helpers (not part of the published entry points).
import { GuestMemory } from './guest-memory.js';
import { PackedDeviceQueue } from './packed-device-queue.js';
import { PackedDriverQueue } from './packed-driver-queue.js';
import { packedLayout } from './packed-layout.js';
import type { QueueFeatures } from './queue-state.js';
import { SplitDeviceQueue } from './split-device-queue.js';
import { SplitDriverQueue } from './split-driver-queue.js';
import { splitLayout } from './split-layout.js';

export interface SplitRig {
  memory: GuestMemory;
  buffer: ArrayBuffer | SharedArrayBuffer;
  bytes: Uint8Array;
  view: DataView;
  base: bigint;
  ring: ReturnType<typeof splitLayout>;
  /** Guest address of the data area (after the rings, 4 KiB aligned). */
  data: bigint;
  dataBytes: number;
  addresses: { descTable: bigint; availRing: bigint; usedRing: bigint };
  driver: SplitDriverQueue;
  device: SplitDeviceQueue;
  /** Byte offset in `buffer` of a guest address. */
  off(addr: bigint | number): number;
}

export function splitRig(
  opts: {
    size?: number;
    features?: QueueFeatures;
    dataBytes?: number;
    base?: bigint;
    shared?: boolean;
    /** Back the rig with this buffer (e.g. a memfd mapping); it must be large enough. */
    buffer?: ArrayBuffer | SharedArrayBuffer;
  } = {},
): SplitRig {
  const size = opts.size ?? 8;
  const base = opts.base ?? 0x10000n;
  const ring = splitLayout(size);
  const ringBytes = Math.ceil(ring.totalBytes / 4096) * 4096;
  const dataBytes = opts.dataBytes ?? 65536;
  const total = ringBytes + dataBytes;
  const buffer = opts.buffer ?? (opts.shared ? new SharedArrayBuffer(total) : new ArrayBuffer(total));
  const memory = new GuestMemory([{ guestAddress: base, size: total, buffer }]);
  const addresses = {
    descTable: base + BigInt(ring.descTable),
    availRing: base + BigInt(ring.availRing),
    usedRing: base + BigInt(ring.usedRing),
  };
  const features = opts.features ?? {};
  return {
    memory,
    buffer,
    bytes: new Uint8Array(buffer),
    view: new DataView(buffer),
    base,
    ring,
    data: base + BigInt(ringBytes),
    dataBytes,
    addresses,
    driver: new SplitDriverQueue({ memory, size, addresses, features }),
    device: new SplitDeviceQueue({ memory, size, addresses, features }),
    off: (addr) => Number(BigInt(addr) - base),
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

export interface PackedRig {
  memory: GuestMemory;
  buffer: ArrayBuffer | SharedArrayBuffer;
  bytes: Uint8Array;
  view: DataView;
  base: bigint;
  size: number;
  data: bigint;
  dataBytes: number;
  addresses: { descRing: bigint; driverEvent: bigint; deviceEvent: bigint };
  driver: PackedDriverQueue;
  device: PackedDeviceQueue;
  off(addr: bigint | number): number;
}

export function packedRig(
  opts: {
    size?: number;
    features?: QueueFeatures;
    dataBytes?: number;
    base?: bigint;
    shared?: boolean;
    buffer?: ArrayBuffer | SharedArrayBuffer;
  } = {},
): PackedRig {
  const size = opts.size ?? 8;
  const base = opts.base ?? 0x10000n;
  const ring = packedLayout(size);
  const ringBytes = Math.ceil(ring.totalBytes / 4096) * 4096;
  const dataBytes = opts.dataBytes ?? 65536;
  const total = ringBytes + dataBytes;
  const buffer = opts.buffer ?? (opts.shared ? new SharedArrayBuffer(total) : new ArrayBuffer(total));
  const memory = new GuestMemory([{ guestAddress: base, size: total, buffer }]);
  const addresses = {
    descRing: base + BigInt(ring.descRing),
    driverEvent: base + BigInt(ring.driverEvent),
    deviceEvent: base + BigInt(ring.deviceEvent),
  };
  const features = opts.features ?? {};
  return {
    memory,
    buffer,
    bytes: new Uint8Array(buffer),
    view: new DataView(buffer),
    base,
    size,
    data: base + BigInt(ringBytes),
    dataBytes,
    addresses,
    driver: new PackedDriverQueue({ memory, size, addresses, features }),
    device: new PackedDeviceQueue({ memory, size, addresses, features }),
    off: (addr) => Number(BigInt(addr) - base),
  };
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
