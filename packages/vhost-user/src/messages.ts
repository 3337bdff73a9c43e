/**
 * vhost-user message definitions as pure data: for every front-end and
 * back-end request of the spec (vhost-user "Front-end message types" and
 * "Back-end message types"), its payload kind, the file descriptors it may
 * carry and the reply it solicits. codec.ts enforces these schemas.
 */
import {
  BackendRequest,
  type BackendRequestName,
  FrontendRequest,
  type FrontendRequestName,
} from './defs.js';

/** The payload layouts of vhost-user "Payload". */
export type PayloadKind =
  | 'none'
  | 'u64'
  | 'vringState'
  | 'vringAddress'
  | 'memoryTable'
  | 'singleRegion'
  | 'log'
  | 'iotlb'
  | 'config'
  | 'vringArea'
  | 'inflight'
  | 'shared'
  | 'deviceState'
  | 'opaque';

/** How many fds a message may carry. */
export type FdRule =
  /** Exactly this many. */
  | { exactly: number }
  /** Between min and max; `closeExtra` fds are accepted but closed unused (spec compatibility). */
  | { min: number; max: number; closeExtra?: boolean }
  /** One per memory region of the payload. */
  | 'perRegion'
  /** SET_VRING_KICK/CALL/ERR: one, unless bit 8 (invalid fd) of the u64 is set, then none. */
  | 'unlessNoFdFlag';

export interface ReplySchema {
  payload: PayloadKind;
  fds: FdRule;
  /**
   * When the back-end replies: always, only when the named protocol feature
   * was negotiated, or only when REPLY_ACK + NEED_REPLY ask for an ack (u64).
   */
  when: 'always' | 'LOG_SHMFD' | 'INFLIGHT_SHMFD' | 'POSTCOPY';
}

export interface MessageSchema {
  id: number;
  payload: PayloadKind;
  fds: FdRule;
  reply?: ReplySchema;
}

const NO_FDS: FdRule = { exactly: 0 };
const ONE_FD: FdRule = { exactly: 1 };
const OPTIONAL_FD: FdRule = { min: 0, max: 1 };
const U64_REPLY: ReplySchema = { payload: 'u64', fds: NO_FDS, when: 'always' };

function s(id: number, payload: PayloadKind, fds: FdRule = NO_FDS, reply?: ReplySchema): MessageSchema {
  return reply === undefined ? { id, payload, fds } : { id, payload, fds, reply };
}

