/**
 * Spec constants. "vhost-user" = QEMU docs/interop/vhost-user.rst; "VIRTIO" =
 * the VIRTIO 1.3 specification (oasis-tcs/virtio-spec). All wire numbers are
 * in the machine's native byte order, which is little-endian on every machine
 * this package supports (checked at start-up in codec.ts).
 */

/** vhost-user "Header": request, flags, size, each a u32. */
export const HEADER_SIZE = 12;

/** vhost-user "Header" flags: lower 2 bits are the version (currently 1). */
export const VHOST_USER_VERSION = 0x1;
export const VHOST_USER_VERSION_MASK = 0x3;
/** Bit 2: set on every reply. */
export const VHOST_USER_REPLY_MASK = 0x1 << 2;
/** Bit 3: need_reply (REPLY_ACK). */
export const VHOST_USER_NEED_REPLY_MASK = 0x1 << 3;

/** vhost-user "Communication": feature bit 30 gates GET/SET_PROTOCOL_FEATURES. */
export const VHOST_USER_F_PROTOCOL_FEATURES = 30;

/** vhost-user "Protocol features" (bit numbers). */
export const ProtocolFeature = {
  MQ: 0,
  LOG_SHMFD: 1,
  RARP: 2,
  REPLY_ACK: 3,
  MTU: 4,
  BACKEND_REQ: 5,
  CROSS_ENDIAN: 6,
  CRYPTO_SESSION: 7,
  PAGEFAULT: 8,
  CONFIG: 9,
  BACKEND_SEND_FD: 10,
  HOST_NOTIFIER: 11,
  INFLIGHT_SHMFD: 12,
  RESET_DEVICE: 13,
  INBAND_NOTIFICATIONS: 14,
  CONFIGURE_MEM_SLOTS: 15,
  STATUS: 16,
  XEN_MMAP: 17,
  SHARED_OBJECT: 18,
  DEVICE_STATE: 19,
} as const;
export type ProtocolFeatureName = keyof typeof ProtocolFeature;

/** vhost-user "Front-end message types": request ids. */
export const FrontendRequest = {
  GET_FEATURES: 1,
  SET_FEATURES: 2,
  SET_OWNER: 3,
  RESET_OWNER: 4,
  SET_MEM_TABLE: 5,
  SET_LOG_BASE: 6,
  SET_LOG_FD: 7,
  SET_VRING_NUM: 8,
  SET_VRING_ADDR: 9,
  SET_VRING_BASE: 10,
  GET_VRING_BASE: 11,
  SET_VRING_KICK: 12,
  SET_VRING_CALL: 13,
  SET_VRING_ERR: 14,
  GET_PROTOCOL_FEATURES: 15,
  SET_PROTOCOL_FEATURES: 16,
  GET_QUEUE_NUM: 17,
  SET_VRING_ENABLE: 18,
  SEND_RARP: 19,
  NET_SET_MTU: 20,
  SET_BACKEND_REQ_FD: 21,
  IOTLB_MSG: 22,
  SET_VRING_ENDIAN: 23,
  GET_CONFIG: 24,
  SET_CONFIG: 25,
  CREATE_CRYPTO_SESSION: 26,
  CLOSE_CRYPTO_SESSION: 27,
  POSTCOPY_ADVISE: 28,
  POSTCOPY_LISTEN: 29,
  POSTCOPY_END: 30,
  GET_INFLIGHT_FD: 31,
  SET_INFLIGHT_FD: 32,
  GPU_SET_SOCKET: 33,
  RESET_DEVICE: 34,
  VRING_KICK: 35,
  GET_MAX_MEM_SLOTS: 36,
  ADD_MEM_REG: 37,
  REM_MEM_REG: 38,
  SET_STATUS: 39,
  GET_STATUS: 40,
  GET_SHARED_OBJECT: 41,
  SET_DEVICE_STATE_FD: 42,
  CHECK_DEVICE_STATE: 43,
} as const;
export type FrontendRequestName = keyof typeof FrontendRequest;

/** vhost-user "Back-end message types" (sent on the back-end channel). */
export const BackendRequest = {
  IOTLB_MSG: 1,
  CONFIG_CHANGE_MSG: 2,
  VRING_HOST_NOTIFIER_MSG: 3,
  VRING_CALL: 4,
  VRING_ERR: 5,
  SHARED_OBJECT_ADD: 6,
  SHARED_OBJECT_REMOVE: 7,
  SHARED_OBJECT_LOOKUP: 8,
} as const;
export type BackendRequestName = keyof typeof BackendRequest;

/** SET_VRING_KICK/CALL/ERR u64: bits 0-7 are the vring index, bit 8 is the invalid-fd flag. */
export const VHOST_USER_VRING_IDX_MASK = 0xff;
export const VHOST_USER_VRING_NOFD_MASK = 0x100;

