import { ratio, si, sig, sizeLabel } from './format.js';
import { loadWarning, roundTripNotes } from './report-table.js';
import type { BenchReport, ScenarioResult, TargetResult } from './results.js';
import { BASELINE_IDS } from './scenarios.js';

const COLORS: Record<ScenarioResult['group'], string> = {
  baseline: '#8a8f98',
  vipc: '#2f6fdf',
  anchor: '#e08a1e',
};

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface Bar {
  label: string;
  value: number;
  color: string;
  /** Extra marks drawn on the bar's axis (e.g. p99, p99.9). */
  marks?: { value: number; label: string }[];
  note?: string;
}

interface ChartOptions {
  title: string;
  unit: string;
  bars: Bar[];
  width?: number;
  format?: (v: number) => string;
}

function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  // Start a decade lower when the smallest bar would sit right on the axis.
  for (let e = Math.floor(Math.log10(min) - 0.2); e <= Math.ceil(Math.log10(max)); e++) ticks.push(10 ** e);
  return ticks;
}

/**
 * A horizontal bar chart on a log scale, as a standalone SVG element (no
 * scripts, no external resources). Bars with no value are listed as "n/a".
 */
export function barChartSvg(o: ChartOptions): string {
  const width = o.width ?? 900;
  const fmt = o.format ?? si;
  const labelW = 250;
  const valueW = 80;
  const rowH = 20;
  const top = 34;
  const plotW = width - labelW - valueW - 10;
  const values = o.bars
    .flatMap((b) => [b.value, ...(b.marks ?? []).map((m) => m.value)])
    .filter((v) => v > 0);
  const minV = values.length ? Math.min(...values) : 1;
  const maxV = values.length ? Math.max(...values) : 10;
  const ticks = logTicks(minV, maxV);
  const lo = Math.log10(ticks[0]!);
  const hi = Math.log10(ticks[ticks.length - 1]!) === lo ? lo + 1 : Math.log10(ticks[ticks.length - 1]!);
  const x = (v: number) => labelW + ((Math.log10(v) - lo) / (hi - lo)) * plotW;
  const height = top + o.bars.length * rowH + 28;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="${escapeXml(o.title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<title>${escapeXml(o.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="8" y="20" font-size="14" font-weight="600">${escapeXml(o.title)}</text>`,
    `<text x="${width - 8}" y="20" text-anchor="end" fill="#555">${escapeXml(o.unit)}, log scale</text>`,
  ];
  for (const t of ticks) {
    const tx = x(t);
    parts.push(
      `<line x1="${tx.toFixed(1)}" y1="${top - 4}" x2="${tx.toFixed(1)}" y2="${top + o.bars.length * rowH}" stroke="#e3e5e8"/>`,
      `<text x="${tx.toFixed(1)}" y="${top + o.bars.length * rowH + 16}" text-anchor="middle" fill="#555">${escapeXml(fmt(t))}</text>`,
    );
  }
  o.bars.forEach((b, i) => {
    const y = top + i * rowH;
    parts.push(`<text x="${labelW - 8}" y="${y + 14}" text-anchor="end">${escapeXml(b.label)}</text>`);
    if (!(b.value > 0)) {
      parts.push(`<text x="${labelW + 4}" y="${y + 14}" fill="#999">${escapeXml(b.note ?? 'n/a')}</text>`);
      return;
    }
    const w = Math.max(1, x(b.value) - labelW);
    parts.push(
      `<rect class="bar" x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${b.color}" rx="2"><title>${escapeXml(`${b.label}: ${fmt(b.value)} ${o.unit}`)}</title></rect>`,
    );
    for (const m of b.marks ?? []) {
      if (!(m.value > 0)) continue;
      const mx = x(m.value);
      parts.push(
        `<line x1="${labelW + w}" y1="${y + rowH / 2}" x2="${mx.toFixed(1)}" y2="${y + rowH / 2}" stroke="#333" stroke-width="1"/>`,
        `<line x1="${mx.toFixed(1)}" y1="${y + 4}" x2="${mx.toFixed(1)}" y2="${y + rowH - 4}" stroke="#333" stroke-width="1.5"><title>${escapeXml(`${m.label}: ${fmt(m.value)} ${o.unit}`)}</title></line>`,
      );
    }
    parts.push(`<text x="${width - 8}" y="${y + 14}" text-anchor="end">${escapeXml(fmt(b.value))}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function sizes(report: BenchReport): number[] {
  return [...new Set(report.scenarios.map((s) => s.size))].sort((a, b) => a - b);
}

function bar(r: ScenarioResult, value: number, marks?: Bar['marks']): Bar {
  const b: Bar = { label: r.label, value: r.status === 'ok' ? value : 0, color: COLORS[r.group] };
  if (marks && r.status === 'ok') b.marks = marks;
  if (r.status !== 'ok') b.note = r.status;
  else if (!(value > 0)) b.note = 'not measured';
  return b;
}

/** Throughput charts, one per message size. */
export function throughputCharts(report: BenchReport): string[] {
  return sizes(report).map((size) =>
    barChartSvg({
      title: `Throughput, ${sizeLabel(size)} messages (messages/s; higher is better)`,
      unit: 'msg/s',
      bars: report.scenarios.filter((s) => s.size === size).map((r) => bar(r, r.messagesPerSecond)),
    }),
  );
}

export function latencyCharts(report: BenchReport): string[] {
  return sizes(report).map((size) =>
    barChartSvg({
      title: `Round trip, ${sizeLabel(size)}: p50 (bar), p99 and p99.9 (ticks), µs; lower is better`,
      unit: 'µs',
      format: sig,
      bars: report.scenarios
        .filter((s) => s.size === size)
        .map((r) => {
          const b = bar(r, r.p50Us, [
            { value: r.p99Us, label: 'p99' },
            { value: r.p999Us, label: 'p99.9' },
          ]);
          if (r.status === 'ok' && r.roundTripsUnavailable !== undefined)
            b.note = 'no round trips (see the notes)';
          return b;
        }),
    }),
  );
}

export function cpuCharts(report: BenchReport): string[] {
  return sizes(report).map((size) =>
    barChartSvg({
      title: `CPU time per message, both ends, ${sizeLabel(size)} (ns; lower is better)`,
      unit: 'ns/msg',
      format: sig,
      bars: report.scenarios.filter((s) => s.size === size).map((r) => bar(r, r.cpuNsPerMessage)),
    }),
  );
}

/** One SVG with the throughput of every size stacked (for READMEs). */
export function summarySvg(report: BenchReport): string {
  const charts = throughputCharts(report);
  let y = 0;
  const width = 900;
  const inner = charts.map((c) => {
    const h = Number(/height="(\d+)"/.exec(c)?.[1] ?? '0');
    const g = `<g transform="translate(0 ${y})">${c.replace(/^<svg[^>]*>/, '').replace(/<\/svg>$/, '')}</g>`;
    y += h;
    return g;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="vipc bench throughput" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="system-ui, sans-serif" font-size="12">\n<title>vipc bench throughput</title>\n${inner.join('\n')}\n</svg>\n`;
}

function targetText(t: TargetResult): { value: string; mark: string; cls: string } {
  if (t.value === null) return { value: `n/a: ${t.reason ?? ''}`, mark: 'n/a', cls: 'na' };
  const pct = t.against === 'memcpy';
  const show = (v: number) => (pct ? `${sig(v * 100)} %` : v < 1 ? `1/${sig(1 / v)}` : `${sig(v)}x`);
  return {
    value: `${show(t.value)} on ${t.scenario} (target ${t.comparison} ${show(t.threshold)})${
      t.reference === undefined ? '' : `; ${t.reference.scenario}: ${show(t.reference.value)}`
    }`,
    mark: t.pass ? 'PASS' : 'FAIL',
    cls: t.pass ? 'pass' : 'fail',
  };
}

function resultsTable(report: BenchReport): string {
  const head = [
    'scenario',
    'size',
    'msg/s',
    'GB/s',
    'p50 µs',
    'p99 µs',
    'p99.9 µs',
    'CPU ns/msg',
    'counts equal',
    ...BASELINE_IDS.map((b) => `× ${b}`),
  ];
  const rows = report.scenarios.map((r) => {
    if (r.status !== 'ok') {
      return `<tr class="${r.status}"><td>${escapeXml(r.id)}</td><td>${sizeLabel(r.size)}</td><td colspan="${head.length - 2}">${escapeXml(`${r.status}: ${r.reason ?? ''}`)}</td></tr>`;
    }
    const cells = [
      r.id,
      sizeLabel(r.size),
      si(r.messagesPerSecond),
      sig(r.gigabytesPerSecond),
      ...(r.roundTrips > 0 ? [sig(r.p50Us), sig(r.p99Us), sig(r.p999Us)] : ['-', '-', '-']),
      sig(r.cpuNsPerMessage),
      r.counts.equal ? `yes (${r.counts.measuredReceived})` : 'NO',
      ...BASELINE_IDS.map((b) => (b === r.id ? '1x' : ratio(r.ratios[b]))),
    ];
    return `<tr class="${r.group}">${cells.map((c) => `<td>${escapeXml(c)}</td>`).join('')}</tr>`;
  });
  return `<div class="scroll"><table class="results"><thead><tr>${head.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('\n')}</tbody></table></div>`;
}

function targetsTable(report: BenchReport): string {
  const rows = report.targets.map((t) => {
    const x = targetText(t);
    return `<tr><td>${escapeXml(t.description)}</td><td>${escapeXml(x.value)}</td><td class="${x.cls}">${x.mark}</td></tr>`;
  });
  return `<table class="targets"><thead><tr><th>target</th><th>measured</th><th></th></tr></thead><tbody>${rows.join('\n')}</tbody></table>`;
}

function scenarioList(report: BenchReport): string {
  const seen = new Map<string, ScenarioResult>();
  for (const r of report.scenarios) if (!seen.has(r.id)) seen.set(r.id, r);
  const rows = [...seen.values()].map(
    (r) =>
      `<tr class="${r.group}"><td>${escapeXml(r.id)}</td><td>${escapeXml(r.endpoints)}</td><td style="text-align:left">${escapeXml(r.description)}</td></tr>`,
  );
  return `<h2>Scenarios</h2><table class="scenarios"><thead><tr><th>scenario</th><th>endpoints</th><th style="text-align:left">what moves the messages</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>`;
}

function comparisonTable(report: BenchReport): string {
  const c = report.comparison;
  if (!c) return '';
  const rows = c.rows.map(
    (r) =>
      `<tr><td>${escapeXml(r.id)}</td><td>${sizeLabel(r.size)}</td><td>${si(r.messagesPerSecond)}</td><td>${si(r.baselineMessagesPerSecond)}</td><td>${ratio(r.ratio)}</td><td>${sig(r.p50Us)}</td><td>${sig(r.baselineP50Us)}</td><td>${ratio(r.p50Ratio)}</td></tr>`,
  );
  return `<h2>Against ${escapeXml(c.file)} (${escapeXml(c.date)})</h2><table class="comparison"><thead><tr><th>scenario</th><th>size</th><th>msg/s</th><th>baseline msg/s</th><th>ratio</th><th>p50 µs</th><th>baseline p50 µs</th><th>p50 ratio</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>`;
}

// Runs in the browser: checks the document it is part of and says so in the
// DOM (#report-status), so a headless browser's --dump-dom shows whether the
// page rendered without script errors.
const SELF_CHECK = `
(function () {
  var errors = [];
  window.addEventListener('error', function (e) { errors.push(String(e.message)); mark(); });
  function mark() {
    var el = document.getElementById('report-status');
    var charts = document.querySelectorAll('svg.chart');
    var bars = document.querySelectorAll('svg.chart rect.bar');
    if (errors.length) { el.textContent = \`report-error: \${errors.join('; ')}\`; el.className = 'fail'; return; }
    if (charts.length === 0 || bars.length === 0) { el.textContent = 'report-error: no charts rendered'; el.className = 'fail'; return; }
    var box = charts[0].getBoundingClientRect();
    if (!(box.width > 0 && box.height > 0)) { el.textContent = 'report-error: charts have no size'; el.className = 'fail'; return; }
    el.textContent = \`report-ok: \${charts.length} charts, \${bars.length} bars\`;
    el.className = 'ok';
  }
  document.addEventListener('DOMContentLoaded', mark);
})();
`;

/** The self-contained HTML report: tables, targets and inline SVG charts; no external resources. */
export function renderHtml(report: BenchReport): string {
  const m = report.machine;
  const c = report.memcpy;
  const unavailable = report.scenarios.filter((s) => s.status !== 'ok');
  const notes = roundTripNotes(report);
  const charts = [
    '<h2>Throughput</h2>',
    ...throughputCharts(report),
    '<h2>Round-trip latency</h2>',
    ...latencyCharts(report),
    '<h2>CPU time per message</h2>',
    ...cpuCharts(report),
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vipc bench ${escapeXml(report.date)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #1d2125; max-width: 1400px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border-bottom: 1px solid #e3e5e8; padding: 3px 8px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
tr.vipc td:first-child { color: #2f6fdf; font-weight: 600; }
tr.unavailable td, tr.failed td { color: #888; text-align: left; }
td.pass { color: #1b7f3b; font-weight: 700; } td.fail { color: #c0392b; font-weight: 700; } td.na { color: #888; }
.legend span { display: inline-block; margin-right: 16px; } .legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }
.scroll { overflow-x: auto; }
.warning { color: #b35c00; font-weight: 600; }
#report-status { font-size: 11px; color: #888; } svg.chart { display: block; margin: 6px 0 14px; }
</style>
</head>
<body>
<h1>vipc bench: is it faster? is it worth it?</h1>
<p>${escapeXml(report.date)} · ${report.options.rounds} round(s), every scenario interleaved in one run · throughput ${report.options.durationMs} ms after ${report.options.warmupMs} ms warm-up · round trips ${report.options.latencyMs} ms · medians over rounds, percentiles over all round trips (HDR histogram)</p>
<p>Machine: ${escapeXml(`${m.cpuModel}, ${m.cpus} CPUs, ${m.memoryGiB} GiB, ${m.kernel}, Node ${m.node} (V8 ${m.v8}), load ${m.loadAverage.join(' ')}`)}</p>
<p>${c ? escapeXml(`memcpy, one core, 64 KiB blocks: hot ${sig(c.hotGBps)} GB/s, 16 MiB working set ${sig(c.workingSetGBps)} GB/s (reference), 128 MiB ${sig(c.streamingGBps)} GB/s`) : 'memcpy not measured'}</p>
${loadWarning(report) ? `<p class="warning">${escapeXml(loadWarning(report)!)}</p>` : ''}
<p class="legend"><span><i style="background:${COLORS.baseline}"></i>baseline</span><span><i style="background:${COLORS.vipc}"></i>vipc</span><span><i style="background:${COLORS.anchor}"></i>C anchor (DPDK)</span></p>
<h2>Targets</h2>
${targetsTable(report)}
<h2>Results</h2>
${resultsTable(report)}
${unavailable.length ? `<p>${unavailable.length} scenario/size pair(s) not measured; reasons in the table.</p>` : ''}
${notes.length ? `<ul class="notes">${notes.map((n) => `<li>${escapeXml(n)}</li>`).join('')}</ul>` : ''}
${comparisonTable(report)}
${scenarioList(report)}
${charts.join('\n')}
<p id="report-status">report-pending</p>
<script>${SELF_CHECK}</script>
</body>
</html>
`;
}