const F = FrontendRequest;
/** Schemas of the front-end requests (front-end -> back-end), by name. */
export const FRONTEND_SCHEMAS: Readonly<Record<FrontendRequestName, MessageSchema>> = {
  GET_FEATURES: s(F.GET_FEATURES, 'none', NO_FDS, U64_REPLY),
  SET_FEATURES: s(F.SET_FEATURES, 'u64'),
  SET_OWNER: s(F.SET_OWNER, 'none'),
  RESET_OWNER: s(F.RESET_OWNER, 'none'),
  SET_MEM_TABLE: s(F.SET_MEM_TABLE, 'memoryTable', 'perRegion', {
    payload: 'memoryTable',
    fds: NO_FDS,
    when: 'POSTCOPY',
  }),
  // With LOG_SHMFD the log fd travels here and a u64 reply follows; without it, no fd.
  SET_LOG_BASE: s(F.SET_LOG_BASE, 'log', OPTIONAL_FD, { payload: 'u64', fds: NO_FDS, when: 'LOG_SHMFD' }),
  SET_LOG_FD: s(F.SET_LOG_FD, 'none', ONE_FD),
  SET_VRING_NUM: s(F.SET_VRING_NUM, 'vringState'),
  SET_VRING_ADDR: s(F.SET_VRING_ADDR, 'vringAddress'),
  SET_VRING_BASE: s(F.SET_VRING_BASE, 'vringState'),
  GET_VRING_BASE: s(F.GET_VRING_BASE, 'vringState', NO_FDS, {
    payload: 'vringState',
    fds: NO_FDS,
    when: 'always',
  }),
  SET_VRING_KICK: s(F.SET_VRING_KICK, 'u64', 'unlessNoFdFlag'),
  SET_VRING_CALL: s(F.SET_VRING_CALL, 'u64', 'unlessNoFdFlag'),
  SET_VRING_ERR: s(F.SET_VRING_ERR, 'u64', 'unlessNoFdFlag'),
  GET_PROTOCOL_FEATURES: s(F.GET_PROTOCOL_FEATURES, 'none', NO_FDS, U64_REPLY),
  SET_PROTOCOL_FEATURES: s(F.SET_PROTOCOL_FEATURES, 'u64'),
  GET_QUEUE_NUM: s(F.GET_QUEUE_NUM, 'none', NO_FDS, U64_REPLY),
  SET_VRING_ENABLE: s(F.SET_VRING_ENABLE, 'vringState'),
  SEND_RARP: s(F.SEND_RARP, 'u64'),
  NET_SET_MTU: s(F.NET_SET_MTU, 'u64'),
  SET_BACKEND_REQ_FD: s(F.SET_BACKEND_REQ_FD, 'none', ONE_FD),
  IOTLB_MSG: s(F.IOTLB_MSG, 'iotlb', NO_FDS, U64_REPLY),
  SET_VRING_ENDIAN: s(F.SET_VRING_ENDIAN, 'vringState'),
  GET_CONFIG: s(F.GET_CONFIG, 'config', NO_FDS, { payload: 'config', fds: NO_FDS, when: 'always' }),
  SET_CONFIG: s(F.SET_CONFIG, 'config'),
  CREATE_CRYPTO_SESSION: s(F.CREATE_CRYPTO_SESSION, 'opaque', NO_FDS, {
    payload: 'opaque',
    fds: NO_FDS,
    when: 'always',
  }),
  CLOSE_CRYPTO_SESSION: s(F.CLOSE_CRYPTO_SESSION, 'u64'),
  POSTCOPY_ADVISE: s(F.POSTCOPY_ADVISE, 'none', NO_FDS, { payload: 'opaque', fds: ONE_FD, when: 'always' }),
  POSTCOPY_LISTEN: s(F.POSTCOPY_LISTEN, 'none'),
  POSTCOPY_END: s(F.POSTCOPY_END, 'none', NO_FDS, U64_REPLY),
  GET_INFLIGHT_FD: s(F.GET_INFLIGHT_FD, 'inflight', NO_FDS, {
    payload: 'inflight',
    fds: ONE_FD,
    when: 'INFLIGHT_SHMFD',
  }),
  SET_INFLIGHT_FD: s(F.SET_INFLIGHT_FD, 'inflight', ONE_FD),
  GPU_SET_SOCKET: s(F.GPU_SET_SOCKET, 'none', ONE_FD),
  RESET_DEVICE: s(F.RESET_DEVICE, 'none'),
  VRING_KICK: s(F.VRING_KICK, 'vringState'),
  GET_MAX_MEM_SLOTS: s(F.GET_MAX_MEM_SLOTS, 'none', NO_FDS, U64_REPLY),
  ADD_MEM_REG: s(F.ADD_MEM_REG, 'singleRegion', ONE_FD, {
    payload: 'singleRegion',
    fds: NO_FDS,
    when: 'POSTCOPY',
  }),
  // "No file descriptors SHOULD be passed ... the back-end MAY accept messages with one
  // file descriptor. If a file descriptor is passed, the back-end MUST close it."
  REM_MEM_REG: s(F.REM_MEM_REG, 'singleRegion', { min: 0, max: 1, closeExtra: true }),
  SET_STATUS: s(F.SET_STATUS, 'u64'),
  GET_STATUS: s(F.GET_STATUS, 'none', NO_FDS, U64_REPLY),
  GET_SHARED_OBJECT: s(F.GET_SHARED_OBJECT, 'shared', NO_FDS, {
    payload: 'opaque',
    fds: OPTIONAL_FD,
    when: 'always',
  }),
  SET_DEVICE_STATE_FD: s(F.SET_DEVICE_STATE_FD, 'deviceState', ONE_FD, {
    payload: 'u64',
    fds: OPTIONAL_FD,
    when: 'always',
  }),
  CHECK_DEVICE_STATE: s(F.CHECK_DEVICE_STATE, 'none', NO_FDS, U64_REPLY),
};

