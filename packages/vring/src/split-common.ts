import {
  SPLIT_AVAIL_ALIGN,
  SPLIT_DESC_ALIGN,
  SPLIT_USED_ALIGN,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_USED_F_NO_NOTIFY,
} from './defs.js';
import { VringError } from './errors.js';
import type { GuestMemory } from './guest-memory.js';
import { vringNeedEvent } from './notification.js';
import type { QueueAddresses, QueueState } from './queue-state.js';
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

/** @internal `v` as a u16 index, or INVALID_ARGUMENT naming it (`what`). */
export function checkU16(v: unknown, what: string): number {
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 0xffff) {
    throw new VringError('INVALID_ARGUMENT', `${what} must be a u16 (got ${String(v)})`);
  }
  return v as number;
}

// ---- what both split drivers (SplitDriverQueue, SplitSlotDriver) share ----

/**
 * @internal publish(): stores avail.idx `idx` (last published: `old`) and
 * tells whether the device must be kicked (EVENT_IDX's avail_event, else the
 * used ring's NO_NOTIFY flag).
 */
export function splitPublish(
  v: SplitViews,
  size: number,
  eventIdx: boolean,
  idx: number,
  old: number,
): boolean {
  Atomics.store(v.avail, 1, idx);
  if (eventIdx) return vringNeedEvent(Atomics.load(v.used16, 2 + 4 * size), idx, old);
  return (Atomics.load(v.used16, 0) & VIRTQ_USED_F_NO_NOTIFY) === 0;
}

/**
 * @internal enableCallbacks(): asks for used-buffer notifications again, with
 * EVENT_IDX at used index `lastUsed` (the caller records that it wrote it),
 * otherwise by clearing NO_INTERRUPT.
 */
export function splitCallbacksOn(v: SplitViews, size: number, eventIdx: boolean, lastUsed: number): void {
  if (eventIdx) Atomics.store(v.avail, 2 + size, lastUsed);
  else Atomics.store(v.avail, 0, 0);
}

/** @internal disableCallbacks(): NO_INTERRUPT (with EVENT_IDX nothing to write). */
export function splitCallbacksOff(v: SplitViews, eventIdx: boolean): void {
  if (!eventIdx) Atomics.store(v.avail, 0, VIRTQ_AVAIL_F_NO_INTERRUPT);
}

/** @internal A driver's restored index: a state with nothing in flight (nextAvail = nextUsed). */
export function driverRestoreIndex(s: QueueState): number {
  const a = checkU16(s.nextAvail, 'nextAvail');
  const u = checkU16(s.nextUsed, 'nextUsed');
  if (a !== u) {
    throw new VringError(
      'INVALID_ARGUMENT',
      'a driver can only be restored with no chains in flight (nextAvail = nextUsed)',
    );
  }
  return a;
}

/** @internal reset(): zeroes the three parts of a split ring (the driver owns them). */
export function zeroSplitRings(v: SplitViews): void {
  for (const a of [v.desc, v.avail, v.used16]) new Uint8Array(a.buffer, a.byteOffset, a.byteLength).fill(0);
}
