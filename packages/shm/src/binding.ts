import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ShmError } from './errors.js';

/** The raw native functions (native/shm.c). Internal: use the typed wrappers. */
export interface RawBinding {
  setErrorClass(ctor: typeof ShmError): void;
  close(fd: number): void;
  isOpen(fd: number): boolean;
  dup(fd: number): number;
  memfdCreate(name: string, flags: number): number;
  ftruncate(fd: number, size: number): void;
  fstat(fd: number): { size: number; mode: number; blockSize: number; dev: number; ino: number; uid: number };
  addSeals(fd: number, seals: number): void;
  getSeals(fd: number): number;
  mmap(fd: number, length: number, offset: number, readOnly: boolean): ArrayBuffer;
  munmap(buffer: ArrayBuffer): void;
  pageSize(): number;
  eventfd(initialValue: number, semaphore: number): number;
  eventfdWrite(fd: number, value: number): boolean;
  eventfdRead(fd: number): number;
  watcherCreate(fd: number, callback: (a: number, b: number) => void, drainEventfd: boolean): object;
  watcherStart(handle: object, events: number): void;
  watcherRef(handle: object, ref: boolean): void;
  watcherClose(handle: object): void;
  socketListen(path: string, backlog: number): number;
  socketAccept(fd: number): number;
  socketConnect(path: string): number;
  socketSend(fd: number, buffer: ArrayBufferView, offset: number, length: number, fds: number[]): number;
  socketRecv(
    fd: number,
    buffer: ArrayBufferView,
    offset: number,
    length: number,
    maxFds: number,
  ): { bytes: number; fds: number[]; truncated: boolean } | null;
  socketPeerCred(fd: number): { pid: number; uid: number; gid: number };
  socketShutdown(fd: number, how: 0 | 1 | 2): void;
  socketError(fd: number): number;
  socketPair(): [number, number];
}

export interface RawSharedBinding {
  mmapShared(fd: number, length: number, offset: number, readOnly: boolean): SharedArrayBuffer;
}

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const releaseDir = join(packageRoot, 'build', 'Release');

function loadBinding(): RawBinding {
  const file = join(releaseDir, 'vipc_shm.node');
  if (process.platform !== 'linux') {
    throw new ShmError(
      `@vipc/shm needs Linux (memfd, eventfd, SCM_RIGHTS); this is ${process.platform}`,
      'ADDON_NOT_BUILT',
    );
  }
  if (!existsSync(file)) {
    throw new ShmError(
      `@vipc/shm: the native addon is not built (missing build/Release/vipc_shm.node).\n` +
        `Build it with:  pnpm --filter @vipc/shm run build:native   (from the vipc checkout)\n` +
        `or, in the package folder:  node scripts/build-native.mjs --force\n` +
        `It needs python3, make, a C compiler and the Node.js headers (no download).`,
      'ADDON_NOT_BUILT',
    );
  }
  const raw = require(file) as RawBinding;
  raw.setErrorClass(ShmError);
  return raw;
}

/** The raw binding, loaded when this module is first imported. */
export const raw: RawBinding = loadBinding();

let shared: RawSharedBinding | Error | undefined;

/** The SharedArrayBuffer part, loaded on first use (it may be refused by V8-sandboxed builds). */
export function rawShared(): RawSharedBinding {
  if (shared === undefined) {
    try {
      shared = require(join(releaseDir, 'vipc_shm_shared.node')) as RawSharedBinding;
    } catch (err) {
      shared = err as Error;
    }
  }
  if (shared instanceof Error) {
    throw new ShmError(
      `shared mappings (SharedArrayBuffer) are unavailable in this Node.js: ${shared.message}. ` +
        'Map the fd again in each worker instead (mmap(fd) in the worker, with the fd number passed in workerData).',
      'SHARED_UNAVAILABLE',
    );
  }
  return shared;
}
