// Regenerates results/: runs the standard suite, writes the JSON (a baseline
// for later runs), the Markdown table, the throughput SVG and a PNG of the
// HTML report. Run from apps/bench after a build: `pnpm run results`.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  formatMarkdown,
  formatTable,
  renderHtml,
  renderInChromium,
  runBench,
  summarySvg,
} from '../dist/index.js';

const out = new URL('../results/', import.meta.url).pathname;
mkdirSync(out, { recursive: true });
const report = await runBench({ onProgress: (e) => process.stderr.write(`${e.message}\n`) });
writeFileSync(join(out, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(join(out, 'latest.md'), formatMarkdown(report));
writeFileSync(join(out, 'throughput.svg'), summarySvg(report));
const html = join(tmpdir(), `vipc-bench-report-${process.pid}.html`);
writeFileSync(html, renderHtml(report));
try {
  await renderInChromium(html, { screenshot: join(out, 'report.png'), width: 1500, height: 5600 });
} finally {
  rmSync(html, { force: true });
}
process.stdout.write(formatTable(report));
