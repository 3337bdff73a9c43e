import { SPLIT_AVAIL_ALIGN, SPLIT_DESC_ALIGN, SPLIT_USED_ALIGN } from './defs.js';
import type { GuestMemory } from './guest-memory.js';
import type { QueueAddresses } from './queue-state.js';
import { ringBytes, toBigAddress, u16View, u32View } from './ring-views.js';
import { splitAvailRingBytes, splitDescTableBytes, splitUsedRingBytes } from './split-layout.js';

/** @internal Split ring addresses, checked. */
export interface SplitAddresses {
  descTable: bigint;
  availRing: bigint;
  usedRing: bigint;
}

/** @internal Each address a u64 (INVALID_ARGUMENT naming the field otherwise). */
export function splitAddresses(a: QueueAddresses): SplitAddresses {
  return {
    descTable: toBigAddress(a.descTable, 'descTable'),
    availRing: toBigAddress(a.availRing, 'availRing'),
    usedRing: toBigAddress(a.usedRing, 'usedRing'),
  };
}

/**
 * @internal Views of a split ring: words for descriptors, u16 for the avail
 * ring, u16 for the used ring's flags, idx and avail_event, and u32 for its
 * {id, len} elements.
 */
export interface SplitViews {
  desc: Uint32Array;
  avail: Uint16Array;
  used16: Uint16Array;
  used32: Uint32Array;
}

export function mapSplit(memory: GuestMemory, size: number, a: SplitAddresses): SplitViews {
  const desc = ringBytes(
    memory,
    a.descTable,
    splitDescTableBytes(size),
    SPLIT_DESC_ALIGN,
    'descriptor table',
  );
  const avail = ringBytes(
    memory,
    a.availRing,
    splitAvailRingBytes(size),
    SPLIT_AVAIL_ALIGN,
    'available ring',
  );
  const used = ringBytes(memory, a.usedRing, splitUsedRingBytes(size), SPLIT_USED_ALIGN, 'used ring');
  return {
    desc: u32View(desc),
    avail: u16View(avail),
    used16: u16View(used),
    used32: u32View(used.subarray(0, 4 + 8 * size)),
  };
}
