// The CLI as users run it: the built bin, in a child process.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const bin = join(import.meta.dirname, '..', 'dist', 'bin.js');
const dir = mkdtempSync(join(tmpdir(), 'vipc-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function vipc(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('vipc', () => {
  it('--help lists the commands with examples, exit 0', () => {
    const r = vipc('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: vipc <command>/);
    expect(r.stdout).toMatch(/doctor/);
    expect(r.stdout).toMatch(/Examples:/);
  });

  it('each command has --help with examples', () => {
    const r = vipc('validate', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: vipc validate FILE/);
    expect(r.stdout).toMatch(/Examples:\n {2}vipc validate/);
  });

  it('usage errors exit 2 and say what is wrong', () => {
    expect(vipc('frobnicate')).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/unknown command 'frobnicate'/),
    });
    expect(vipc('doctor', '--bogus')).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/unknown option '--bogus'\nUsage: /),
    });
    expect(vipc('validate')).toMatchObject({ code: 2, stderr: expect.stringMatching(/missing argument/) });
    expect(vipc()).toMatchObject({ code: 2 });
  });

  it('doctor --json prints one document of findings, each failing one with its fix', () => {
    const r = vipc('doctor', '--json');
    const doc = JSON.parse(r.stdout) as {
      ok: boolean;
      findings: { id: string; status: string; fix?: string }[];
    };
    expect(r.code).toBe(doc.ok ? 0 : 1);
    expect(doc.findings.map((f) => f.id)).toEqual(
      expect.arrayContaining(['memfd', 'eventfd', 'dpdk-testpmd', 'lxc', 'user']),
    );
    for (const f of doc.findings) if (f.status !== 'ok') expect(f.fix).toBeTruthy();
    expect(doc.findings.find((f) => f.id === 'memfd')!.status).toBe('ok');
  });

  it('a broken topology file gives a line-pointing error and exit 1', () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, 'version: 1\nlinks:\n  - name: l0\n    ring: triangle\n');
    const r = vipc('validate', file);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}:4:11: links[0].ring: must be one of: split, packed`);
    const j = vipc('validate', file, '--json');
    expect(JSON.parse(j.stdout)).toMatchObject({
      ok: false,
      error: {
        code: 'TOPOLOGY_INVALID',
        issues: [{ file, line: 4, column: 11, field: 'links[0].ring' }],
      },
    });
  });

  it('a missing topology file is a clear failure', () => {
    const r = vipc('validate', join(dir, 'nope.yaml'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot read topology file .*nope\.yaml/);
  });
});
