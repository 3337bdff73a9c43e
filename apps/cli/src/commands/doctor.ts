import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { CommandContext } from '../command.js';

export type FindingStatus = 'ok' | 'warn' | 'fail';

export interface Finding {
  id: string;
  area: 'kernel' | 'hugepages' | 'dpdk' | 'lxc' | 'permissions';
  status: FindingStatus;
  message: string;
  /** What to do about it (absent when status is ok). */
  fix?: string;
}

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return undefined;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

async function kernelFindings(): Promise<Finding[]> {
  const findings: Finding[] = [];
  try {
    const shm = await import('@vipc/shm');
    const fd = shm.memfdCreate('vipc-doctor', { size: 4096 });
    const map = shm.mmap(fd);
    map.unmap();
    fd.close();
    findings.push({
      id: 'memfd',
      area: 'kernel',
      status: 'ok',
      message: 'memfd_create and shared mappings work (no hugepages needed)',
    });
    const efd = shm.EventFd.create();
    efd.kick();
    efd.close();
    findings.push({
      id: 'eventfd',
      area: 'kernel',
      status: 'ok',
      message: 'eventfd works (event-mode notifications)',
    });
  } catch (err) {
    const e = err as Error & { code?: string };
    findings.push({
      id: 'memfd',
      area: 'kernel',
      status: 'fail',
      message: `shared memory is unavailable: ${e.message.split('\n')[0]}`,
      fix:
        e.code === 'ADDON_NOT_BUILT'
          ? 'build the native addon: pnpm --filter @vipc/shm run build:native'
          : 'use a kernel with CONFIG_MEMFD_CREATE (via CONFIG_TMPFS/SHMEM) and CONFIG_EVENTFD',
    });
  }
  const ns = ['mnt', 'uts', 'ipc', 'pid', 'net', 'user'];
  const missing = ns.filter((n) => !existsSync(`/proc/self/ns/${n}`));
  findings.push(
    missing.length === 0
      ? {
          id: 'namespaces',
          area: 'kernel',
          status: 'ok',
          message: 'namespaces: mnt, uts, ipc, pid, net, user',
        }
      : {
          id: 'namespaces',
          area: 'kernel',
          status: 'fail',
          message: `missing namespaces: ${missing.join(', ')}`,
          fix: `enable ${missing.map((n) => `CONFIG_${n.toUpperCase()}_NS`).join(', ')} in the kernel`,
        },
  );
  findings.push(
    existsSync('/sys/fs/cgroup')
      ? {
          id: 'cgroups',
          area: 'kernel',
          status: 'ok',
          message: 'cgroup filesystem mounted at /sys/fs/cgroup',
        }
      : {
          id: 'cgroups',
          area: 'kernel',
          status: 'warn',
          message: 'no cgroup filesystem at /sys/fs/cgroup',
          fix: 'mount cgroup2 on /sys/fs/cgroup (LXC resource limits need it)',
        },
  );
  return findings;
}

function hugepageFindings(): Finding[] {
  const findings: Finding[] = [];
  const fs = read('/proc/filesystems') ?? '';
  if (!/\bhugetlbfs\b/.test(fs)) {
    return [
      {
        id: 'hugetlbfs',
        area: 'hugepages',
        status: 'warn',
        message: 'the kernel has no hugetlbfs (memfd still works)',
        fix: 'enable CONFIG_HUGETLBFS and CONFIG_HUGETLB_PAGE for hugepage-backed rings',
      },
    ];
  }
  const base = '/sys/kernel/mm/hugepages';
  const sizes = existsSync(base) ? readdirSync(base) : [];
  for (const dir of sizes) {
    const total = Number(read(join(base, dir, 'nr_hugepages')) ?? 0);
    const free = Number(read(join(base, dir, 'free_hugepages')) ?? 0);
    const size = dir.replace('hugepages-', '');
    findings.push(
      total > 0
        ? {
            id: `hugepages-${size}`,
            area: 'hugepages',
            status: 'ok',
            message: `${size} pages: ${total} reserved, ${free} free`,
          }
        : {
            id: `hugepages-${size}`,
            area: 'hugepages',
            status: 'warn',
            message: `${size} pages: none reserved (optional: vipc and DPDK work without hugepages)`,
            fix: `echo 512 > ${base}/${dir}/nr_hugepages   (as root)`,
          },
    );
  }
  const mounts = read('/proc/mounts') ?? '';
  const mounted = mounts
    .split('\n')
    .filter((l) => l.split(' ')[2] === 'hugetlbfs')
    .map((l) => l.split(' ')[1]);
  findings.push(
    mounted.length > 0
      ? {
          id: 'hugetlbfs-mount',
          area: 'hugepages',
          status: 'ok',
          message: `hugetlbfs mounted at ${mounted.join(', ')}`,
        }
      : {
          id: 'hugetlbfs-mount',
          area: 'hugepages',
          status: 'warn',
          message: 'no hugetlbfs mount (optional)',
          fix: 'mount -t hugetlbfs nodev /dev/hugepages   (as root; add uid=,gid=,mode=0770 for a user-owned mount)',
        },
  );
  return findings;
}

