import { nowNs } from './cpu.js';

const BLOCK = 64 * 1024;

/**
 * Single-core copy bandwidth of 64 KiB blocks (TypedArray.set between plain
 * ArrayBuffers, i.e. V8's memmove) over a working set of `workingSet` bytes,
 * for about `ms` milliseconds. Returns GB/s (10^9 bytes per second).
 */
export function memcpyBandwidth(workingSet: number, ms: number): number {
  const bytes = Math.max(BLOCK, Math.floor(workingSet / BLOCK) * BLOCK);
  const src = new Uint8Array(bytes);
  const dst = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 4096) src[i] = i & 0xff; // touch every page
  dst.set(src);
  const blocks = bytes / BLOCK;
  const deadline = ms * 1e6;
  let copied = 0;
  let b = 0;
  const t0 = nowNs();
  let t = t0;
  while (t - t0 < deadline) {
    for (let k = 0; k < 64; k++) {
      const off = b * BLOCK;
      dst.set(src.subarray(off, off + BLOCK), off);
      b = b + 1 === blocks ? 0 : b + 1;
    }
    copied += 64 * BLOCK;
    t = nowNs();
  }
  return copied / (t - t0);
}

export interface MemcpyFigures {
  hotGBps: number;
  workingSetGBps: number;
  streamingGBps: number;
}

export function measureMemcpy(ms: number): MemcpyFigures {
  return {
    hotGBps: memcpyBandwidth(BLOCK, ms),
    workingSetGBps: memcpyBandwidth(16 << 20, ms),
    streamingGBps: memcpyBandwidth(128 << 20, ms),
  };
}
