import { raw } from './binding.js';
import { MFD_ALLOW_SEALING, MFD_HUGE_SHIFT, MFD_HUGETLB, S_IFMT, S_IFREG, Seal } from './defs.js';
import { ShmError } from './errors.js';
import { Fd, type FdLike, fdNumber } from './fd.js';

export interface MemfdOptions {
  /** Allow seals to be added later (default true). Not available with hugetlb. */
  allowSealing?: boolean;
  /** Back the file with huge pages (needs reserved hugepages). */
  hugetlb?: boolean;
  /** Huge page size in bytes when hugetlb is set (default: the system default, usually 2 MiB). */
  hugePageSize?: number;
  /** Size to ftruncate the new file to. */
  size?: number;
}

/**
 * memfd_create(2): an anonymous file in RAM, close-on-exec. Share it with
 * another process over a Unix socket or as an inherited descriptor, and map it
 * on both sides with mmap().
 */
export function memfdCreate(name: string, options: MemfdOptions = {}): Fd {
  if (typeof name !== 'string' || Buffer.byteLength(name) > 249 || name.includes('\0')) {
    throw new ShmError('memfd name must be a string of at most 249 bytes without NUL', 'INVALID_ARGUMENT');
  }
  let flags = 0;
  if (options.hugetlb) {
    flags |= MFD_HUGETLB;
    if (options.hugePageSize !== undefined) {
      const size = options.hugePageSize;
      const log2 = Math.log2(size);
      if (!Number.isInteger(log2) || log2 < 16 || log2 > 34) {
        throw new ShmError(
          `hugePageSize must be a power of two such as 2097152 (got ${size})`,
          'INVALID_ARGUMENT',
        );
      }
      flags |= log2 << MFD_HUGE_SHIFT;
    }
  } else if (options.allowSealing !== false) {
    flags |= MFD_ALLOW_SEALING;
  }
  const fd = new Fd(raw.memfdCreate(name, flags >>> 0));
  if (options.size !== undefined) {
    try {
      ftruncate(fd, options.size);
    } catch (err) {
      fd.close();
      throw err;
    }
  }
  return fd;
}

function checkSize(size: number, what: string): void {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new ShmError(`${what} must be a non-negative safe integer (got ${String(size)})`, 'OUT_OF_RANGE');
  }
}

/** ftruncate(2): sets the file size. */
export function ftruncate(fd: FdLike, size: number): void {
  checkSize(size, 'size');
  raw.ftruncate(fdNumber(fd), size);
}

export interface FileStat {
  size: number;
  mode: number;
  /** st_blksize: on hugetlbfs, the huge page size. */
  blockSize: number;
  dev: number;
  ino: number;
  uid: number;
  isRegularFile: boolean;
}

/** fstat(2), the fields that matter for mapping. */
export function fstat(fd: FdLike): FileStat {
  const s = raw.fstat(fdNumber(fd));
  return { ...s, isRegularFile: (s.mode & S_IFMT) === S_IFREG };
}

/** The size of the file behind a descriptor. */
export function fileSize(fd: FdLike): number {
  return raw.fstat(fdNumber(fd)).size;
}

/** Adds seals (a bit set of `Seal` values). Sealing is one-way. */
export function addSeals(fd: FdLike, seals: number): void {
  if (!Number.isInteger(seals) || seals < 0 || seals > 0x1f) {
    throw new ShmError(
      `seals must be a combination of Seal flags (got ${String(seals)})`,
      'INVALID_ARGUMENT',
    );
  }
  raw.addSeals(fdNumber(fd), seals);
}

/** The seals in force (a bit set of `Seal` values); EINVAL for files that cannot be sealed. */
export function getSeals(fd: FdLike): number {
  return raw.getSeals(fdNumber(fd));
}

/** Whether every seal in `required` is in force on the file. */
export function hasSeals(fd: FdLike, required: number): boolean {
  try {
    return (getSeals(fd) & required) === required;
  } catch (err) {
    if (err instanceof ShmError && err.code === 'EINVAL') return false;
    throw err;
  }
}

export { Seal };
