export { MAX_FDS_PER_MESSAGE, Seal } from './defs.js';
export { ShmError, type ShmErrorCode, type ShmOwnCode } from './errors.js';
export { EventFd, type EventFdOptions, isEventFd } from './eventfd.js';
export { Fd, type FdLike, isOpen } from './fd.js';
export {
  addSeals,
  type FileStat,
  fileSize,
  fstat,
  ftruncate,
  getSeals,
  hasSeals,
  type MemfdOptions,
  memfdCreate,
} from './memfd.js';
export { Mapping, type MmapOptions, mmap, pageSize } from './mmap.js';
export { openFdCount } from './proc.js';
export {
  type Chunk,
  type ConnectOptions,
  connect,
  type ExactRead,
  type ListenOptions,
  type PeerCredentials,
  socketPair,
  UnixServer,
  UnixSocket,
} from './socket.js';
export { FdWatcher, type Readiness, type WatchEvents } from './watcher.js';