const B = BackendRequest;
/** Schemas of the back-end requests (back-end -> front-end, on the back-end channel). */
export const BACKEND_SCHEMAS: Readonly<Record<BackendRequestName, MessageSchema>> = {
  IOTLB_MSG: s(B.IOTLB_MSG, 'iotlb'),
  CONFIG_CHANGE_MSG: s(B.CONFIG_CHANGE_MSG, 'none'),
  VRING_HOST_NOTIFIER_MSG: s(B.VRING_HOST_NOTIFIER_MSG, 'vringArea', OPTIONAL_FD),
  VRING_CALL: s(B.VRING_CALL, 'vringState'),
  VRING_ERR: s(B.VRING_ERR, 'vringState'),
  SHARED_OBJECT_ADD: s(B.SHARED_OBJECT_ADD, 'shared'),
  SHARED_OBJECT_REMOVE: s(B.SHARED_OBJECT_REMOVE, 'shared'),
  SHARED_OBJECT_LOOKUP: s(B.SHARED_OBJECT_LOOKUP, 'shared', NO_FDS, {
    payload: 'u64',
    fds: OPTIONAL_FD,
    when: 'always',
  }),
};

/** Which side sends requests on a channel. */
export type Direction = 'frontend' | 'backend';

export interface NamedSchema extends MessageSchema {
  name: string;
}

function byId(table: Readonly<Record<string, MessageSchema>>): Map<number, NamedSchema> {
  const m = new Map<number, NamedSchema>();
  for (const [name, schema] of Object.entries(table)) m.set(schema.id, { ...schema, name });
  return m;
}

const FRONTEND_BY_ID = byId(FRONTEND_SCHEMAS);
const BACKEND_BY_ID = byId(BACKEND_SCHEMAS);

/** The schema of request `id` sent by `direction`, or undefined for an unknown id. */
export function schemaOf(direction: Direction, id: number): NamedSchema | undefined {
  return (direction === 'frontend' ? FRONTEND_BY_ID : BACKEND_BY_ID).get(id);
}

/** The request's name, or `UNKNOWN(<id>)`. */
export function requestName(direction: Direction, id: number): string {
  return schemaOf(direction, id)?.name ?? `UNKNOWN(${id})`;
}

// ---- payload bodies ----

/** vhost-user "A vring state description". */
export interface VringState {
  index: number;
  num: number;
}

/** vhost-user "A vring address description" (user addresses unless IOMMU). */
export interface VringAddress {
  index: number;
  flags: number;
  descUserAddr: bigint;
  usedUserAddr: bigint;
  availUserAddr: bigint;
  logGuestAddr: bigint;
}

/** vhost-user "Memory region description". */
export interface MemoryRegionDescription {
  guestAddress: bigint;
  size: bigint;
  userAddress: bigint;
  mmapOffset: bigint;
  /** With XEN_MMAP only. */
  xenMmapFlags?: number;
  xenDomainId?: number;
}

export interface MemoryTable {
  regions: MemoryRegionDescription[];
}

/** vhost-user "Log description". */
export interface LogDescription {
  size: bigint;
  offset: bigint;
}

/** vhost-user "An IOTLB message" (struct vhost_iotlb_msg, 32 bytes with padding). */
export interface IotlbMessage {
  iova: bigint;
  size: bigint;
  userAddress: bigint;
  permissions: number;
  type: number;
}

/** vhost-user "Virtio device config space". */
export interface ConfigSpace {
  offset: number;
  size: number;
  flags: number;
  data: Uint8Array;
}

/** vhost-user "Vring area description". */
export interface VringArea {
  u64: bigint;
  size: bigint;
  offset: bigint;
}

/** vhost-user "Inflight description". */
export interface InflightDescription {
  mmapSize: bigint;
  mmapOffset: bigint;
  numQueues: number;
  queueSize: number;
}

/** vhost-user "VhostUserShared": a 16-byte UUID. */
export interface SharedObject {
  uuid: Uint8Array;
}

/** vhost-user "Device state transfer parameters". */
export interface DeviceStateParameters {
  direction: number;
  phase: number;
}

export interface PayloadBodies {
  none: undefined;
  u64: bigint;
  vringState: VringState;
  vringAddress: VringAddress;
  memoryTable: MemoryTable;
  singleRegion: MemoryRegionDescription;
  log: LogDescription;
  iotlb: IotlbMessage;
  config: ConfigSpace;
  vringArea: VringArea;
  inflight: InflightDescription;
  shared: SharedObject;
  deviceState: DeviceStateParameters;
  opaque: Uint8Array;
}

export type Body = PayloadBodies[PayloadKind];
