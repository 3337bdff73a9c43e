import {
  PACKED_DESC_ALIGN,
  PACKED_EVENT_ALIGN,
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
} from './defs.js';
import type { GuestMemory } from './guest-memory.js';
import { vringNeedEvent } from './notification.js';
import type { PackedQueueAddresses, QueueAddresses, QueueFeatures } from './queue-state.js';
import { ringBytes, toBigAddress, u16View, u32View } from './ring-views.js';

export interface PackedQueueOptions {
  memory: GuestMemory;
  size: number;
  /** `{ descRing, driverEvent, deviceEvent }`, or the split names as SET_VRING_ADDR carries them. */
  addresses: PackedQueueAddresses | QueueAddresses;
  features?: QueueFeatures;
  state?: import('./queue-state.js').QueueState;
}

export interface PackedAddresses {
  descRing: bigint;
  driverEvent: bigint;
  deviceEvent: bigint;
}

/** @internal */
export function packedAddresses(a: PackedQueueAddresses | QueueAddresses): PackedAddresses {
  if ('descRing' in a) {
    return {
      descRing: toBigAddress(a.descRing, 'descRing'),
      driverEvent: toBigAddress(a.driverEvent, 'driverEvent'),
      deviceEvent: toBigAddress(a.deviceEvent, 'deviceEvent'),
    };
  }
  return {
    descRing: toBigAddress(a.descTable, 'descTable'),
    driverEvent: toBigAddress(a.availRing, 'availRing'),
    deviceEvent: toBigAddress(a.usedRing, 'usedRing'),
  };
}

/** @internal Views of a packed ring: words for descriptors, u16 for flags, u16 pairs for event areas. */
export interface PackedViews {
  desc32: Uint32Array;
  desc16: Uint16Array;
  driverEvent: Uint16Array;
  deviceEvent: Uint16Array;
}

export function mapPacked(memory: GuestMemory, size: number, a: PackedAddresses): PackedViews {
  const desc = ringBytes(memory, a.descRing, 16 * size, PACKED_DESC_ALIGN, 'descriptor ring');
  const drv = ringBytes(memory, a.driverEvent, 4, PACKED_EVENT_ALIGN, 'driver event suppression area');
  const dev = ringBytes(memory, a.deviceEvent, 4, PACKED_EVENT_ALIGN, 'device event suppression area');
  return {
    desc32: u32View(desc),
    desc16: u16View(desc),
    driverEvent: u16View(drv),
    deviceEvent: u16View(dev),
  };
}

/**
 * Whether the other side asked to be notified, after `advanced` descriptors
 * moved our position to `pos` (with wrap counter `wrap`) (2.8.10, 2.8.21).
 * `area` is the peer's event suppression structure.
 */
export function packedNeedEvent(
  area: Uint16Array,
  eventIdx: boolean,
  size: number,
  pos: number,
  wrap: boolean,
  advanced: number,
): boolean {
  const flags = Atomics.load(area, 1) & 3;
  if (flags === RING_EVENT_FLAGS_DISABLE) return false;
  if (flags !== RING_EVENT_FLAGS_DESC || !eventIdx) return true; // ENABLE (and reserved 3, to be safe)
  const offWrap = Atomics.load(area, 0);
  let event = offWrap & 0x7fff;
  if (offWrap >>> 15 !== (wrap ? 1 : 0)) event -= size;
  return vringNeedEvent(event, pos, pos - advanced);
}

/** @internal Ring position after `k` descriptors from `pos`. */
export function advance(pos: number, wrap: boolean, k: number, size: number): [number, boolean] {
  const p = pos + k;
  return p >= size ? [p - size, !wrap] : [p, wrap];
}
