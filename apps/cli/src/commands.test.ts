// Every command as users run it (the built bin): help, usage errors (exit 2), --json documents.
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMANDS } from './commands.js';
import { LXC, peerTest, vipc } from './test-helpers.js';

const dir = mkdtempSync(join(tmpdir(), `vipc-cmds-${process.pid}-`));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('every command', () => {
  it.each(COMMANDS.filter((c) => !c.passthrough).map((c) => c.name))(
    '%s --help: usage, options, examples; exit 0',
    (name) => {
      const r = vipc([...name.split(' '), '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: vipc ${name}`);
      expect(r.stdout).toMatch(/--json/);
      expect(r.stdout).toMatch(/Examples:\n {2}vipc /);
    },
  );

  it('help names option values as the usage line does (PATH, N, split|packed), not VALUE', () => {
    const send = vipc(['send', '--help']).stdout;
    expect(send).toMatch(/^ {2}--socket PATH {2,}vhost-user socket path/m);
    expect(send).toMatch(/^ {2}--count N {2,}/m);
    expect(send).toMatch(/^ {2}--ring split\|packed {2,}/m);
    expect(send).toMatch(/^ {2}--timeout SECONDS {2,}/m);
    expect(send).not.toContain('VALUE');
    expect(vipc(['lxc', 'create', '--help']).stdout).toMatch(/^ {2}--mount SRC:DST\[:ro\] {2,}/m);
  });

  it('vipc bench --help is the bench app help', () => {
    const r = vipc(['bench', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--quick/);
  });

  it.each([
    [['demo', '--messages', '0'], /--messages must be an integer from 1/],
    [['demo', '--size', '4'], /--size must be an integer from 8/],
    [['demo', '--mode', 'turbo'], /--mode must be one of: poll, event/],
    [['demo', '--process', '--container'], /exclude each other/],
    [['demo', 'extra'], /unexpected argument 'extra'/],
    [['up'], /missing argument/],
    [['down', 'a', 'b'], /unexpected argument 'b'/],
    [['status', '--bogus'], /unknown option '--bogus'\nUsage: /],
    [['endpoint'], /--socket PATH is required/],
    [['endpoint', '--socket', '/tmp/x', '--action', 'dance'], /--action must be one of/],
    [['send'], /--socket PATH is required\nUsage: vipc send /],
    [['send', '--socket', '/tmp/x', '--size', '64'], /--size needs --count/],
    [['send', '--socket', '/tmp/x', '--count', '5', '--binary'], /excludes --count/],
    [['send', '--socket', '/tmp/x', '--queue-size', '100'], /power of two/],
    [['send', '--socket', `/tmp/${'x'.repeat(120)}`], /longer than 107 bytes/],
    [['recv', '--socket', '/tmp/x', '--role', 'middle'], /--role must be one of: frontend, backend/],
    [['recv', '--socket', '/tmp/x', '--count', '1e3'], /--count must be an integer/],
    [['yocto', 'emit', '--out', '/tmp/x'], /--release is required/],
    [['yocto', 'emit', '--release', 'kirkstone', '--out', '/tmp/x'], /--release must be one of: scarthgap/],
    [['yocto', 'emit', '--release', 'scarthgap'], /--out DIR is required/],
    [['yocto'], /'yocto' needs a subcommand/],
    [['dpdk', 'testpmd'], /exactly one of --vhost PATH/],
    [['dpdk', 'testpmd', '--vhost', '/tmp/x', '--packed'], /--packed is negotiated by the front-end/],
    [['dpdk', 'frobnicate'], /unknown subcommand 'dpdk frobnicate'/],
    [['dpdk', 'hugepages', '--size', '3X'], /--size/],
    [['lxc', 'create'], /missing argument/],
    [['lxc', 'exec', 'c1'], /missing argument/],
    [['lxc', 'create', 'c1', '--mount', 'nocolon'], /expected HOST_PATH:CONTAINER_PATH/],
    [['bench', '--bogus'], /bogus/],
  ])('%j is a usage error: exit 2 with the reason', (args, reason) => {
    const r = vipc(args as string[]);
    expect(r.stderr).toMatch(reason as RegExp);
    expect(r.code).toBe(2);
  });

  it('usage errors with --json also print a JSON document', () => {
    const r = vipc(['demo', '--messages', 'x', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: { code: 'USAGE' } });
  });

  it('--json works before the command too', () => {
    const r = vipc(['--json', 'status'], { env: { VIPC_STATE_DIR: join(dir, 'none') } });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ ok: true, topologies: [] });
  });

  it('down with nothing up fails (exit 1) and says so', () => {
    const r = vipc(['down', '--json'], { env: { VIPC_STATE_DIR: join(dir, 'none') } });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
  });

  it('dpdk hugepages --json lists pools, mounts and files', () => {
    const r = vipc(['dpdk', 'hugepages', '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.ok).toBe(true);
    expect(doc.pools.some((p: { sizeKb: number }) => p.sizeKb === 2048)).toBe(true);
    expect(Array.isArray(doc.mounts) && Array.isArray(doc.files)).toBe(true);
  });
});

describe('vipc bench', () => {
  it('runs the bench app: one short scenario gives its JSON report', () => {
    const r = vipc([
      'bench',
      '--scenarios',
      'unix-socket',
      '--sizes',
      '64',
      '--rounds',
      '1',
      '--duration',
      '50',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.schema).toMatch(/^vipc-bench\//);
    expect(doc.scenarios.map((s: { id: string }) => s.id)).toEqual(['unix-socket']);
  });
});

describe('vipc yocto emit', () => {
  it('writes the default layer to a directory, as --dry-run lists it, and --prune removes strays', () => {
    const out = join(dir, 'meta-vipc');
    const dry = vipc(['yocto', 'emit', '--release', 'scarthgap', '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    const listed = (JSON.parse(dry.stdout).files as { path: string }[]).map((f) => f.path).sort();
    expect(listed).toContain('conf/layer.conf');

    const r = vipc(['yocto', 'emit', '--release', 'scarthgap', '--out', out, '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ ok: true, release: 'scarthgap', dir: out, removed: [] });
    expect([...doc.files].sort()).toEqual(listed);
    for (const f of listed) expect(existsSync(join(out, f))).toBe(true);
    expect(readdirSync(join(out, 'conf'))).toContain('layer.conf');

    writeFileSync(join(out, 'stray.txt'), 'x');
    const again = vipc(['yocto', 'emit', '--release', 'scarthgap', '--out', out, '--prune', '--json']);
    expect(JSON.parse(again.stdout).removed).toEqual(['stray.txt']);
    expect(existsSync(join(out, 'stray.txt'))).toBe(false);
  });

  it('emits for a topology file, and a broken file points at its line', () => {
    const fixture = join(import.meta.dirname, '__fixtures__', 'topologies', 'two-containers.yaml');
    const r = vipc(['yocto', 'emit', fixture, '--release', 'styhead', '--out', join(dir, 'two'), '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).files.length).toBeGreaterThan(5);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'links:\n  - name: l0\n    mode: sometimes\n');
    const b = vipc(['yocto', 'emit', bad, '--release', 'styhead', '--out', join(dir, 'bad')]);
    expect(b.code).toBe(1);
    expect(b.stderr).toContain(`${bad}:3:11: links[0].mode: must be one of: poll, event`);
  });
});

describe('vipc lxc', () => {
  const lxc = peerTest(LXC);
  lxc('create --start, list, info, exec, stop, destroy: a real container, nothing left', () => {
    const lxcpath = join(dir, 'lxc');
    const name = `vipc-cli-${process.pid}`;
    const P = ['--lxcpath', lxcpath];
    try {
      const c = vipc(['lxc', 'create', name, '--socket-dir', dir, '--start', '--json', ...P]);
      expect(c.stderr).toBe('');
      expect(JSON.parse(c.stdout)).toMatchObject({ ok: true, name, started: true });
      const l = JSON.parse(vipc(['lxc', 'list', '--json', ...P]).stdout);
      expect(l.containers).toEqual([expect.objectContaining({ name, state: 'RUNNING' })]);
      expect(JSON.parse(vipc(['lxc', 'info', name, '--json', ...P]).stdout)).toMatchObject({
        state: 'RUNNING',
      });
      const e = vipc([
        'lxc',
        'exec',
        name,
        ...P,
        '--',
        'node',
        '-e',
        `console.log(require('fs').existsSync(${JSON.stringify(dir)}))`,
      ]);
      expect(e).toMatchObject({ code: 0, stdout: 'true\n' });
      const fail = vipc(['lxc', 'exec', name, ...P, '--', 'sh', '-c', 'exit 3']);
      expect(fail.code).toBe(1);
      expect(JSON.parse(vipc(['lxc', 'stop', name, '--json', ...P]).stdout)).toMatchObject({
        wasRunning: true,
      });
      expect(vipc(['lxc', 'destroy', name, ...P]).code).toBe(0);
      expect(JSON.parse(vipc(['lxc', 'list', '--json', ...P]).stdout).containers).toEqual([]);
      expect(vipc(['lxc', 'start', name, ...P])).toMatchObject({
        code: 1,
        stderr: expect.stringMatching(/no container/),
      });
    } finally {
      vipc(['lxc', 'destroy', name, ...P]);
    }
  });
});
