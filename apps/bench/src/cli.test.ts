import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from './cli.js';
import type { BenchReport } from './results.js';

const dir = mkdtempSync(path.join(os.tmpdir(), `vipc-bench-cli-${process.pid}-`));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

const TINY = ['--duration', '40', '--rounds', '1', '--sizes', '64,1500', '--scenarios', 'unix-socket,tcp'];

describe('main(argv)', () => {
  it('--help and --list exit 0 and print to stdout', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--quick');
    expect(help.stdout).toContain('--json');
    const list = await run(['--list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^unix-socket\s+baseline/m);
    expect(list.stdout).toMatch(/^vring-split-poll\s+vipc/m);
  });

  it('usage errors exit 2 with a message', async () => {
    for (const argv of [
      ['--bogus'],
      ['--sizes', 'abc'],
      ['--sizes', '2'],
      ['--scenarios', 'nope'],
      ['--rounds', 'x'],
      ['--spin-us', '-3'],
      ['positional'],
    ]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/vipc bench: \S/);
      expect(r.stdout).toBe('');
    }
  });

  it('--json prints one document with transport, size, messagesPerSecond, p50Us, p99Us per scenario; --out and --html write files', async () => {
    const out = path.join(dir, 'base.json');
    const html = path.join(dir, 'report.html');
    const md = path.join(dir, 'report.md');
    const svg = path.join(dir, 'chart.svg');
    const r = await run([...TINY, '--json', '--out', out, '--html', html, '--markdown', md, '--svg', svg]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as BenchReport;
    expect(doc.schema).toBe('vipc-bench/1');
    expect(doc.scenarios).toHaveLength(4);
    for (const s of doc.scenarios) {
      expect(typeof s.transport).toBe('string');
      expect([64, 1500]).toContain(s.size);
      expect(s.messagesPerSecond).toBeGreaterThan(0);
      expect(s.p50Us).toBeGreaterThan(0);
      expect(s.p99Us).toBeGreaterThanOrEqual(s.p50Us);
    }
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(doc);
    expect(readFileSync(html, 'utf8')).toContain('<svg');
    expect(readFileSync(md, 'utf8')).toContain('| unix-socket |');
    expect(readFileSync(svg, 'utf8')).toMatch(/^<svg[^>]*>[\s\S]*class="bar"[\s\S]*<\/svg>\n$/);
    expect(r.stderr).toContain('round 1/1');

    // A later run against the saved baseline.
    const again = await run([...TINY, '--baseline', out]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`against ${out}`);
    const section = again.stdout.slice(again.stdout.indexOf(`against ${out}`));
    // scenario, size, msg/s, baseline msg/s, ratio, p50, baseline p50, p50 ratio
    expect(section).toMatch(/^unix-socket\s+64 B\s.*\s\d[\d.]*x\s.*\s\d[\d.]*x$/m);
    const j = await run([...TINY, '--json', '--baseline', out]);
    const cmp = (JSON.parse(j.stdout) as BenchReport).comparison!;
    expect(cmp.rows).toHaveLength(4);
    for (const row of cmp.rows)
      expect(row.ratio).toBeCloseTo(row.messagesPerSecond / row.baselineMessagesPerSecond, 9);
  });

  it('a baseline that is not a bench report is refused with exit 1', async () => {
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ hello: 1 }));
    const r = await run([...TINY, '--baseline', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('is not a vipc bench report');
    const missing = await run([...TINY, '--baseline', path.join(dir, 'nope.json')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('cannot read baseline');
  });
});
