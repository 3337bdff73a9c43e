/** Codes of every error raised by @vipc/dpdk. */
export type DpdkErrorCode =
  /** No DPDK application found; the message names the Debian package to install. */
  | 'NOT_INSTALLED'
  /** A single option has a bad value (the message names the option and the value). */
  | 'INVALID_OPTION'
  /** Two or more options that DPDK rejects together, or that are known not to work together. */
  | 'CONFLICTING_OPTIONS'
  /** A running DPDK process already uses this --file-prefix. */
  | 'DUPLICATE_FILE_PREFIX'
  /** A readiness condition or a command did not complete in time. */
  | 'TIMEOUT'
  /** The application exited (or was never started) while something waited for it. */
  | 'EXITED'
  /** The operation needs privileges this process does not have (EACCES/EPERM). */
  | 'NOT_PERMITTED'
  /** Output of the application could not be parsed. */
  | 'PARSE_ERROR'
  /** testpmd answered a command with an error. */
  | 'COMMAND_FAILED'
  /** The controller or process is closed. */
  | 'CLOSED'
  /** A file, page size or mount point does not exist. */
  | 'NOT_FOUND'
  /** A resource is in use by a live process. */
  | 'BUSY'
  /** A system call failed for another reason (see `cause`). */
  | 'SYSTEM_ERROR';

/** The one error class of @vipc/dpdk. `details` carries structured context (log tail, option names, ...). */
export class DpdkError extends Error {
  override readonly name = 'DpdkError';
  readonly code: DpdkErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: DpdkErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.details = details;
  }
}

/** Map an fs/child_process error onto a DpdkError (EACCES/EPERM become NOT_PERMITTED, ENOENT NOT_FOUND). */
export function fromSystemError(err: unknown, what: string): DpdkError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const msg = err instanceof Error ? err.message : String(err);
  if (code === 'EACCES' || code === 'EPERM') {
    return new DpdkError(
      'NOT_PERMITTED',
      `${what}: not permitted (${code}); run as root or use a user-owned hugetlbfs mount`,
      { errno: code },
      err,
    );
  }
  if (code === 'ENOENT') return new DpdkError('NOT_FOUND', `${what}: ${msg}`, { errno: code }, err);
  if (code === 'EBUSY') return new DpdkError('BUSY', `${what}: in use (${msg})`, { errno: code }, err);
  return new DpdkError('SYSTEM_ERROR', `${what}: ${msg}`, { errno: code }, err);
}
