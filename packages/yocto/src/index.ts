export {
  type CheckOptions,
  checkBitbake,
  fileKind,
  type LintIssue,
  type LintOptions,
  type LintRule,
  lintLayer,
} from './bitbake/check.js';
export {
  type Assignment,
  type Diagnostic,
  type DiagnosticCode,
  type Directive,
  type FileKind,
  type FunctionDef,
  type ParseResult,
  type PythonDef,
  parseBitbake,
  type Statement,
} from './bitbake/parser.js';
export { type KernelFragment, RELEASE_INFO, RELEASES, type Release, type ReleaseInfo } from './defs.js';
export { type DryRunEntry, dryRun, type EmitResult, emitLayer, formatDryRun, renderLayer } from './emit.js';
export { YoctoError, type YoctoErrorCode } from './errors.js';
export type { LayerFile } from './layer/file.js';
export {
  type CliTopologyLike,
  DEFAULT_LAYER_OPTIONS,
  DEFAULT_TOPOLOGY,
  fromCliTopology,
  type InitSystem,
  type LayerOptions,
  type Maintainer,
  resolveOptions,
  validateTopology,
  type YoctoContainer,
  type YoctoDpdkEndpoint,
  type YoctoHostEndpoint,
  type YoctoHugepages,
  type YoctoLink,
  type YoctoMount,
  type YoctoTopology,
  type YoctoVipcEndpoint,
} from './model.js';
export { PACKAGE_VERSION } from './version.js';
