import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TWO_CONTAINERS_CLI } from './__fixtures__/two-containers.js';
import { renderLayer } from './emit.js';
import { DEFAULT_TOPOLOGY, fromCliTopology } from './model.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function haveSystemdAnalyze(): boolean {
  if (spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0) return true;
  const msg = 'systemd-analyze is missing: apt-get install systemd';
  if (process.env.CI === 'true') throw new Error(msg);
  console.warn(`skipping the unit checks: ${msg}`);
  return false;
}

describe('systemd units', () => {
  for (const [name, topology] of [
    ['default', DEFAULT_TOPOLOGY],
    ['two-containers', fromCliTopology(TWO_CONTAINERS_CLI)],
  ] as const) {
    it(`every unit of the ${name} layer passes systemd-analyze verify (with @BINDIR@ etc. as do_install substitutes them)`, () => {
      if (!haveSystemdAnalyze()) return;
      const root = mkdtempSync(join(tmpdir(), `vipc-yocto-units-${process.pid}-`));
      dirs.push(root);
      const dirsOf = {
        '@BINDIR@': `${root}/usr/bin`,
        '@SYSCONFDIR@': `${root}/etc`,
        '@LIBEXECDIR@': `${root}/usr/libexec`,
      };
      for (const d of Object.values(dirsOf)) mkdirSync(d, { recursive: true });
      mkdirSync(join(root, 'etc/vipc'));
      for (const bin of ['usr/bin/vipc', 'usr/bin/dpdk-testpmd', 'usr/libexec/vipc-hugepages']) {
        writeFileSync(join(root, bin), '#!/bin/sh\n');
        chmodSync(join(root, bin), 0o755);
      }
      const files = renderLayer(topology);
      const units = files.filter((f) => f.path.endsWith('.service'));
      expect(units.length).toBeGreaterThanOrEqual(5);
      for (const f of files.filter((x) => x.path.endsWith('.env')))
        writeFileSync(join(root, 'etc/vipc', f.path.split('/').pop()!), f.content);
      const paths: string[] = [];
      for (const u of units) {
        let text = u.content;
        for (const [k, v] of Object.entries(dirsOf)) text = text.replaceAll(k, v);
        const p = join(root, u.path.split('/').pop()!);
        writeFileSync(p, text);
        paths.push(p);
      }
      const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...paths], {
        encoding: 'utf8',
        cwd: root,
      });
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    });
  }
});
