import { markdownTable, ratio, si, sig, sizeLabel, textTable } from './format.js';
import type { BenchReport, ScenarioResult, TargetResult } from './results.js';
import { BASELINE_IDS } from './scenarios.js';

const SHORT: Record<string, string> = {
  'unix-socket': 'x uds',
  'unix-socket-corked': 'x uds-cork',
  tcp: 'x tcp',
  pipe: 'x pipe',
  'message-port': 'x port',
};

function scenarioRows(report: BenchReport): { head: string[]; rows: string[][] } {
  const head = [
    'scenario',
    'size',
    'msg/s',
    'GB/s',
    'p50 us',
    'p99 us',
    'p99.9 us',
    'CPU ns/msg',
    'ends',
    ...BASELINE_IDS.map((b) => SHORT[b]!),
  ];
  const rows: string[][] = [];
  for (const r of report.scenarios) {
    if (r.status !== 'ok') continue;
    rows.push([
      r.id,
      sizeLabel(r.size),
      si(r.messagesPerSecond),
      sig(r.gigabytesPerSecond),
      ...(r.roundTrips > 0 ? [sig(r.p50Us), sig(r.p99Us), sig(r.p999Us)] : ['-', '-', '-']),
      sig(r.cpuNsPerMessage),
      r.counts.equal ? '=' : 'DIFF',
      ...BASELINE_IDS.map((b) => (b === r.id ? '1x' : ratio(r.ratios[b]))),
    ]);
  }
  return { head, rows };
}

function notRun(report: BenchReport): string[] {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const r of report.scenarios) {
    if (r.status === 'ok') continue;
    const key = `${r.id}:${r.status}:${r.reason}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const sizes = report.scenarios
      .filter((x) => x.id === r.id && x.status === r.status && x.reason === r.reason)
      .map((x) => sizeLabel(x.size));
    lines.push(`${r.id} (${sizes.join(', ')}): ${r.status}: ${r.reason ?? 'no reason given'}`);
  }
  return lines;
}

/**
 * One line per scenario whose rows show "-" for the round trips, saying why
 * (the sizes it ran at, then the scenario's reason).
 */
export function roundTripNotes(report: BenchReport): string[] {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const r of report.scenarios) {
    if (r.status !== 'ok' || r.roundTrips > 0 || r.roundTripsUnavailable === undefined) continue;
    const key = `${r.id}:${r.roundTripsUnavailable}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const sizes = report.scenarios
      .filter(
        (x) =>
          x.id === r.id &&
          x.status === 'ok' &&
          x.roundTrips === 0 &&
          x.roundTripsUnavailable === r.roundTripsUnavailable,
      )
      .map((x) => sizeLabel(x.size));
    lines.push(`${r.id} (${sizes.join(', ')}): no round trips: ${r.roundTripsUnavailable}`);
  }
  return lines;
}

function targetCell(t: TargetResult): string {
  if (t.value === null) return `n/a (${t.reason ?? 'not measured'})`;
  const v =
    t.comparison === '<=' && t.value < 1
      ? `1/${sig(1 / t.value)}`
      : t.against === 'memcpy'
        ? `${sig(t.value * 100)}%`
        : `${sig(t.value)}x`;
  const th =
    t.comparison === '<=' && t.threshold < 1
      ? `1/${sig(1 / t.threshold)}`
      : t.against === 'memcpy'
        ? `${sig(t.threshold * 100)}%`
        : `${sig(t.threshold)}x`;
  const ref = t.reference === undefined ? '' : `; ${t.reference.scenario}: ${sig(t.reference.value)}x`;
  return `${v} on ${t.scenario} (target ${t.comparison} ${th}) ${t.pass ? 'PASS' : 'FAIL'}${ref}`;
}

function targetRows(report: BenchReport): { head: string[]; rows: string[][] } {
  return {
    head: ['target', 'measured'],
    rows: report.targets.map((t) => [t.description, targetCell(t)]),
  };
}

