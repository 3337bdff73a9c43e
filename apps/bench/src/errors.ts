export type BenchErrorCode =
  | 'USAGE'
  | 'INVALID_OPTION'
  | 'ENDPOINT_FAILED'
  | 'ENDPOINT_TIMEOUT'
  | 'PROTOCOL'
  | 'UNAVAILABLE'
  | 'NOT_BUILT'
  | 'ABORTED'
  | 'INVALID_BASELINE'
  | 'OUT_OF_RANGE';

/** The one error class of @vipc/bench. `USAGE` errors make the CLI exit with 2, all others with 1. */
export class BenchError extends Error {
  override readonly name = 'BenchError';
  readonly code: BenchErrorCode;

  constructor(code: BenchErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
