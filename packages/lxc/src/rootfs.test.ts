import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { baseConfig, rootOwner } from './container.js';
import { LxcError } from './errors.js';
import {
  buildRootfs,
  DEFAULT_INIT,
  findStaticBusybox,
  isStaticElf,
  nodeRuntimeMounts,
  parseLdd,
} from './rootfs.js';
import { killProcessTree } from './run.js';
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
import { bindMount, containerTarget, fileMount, hugetlbfsMount, socketDirMount } from './wiring.js';

const scratch = mkdtempSync(join(tmpdir(), `vipc-lxc-rootfs-${process.pid}-`));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('ldd and ELF parsing', () => {
  it('parses ldd output: arrows, the loader, vdso and not-found', () => {
    const out = [
      '\tlinux-vdso.so.1 (0x00007ffd5b3f1000)',
      '\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f8f6098a000)',
      '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f8f6041e000)',
      '\t/lib64/ld-linux-x86-64.so.2 (0x00007f8f609a9000)',
    ].join('\n');
    expect(parseLdd(out)).toEqual([
      '/lib/x86_64-linux-gnu/libdl.so.2',
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib64/ld-linux-x86-64.so.2',
    ]);
    expect(parseLdd('\tstatically linked\n')).toEqual([]);
    expect(() => parseLdd('\tlibfoo.so.1 => not found\n')).toThrow(/missing on the host/);
  });

  it('tells a static binary from a dynamic one', () => {
    expect(isStaticElf(process.execPath)).toBe(false);
    const bad = join(scratch, 'not-elf');
    writeFileSync(bad, '#!/bin/sh\n');
    expect(isStaticElf(bad)).toBe(false);
    const busybox = (() => {
      try {
        return findStaticBusybox();
      } catch {
        return undefined;
      }
    })();
    if (busybox) expect(isStaticElf(busybox)).toBe(true);
    else if (mustRun) throw new Error('static busybox missing: apt-get install -y busybox-static');
  });
});

describe('wiring mounts', () => {
  it('renders bind entries with create=dir/file and a relative target', () => {
    expect(socketDirMount('/run/vipc')).toEqual({
      source: '/run/vipc',
      target: 'run/vipc',
      fstype: 'none',
      options: ['bind', 'create=dir'],
      dump: 0,
      pass: 0,
    });
    expect(hugetlbfsMount().target).toBe('dev/hugepages');
    expect(fileMount('/etc/hosts', '/etc/hosts', { readOnly: true }).options).toEqual([
      'bind',
      'ro',
      'create=file',
    ]);
    expect(bindMount('/a', '/b/c/', { optional: true }).options).toEqual(['bind', 'create=dir', 'optional']);
    expect(containerTarget('/x/./y')).toBe('x/y');
    for (const bad of ['relative', '/', '/..', '']) expect(() => containerTarget(bad)).toThrow(LxcError);
    expect(() => bindMount('relative', '/x')).toThrow(/absolute/);
  });
});

