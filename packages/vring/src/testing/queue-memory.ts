import { GuestMemory } from '../guest-memory.js';
import { packedLayout } from '../packed-layout.js';
import type { PackedQueueAddresses, QueueAddresses, QueueFeatures } from '../queue-state.js';
import { splitLayout } from '../split-layout.js';

export type QueueKind = 'split' | 'packed';

export interface TestQueueOptions {
  /** 'split' (default) or 'packed'. */
  kind?: QueueKind;
  /** Queue size (default 256). */
  size?: number;
  features?: QueueFeatures;
  /** Bytes of buffer space per chain (default 4096). */
  slotBytes?: number;
  /** Guest address of the area (default 0x100000). */
  guestAddress?: bigint;
  /** Back the memory with a SharedArrayBuffer (to hand it to a worker). */
  shared?: boolean;
}

/** A ring plus buffer space in one fresh buffer, as a driver would lay it out. */
export interface TestQueueMemory {
  kind: QueueKind;
  size: number;
  features: QueueFeatures;
  memory: GuestMemory;
  buffer: ArrayBuffer | SharedArrayBuffer;
  addresses: QueueAddresses | PackedQueueAddresses;
  /** Guest address and size of the buffer space (one slot per possible chain). */
  data: bigint;
  slotBytes: number;
  /** Byte offset in `buffer` of a guest address. */
  offsetOf(addr: bigint | number): number;
}

export function createTestQueueMemory(opts: TestQueueOptions = {}): TestQueueMemory {
  const kind = opts.kind ?? 'split';
  const size = opts.size ?? 256;
  const slotBytes = opts.slotBytes ?? 4096;
  const base = opts.guestAddress ?? 0x100000n;
  const ring = kind === 'split' ? splitLayout(size) : packedLayout(size);
  const ringBytes = Math.ceil(ring.totalBytes / 4096) * 4096;
  const total = ringBytes + size * slotBytes;
  const buffer = opts.shared ? new SharedArrayBuffer(total) : new ArrayBuffer(total);
  const memory = new GuestMemory([{ guestAddress: base, size: total, buffer }]);
  const addresses =
    'descTable' in ring
      ? {
          descTable: base + BigInt(ring.descTable),
          availRing: base + BigInt(ring.availRing),
          usedRing: base + BigInt(ring.usedRing),
        }
      : {
          descRing: base + BigInt(ring.descRing),
          driverEvent: base + BigInt(ring.driverEvent),
          deviceEvent: base + BigInt(ring.deviceEvent),
        };
  return {
    kind,
    size,
    features: { ...opts.features },
    memory,
    buffer,
    addresses,
    data: base + BigInt(ringBytes),
    slotBytes,
    offsetOf: (addr) => Number(BigInt(addr) - base),
  };
}
