import { DESCRIPTOR_SIZE, EVENT_SUPPRESS_SIZE, MAX_QUEUE_SIZE } from './defs.js';
import { VringError } from './errors.js';

/** Byte offsets of the three parts of a packed virtqueue, from a common base (2.8). */
export interface PackedLayout {
  size: number;
  descRing: number;
  /** Driver Event Suppression area: written by the driver, read by the device. */
  driverEvent: number;
  /** Device Event Suppression area: written by the device, read by the driver. */
  deviceEvent: number;
  totalBytes: number;
}

/** Throws INVALID_QUEUE_SIZE unless 1 <= size <= 32768 (2.8: need not be a power of two). */
export function checkPackedSize(size: number): void {
  if (!Number.isInteger(size) || size < 1 || size > MAX_QUEUE_SIZE) {
    throw new VringError(
      'INVALID_QUEUE_SIZE',
      `packed queue size must be an integer from 1 to 32768 (got ${String(size)})`,
    );
  }
}

/** Descriptor ring (16 * N, 16-aligned), then the driver and the device event areas (4 bytes, 4-aligned). */
export function packedLayout(size: number): PackedLayout {
  checkPackedSize(size);
  const descRing = 0;
  const driverEvent = descRing + DESCRIPTOR_SIZE * size;
  const deviceEvent = driverEvent + EVENT_SUPPRESS_SIZE;
  return { size, descRing, driverEvent, deviceEvent, totalBytes: deviceEvent + EVENT_SUPPRESS_SIZE };
}
