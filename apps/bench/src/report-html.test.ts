import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumPath, renderInChromium } from './chromium.js';
import { barChartSvg, escapeXml, renderHtml, summarySvg } from './report-html.js';
import { formatMarkdown, formatTable } from './report-table.js';
import type { BenchReport } from './results.js';
import { runBench } from './runner.js';
import { colourStats, decodePng } from './testing/png.js';

const dir = mkdtempSync(path.join(os.tmpdir(), `vipc-bench-report-${process.pid}-`));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let report: BenchReport;
beforeAll(async () => {
  // A real (tiny) run, with an unavailable scenario in it, so the report shows every kind of row.
  report = await runBench({
    sizes: [1500, 65536],
    scenarios: ['unix-socket', 'pipe', 'message-port', 'vipc-testpmd'],
    rounds: 1,
    timing: { warmupMs: 10, durationMs: 40, latencyWarmupMs: 5, latencyMs: 30 },
  });
}, 120_000);

describe('report', () => {
  it('escapes text in SVG and HTML', () => {
    expect(escapeXml(`<a href="x">&'`)).toBe('&#60;a href=&#34;x&#34;&#62;&#38;&#39;');
    const svg = barChartSvg({
      title: 'a <b> title',
      unit: 'msg/s',
      bars: [
        { label: 'x&y', value: 10, color: '#000' },
        { label: 'n', value: 0, color: '#000', note: 'unavailable' },
      ],
    });
    expect(svg).toContain('a &#60;b&#62; title');
    expect(svg).toContain('x&#38;y');
    expect(svg).toContain('unavailable');
    expect(svg.match(/class="bar"/g)).toHaveLength(1);
  });

  it('the table, Markdown and SVG summary carry every measured scenario and the unavailable reasons', () => {
    const table = formatTable(report);
    const md = formatMarkdown(report);
    for (const id of ['unix-socket', 'pipe', 'message-port']) {
      expect(table).toContain(id);
      expect(md).toContain(`| ${id} |`);
    }
    expect(table).toMatch(/vipc-testpmd \(64 KiB\): unavailable: testpmd sends/);
    expect(table).toContain('x uds');
    const svg = summarySvg(report);
    expect(svg.startsWith('<svg')).toBe(true);
    const measured = report.scenarios.filter((r) => r.status === 'ok' && r.messagesPerSecond > 0).length;
    expect(measured).toBeGreaterThanOrEqual(6); // 7 with DPDK installed
    expect(svg.match(/class="bar"/g)!.length).toBe(measured);
  });

  it('is self-contained: no external resources', () => {
    const html = renderHtml(report);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).not.toMatch(/<link\b/);
    expect(html).toContain('<svg');
  });

  it('opens in headless Chromium without errors, and a screenshot shows it', async (ctx) => {
    if (chromiumPath() === null) {
      if (process.env.CI === 'true')
        throw new Error('chromium is missing under CI (apt-get install chromium)');
      console.warn('report screenshot test skipped: install Debian chromium (apt-get install chromium)');
      ctx.skip();
    }
    const file = path.join(dir, 'report.html');
    const png = path.join(dir, 'report.png');
    writeFileSync(file, renderHtml(report));
    const { dom, console: log } = await renderInChromium(file, {
      screenshot: png,
      width: 1200,
      height: 1600,
    });
    // The page's own script writes report-ok only when it ran without errors and found drawn charts.
    const status = /<p id="report-status"[^>]*>([^<]*)<\/p>/.exec(dom)?.[1];
    expect(status).toMatch(/^report-ok: 6 charts, \d+ bars$/);
    expect(log).not.toMatch(/Uncaught|SyntaxError|ReferenceError|TypeError/);
    expect(existsSync(png)).toBe(true);
    const image = decodePng(readFileSync(png));
    expect(image.width).toBe(1200);
    expect(image.height).toBe(1600);
    const colours = colourStats(image);
    // Text, bars in three colours and antialiasing: far from a blank page.
    expect(colours.distinct).toBeGreaterThan(50);
    expect(colours.dominantShare).toBeLessThan(0.97);
  });

  it('the in-page check reports script errors (so report-ok means something)', async (ctx) => {
    if (chromiumPath() === null) {
      if (process.env.CI === 'true')
        throw new Error('chromium is missing under CI (apt-get install chromium)');
      ctx.skip();
    }
    const file = path.join(dir, 'broken.html');
    writeFileSync(
      file,
      renderHtml(report).replace('</body>', "<script>throw new Error('boom')</script></body>"),
    );
    const { dom } = await renderInChromium(file);
    expect(/<p id="report-status"[^>]*>([^<]*)<\/p>/.exec(dom)?.[1]).toMatch(/^report-error: .*boom/);
  });
});
