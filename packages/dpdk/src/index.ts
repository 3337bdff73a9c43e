export {
  DEBIAN_PACKAGE,
  FORWARD_MODES,
  type ForwardMode,
  OUTPUT_PATTERNS,
  TESTPMD,
  TESTPMD_PROMPT,
} from './defs.js';
export {
  appVersion,
  type DiscoverOptions,
  type DpdkInstallation,
  type DpdkMissing,
  discoverDpdk,
  findExecutable,
  findPmds,
  pkgConfigVersion,
  pmdLibraryOf,
  requireDpdk,
} from './discovery.js';
export {
  assertEalOptions,
  buildEalArgs,
  checkEalOptions,
  createdSocketPaths,
  type EalOptions,
  enabledLcores,
  formatVdev,
  type LcoreMapping,
  type NullVdev,
  type OptionProblem,
  type OtherVdev,
  parseCoreList,
  type Vdev,
  type VhostVdev,
  type VirtioUserVdev,
} from './eal-options.js';
export { DpdkError, type DpdkErrorCode } from './errors.js';
export {
  defaultHugepageSizeKb,
  findHugepageFiles,
  type HugepageFile,
  type HugepageFileQuery,
  type HugepagePool,
  type HugetlbfsMount,
  hugepagePools,
  hugetlbfsMounts,
  type MountOptions,
  mountHugetlbfs,
  parsePageSizeKb,
  type ReserveOptions,
  removeLeftoverHugepageFiles,
  setHugepageCount,
  unmountHugetlbfs,
} from './hugepages.js';
export {
  heldPaths,
  holdersOf,
  isHugepageFileOf,
  processesHolding,
  processesUsingPrefix,
  removeRuntimeDir,
  runningFilePrefixes,
  runtimeDir,
} from './runtime.js';
export {
  cleanLines,
  type ForwardCounters,
  type ForwardStats,
  latestPortStats,
  type PortStats,
  type PortSummaryEntry,
  parseForwardStats,
  parsePortStats,
  parsePortSummary,
} from './stats.js';
export {
  DpdkProcess,
  type DpdkProcessEvents,
  type ExitInfo,
  errorLines,
  type LaunchOptions,
  launchDpdk,
  type ReadyCondition,
  spawnDpdk,
  uniqueFilePrefix,
} from './supervisor.js';
export { type CommandOptions, TestpmdController } from './testpmd-controller.js';
export {
  buildTestpmdArgs,
  buildTestpmdArgv,
  checkTestpmdOptions,
  type TestpmdOptions,
} from './testpmd-options.js';
