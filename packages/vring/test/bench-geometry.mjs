// The memory layout and batch size that `test/bench.mjs` and its floor
// (`test/bench-floor.mjs`) share, so that the two move the same bytes.
import { packedLayout, splitLayout } from '../dist/index.js';

/**
 * Control words at offset 0, the ring from 4096 on, then `size` data slots
 * (cache-line aligned, 64 bytes of headroom: a 64 B message gets 128 bytes, so
 * the slot the sender fills never shares a 128-byte pair of cache lines with
 * the one the receiver reads; the CPU fetches lines in such pairs). `kind`:
 * split, packed, or slots (a split ring).
 */
export function layout(kind, size, msg) {
  const ring = kind === 'packed' ? packedLayout(size) : splitLayout(size);
  const ringAt = 4096;
  const data = ringAt + Math.ceil(ring.totalBytes / 4096) * 4096;
  const slot = Math.ceil((msg + 64) / 64) * 64;
  return { ring, ringAt, data, slot, total: data + size * slot };
}

/** Chains per publish: up to 128, capped at 256 KiB (64 KiB messages: 4 per publish). */
export function batchFor(msg) {
  return Math.max(1, Math.min(128, Math.floor(262144 / msg)));
}
