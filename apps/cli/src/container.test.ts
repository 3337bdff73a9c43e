// The container side of the demo and of `vipc up`: a real LXC container (through
// @vipc/lxc) that runs this CLI's built bin with the workspace bind-mounted read-only.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { containerSupport, startContainer } from './container.js';
import { bin, LXC, peerTest, waitFor } from './test-helpers.js';
import { workspaceRoot } from './workspace.js';

const dir = mkdtempSync(join(tmpdir(), `vipc-ct-${process.pid}-`));
const lxcPath = join(dir, 'lxc');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('endpoint containers', () => {
  const lxc = peerTest(LXC);

  lxc('are supported here', async () => {
    expect(await containerSupport()).toEqual({ ok: true });
  });

  lxc('run the vipc bin inside, see the shared dir, and are gone after destroy', async () => {
    const shared = join(dir, 'shared');
    const root = workspaceRoot();
    let created: string | undefined;
    const c = await startContainer({
      name: `vipc-ct-${process.pid}`,
      lxcPath,
      binds: [
        { source: dir, target: dir, readOnly: false },
        { source: root, target: root, readOnly: true },
      ],
      onCreated: (p) => {
        created = p;
      },
    });
    try {
      expect(created).toBe(lxcPath);
      const child = c.exec([process.execPath, bin, '--version'], { VIPC_INSTANCE: 'x' });
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      const code = await new Promise((r) => child.once('exit', r));
      expect(code).toBe(0);
      expect(out.trim()).toMatch(/^\d+\.\d+\.\d+$/);

      // Detached: output goes to a host file through the shared dir; the workspace is read-only.
      const log = join(dir, 'detached.log');
      writeFileSync(shared, '');
      c.spawnDetached(
        [
          process.execPath,
          '-e',
          `try{require('fs').writeFileSync(${JSON.stringify(join(root, 'x'))},'')}catch(e){console.log(e.code)}`,
        ],
        log,
        {},
      );
      await waitFor('the detached command', () => readFileSync(log, 'utf8').includes('EROFS'));
    } finally {
      await c.destroy();
    }
    const { Lxc } = await import('@vipc/lxc');
    expect(new Lxc({ lxcpath: lxcPath }).exists(`vipc-ct-${process.pid}`)).toBe(false);
  });
});
