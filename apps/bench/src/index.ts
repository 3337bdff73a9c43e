export { compareReports, evaluateTargets, fillRatios, parseBaseline } from './analysis.js';
export { renderInChromium } from './chromium.js';
export {
  BENCH_HELP,
  BENCH_OPTIONS,
  BENCH_USAGE,
  emitReport,
  type MainIo,
  main,
  optionsFromValues,
} from './cli.js';
export {
  DEFAULT_SIZES,
  QUICK_ROUNDS,
  QUICK_TIMING,
  STANDARD_ROUNDS,
  STANDARD_TIMING,
  TARGETS,
  type TrialTiming,
} from './defs.js';
export { BenchError, type BenchErrorCode } from './errors.js';
export { HdrHistogram, type HistogramOptions, type HistogramSnapshot } from './hdr-histogram.js';
export { measureMemcpy, memcpyBandwidth } from './memcpy.js';
export { barChartSvg, renderHtml, summarySvg } from './report-html.js';
export { formatMarkdown, formatTable } from './report-table.js';
export type {
  BaselineComparison,
  BenchReport,
  MachineInfo,
  MemcpyResult,
  ScenarioResult,
  ScenarioStatus,
  TargetResult,
  TrialCounts,
  TrialResult,
} from './results.js';
export { type BenchOptions, type ProgressEvent, runBench, runTrial } from './runner.js';
export { BASELINE_IDS, findScenario, SCENARIOS, type Scenario } from './scenarios.js';
