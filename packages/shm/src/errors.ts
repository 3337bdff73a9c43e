/** Codes of errors raised by @vipc/shm itself; system-call failures carry the errno name (`ENOENT`, ...). */
export type ShmOwnCode =
  | 'ADDON_NOT_BUILT'
  | 'SHARED_UNAVAILABLE'
  | 'CLOSED'
  | 'INVALID_ARGUMENT'
  | 'OUT_OF_RANGE'
  | 'PEER_CLOSED'
  | 'TIMEOUT';

export type ShmErrorCode = ShmOwnCode | `E${string}`;

/**
 * The one error class of @vipc/shm. Failed system calls carry `errno` (the
 * positive C value) and `syscall`; `code` is the errno name or one of ShmOwnCode.
 */
export class ShmError extends Error {
  override readonly name = 'ShmError';
  readonly code: ShmErrorCode;
  readonly errno: number | undefined;
  readonly syscall: string | undefined;

  constructor(message: string, code: ShmErrorCode, errno?: number, syscall?: string) {
    super(message);
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
  }
}