const missing = lxcUnavailable();
describe.skipIf(missing !== undefined && !mustRun)('root filesystems', () => {
  it('has LXC', () => {
    expect(missing).toBeUndefined();
  });
  const lxc = tempLxc('rootfs');
  const huge = join(scratch, 'hugetlbfs');
  let hugeMounted = false;

  afterEach(async () => {
    expect(await leftovers(lxc)).toEqual([]);
    expect(await monitorsGone(lxc.lxcpath)).toEqual([]);
    expect(mountsUnder(lxc.lxcpath)).toEqual([]);
    expect(leftoverCgroups()).toEqual([]);
  });

  afterAll(async () => {
    await cleanupLxc(lxc);
    if (hugeMounted) execFileSync('umount', [huge]);
    expect(mountsUnder(scratch)).toEqual([]);
    expect(existsSync(lxc.lxcpath)).toBe(false);
  });

  it('builds busybox, init, passwd and the node mounts; refuses a non-empty directory', () => {
    const path = join(scratch, 'fs1');
    const rootfs = buildRootfs({ path });
    expect(rootfs.init).toBe('/sbin/init');
    expect(rootfs.nodePath).toBe(process.execPath);
    expect(isStaticElf(join(path, 'bin/busybox'))).toBe(true);
    expect(lstatSync(join(path, 'bin/sh')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(path, 'bin/sh'))).toBe('busybox');
    expect(lstatSync(join(path, 'bin/busybox')).isSymbolicLink()).toBe(false);
    expect(readFileSync(join(path, 'sbin/init'), 'utf8')).toBe(DEFAULT_INIT);
    expect(statSync(join(path, 'sbin/init')).mode & 0o111).toBe(0o111);
    expect(readFileSync(join(path, 'etc/passwd'), 'utf8')).toMatch(/^root:x:0:0:/);
    expect(readFileSync(join(path, 'etc/group'), 'utf8')).toMatch(/^root:x:0:/);
    expect(statSync(join(path, 'tmp')).mode & 0o7777).toBe(0o1777);
    // The node binary and every ldd library, read-only, at the path the loader uses.
    const targets = rootfs.mounts.map((m) => `/${m.target}`);
    expect(targets[0]).toBe(process.execPath);
    expect(targets.some((t) => /\/libc\.so\.6$/.test(t))).toBe(true);
    expect(targets.some((t) => /ld-linux/.test(t))).toBe(true);
    for (const m of rootfs.mounts) {
      expect(m.options).toEqual(['bind', 'ro', 'create=file']);
      expect(existsSync(m.source)).toBe(true);
    }
    expect(() => buildRootfs({ path })).toThrow(/not empty/);
  });

  it("runs node in a rootfs that binds the host's /usr read-only ('usr' mode)", async () => {
    const mounts = nodeRuntimeMounts('usr');
    expect(mounts[0]).toMatchObject({ source: '/usr', target: 'usr', options: ['bind', 'ro', 'create=dir'] });
    const name = `usr-${process.pid}`;
    const box = await lxc.create(name, { config: baseConfig(), rootfs: { node: 'usr' } });
    try {
      await box.start();
      const r = await box.attach([
        'node',
        '-e',
        'console.log(process.version); require("fs").writeFileSync("/usr/x", "")',
      ]);
      expect(r.stdout).toBe(`${process.version}\n`);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toMatch(/EROFS|read-only/);
    } finally {
      await box.destroy();
    }
  });

  it('keeps a shared rootfs outside the container directory on destroy; lxc-execute on it; a cgroup v1 memory limit applies', async () => {
    const path = join(scratch, 'shared');
    const rootfs = buildRootfs({ path });
    const config = baseConfig({ rootfsPath: `dir:${path}` });
    config.mounts = rootfs.mounts;
    config.init = { cmd: rootfs.init };
    // cgroup v1 memory controller (legacy or hybrid layout), else v2.
    const v1 = existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes');
    if (v1) config.cgroup = [{ key: 'memory.limit_in_bytes', value: String(256 * 1024 * 1024) }];
    else config.cgroup2 = [{ key: 'memory.max', value: String(256 * 1024 * 1024) }];
    const name = `shared-${process.pid}`;
    const box = await lxc.create(name, { config });
    try {
      const r = await lxc.execute(name, ['/bin/sh', '-c', 'echo "$VIPC_X"; exit 4'], {
        env: { VIPC_X: 'set' },
      });
      expect(r).toMatchObject({ exitCode: 4, stdout: 'set\n' });
      // The v1 memory limit is applied (read from the host side, through init's cgroup).
      await box.start();
      const pid = (await box.info()).pid;
      const cgroups = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      const path = (v1 ? /^\d+:memory:(.*)$/m : /^0::(.*)$/m).exec(cgroups)?.[1];
      expect(path).toBeDefined();
      const file = v1
        ? `/sys/fs/cgroup/memory${path}/memory.limit_in_bytes`
        : `/sys/fs/cgroup${path}/memory.max`;
      const limit = readFileSync(file, 'utf8').trim();
      expect(limit).toBe(String(256 * 1024 * 1024));
      // and the container sees it in its own cgroup mount (baseConfig's cgroup:mixed:force)
      const inside = v1 ? '/sys/fs/cgroup/memory/memory.limit_in_bytes' : '/sys/fs/cgroup/memory.max';
      expect((await box.attach(['cat', inside])).stdout).toBe(`${256 * 1024 * 1024}\n`);
    } finally {
      await box.destroy();
    }
    expect(existsSync(box.dir)).toBe(false);
    expect(existsSync(join(path, 'bin/busybox'))).toBe(true);
    // lxc-execute from a config alone: no container needs to exist.
    const once = await lxc.execute(`once-${process.pid}`, ['node', '-e', 'console.log(1 + 1)'], {
      config: { ...config, utsname: 'once' },
    });
    expect(once).toMatchObject({ exitCode: 0, stdout: '2\n' });
    expect(await lxc.list()).toEqual([]);
  });

  it('bind-mounts a hugetlbfs at the chosen path, and a socket directory both ways', async () => {
    mkdirSync(huge, { recursive: true });
    execFileSync('mount', ['-t', 'hugetlbfs', '-o', 'pagesize=2M', 'nodev', huge]);
    hugeMounted = true;
    const name = `huge-${process.pid}`;
    const config = baseConfig();
    config.mounts = [hugetlbfsMount(huge, '/dev/hugepages'), hugetlbfsMount(huge, '/mnt/huge2')];
    const box = await lxc.create(name, { config, rootfs: { node: false } });
    try {
      await box.start();
      const r = await box.attach(['/bin/sh', '-c', 'grep hugetlbfs /proc/mounts | cut -d" " -f2,3']);
      expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual([
        '/dev/hugepages hugetlbfs',
        '/mnt/huge2 hugetlbfs',
      ]);
      // A file made inside is the host's file.
      const made = await box.attach(['/bin/sh', '-c', 'touch /dev/hugepages/vipc-probe && ls /mnt/huge2']);
      expect(made.stdout).toBe('vipc-probe\n');
      expect(existsSync(join(huge, 'vipc-probe'))).toBe(true);
      rmSync(join(huge, 'vipc-probe'));
    } finally {
      await box.destroy();
    }
    execFileSync('umount', [huge]);
    hugeMounted = false;
  });

  it('runs node in an unprivileged container: idmaps, a rootfs owned by the mapped ids', async () => {
    const name = `unpriv-${process.pid}`;
    const config = baseConfig();
    config.idmaps = [
      { type: 'u', nsid: 0, hostid: 200000, range: 65536 },
      { type: 'g', nsid: 0, hostid: 200000, range: 65536 },
    ];
    const box = await lxc.create(name, { config, rootfs: true });
    try {
      expect(statSync(join(box.dir, 'rootfs/bin/busybox')).uid).toBe(200000);
      expect(lstatSync(join(box.dir, 'rootfs/bin/sh')).gid).toBe(200000);
      await box.start();
      const pid = (await box.info()).pid;
      // On the host, init runs as the mapped uid; inside, it is root.
      expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^Uid:\t200000\t/m);
      const script =
        'console.log(process.getuid(), require("fs").readFileSync("/proc/self/uid_map", "utf8").trim().split(/\\s+/).join(" "))';
      const r = await box.attach(['node', '-e', script]);
      expect(r).toMatchObject({ exitCode: 0, stdout: '0 0 200000 65536\n' });
      expect(await box.stop({ timeoutMs: 20_000 })).toEqual({ wasRunning: true, graceful: true });
    } finally {
      await box.destroy();
    }
    expect(() => rootOwner([{ type: 'u', nsid: 0, hostid: 1, range: 1 }])).toThrow(/gid/);
  });

  it('spawns a long-running server inside that the host connects to over the bind-mounted directory', async () => {
    const share = join(scratch, 'spawn-share');
    mkdirSync(share, { recursive: true });
    writeFileSync(
      join(share, 'server.mjs'),
      `import net from 'node:net';
const srv = net.createServer((c) => c.on('data', (d) => c.end('echo:' + d)));
srv.listen('/run/vipc/guest.sock', () => console.log('listening'));
process.on('SIGTERM', () => srv.close(() => process.exit(0)));
`,
    );
    const name = `spawn-${process.pid}`;
    const config = baseConfig();
    config.mounts = [socketDirMount(share)];
    const box = await lxc.create(name, { config, rootfs: true });
    try {
      await box.start();
      const child = box.spawn(['node', '/run/vipc/server.mjs']);
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      await new Promise<void>((resolve, reject) => {
        child.stdout?.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
        child.on('exit', () => reject(new Error('server exited early')));
      });
      const net = await import('node:net');
      const reply = await new Promise<string>((resolve, reject) => {
        const c = net.connect(join(share, 'guest.sock'));
        let got = '';
        c.on('data', (d) => {
          got += d;
        });
        c.on('end', () => resolve(got));
        c.on('error', reject);
        c.write('ping');
      });
      expect(reply).toBe('echo:ping');
      // SIGTERM reaches the server inside (lxc-attach itself forwards nothing): it closes and exits 0.
      if (child.pid === undefined) throw new Error('no pid');
      killProcessTree(child.pid, 'SIGTERM');
      await exited;
      const ps = await box.attach(['/bin/sh', '-c', 'cat /proc/[0-9]*/cmdline | tr "\\0" " "']);
      expect(ps.stdout).not.toContain('server.mjs');
      expect(existsSync(join(share, 'guest.sock'))).toBe(false);
      expect((await box.stop({ timeoutMs: 20_000 })).wasRunning).toBe(true);
    } finally {
      await box.destroy();
    }
  });
});
