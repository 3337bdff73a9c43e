export {
  DESCRIPTOR_SIZE,
  EVENT_SUPPRESS_SIZE,
  LEGACY_VRING_ALIGN,
  MAX_CHAIN_BYTES,
  MAX_INDIRECT_ENTRIES,
  MAX_QUEUE_SIZE,
  PACKED_DESC_ALIGN,
  PACKED_EVENT_ALIGN,
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  RING_EVENT_FLAGS_ENABLE,
  SPLIT_AVAIL_ALIGN,
  SPLIT_DESC_ALIGN,
  SPLIT_USED_ALIGN,
  USED_ELEMENT_SIZE,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_IN_ORDER,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_VERSION_1,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_USED,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_USED_F_NO_NOTIFY,
} from './defs.js';
export { DescriptorChain } from './descriptor-chain.js';
export { VringError, type VringErrorCode } from './errors.js';
export { type GuestAddress, GuestMemory, type MemoryRegion } from './guest-memory.js';
export { vringNeedEvent } from './notification.js';
export type { PackedQueueOptions } from './packed-common.js';
export { PackedDeviceQueue } from './packed-device-queue.js';
export { PackedDriverQueue } from './packed-driver-queue.js';
export { type PackedLayout, packedLayout } from './packed-layout.js';
export {
  type PackedQueueAddresses,
  type QueueAddresses,
  type QueueFeatures,
  type QueueState,
  queueFeatures,
  stateToVringBase,
  vringBaseToState,
} from './queue-state.js';
export { type SplitDeviceOptions, SplitDeviceQueue, type SplitQueueOptions } from './split-device-queue.js';
export {
  type AddOptions,
  type DriverBuffer,
  SplitDriverQueue,
  type UsedBuffer,
} from './split-driver-queue.js';
export { type SplitLayout, splitLayout } from './split-layout.js';
export { SplitSlotDriver, type SplitSlotOptions } from './split-slot-driver.js';
