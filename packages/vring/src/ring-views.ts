import { VringError } from './errors.js';
import type { GuestMemory } from './guest-memory.js';

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** VIRTIO rings are little-endian and are read through native-order typed arrays. */
export function assertLittleEndian(): void {
  if (!littleEndian) {
    throw new VringError(
      'UNSUPPORTED_PLATFORM',
      '@vipc/vring needs a little-endian host (rings are little-endian)',
    );
  }
}

/** @internal A u64 given as bigint or number, checked. */
export function toBigAddress(a: bigint | number, what: string): bigint {
  if (typeof a === 'bigint') {
    if (a < 0n || a >= 1n << 64n)
      throw new VringError('INVALID_ARGUMENT', `${what} must be a u64 (got ${a})`);
    return a;
  }
  if (!Number.isSafeInteger(a) || a < 0) {
    throw new VringError(
      'INVALID_ARGUMENT',
      `${what} must be a non-negative safe integer or bigint (got ${String(a)})`,
    );
  }
  return BigInt(a);
}

/**
 * @internal Bytes of a ring part, checked: inside one region, aligned in guest
 * memory as the spec requires, and aligned in its buffer for typed-array access.
 */
export function ringBytes(
  memory: GuestMemory,
  addr: bigint,
  len: number,
  align: number,
  what: string,
): Uint8Array {
  if (addr % BigInt(align) !== 0n) {
    throw new VringError('MISALIGNED_RING', `${what} at 0x${addr.toString(16)} is not ${align}-byte aligned`);
  }
  let bytes: Uint8Array;
  try {
    bytes = memory.slice(addr, len);
  } catch (err) {
    throw new VringError(
      'ADDRESS_OUT_OF_BOUNDS',
      `${what} 0x${addr.toString(16)}+${len} is not inside one mapped region`,
      { cause: err },
    );
  }
  if (bytes.byteOffset % Math.min(align, 4) !== 0) {
    throw new VringError(
      'MISALIGNED_RING',
      `${what} lands at byte ${bytes.byteOffset} of its buffer, not ${Math.min(align, 4)}-aligned (map regions at aligned offsets)`,
    );
  }
  return bytes;
}

export function u16View(b: Uint8Array): Uint16Array {
  return new Uint16Array(b.buffer, b.byteOffset, b.byteLength >>> 1);
}
export function u32View(b: Uint8Array): Uint32Array {
  return new Uint32Array(b.buffer, b.byteOffset, b.byteLength >>> 2);
}
