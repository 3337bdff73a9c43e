import type { HistogramSnapshot } from './hdr-histogram.js';

/** Counts on both ends of one trial; `equal` is true when nothing was lost or invented. */
export interface TrialCounts {
  throughputSent: number;
  throughputReceived: number;
  measuredSent: number;
  measuredReceived: number;
  pingsSent: number;
  pingsReceived: number;
  repliesReceived: number;
  equal: boolean;
}

/** One scenario at one size in one round. */
export interface TrialResult {
  scenario: string;
  size: number;
  round: number;
  messagesPerSecond: number;
  bytesPerSecond: number;
  /** CPU time of both ends while measuring, per message (ns). */
  cpuNsPerMessage: number;
  cpuNsPerMessageSender: number;
  cpuNsPerMessageReceiver: number;
  cpuScope: 'process' | 'thread';
  /** Round trips (ns). */
  latency: HistogramSnapshot;
  counts: TrialCounts;
  extra: Record<string, number>;
}

export type ScenarioStatus = 'ok' | 'unavailable' | 'failed';

/** One scenario at one size: the medians over rounds, percentiles over all recorded round trips. */
export interface ScenarioResult {
  id: string;
  transport: string;
  label: string;
  group: 'baseline' | 'vipc' | 'anchor';
  endpoints: string;
  mode?: string;
  layout?: string;
  /** Spin-then-sleep: how long each end spins before sleeping (µs). */
  spinUs?: number;
  /** What the scenario measures (its transport, endpoints and options). */
  description: string;
  size: number;
  status: ScenarioStatus;
  /** Why the scenario is unavailable or failed. */
  reason?: string;
  messagesPerSecond: number;
  gigabytesPerSecond: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  meanUs: number;
  roundTrips: number;
  /** Why the scenario measures no round trips (its p50/p99/p99.9 are then not figures). */
  roundTripsUnavailable?: string;
  cpuNsPerMessage: number;
  cpuNsPerMessageSender: number;
  cpuNsPerMessageReceiver: number;
  cpuScope?: 'process' | 'thread';
  /** messages/s of each round, in order: their spread shows the noise. */
  roundsMessagesPerSecond: number[];
  counts: TrialCounts;
  /** Counters summed over rounds (kicks, stalls, ...). */
  extra: Record<string, number>;
  /** messages/s of this scenario divided by each baseline's, same size. */
  ratios: Record<string, number>;
  /** p50 of this scenario divided by each baseline's, same size. */
  p50Ratios: Record<string, number>;
}

export interface MemcpyResult {
  /** 64 KiB blocks, the same block again and again (cache-hot). */
  hotGBps: number;
  /** 64 KiB blocks over a 16 MiB working set: the reference for the 64 KiB target. */
  workingSetGBps: number;
  /** 64 KiB blocks through 128 MiB: streaming from memory. */
  streamingGBps: number;
  /** The figure used as reference. */
  referenceGBps: number;
  rounds: number[];
}

export interface TargetResult {
  id: string;
  description: string;
  /** Measured ratio (or fraction). */
  value: number | null;
  /** Threshold; `comparison` says which side passes. */
  threshold: number;
  comparison: '>=' | '<=';
  pass: boolean | null;
  /** Why the target could not be evaluated. */
  reason?: string;
  scenario: string;
  against: string;
  size: number;
  /** The same ratio for a reference scenario of this run (the C anchor), for scale; absent when it did not run. */
  reference?: { scenario: string; value: number };
}

export interface MachineInfo {
  cpuModel: string;
  cpus: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  v8: string;
  platform: string;
  arch: string;
  hostname?: string;
  loadAverage: number[];
}

export interface BaselineComparison {
  file: string;
  date: string;
  rows: {
    id: string;
    size: number;
    messagesPerSecond: number;
    baselineMessagesPerSecond: number;
    ratio: number;
    p50Us: number;
    baselineP50Us: number;
    p50Ratio: number;
  }[];
  missing: { id: string; size: number }[];
}

/** The JSON document (`--json`). */
export interface BenchReport {
  schema: 'vipc-bench/1';
  date: string;
  durationMs: number;
  machine: MachineInfo;
  options: {
    quick: boolean;
    sizes: number[];
    rounds: number;
    warmupMs: number;
    durationMs: number;
    latencyWarmupMs: number;
    latencyMs: number;
    order: 'interleaved';
  };
  memcpy: MemcpyResult | null;
  scenarios: ScenarioResult[];
  targets: TargetResult[];
  comparison?: BaselineComparison;
}
