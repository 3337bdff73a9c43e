export { type BackendOptions, VhostUserBackend } from './backend.js';
export {
  type ChannelOptions,
  type ChannelStats,
  deviceEndpoint,
  driverEndpoint,
  type FrameEndpoint,
  MESSAGE_HEADER_SIZE,
  MESSAGE_MAGIC,
  MessageChannel,
} from './channel.js';
export {
  type CodecOptions,
  closeAll,
  decodeHeader,
  decodePayload,
  decodeReply,
  decodeRequest,
  encodeHeader,
  encodePayload,
  encodeReply,
  encodeRequest,
  type Header,
  type Message,
  type RawMessage,
} from './codec.js';
export {
  anyPeer,
  Connection,
  type ConnectionOptions,
  type ConnectOptions,
  type CredentialPolicy,
  connectTo,
  type ListenOptions,
  sameUserOrRoot,
  VhostUserListener,
} from './connection.js';
export * as defs from './defs.js';
export {
  BackendRequest,
  type BackendRequestName,
  DeviceStatus,
  FrontendRequest,
  type FrontendRequestName,
  ProtocolFeature,
  type ProtocolFeatureName,
  VirtioFeature,
  VirtioNetFeature,
} from './defs.js';
export { BackendQueue, type DeviceQueue, type VirtioDevice } from './device.js';
export {
  type ChannelClient,
  type ChannelServer,
  connectChannel,
  type EndpointOptions,
  listenChannel,
} from './endpoint.js';
export { isVhostUserError, VhostUserError, type VhostUserErrorCode } from './errors.js';
export {
  BufferPool,
  type DriverQueue,
  type FrontendOptions,
  FrontendQueue,
  VhostUserFrontend,
} from './frontend.js';
export {
  InflightBuffer,
  type InflightLayout,
  InflightQueue,
  inflightQueueSize,
  type PackedDescriptor,
  type PackedEntry,
  PackedInflightQueue,
  type PackedRecovery,
} from './inflight.js';
export { MemoryMap, type MemoryMapOptions } from './memory-map.js';
export {
  BACKEND_SCHEMAS,
  type Body,
  type ConfigSpace,
  type DeviceStateParameters,
  type Direction,
  type FdRule,
  FRONTEND_SCHEMAS,
  type InflightDescription,
  type IotlbMessage,
  type LogDescription,
  type MemoryRegionDescription,
  type MemoryTable,
  type MessageSchema,
  type PayloadBodies,
  type PayloadKind,
  type ReplySchema,
  requestName,
  type SharedObject,
  schemaOf,
  type VringAddress,
  type VringArea,
  type VringState,
} from './messages.js';
export { type NetDeviceOptions, type NetStats, VirtioNetDevice } from './net-device.js';
export { NET_DRIVER_FEATURES, type NetDriverOptions, VirtioNetDriver } from './net-driver.js';
export { type ProgramIo, runBackendProgram, USAGE } from './program.js';
