import { raw, rawShared } from './binding.js';
import { S_IFMT, S_IFREG } from './defs.js';
import { ShmError } from './errors.js';
import { type FdLike, fdNumber } from './fd.js';
import { errnoName } from './proc.js';

export interface MmapOptions {
  /** Bytes to map (default: from offset to the end of the file). */
  length?: number;
  /** File offset, a multiple of the page size (of the huge page size on hugetlbfs). */
  offset?: number;
  /** Map read-only (PROT_READ). */
  readOnly?: boolean;
  /** Return a SharedArrayBuffer that can be posted to worker_threads (default false: an ArrayBuffer). */
  shared?: boolean;
}

let pageSizeCache = 0;
/** The system page size. */
export function pageSize(): number {
  if (pageSizeCache === 0) pageSizeCache = raw.pageSize();
  return pageSizeCache;
}

/**
 * A MAP_SHARED mapping of a file, seen from JS as `buffer`.
 *
 * Lifetime, by kind:
 * - ArrayBuffer (default): `unmap()` unmaps at once and detaches the buffer, so
 *   every view over it becomes empty and JS can never touch freed memory. A
 *   mapping that is never unmapped goes when its buffer is garbage collected.
 *   Payload copies through plain ArrayBuffer views are the fastest.
 * - SharedArrayBuffer (`shared: true`): it cannot be detached, so `unmap()`
 *   only drops this object's hold; the pages stay mapped until the last
 *   SharedArrayBuffer over them, in any thread, is garbage collected.
 */
export class Mapping<B extends ArrayBuffer | SharedArrayBuffer = ArrayBuffer | SharedArrayBuffer>
  implements Disposable
{
  #buffer: B | undefined;
  readonly length: number;
  readonly offset: number;
  readonly shared: boolean;

  constructor(buffer: B, offset: number) {
    this.#buffer = buffer;
    this.length = buffer.byteLength;
    this.offset = offset;
    this.shared = typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer;
  }

  /** The mapped memory; throws CLOSED after unmap(). */
  get buffer(): B {
    if (this.#buffer === undefined) throw new ShmError('the mapping was unmapped', 'CLOSED');
    return this.#buffer;
  }

  get unmapped(): boolean {
    return this.#buffer === undefined;
  }

  unmap(): void {
    const b = this.#buffer;
    if (b === undefined) return;
    this.#buffer = undefined;
    if (!this.shared) raw.munmap(b as ArrayBuffer);
  }

  [Symbol.dispose](): void {
    this.unmap();
  }
}

/**
 * mmap(2) with MAP_SHARED. The range is checked against the file size first:
 * touching a page beyond the end of a file raises SIGBUS, which would kill the
 * process, so such a mapping is refused. (A peer that can shrink the file later
 * can still cause that: require Seal.SHRINK on fds from untrusted peers.)
 */
export function mmap(fd: FdLike, options: MmapOptions & { shared: true }): Mapping<SharedArrayBuffer>;
export function mmap(fd: FdLike, options?: MmapOptions & { shared?: false }): Mapping<ArrayBuffer>;
export function mmap(fd: FdLike, options?: MmapOptions): Mapping;
export function mmap(fd: FdLike, options: MmapOptions = {}): Mapping {
  const n = fdNumber(fd);
  const offset = options.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new ShmError(`offset must be a non-negative safe integer (got ${String(offset)})`, 'OUT_OF_RANGE');
  }
  const st = raw.fstat(n);
  const regular = (st.mode & S_IFMT) === S_IFREG;
  const align = regular ? Math.max(pageSize(), st.blockSize) : pageSize();
  if (offset % align !== 0) {
    throw new ShmError(`offset ${offset} is not a multiple of the page size ${align}`, 'INVALID_ARGUMENT');
  }
  let length = options.length;
  if (length === undefined) {
    if (!regular)
      throw new ShmError('length is required when mapping a non-regular file', 'INVALID_ARGUMENT');
    length = st.size - offset;
  }
  if (!Number.isSafeInteger(length) || length <= 0) {
    throw new ShmError(`length must be a positive safe integer (got ${String(length)})`, 'OUT_OF_RANGE');
  }
  if (regular && offset + length > st.size) {
    throw new ShmError(
      `cannot map ${length} bytes at offset ${offset}: the file has only ${st.size} bytes ` +
        '(touching pages past its end would raise SIGBUS)',
      'OUT_OF_RANGE',
    );
  }
  const readOnly = options.readOnly === true;
  if (!options.shared) return new Mapping(raw.mmap(n, length, offset, readOnly), offset);
  const sharedBinding = rawShared();
  try {
    return new Mapping(sharedBinding.mmapShared(n, length, offset, readOnly), offset);
  } catch (err) {
    const e = err as Error & { errno?: number; syscall?: string };
    if (e.errno === undefined) throw err;
    throw new ShmError(e.message, errnoName(e.errno), e.errno, e.syscall);
  }
}
