/** What went wrong in @vipc/yocto. */
export type YoctoErrorCode =
  /** A topology field is missing, malformed or inconsistent. */
  | 'INVALID_TOPOLOGY'
  /** A layer option is malformed (bad name, unknown release, ...). */
  | 'INVALID_OPTIONS'
  /** An emitted file failed the BitBake syntax check (an emitter bug). */
  | 'EMITTED_INVALID'
  /** The output directory cannot be written. */
  | 'WRITE_FAILED';

/** The one error class of @vipc/yocto; `issues` lists every problem found, not just the first. */
export class YoctoError extends Error {
  override readonly name = 'YoctoError';
  readonly code: YoctoErrorCode;
  readonly issues: readonly string[];

  constructor(code: YoctoErrorCode, message: string, issues: readonly string[] = []) {
    super(issues.length > 0 ? `${message}:\n  ${issues.join('\n  ')}` : message);
    this.code = code;
    this.issues = issues;
  }
}
