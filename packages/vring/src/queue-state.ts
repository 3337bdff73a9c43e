import { VIRTIO_F_EVENT_IDX, VIRTIO_F_IN_ORDER, VIRTIO_F_INDIRECT_DESC } from './defs.js';
import { VringError } from './errors.js';

/** Negotiated features that change how a ring is driven. */
export interface QueueFeatures {
  /** VIRTIO_F_EVENT_IDX (bit 29). */
  eventIdx?: boolean;
  /** VIRTIO_F_INDIRECT_DESC (bit 28). */
  indirect?: boolean;
  /** VIRTIO_F_IN_ORDER (bit 35). */
  inOrder?: boolean;
}

/** QueueFeatures from a negotiated feature word. */
export function queueFeatures(features: bigint): QueueFeatures {
  const has = (bit: number) => (features & (1n << BigInt(bit))) !== 0n;
  return {
    eventIdx: has(VIRTIO_F_EVENT_IDX),
    indirect: has(VIRTIO_F_INDIRECT_DESC),
    inOrder: has(VIRTIO_F_IN_ORDER),
  };
}

/**
 * A snapshot of a queue's private indexes (vhost-user GET/SET_VRING_BASE, reconnect).
 * Split: free-running u16 indexes. Packed: ring positions 0..N-1 plus wrap counters.
 */
export interface QueueState {
  nextAvail: number;
  nextUsed: number;
  availWrap?: boolean;
  usedWrap?: boolean;
}

/** Split ring addresses in guest memory (SET_VRING_ADDR after user-to-guest translation). */
export interface QueueAddresses {
  descTable: bigint | number;
  availRing: bigint | number;
  usedRing: bigint | number;
}

/** Packed ring addresses; the split names are accepted too (desc, avail = driver event, used = device event). */
export interface PackedQueueAddresses {
  descRing: bigint | number;
  driverEvent: bigint | number;
  deviceEvent: bigint | number;
}

/**
 * The u32 of vhost-user SET/GET_VRING_BASE. Split: the next avail index.
 * Packed: bits 0-14 avail index, bit 15 avail wrap, bits 16-30 used index, bit 31 used wrap.
 */
export function stateToVringBase(state: QueueState, packed: boolean): number {
  if (!packed) return state.nextAvail & 0xffff;
  return (
    ((state.nextAvail & 0x7fff) |
      (state.availWrap === false ? 0 : 0x8000) |
      ((state.nextUsed & 0x7fff) << 16) |
      (state.usedWrap === false ? 0 : 0x80000000)) >>>
    0
  );
}

/**
 * Inverse of stateToVringBase (split: nextUsed = nextAvail, as after
 * GET_VRING_BASE stopped the ring). Packed: a base whose upper 16 bits are all
 * zero is DPDK's and SPDK's short form, the avail half alone, and reads as
 * used = avail (nothing in flight), as @vipc/vhost-user's back-end reads it;
 * read literally, it would put the whole ring in the device's hands, or more.
 */
export function vringBaseToState(base: number, packed: boolean): QueueState {
  if (!Number.isInteger(base) || base < 0 || base > 0xffffffff) {
    throw new VringError('INVALID_ARGUMENT', `vring base must be a u32 (got ${String(base)})`);
  }
  if (!packed) {
    if (base > 0xffff)
      throw new VringError('INVALID_ARGUMENT', `split vring base must be a u16 (got ${base})`);
    return { nextAvail: base, nextUsed: base };
  }
  const nextAvail = base & 0x7fff;
  const availWrap = (base & 0x8000) !== 0;
  if (base >>> 16 === 0) return { nextAvail, availWrap, nextUsed: nextAvail, usedWrap: availWrap };
  return {
    nextAvail,
    availWrap,
    nextUsed: (base >>> 16) & 0x7fff,
    usedWrap: (base & 0x80000000) !== 0,
  };
}