function dpdkFindings(): Finding[] {
  const testpmd = which('dpdk-testpmd');
  if (!testpmd) {
    return [
      {
        id: 'dpdk-testpmd',
        area: 'dpdk',
        status: 'warn',
        message: 'dpdk-testpmd not found (needed only to talk to DPDK apps)',
        fix: 'apt-get install dpdk-dev   (Debian: the dpdk package alone has no testpmd)',
      },
    ];
  }
  let version = 'unknown version';
  try {
    version = execFileSync('pkg-config', ['--modversion', 'libdpdk'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    // pkg-config or the .pc file missing: keep going
  }
  return [
    {
      id: 'dpdk-testpmd',
      area: 'dpdk',
      status: 'ok',
      message: `dpdk-testpmd at ${testpmd} (DPDK ${version})`,
    },
  ];
}

function lxcFindings(): Finding[] {
  const findings: Finding[] = [];
  const start = which('lxc-start');
  findings.push(
    start
      ? { id: 'lxc', area: 'lxc', status: 'ok', message: `LXC tools at ${start}` }
      : {
          id: 'lxc',
          area: 'lxc',
          status: 'warn',
          message: 'LXC not found: `vipc demo` falls back to a second process',
          fix: 'apt-get install lxc',
        },
  );
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
  findings.push(
    busybox
      ? {
          id: 'busybox',
          area: 'lxc',
          status: 'ok',
          message: `busybox at ${busybox} (container root filesystems)`,
        }
      : {
          id: 'busybox',
          area: 'lxc',
          status: 'warn',
          message: 'no busybox for container root filesystems',
          fix: 'apt-get install busybox-static',
        },
  );
  return findings;
}

function permissionFindings(): Finding[] {
  const root = process.getuid?.() === 0;
  const findings: Finding[] = [
    root
      ? {
          id: 'user',
          area: 'permissions',
          status: 'ok',
          message: 'running as root: containers and hugepage reservation are possible',
        }
      : {
          id: 'user',
          area: 'permissions',
          status: 'warn',
          message:
            'not root: vhost-user links, memfd memory and DPDK --no-huge work; LXC containers and hugepage reservation need root',
          fix: 'run `sudo vipc ...` for containers, or keep to process endpoints',
        },
  ];
  const dir = '/run/vipc';
  const parent = existsSync(dir) ? dir : '/run';
  try {
    accessSync(parent, constants.W_OK);
    findings.push({
      id: 'socket-dir',
      area: 'permissions',
      status: 'ok',
      message: `socket directory ${dir} is usable`,
    });
  } catch {
    findings.push({
      id: 'socket-dir',
      area: 'permissions',
      status: 'warn',
      message: `cannot create sockets in ${dir}`,
      fix: `sudo install -d -m 0770 -o $USER ${dir}, or set socketDir in your topology`,
    });
  }
  return findings;
}

export async function collectFindings(): Promise<Finding[]> {
  return [
    ...(await kernelFindings()),
    ...hugepageFindings(),
    ...dpdkFindings(),
    ...lxcFindings(),
    ...permissionFindings(),
  ];
}

export async function run(ctx: CommandContext): Promise<number> {
  const findings = await collectFindings();
  const failed = findings.filter((f) => f.status === 'fail').length;
  if (ctx.out.json) {
    ctx.out.document({ ok: failed === 0, findings });
    return failed === 0 ? 0 : 1;
  }
  const mark = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;
  for (const f of findings) {
    ctx.out.print(`[${mark[f.status]}] ${f.area}: ${f.message}`);
    if (f.fix) ctx.out.print(`       fix: ${f.fix}`);
  }
  const warned = findings.filter((f) => f.status === 'warn').length;
  ctx.out.print('');
  ctx.out.print(
    failed === 0
      ? `ready (${warned} optional item(s) above)`
      : `${failed} problem(s) block vipc; see the fixes above`,
  );
  return failed === 0 ? 0 : 1;
}
