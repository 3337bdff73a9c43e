import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseBaseline } from './analysis.js';
import { BenchError } from './errors.js';
import { renderHtml, summarySvg } from './report-html.js';
import { formatMarkdown, formatTable } from './report-table.js';
import type { BenchReport } from './results.js';
import { type BenchOptions, runBench } from './runner.js';
import { SCENARIOS } from './scenarios.js';

/** The options of `vipc bench` / `vipc-bench`, in node:util parseArgs form (the CLI reuses them). */
export const BENCH_OPTIONS = {
  quick: { type: 'boolean' },
  json: { type: 'boolean' },
  sizes: { type: 'string' },
  scenarios: { type: 'string' },
  rounds: { type: 'string' },
  duration: { type: 'string' },
  'spin-us': { type: 'string' },
  html: { type: 'string' },
  markdown: { type: 'string' },
  svg: { type: 'string' },
  out: { type: 'string' },
  baseline: { type: 'string' },
  list: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const BENCH_HELP: Record<keyof typeof BENCH_OPTIONS, string> = {
  quick: 'the short suite (one round, short phases; under a minute)',
  json: 'print one JSON document on stdout instead of the table',
  sizes: 'message sizes in bytes, comma-separated (default 64,1500,65536; k suffix allowed: 64k)',
  scenarios: 'scenario ids to run, comma-separated (default: all; see --list)',
  rounds: 'rounds (default 3, quick 1); every scenario runs once per size per round, interleaved',
  duration: 'measured throughput phase per trial in ms (round trips get half of it)',
  'spin-us': 'spin before sleeping in the spin-then-sleep scenarios, in µs (default 50)',
  html: 'write the self-contained HTML report (inline SVG charts) to this file',
  markdown: 'write the table and targets as Markdown to this file',
  svg: 'write the throughput chart (every size) as one SVG file',
  out: 'also write the JSON document to this file (a baseline for later runs)',
  baseline: 'compare against a saved JSON document (from --out or --json)',
  list: 'list the scenarios and exit',
  help: 'show this help',
};

export const BENCH_USAGE =
  'vipc bench [--quick] [--json] [--sizes 64,1500,64k] [--scenarios id,...] [--rounds N] [--duration MS] [--spin-us US]\n' +
  '           [--html FILE] [--markdown FILE] [--svg FILE] [--out FILE] [--baseline FILE] [--list]';

export interface MainIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  signal?: AbortSignal;
}

function parseSize(text: string): number {
  const m = /^(\d+)\s*([kKmM]?)(i?[bB])?$/.exec(text.trim());
  if (!m) throw new BenchError('USAGE', `"${text}" is not a size (examples: 64, 1500, 64k)`);
  const mult = m[2] === '' ? 1 : m[2]!.toLowerCase() === 'k' ? 1024 : 1 << 20;
  return Number(m[1]) * mult;
}

function parseIntOption(text: string, name: string): number {
  if (!/^\d+$/.test(text))
    throw new BenchError('USAGE', `--${name} must be a positive integer (got "${text}")`);
  return Number(text);
}

/** Turns parsed option values (as from BENCH_OPTIONS) into runBench options. */
export function optionsFromValues(values: Record<string, unknown>): BenchOptions {
  const o: BenchOptions = {};
  if (values.quick === true) o.quick = true;
  if (typeof values.sizes === 'string') o.sizes = values.sizes.split(',').filter(Boolean).map(parseSize);
  if (typeof values.scenarios === 'string') o.scenarios = values.scenarios.split(',').filter(Boolean);
  if (typeof values.rounds === 'string') o.rounds = parseIntOption(values.rounds, 'rounds');
  if (typeof values.duration === 'string') {
    const d = parseIntOption(values.duration, 'duration');
    o.timing = {
      durationMs: d,
      warmupMs: Math.max(10, Math.round(d / 5)),
      latencyMs: Math.max(10, Math.round(d / 2)),
      latencyWarmupMs: Math.max(5, Math.round(d / 10)),
    };
  }
  if (typeof values['spin-us'] === 'string') o.spinUs = parseIntOption(values['spin-us'], 'spin-us');
  if (typeof values.baseline === 'string') {
    const file = values.baseline;
    let data: unknown;
    try {
      data = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new BenchError('INVALID_BASELINE', `cannot read baseline ${file}: ${(err as Error).message}`);
    }
    o.baseline = { file, report: parseBaseline(data, file) };
  }
  return o;
}

function helpText(): string {
  const lines = [`usage: ${BENCH_USAGE}`, '', 'options:'];
  for (const [k, v] of Object.entries(BENCH_HELP)) lines.push(`  --${k.padEnd(10)} ${v}`);
  return `${lines.join('\n')}\n`;
}

function listText(): string {
  return `${SCENARIOS.map((s) => `${s.id.padEnd(26)} ${s.group.padEnd(8)} ${s.description}`).join('\n')}\n`;
}

/** Writes the requested files and prints the table or the JSON. */
export function emitReport(report: BenchReport, values: Record<string, unknown>, io: MainIo): void {
  const json = `${JSON.stringify(report, null, 2)}\n`;
  if (typeof values.out === 'string') writeFileSync(values.out, json);
  if (typeof values.html === 'string') writeFileSync(values.html, renderHtml(report));
  if (typeof values.markdown === 'string') writeFileSync(values.markdown, formatMarkdown(report));
  if (typeof values.svg === 'string') writeFileSync(values.svg, summarySvg(report));
  io.stdout(values.json === true ? json : formatTable(report));
}

/**
 * CLI-style entry: `main(process.argv.slice(2))`. Returns the exit code
 * (0 ok, 1 failure, 2 usage). Progress goes to stderr, data to stdout.
 */
export async function main(argv: string[], io?: Partial<MainIo>): Promise<number> {
  const out: MainIo = {
    stdout: io?.stdout ?? ((t) => process.stdout.write(t)),
    stderr: io?.stderr ?? ((t) => process.stderr.write(t)),
  };
  if (io?.signal) out.signal = io.signal;
  let values: Record<string, unknown>;
  try {
    const parsed = parseArgs({ args: argv, options: BENCH_OPTIONS, allowPositionals: false, strict: true });
    values = parsed.values;
  } catch (err) {
    out.stderr(`vipc bench: ${(err as Error).message}\n${helpText()}`);
    return 2;
  }
  if (values.help === true) {
    out.stdout(helpText());
    return 0;
  }
  if (values.list === true) {
    out.stdout(listText());
    return 0;
  }
  try {
    const options = optionsFromValues(values);
    if (out.signal) options.signal = out.signal;
    options.onProgress = (e) => out.stderr(`${e.message}\n`);
    const report = await runBench(options);
    emitReport(report, values, out);
    return report.scenarios.some((s) => s.status === 'failed') ? 1 : 0;
  } catch (err) {
    const e = err as BenchError;
    out.stderr(`vipc bench: ${e.message}\n`);
    return e instanceof BenchError && e.code === 'USAGE' ? 2 : 1;
  }
}
