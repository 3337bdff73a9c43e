/** Codes of the errors raised by @vipc/lxc. */
export type LxcErrorCode =
  /** The lxc-* tools are not installed (Debian package `lxc`). */
  | 'LXC_MISSING'
  /** A host file the package needs is missing (static busybox, node, ...). */
  | 'DEPENDENCY_MISSING'
  /** A container of that name already exists in the lxcpath. */
  | 'NAME_CLASH'
  /** No container of that name exists in the lxcpath. */
  | 'NOT_FOUND'
  /** A container name, path, option or config value that LXC would reject. */
  | 'INVALID_ARGUMENT'
  /** A config text that cannot be parsed (the message names the line). */
  | 'INVALID_CONFIG'
  /** lxc-create (or the template) failed. */
  | 'CREATE_FAILED'
  /** lxc-start failed; `logExcerpt` holds the lines of LXC's log that explain it. */
  | 'START_FAILED'
  /** The container did not reach the wanted state in time. */
  | 'STATE_TIMEOUT'
  /** The container is not running (attach, freeze, ... need it running). */
  | 'NOT_RUNNING'
  /** Building a root filesystem failed. */
  | 'ROOTFS_FAILED'
  /** Another lxc-* command failed; `stderr` and `exitCode` say how. */
  | 'COMMAND_FAILED'
  /** A command inside the container ran longer than its timeout. */
  | 'TIMEOUT';

export interface LxcErrorDetails {
  /** The container concerned. */
  container?: string;
  /** The command line that failed. */
  command?: readonly string[];
  exitCode?: number | null;
  stderr?: string;
  /** For START_FAILED: the lines of LXC's DEBUG log that explain the failure. */
  logExcerpt?: string;
  /** For INVALID_CONFIG: 1-based line number. */
  line?: number;
  /** What to do about it (install a package, pick another name, ...). */
  fix?: string;
}

/** The one error class of @vipc/lxc; `code` says what went wrong. */
export class LxcError extends Error {
  override readonly name = 'LxcError';
  readonly code: LxcErrorCode;
  readonly container: string | undefined;
  readonly command: readonly string[] | undefined;
  readonly exitCode: number | null | undefined;
  readonly stderr: string | undefined;
  readonly logExcerpt: string | undefined;
  readonly line: number | undefined;
  readonly fix: string | undefined;

  constructor(
    message: string,
    code: LxcErrorCode,
    details: LxcErrorDetails = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
    this.container = details.container;
    this.command = details.command;
    this.exitCode = details.exitCode;
    this.stderr = details.stderr;
    this.logExcerpt = details.logExcerpt;
    this.line = details.line;
    this.fix = details.fix;
  }
}
