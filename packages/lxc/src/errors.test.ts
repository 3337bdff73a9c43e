import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { baseConfig, Lxc } from './container.js';
import { LxcError } from './errors.js';
import {
  cleanupLxc,
  leftoverCgroups,
  leftovers,
  lxcUnavailable,
  monitorsGone,
  mountsUnder,
  mustRun,
  tempLxc,
} from './test-support.js';
import { bindMount } from './wiring.js';

const missing = lxcUnavailable();

/** Pids whose command line mentions the path. */
function hookProcesses(path: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(path);
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function rejection(p: Promise<unknown>): Promise<LxcError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(LxcError);
    return e as LxcError;
  }
  throw new Error('expected a rejection');
}

describe('errors that need no LXC', () => {
  it('LXC_MISSING names the Debian package, and nothing is written', async () => {
    const dir = mkdtempSync(join(tmpdir(), `vipc-lxc-missing-${process.pid}-`));
    try {
      const lxc = new Lxc({ lxcpath: join(dir, 'p'), toolPath: join(dir, 'no-bin') });
      expect(Lxc.available(join(dir, 'no-bin'))).toBe(false);
      const e = await rejection(lxc.create('a', { config: baseConfig(), rootfs: { node: false } }));
      expect(e.code).toBe('LXC_MISSING');
      expect(e.message).toMatch(/Debian package "lxc"/);
      expect(e.fix).toBe('apt-get install -y lxc');
      expect(existsSync(join(dir, 'p'))).toBe(false);
      expect(() => lxc.toolFile('lxc-attach')).toThrow(/not installed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects container names LXC or a hostname cannot take', () => {
    const lxc = new Lxc({ lxcpath: join(tmpdir(), 'unused') });
    for (const bad of ['', '../x', 'a/b', '-a', 'a b', 'x'.repeat(64), 'a\n']) {
      expect(() => lxc.container(bad)).toThrow(LxcError);
    }
  });
});

describe.skipIf(missing !== undefined && !mustRun)(
  'failure paths against real LXC leave nothing behind',
  () => {
    it('has LXC', () => {
      expect(missing).toBeUndefined();
    });
    const lxc = tempLxc('err');
    const gate = join(lxc.lxcpath, '..', `vipc-lxc-gate-${process.pid}`);

    afterEach(async () => {
      // Every test removes its containers; whatever is left is removed here and fails the test.
      expect(await leftovers(lxc)).toEqual([]);
      expect(await monitorsGone(lxc.lxcpath)).toEqual([]);
      expect(mountsUnder(lxc.lxcpath)).toEqual([]);
      expect(leftoverCgroups()).toEqual([]);
    });

    afterAll(async () => {
      writeFileSync(gate, ''); // releases a slow hook that may still wait
      await cleanupLxc(lxc);
      rmSync(gate, { force: true });
      rmSync(`${gate}.sh`, { force: true });
      expect(existsSync(lxc.lxcpath)).toBe(false);
      expect(mountsUnder(lxc.lxcpath)).toEqual([]);
    });

    it('START_FAILED carries the excerpt of the LXC log that explains it, and the container is stopped', async () => {
      const name = `bad-mount-${process.pid}`;
      const config = baseConfig();
      config.mounts = [bindMount(`/nonexistent-vipc-${process.pid}`, '/mnt/x')];
      const box = await lxc.create(name, { config, rootfs: { node: false } });
      const e = await rejection(box.start({ timeoutMs: 30_000 }));
      expect(e.code).toBe('START_FAILED');
      expect(e.container).toBe(name);
      expect(e.logExcerpt).toMatch(new RegExp(`nonexistent-vipc-${process.pid}`));
      expect(e.logExcerpt).toMatch(/ERROR/);
      expect(e.message).toContain(e.logExcerpt);
      expect(e.fix).toMatch(/does not exist on the host/);
      expect(await box.state()).toBe('STOPPED');
      await box.destroy();
      expect(existsSync(box.dir)).toBe(false);
    });

    // (An init that exits at once is reported as START_FAILED too, but whether
    // lxc-info still sees it RUNNING first is a race, so no test pins that down.)
    it('START_FAILED when init cannot be run', async () => {
      for (const [cmd, why] of [[`/nonexistent-init-${process.pid}`, /Failed to exec/]] as const) {
        const name = `init-${process.pid}`;
        const config = baseConfig();
        config.init = { cmd };
        const box = await lxc.create(name, { config, rootfs: { node: false } });
        try {
          const e = await rejection(box.start({ timeoutMs: 30_000 }));
          expect(e.code).toBe('START_FAILED');
          expect(e.message).toMatch(why);
          expect(e.fix).toMatch(/cannot be executed/);
          expect(await box.state()).toBe('STOPPED');
        } finally {
          await box.destroy();
        }
      }
    });

    it('START_FAILED for a veth on a bridge that does not exist, with the fix', async () => {
      const name = `nobridge-${process.pid}`;
      const bridge = `vipcnb${process.pid % 100000}`;
      const config = baseConfig();
      config.net = [{ type: 'veth', link: bridge, flags: 'up' }];
      const box = await lxc.create(name, { config, rootfs: { node: false } });
      try {
        const e = await rejection(box.start({ timeoutMs: 30_000 }));
        expect(e.code).toBe('START_FAILED');
        expect(e.logExcerpt).toContain(`bridge "${bridge}"`);
        expect(e.fix).toMatch(new RegExp(`the bridge "${bridge}" does not exist`));
        expect(await box.state()).toBe('STOPPED');
      } finally {
        await box.destroy();
      }
    });

    it('STATE_TIMEOUT when RUNNING never comes (a pre-start hook that blocks), and nothing keeps running', async () => {
      writeFileSync(`${gate}.sh`, `#!/bin/sh\nwhile [ ! -e '${gate}' ]; do sleep 0.2; done\n`);
      chmodSync(`${gate}.sh`, 0o755);
      const name = `slow-${process.pid}`;
      const config = baseConfig();
      config.extra = [{ key: 'lxc.hook.pre-start', value: `${gate}.sh` }];
      const box = await lxc.create(name, { config, rootfs: { node: false } });
      const e = await rejection(box.start({ timeoutMs: 3000 }));
      expect(e.code).toBe('STATE_TIMEOUT');
      expect(e.message).toMatch(/did not reach RUNNING within 3000 ms/);
      // The monitor and its hook were killed: no process of this container is left.
      expect(box.monitorPids()).toEqual([]);
      expect(hookProcesses(`${gate}.sh`)).toEqual([]);
      expect(await box.state()).toBe('STOPPED');
      await box.destroy();
      expect(existsSync(box.dir)).toBe(false);
    });

    it('NOT_RUNNING, NOT_FOUND and NAME_CLASH', async () => {
      const name = `stopped-${process.pid}`;
      const box = await lxc.create(name, { config: baseConfig(), rootfs: { node: false } });
      try {
        expect((await rejection(box.attach(['true']))).code).toBe('NOT_RUNNING');
        expect((await rejection(box.freeze())).code).toBe('NOT_RUNNING');
        expect(await box.stop()).toEqual({ wasRunning: false, graceful: true });
        const clash = await rejection(lxc.create(name, { template: 'busybox' }));
        expect(clash.code).toBe('NAME_CLASH');
        expect(clash.fix).toMatch(/another name/);
      } finally {
        await box.destroy();
      }
      const gone = lxc.container(name);
      expect((await rejection(gone.info())).code).toBe('NOT_FOUND');
      expect((await rejection(gone.start())).code).toBe('NOT_FOUND');
      expect((await rejection(lxc.execute(name, ['true']))).code).toBe('NOT_FOUND');
    });

    it('CREATE_FAILED for a template that does not exist, with nothing left', async () => {
      const name = `notemplate-${process.pid}`;
      const e = await rejection(lxc.create(name, { template: `no-such-template-${process.pid}` }));
      expect(e.code).toBe('CREATE_FAILED');
      expect(existsSync(join(lxc.lxcpath, name))).toBe(false);
    });

    it('a rootfs that cannot be built (no static busybox there) leaves no container directory', async () => {
      const name = `norootfs-${process.pid}`;
      const e = await rejection(lxc.create(name, { config: baseConfig(), rootfs: { busybox: '/bin/sh' } }));
      expect(e.code).toBe('DEPENDENCY_MISSING');
      expect(e.message).toMatch(/busybox-static/);
      expect(readdirSync(lxc.lxcpath).filter((f) => f.startsWith(name))).toEqual([]);
    });
  },
);
