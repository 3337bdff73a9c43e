import {
  DESCRIPTOR_SIZE,
  MAX_QUEUE_SIZE,
  SPLIT_AVAIL_ALIGN,
  SPLIT_DESC_ALIGN,
  SPLIT_USED_ALIGN,
  USED_ELEMENT_SIZE,
} from './defs.js';
import { VringError } from './errors.js';

/** Byte offsets of the three parts of a split virtqueue, from a common base (2.7). */
export interface SplitLayout {
  size: number;
  descTable: number;
  availRing: number;
  usedRing: number;
  /** Bytes from the base to the end of the used ring (event fields included). */
  totalBytes: number;
}

/** Throws INVALID_QUEUE_SIZE unless `size` is a power of two from 1 to 32768 (2.7). */
export function checkSplitSize(size: number): void {
  if (!Number.isInteger(size) || size < 1 || size > MAX_QUEUE_SIZE || (size & (size - 1)) !== 0) {
    throw new VringError(
      'INVALID_QUEUE_SIZE',
      `split queue size must be a power of two from 1 to 32768 (got ${String(size)})`,
    );
  }
}

/** Bytes of the descriptor table: 16 * N. */
export function splitDescTableBytes(size: number): number {
  return DESCRIPTOR_SIZE * size;
}
/** Bytes of the available ring with used_event: flags, idx, ring[N], used_event. */
export function splitAvailRingBytes(size: number): number {
  return 6 + 2 * size;
}
/** Bytes of the used ring with avail_event: flags, idx, ring[N] of {id, len}, avail_event. */
export function splitUsedRingBytes(size: number): number {
  return 6 + USED_ELEMENT_SIZE * size;
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/**
 * The contiguous layout: descriptor table, then the available ring, then the used
 * ring aligned to `align` (default 4, the used ring's own alignment; pass 4096
 * for the legacy layout of 2.7.2). The EVENT_IDX fields are always included.
 */
export function splitLayout(size: number, opts: { align?: number } = {}): SplitLayout {
  checkSplitSize(size);
  const align = opts.align ?? SPLIT_USED_ALIGN;
  if (!Number.isInteger(align) || align < SPLIT_USED_ALIGN || (align & (align - 1)) !== 0) {
    throw new VringError('INVALID_ARGUMENT', `align must be a power of two >= 4 (got ${String(align)})`);
  }
  const descTable = 0;
  const availRing = descTable + splitDescTableBytes(size);
  const usedRing = alignUp(availRing + splitAvailRingBytes(size), align);
  return { size, descTable, availRing, usedRing, totalBytes: usedRing + splitUsedRingBytes(size) };
}

/** Alignments each part must have in guest memory (2.7, "Virtqueue Part Alignment"). */
export const SPLIT_ALIGNMENT = {
  descTable: SPLIT_DESC_ALIGN,
  availRing: SPLIT_AVAIL_ALIGN,
  usedRing: SPLIT_USED_ALIGN,
} as const;
