/** Exit codes: 0 ok, 1 failure, 2 usage. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export type CliErrorCode = 'USAGE' | 'TOPOLOGY_INVALID' | 'FAILED' | 'NOT_FOUND' | 'PEER_MISSING' | 'STATE';

/** The one error class of the CLI; `USAGE` errors exit with 2, all others with 1. */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly code: CliErrorCode;
  /** A suggestion printed under the message. */
  readonly hint: string | undefined;

  constructor(code: CliErrorCode, message: string, hint?: string) {
    super(message);
    this.code = code;
    this.hint = hint;
  }

  get exitCode(): number {
    return this.code === 'USAGE' ? EXIT_USAGE : EXIT_FAILURE;
  }
}

export function usageError(message: string, hint?: string): CliError {
  return new CliError('USAGE', message, hint);
}
