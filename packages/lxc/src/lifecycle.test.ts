import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { renderConfig } from './config.js';
import { baseConfig } from './container.js';
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
import { socketDirMount } from './wiring.js';

const missing = lxcUnavailable();
if (missing && !mustRun) console.warn(`skipping LXC lifecycle tests: ${missing}`);

describe.skipIf(missing !== undefined && !mustRun)('lifecycle against real LXC', () => {
  it('has LXC', () => {
    expect(missing).toBeUndefined();
  });

  const lxc = tempLxc('life');
  const share = join(tmpdir(), `vipc-lxc-share-${process.pid}`);

  afterEach(async () => {
    // Every test removes its containers; whatever is left is removed here and fails the test.
    expect(await leftovers(lxc)).toEqual([]);
    expect(await monitorsGone(lxc.lxcpath)).toEqual([]);
    expect(mountsUnder(lxc.lxcpath)).toEqual([]);
    expect(leftoverCgroups()).toEqual([]);
  });

  afterAll(async () => {
    await cleanupLxc(lxc);
    rmSync(share, { recursive: true, force: true });
    expect(existsSync(lxc.lxcpath)).toBe(false);
    expect(mountsUnder(lxc.lxcpath)).toEqual([]);
    expect(await monitorsGone(lxc.lxcpath)).toEqual([]);
  });

  it('creates, starts, attaches to, freezes, stops and destroys a busybox template container', async () => {
    const name = `bb-${process.pid}`;
    const box = await lxc.create(name, {
      template: 'busybox',
      config: { net: [{ type: 'empty' }], apparmorProfile: 'unconfined' },
    });
    expect(await lxc.list()).toContain(name);
    expect((await box.info()).state).toBe('STOPPED');

    // The config lxc-create wrote round-trips; an edit through the model changes one line and takes effect.
    const written = readFileSync(box.configPath, 'utf8');
    const config = box.readConfig();
    expect(renderConfig(config)).toBe(written);
    expect(config.utsname).toBe(name);
    mkdirSync(share, { recursive: true });
    writeFileSync(join(share, 'marker'), 'bound');
    config.mounts = [...(config.mounts ?? []), socketDirMount(share, '/mnt/share')];
    box.writeConfig(config);
    const edited = readFileSync(box.configPath, 'utf8');
    expect(edited.split('\n').length).toBe(written.split('\n').length + 1);
    expect(edited).toContain(`lxc.mount.entry = ${share} mnt/share none bind,create=dir 0 0`);

    await box.start();
    expect((await box.attach(['cat', '/mnt/share/marker'])).stdout).toBe('bound');
    expect((await box.attach(['hostname'])).stdout).toBe(`${name}\n`); // the template quoted it
    const info = await box.info();
    expect(info.state).toBe('RUNNING');
    expect(info.pid).toBeGreaterThan(1);
    expect(info.memoryBytes).toBeGreaterThan(0);

    const r = await box.attach(
      ['/bin/sh', '-c', 'echo out; echo err >&2; echo "$VIPC_X"; env | sort; exit 3'],
      {
        env: { VIPC_X: 'hello' },
      },
    );
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toBe('err\n');
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('out');
    expect(lines[1]).toBe('hello');
    // Clean environment: nothing of the host's (HOME, VITEST, ...) leaks in.
    expect(r.stdout).not.toMatch(/VITEST|HOME=/);

    // stdin, and a command that outlives its timeout is killed, inside too
    expect(await box.attach(['cat'], { input: 'to stdin' })).toMatchObject({
      exitCode: 0,
      stdout: 'to stdin',
    });
    await expect(box.attach(['sleep', '1000'], { timeoutMs: 1000 })).rejects.toMatchObject({
      code: 'TIMEOUT',
    });
    const sleepers = async () =>
      (await box.attach(['/bin/sh', '-c', 'cat /proc/[0-9]*/cmdline | tr "\\0" " "'])).stdout.includes(
        'sleep 1000',
      );
    for (let i = 0; i < 100 && (await sleepers()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await sleepers()).toBe(false);

    await box.freeze();
    expect(await box.state()).toBe('FROZEN');
    await box.unfreeze();
    expect(await box.state()).toBe('RUNNING');

    const stopped = await box.stop({ timeoutMs: 10_000 });
    expect(stopped.wasRunning).toBe(true);
    expect(await box.state()).toBe('STOPPED');

    await box.destroy();
    expect(await lxc.list()).not.toContain(name);
    expect(existsSync(box.dir)).toBe(false);
  });

  it('runs node inside a rootfs it built, with a host directory bind-mounted both ways', async () => {
    mkdirSync(share, { recursive: true });
    writeFileSync(join(share, 'from-host.txt'), 'written by the host');
    const name = `node-${process.pid}`;
    const config = baseConfig();
    config.mounts = [socketDirMount(share, '/run/vipc')];
    const box = await lxc.create(name, { config, rootfs: true });
    try {
      await box.start();
      const script = [
        'const fs = require("fs");',
        'const seen = fs.readFileSync("/run/vipc/from-host.txt", "utf8");',
        'fs.writeFileSync("/run/vipc/from-container.txt", "written inside, pid " + process.pid);',
        'console.log(JSON.stringify({ version: process.version, seen, env: Object.keys(process.env).sort() }));',
      ].join('\n');
      const r = await box.attach(['node', '-e', script], { env: { VIPC_ROLE: 'guest' } });
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      const out = JSON.parse(r.stdout) as { version: string; seen: string; env: string[] };
      expect(out.version).toBe(process.version);
      expect(out.seen).toBe('written by the host');
      expect(out.env).toContain('VIPC_ROLE');
      expect(out.env).not.toContain('HOME');
      expect(readFileSync(join(share, 'from-container.txt'), 'utf8')).toMatch(/^written inside, pid \d+$/);

      // The exit code of the command is propagated
      const bad = await box.attach(['node', '-e', 'process.stderr.write("boom"); process.exit(5)']);
      expect(bad.exitCode).toBe(5);
      expect(bad.stderr).toBe('boom');

      const stopped = await box.stop({ timeoutMs: 20_000 });
      expect(stopped).toEqual({ wasRunning: true, graceful: true });

      // An application container on the same config: lxc-execute propagates the exit code.
      const ex = await lxc.execute(name, ['node', '-e', 'console.log("pid", process.pid); process.exit(7)']);
      expect(ex.exitCode).toBe(7);
      expect(ex.stdout).toMatch(/^pid \d+\n$/);
    } finally {
      await box.destroy();
    }
    expect(existsSync(box.dir)).toBe(false);
  });

  it('launch destroys the container again when the start fails; await using destroys it at scope end', async () => {
    const name = `launch-${process.pid}`;
    const config = baseConfig();
    config.mounts = [socketDirMount(`/nonexistent-vipc-${process.pid}`, '/run/vipc')];
    await expect(lxc.launch(name, { config, rootfs: { node: false } })).rejects.toMatchObject({
      code: 'START_FAILED',
    });
    expect(lxc.exists(name)).toBe(false);
    {
      await using box = await lxc.launch(name, { config: baseConfig(), rootfs: { node: false } });
      expect(await box.state()).toBe('RUNNING');
    }
    expect(lxc.exists(name)).toBe(false);
  });

  it('refuses a name clash and leaves the existing container alone', async () => {
    const name = `clash-${process.pid}`;
    const box = await lxc.create(name, { config: baseConfig(), rootfs: { node: false } });
    try {
      await expect(lxc.create(name, { config: baseConfig(), rootfs: { node: false } })).rejects.toMatchObject(
        {
          code: 'NAME_CLASH',
        },
      );
      await expect(lxc.create(name, { template: 'busybox' })).rejects.toBeInstanceOf(LxcError);
      expect(existsSync(join(box.dir, 'rootfs', 'bin', 'busybox'))).toBe(true);
    } finally {
      await box.destroy();
    }
  });
});
