/**
 * Constants of the VIRTIO specification (virtio-v1.2/1.3, "Basic Facilities of
 * a Virtio Device"). Section numbers refer to VIRTIO 1.2 (cs01).
 */

/** 2.7.5 The Virtqueue Descriptor Table: this descriptor continues via `next`. */
export const VIRTQ_DESC_F_NEXT = 1;
/** 2.7.5: the buffer is device write-only (otherwise device read-only). */
export const VIRTQ_DESC_F_WRITE = 2;
/** 2.7.5.3 Indirect Descriptors: the buffer is a table of descriptors. */
export const VIRTQ_DESC_F_INDIRECT = 4;

/** 2.7.6 The Virtqueue Available Ring: the driver asks for no used-buffer notification. */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** 2.7.8 The Virtqueue Used Ring: the device asks for no available-buffer notification. */
export const VIRTQ_USED_F_NO_NOTIFY = 1;

/** 2.7.1 / 2.8.1: largest queue size for both split (power of two) and packed rings. */
export const MAX_QUEUE_SIZE = 32768;

/** 2.7.5: sizeof(struct virtq_desc), also 2.8.13 sizeof(struct pvirtq_desc). */
export const DESCRIPTOR_SIZE = 16;
/** 2.7.8: sizeof(struct virtq_used_elem). */
export const USED_ELEMENT_SIZE = 8;

/** 2.7 Split Virtqueues, table "Virtqueue Part Alignment". */
export const SPLIT_DESC_ALIGN = 16;
export const SPLIT_AVAIL_ALIGN = 2;
export const SPLIT_USED_ALIGN = 4;
/** 2.7.2 Legacy Interfaces: the legacy layout pads the used ring to a 4096-byte boundary. */
export const LEGACY_VRING_ALIGN = 4096;

/** 2.8.1 Driver and Device Ring Wrap Counters: packed descriptor flag bits. */
export const VIRTQ_DESC_F_AVAIL = 1 << 7;
export const VIRTQ_DESC_F_USED = 1 << 15;

/** 2.8.10 Event Suppression Structure Format: desc_event_flags values. */
export const RING_EVENT_FLAGS_ENABLE = 0;
export const RING_EVENT_FLAGS_DISABLE = 1;
export const RING_EVENT_FLAGS_DESC = 2;
/** 2.8.10: sizeof(struct pvirtq_event_suppress). */
export const EVENT_SUPPRESS_SIZE = 4;
/** 2.8.1: packed rings (descriptor ring 16-aligned, event structures 4-aligned). */
export const PACKED_DESC_ALIGN = 16;
export const PACKED_EVENT_ALIGN = 4;

/** 6 Reserved Feature Bits (bit numbers). */
export const VIRTIO_F_INDIRECT_DESC = 28;
export const VIRTIO_F_EVENT_IDX = 29;
export const VIRTIO_F_VERSION_1 = 32;
export const VIRTIO_F_RING_PACKED = 34;
export const VIRTIO_F_IN_ORDER = 35;

/** 2.7.4 Message Framing: a chain's total length fits the 32-bit used length. */
export const MAX_CHAIN_BYTES = 2 ** 32;

/**
 * Largest indirect table accepted (entries). The spec bounds a chain by the
 * queue size only for direct descriptors; drivers (Linux) may build bigger
 * indirect tables, so the bound is the largest queue size. It keeps the work
 * of one pop() bounded whatever len the peer writes.
 */
export const MAX_INDIRECT_ENTRIES = 32768;
