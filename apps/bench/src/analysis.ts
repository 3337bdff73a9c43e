import { TARGETS } from './defs.js';
import { BenchError } from './errors.js';
import type { BaselineComparison, BenchReport, ScenarioResult, TargetResult } from './results.js';
import { BASELINE_IDS } from './scenarios.js';

function find(results: readonly ScenarioResult[], id: string, size: number): ScenarioResult | undefined {
  return results.find((r) => r.id === id && r.size === size);
}

/** Sets every scenario's ratios against each baseline at the same size (only where both ran). */
export function fillRatios(results: ScenarioResult[]): void {
  for (const r of results) {
    r.ratios = {};
    r.p50Ratios = {};
    if (r.status !== 'ok') continue;
    for (const b of BASELINE_IDS) {
      const base = find(results, b, r.size);
      if (base === undefined || base.status !== 'ok') continue;
      if (base.messagesPerSecond > 0) r.ratios[b] = r.messagesPerSecond / base.messagesPerSecond;
      if (base.p50Us > 0) r.p50Ratios[b] = r.p50Us / base.p50Us;
    }
  }
}

interface TargetSpec {
  id: string;
  description: string;
  /**
   * The scenario measured, or several (the vring's layouts in one mode): the
   * best of those that ran counts, and the result names it.
   */
  scenario: string | readonly string[];
  against: string;
  size: number;
  threshold: number;
  comparison: '>=' | '<=';
  value: (s: ScenarioResult, against: ScenarioResult | null, report: BenchReport) => number | null;
  /**
   * A scenario whose same ratio is reported beside the target, for scale: the
   * C anchor (DPDK testpmd to testpmd) shows what compiled code reaches on the
   * same machine in the same run.
   */
  reference?: string;
}

/** The vring between two processes in poll mode: the general split driver and SplitSlotDriver. */
const POLL = ['vring-split-poll', 'vring-slots-poll'] as const;

const TARGET_SPECS: TargetSpec[] = [
  {
    id: 'poll-64',
    description: '64 B, poll mode: messages/s vs the Unix socket',
    scenario: POLL,
    against: 'unix-socket',
    size: 64,
    threshold: TARGETS.pollVsUnixSocket64,
    comparison: '>=',
    value: (s, a) => (a && a.messagesPerSecond > 0 ? s.messagesPerSecond / a.messagesPerSecond : null),
    reference: 'testpmd-testpmd',
  },
  {
    id: 'round-trip-p50-64',
    description: '64 B, poll mode: round-trip p50 vs the Unix socket',
    scenario: POLL,
    against: 'unix-socket',
    size: 64,
    threshold: TARGETS.roundTripP50FractionOfUnixSocket,
    comparison: '<=',
    // (a scenario without round trips has no p50: 0 is no figure, not the best one)
    value: (s, a) => (a && a.p50Us > 0 && s.p50Us > 0 ? s.p50Us / a.p50Us : null),
  },
  {
    id: 'poll-1500',
    description: '1500 B, poll mode: messages/s vs the Unix socket',
    scenario: POLL,
    against: 'unix-socket',
    size: 1500,
    threshold: TARGETS.pollVsUnixSocket1500,
    comparison: '>=',
    value: (s, a) => (a && a.messagesPerSecond > 0 ? s.messagesPerSecond / a.messagesPerSecond : null),
    reference: 'testpmd-testpmd',
  },
  {
    id: 'poll-64k-memcpy',
    description: '64 KiB, poll mode: GB/s as a fraction of single-core memcpy (16 MiB working set)',
    scenario: POLL,
    against: 'memcpy',
    size: 65536,
    threshold: TARGETS.largeFractionOfMemcpy,
    comparison: '>=',
    value: (s, _a, report) =>
      report.memcpy && report.memcpy.referenceGBps > 0
        ? s.gigabytesPerSecond / report.memcpy.referenceGBps
        : null,
  },
  {
    id: 'event-64',
    description: '64 B, event mode: messages/s vs the Unix socket',
    scenario: 'vring-split-event',
    against: 'unix-socket',
    size: 64,
    threshold: TARGETS.eventVsUnixSocket64,
    comparison: '>=',
    value: (s, a) => (a && a.messagesPerSecond > 0 ? s.messagesPerSecond / a.messagesPerSecond : null),
  },
  {
    id: 'backend-vs-testpmd',
    description: 'vipc back-end: packets/s as a fraction of testpmd <-> testpmd',
    scenario: 'vipc-testpmd',
    against: 'testpmd-testpmd',
    size: 64,
    threshold: TARGETS.backendFractionOfTestpmd,
    comparison: '>=',
    value: (s, a) => (a && a.messagesPerSecond > 0 ? s.messagesPerSecond / a.messagesPerSecond : null),
  },
];

function why(r: ScenarioResult | undefined, id: string, size: number): string | null {
  if (r === undefined) return `${id} at ${size} B was not run`;
  if (r.status !== 'ok') return `${id} at ${size} B is ${r.status}${r.reason ? `: ${r.reason}` : ''}`;
  return null;
}