function machineLine(report: BenchReport): string {
  const m = report.machine;
  return `${m.cpuModel}, ${m.cpus} CPUs, ${m.memoryGiB} GiB, ${m.kernel}, Node ${m.node} (V8 ${m.v8}), load ${m.loadAverage.join(' ')}`;
}

/** A warning when the machine was busy: busy-polling figures collapse under contention. */
export function loadWarning(report: BenchReport): string | null {
  const load = report.machine.loadAverage[0] ?? 0;
  if (load <= report.machine.cpus * 0.75) return null;
  return (
    `warning: the machine was busy (load ${load} on ${report.machine.cpus} CPUs at the start): ` +
    'busy-polling peers lose their CPUs to other processes and their figures collapse; compare ratios only within this run'
  );
}

function memcpyLine(report: BenchReport): string {
  const c = report.memcpy;
  if (c === null) return 'memcpy: not measured';
  return `memcpy, one core, 64 KiB blocks: hot ${sig(c.hotGBps)} GB/s, 16 MiB working set ${sig(c.workingSetGBps)} GB/s (reference), 128 MiB ${sig(c.streamingGBps)} GB/s`;
}

function comparisonRows(report: BenchReport): { head: string[]; rows: string[][] } | null {
  const c = report.comparison;
  if (!c) return null;
  return {
    head: ['scenario', 'size', 'msg/s', 'baseline msg/s', 'ratio', 'p50 us', 'baseline p50 us', 'p50 ratio'],
    rows: c.rows.map((r) => [
      r.id,
      sizeLabel(r.size),
      si(r.messagesPerSecond),
      si(r.baselineMessagesPerSecond),
      ratio(r.ratio),
      sig(r.p50Us),
      sig(r.baselineP50Us),
      ratio(r.p50Ratio),
    ]),
  };
}

/** The terminal report: the machine, the table with ratios against each baseline, the targets. */
export function formatTable(report: BenchReport): string {
  const t = scenarioRows(report);
  const out = [
    `vipc bench, ${report.date}, ${report.options.rounds} round(s), interleaved, ${(report.durationMs / 1000).toFixed(0)} s`,
    machineLine(report),
    memcpyLine(report),
    ...(loadWarning(report) ? [loadWarning(report)!] : []),
    '',
    textTable(t.head, t.rows),
    '(ends: "=" when both ends counted the same messages in both phases)',
  ];
  const missing = [...notRun(report), ...roundTripNotes(report)];
  if (missing.length > 0) out.push('', ...missing);
  const tr = targetRows(report);
  out.push('', textTable(tr.head, tr.rows));
  const c = comparisonRows(report);
  if (c)
    out.push(
      '',
      `against ${report.comparison!.file} (${report.comparison!.date})`,
      textTable(c.head, c.rows),
    );
  return `${out.join('\n')}\n`;
}

/** The same content in Markdown (for README and RESULTS files). */
export function formatMarkdown(report: BenchReport): string {
  const t = scenarioRows(report);
  const tr = targetRows(report);
  const missing = [...notRun(report), ...roundTripNotes(report)];
  const parts = [
    `Run of ${report.date}: ${report.options.rounds} round(s), every scenario interleaved in one run, ` +
      `throughput phase ${report.options.durationMs} ms after ${report.options.warmupMs} ms warm-up, ` +
      `round trips for ${report.options.latencyMs} ms; medians over rounds, percentiles over all round trips.`,
    '',
    `Machine: ${machineLine(report)}.`,
    '',
    `${memcpyLine(report)}.`,
    ...(loadWarning(report) ? ['', `**${loadWarning(report)!}.**`] : []),
    '',
    markdownTable(t.head, t.rows),
  ];
  if (missing.length > 0) parts.push('', ...missing.map((m) => `- ${m}`));
  parts.push('', markdownTable(tr.head, tr.rows));
  return `${parts.join('\n')}\n`;
}

export type { ScenarioResult };