/** SET_VRING_ADDR flags: bit 0 VHOST_VRING_F_LOG. */
export const VHOST_VRING_F_LOG = 0x1;

/** vhost-user "Memory regions description": at most 8 regions in SET_MEM_TABLE. */
export const VHOST_MEMORY_BASELINE_NREGIONS = 8;
/** Size of one memory region description (32, or 40 with XEN_MMAP). */
export const MEMORY_REGION_SIZE = 32;
export const MEMORY_REGION_XEN_SIZE = 40;
/** QEMU's and DPDK's VHOST_USER_MAX_CONFIG_SIZE: the config space payload cap. */
export const VHOST_USER_MAX_CONFIG_SIZE = 256;
/** Fds a single message may carry: one per memory region at most. */
export const VHOST_USER_MAX_FDS = 8;
/** Default payload cap: the largest legal payload is far below it. */
export const DEFAULT_MAX_PAYLOAD = 4096;
/** The spec caps queue indices at 8 bits in kick/call/err (0-255). */
export const VHOST_USER_MAX_QUEUES = 256;

/** vhost-user "Migration": dirty log page size. */
export const VHOST_LOG_PAGE = 0x1000;

/** VIRTIO 6 "Reserved Feature Bits" and device-independent bits. */
export const VirtioFeature = {
  NOTIFY_ON_EMPTY: 24,
  ANY_LAYOUT: 27,
  RING_INDIRECT_DESC: 28,
  RING_EVENT_IDX: 29,
  VERSION_1: 32,
  ACCESS_PLATFORM: 33,
  RING_PACKED: 34,
  IN_ORDER: 35,
  ORDER_PLATFORM: 36,
  SR_IOV: 37,
  NOTIFICATION_DATA: 38,
  RING_RESET: 40,
} as const;

/** VHOST_F_LOG_ALL (vhost-user "Migration"). */
export const VHOST_F_LOG_ALL = 26;

/** VIRTIO 5.1.3 "Feature bits" of the network device. */
export const VirtioNetFeature = {
  CSUM: 0,
  GUEST_CSUM: 1,
  CTRL_GUEST_OFFLOADS: 2,
  MTU: 3,
  MAC: 5,
  GUEST_TSO4: 7,
  GUEST_TSO6: 8,
  GUEST_ECN: 9,
  GUEST_UFO: 10,
  HOST_TSO4: 11,
  HOST_TSO6: 12,
  HOST_ECN: 13,
  HOST_UFO: 14,
  MRG_RXBUF: 15,
  STATUS: 16,
  CTRL_VQ: 17,
  CTRL_RX: 18,
  CTRL_VLAN: 19,
  GUEST_ANNOUNCE: 21,
  MQ: 22,
  CTRL_MAC_ADDR: 23,
} as const;

/** VIRTIO 2.1 "Device Status Field". */
export const DeviceStatus = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  DEVICE_NEEDS_RESET: 64,
  FAILED: 128,
} as const;

/**
 * VIRTIO 5.1.6 "Device Operation": struct virtio_net_hdr as used with
 * VERSION_1 or MRG_RXBUF: flags u8, gso_type u8, hdr_len u16, gso_size u16,
 * csum_start u16, csum_offset u16, num_buffers u16 = 12 bytes.
 */
export const VIRTIO_NET_HDR_SIZE = 12;
/** Offset of num_buffers inside virtio_net_hdr. */
export const VIRTIO_NET_HDR_NUM_BUFFERS_OFFSET = 10;
/** VIRTIO 5.1.2 "Virtqueues": receiveq N = 2N, transmitq N = 2N+1. */
export const NET_RX_QUEUE = 0;
export const NET_TX_QUEUE = 1;
/** Largest Ethernet frame (with VLAN tag) the net device handles without GSO. */
export const NET_MAX_FRAME = 1518 + 4;

/** vhost-user "Inflight I/O tracking": version of the queue region layout. */
export const INFLIGHT_VERSION = 1;
/** Sizes of the split inflight layout: QueueRegionSplit header and DescStateSplit. */
export const INFLIGHT_SPLIT_HEADER_SIZE = 16;
export const INFLIGHT_SPLIT_DESC_SIZE = 16;
/** Sizes of the packed inflight layout: QueueRegionPacked header and DescStatePacked. */
export const INFLIGHT_PACKED_HEADER_SIZE = 32;
export const INFLIGHT_PACKED_DESC_SIZE = 32;
/** Each queue's region starts on a 64-byte boundary (as DPDK's vhost library lays it out). */
export const INFLIGHT_ALIGN = 64;

/** Bit helpers for u64 feature words. */
export function bit(n: number): bigint {
  return 1n << BigInt(n);
}

export function hasBit(word: bigint, n: number): boolean {
  return (word & bit(n)) !== 0n;
}