/** The reference scenario's value for target `t`, when it ran at the target's size. */
function referenceValue(
  t: TargetSpec,
  against: ScenarioResult | null,
  report: BenchReport,
): TargetResult['reference'] {
  const r = find(report.scenarios, t.reference!, t.size);
  if (r === undefined || r.status !== 'ok') return undefined;
  const value = t.value(r, against, report);
  return value === null || !Number.isFinite(value) ? undefined : { scenario: r.id, value };
}

/**
 * Of a target's scenarios, the one with the best value that ran (the first
 * when none did: its reason is reported).
 */
function bestScenario(t: TargetSpec, report: BenchReport): string {
  if (typeof t.scenario === 'string') return t.scenario;
  const a = t.against === 'memcpy' ? null : (find(report.scenarios, t.against, t.size) ?? null);
  let best = t.scenario[0]!;
  let bestValue: number | null = null;
  for (const id of t.scenario) {
    const s = find(report.scenarios, id, t.size);
    if (s === undefined || s.status !== 'ok') continue;
    const v = t.value(s, a, report);
    if (v === null || !Number.isFinite(v)) continue;
    if (bestValue === null || (t.comparison === '>=' ? v > bestValue : v < bestValue)) {
      best = id;
      bestValue = v;
    }
  }
  return best;
}

/** The issue's targets as measured ratios with pass/fail marks (null when a side is missing). */
export function evaluateTargets(report: BenchReport): TargetResult[] {
  return TARGET_SPECS.map((spec) => {
    const t = { ...spec, scenario: bestScenario(spec, report) };
    const s = find(report.scenarios, t.scenario, t.size);
    const a = t.against === 'memcpy' ? undefined : find(report.scenarios, t.against, t.size);
    const base: TargetResult = {
      id: t.id,
      description: t.description,
      value: null,
      threshold: t.threshold,
      comparison: t.comparison,
      pass: null,
      scenario: t.scenario,
      against: t.against,
      size: t.size,
    };
    const reason =
      why(s, t.scenario, t.size) ??
      (t.against === 'memcpy'
        ? report.memcpy === null
          ? 'memcpy was not measured'
          : null
        : why(a, t.against, t.size));
    if (reason !== null || s === undefined) return { ...base, reason: reason ?? 'not run' };
    const value = t.value(s, a ?? null, report);
    if (value === null || !Number.isFinite(value)) return { ...base, reason: 'a figure is zero' };
    const pass = t.comparison === '>=' ? value >= t.threshold : value <= t.threshold;
    const reference = t.reference === undefined ? undefined : referenceValue(t, a ?? null, report);
    return reference === undefined ? { ...base, value, pass } : { ...base, value, pass, reference };
  });
}

/** Checks that `data` looks like a bench report (a saved `--json` document) before comparing. */
export function parseBaseline(data: unknown, file: string): BenchReport {
  const d = data as Partial<BenchReport>;
  if (typeof d !== 'object' || d === null || d.schema !== 'vipc-bench/1' || !Array.isArray(d.scenarios)) {
    throw new BenchError('INVALID_BASELINE', `${file} is not a vipc bench report (schema vipc-bench/1)`);
  }
  for (const [i, s] of d.scenarios.entries()) {
    if (
      typeof s !== 'object' ||
      s === null ||
      typeof s.id !== 'string' ||
      typeof s.size !== 'number' ||
      typeof s.messagesPerSecond !== 'number' ||
      typeof s.p50Us !== 'number'
    ) {
      throw new BenchError(
        'INVALID_BASELINE',
        `${file}: scenario entry ${i} lacks id, size, messagesPerSecond or p50Us`,
      );
    }
  }
  return d as BenchReport;
}

/** This run against a saved one: ratio of messages/s and of p50 per scenario and size that both have. */
export function compareReports(
  current: BenchReport,
  baseline: BenchReport,
  file: string,
): BaselineComparison {
  const rows: BaselineComparison['rows'] = [];
  const missing: BaselineComparison['missing'] = [];
  for (const r of current.scenarios) {
    if (r.status !== 'ok') continue;
    const b = baseline.scenarios.find((x) => x.id === r.id && x.size === r.size && x.status === 'ok');
    if (b === undefined || b.messagesPerSecond <= 0) {
      missing.push({ id: r.id, size: r.size });
      continue;
    }
    rows.push({
      id: r.id,
      size: r.size,
      messagesPerSecond: r.messagesPerSecond,
      baselineMessagesPerSecond: b.messagesPerSecond,
      ratio: r.messagesPerSecond / b.messagesPerSecond,
      p50Us: r.p50Us,
      baselineP50Us: b.p50Us,
      p50Ratio: b.p50Us > 0 ? r.p50Us / b.p50Us : 0,
    });
  }
  return { file, date: baseline.date, rows, missing };
}
