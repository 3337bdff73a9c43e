import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { CommandContext } from '../command.js';

export type FindingStatus = 'ok' | 'warn' | 'fail';

export interface Finding {
  id: string;
  area: 'kernel' | 'hugepages' | 'dpdk' | 'lxc' | 'permissions' | 'build';
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
    const kb = Number(/^(\d+)kB$/.exec(size)?.[1] ?? 0);
    const label = kb >= 1 << 20 ? `${kb / (1 << 20)} GiB` : kb >= 1024 ? `${kb / 1024} MiB` : size;
    // About 1 GiB worth: 512 pages of 2 MiB, 1 page of 1 GiB (not 512 GiB).
    const pages = kb > 0 ? Math.max(1, Math.floor((1 << 20) / kb)) : 1;
    const cliSize = kb === 2048 ? '2M' : kb === 1 << 20 ? '1G' : undefined;
    findings.push(
      total > 0
        ? {
            id: `hugepages-${size}`,
            area: 'hugepages',
            status: 'ok',
            message: `${label} pages: ${total} reserved, ${free} free`,
          }
        : {
            id: `hugepages-${size}`,
            area: 'hugepages',
            status: 'warn',
            message: `${label} pages: none reserved (optional: vipc and DPDK work without hugepages)`,
            fix: cliSize
              ? `vipc dpdk hugepages --reserve ${pages}${cliSize === '2M' ? '' : ' --size 1G'}   (as root)`
              : `echo ${pages} > ${base}/${dir}/nr_hugepages   (as root)`,
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

async function dpdkFindings(): Promise<Finding[]> {
  let dpdk: typeof import('@vipc/dpdk');
  try {
    dpdk = await import('@vipc/dpdk');
  } catch {
    return [legacyTestpmdFinding()];
  }
  const d = dpdk.discoverDpdk({ probeApp: false });
  if (!d.installed) {
    return [
      {
        id: 'dpdk-testpmd',
        area: 'dpdk',
        status: 'warn',
        message: 'dpdk-testpmd not found (needed only to talk to DPDK apps)',
        fix: `apt-get install ${d.package}   (Debian: the dpdk package alone has no testpmd)`,
      },
    ];
  }
  const findings: Finding[] = [
    {
      id: 'dpdk-testpmd',
      area: 'dpdk',
      status: 'ok',
      message: `dpdk-testpmd at ${d.testpmd} (DPDK ${d.version ?? 'unknown version'})`,
    },
  ];
  // Shared builds load PMDs from a directory; a static build has them inside (pmdDir undefined).
  const missing = d.pmdDir ? ['net_vhost', 'net_virtio'].filter((p) => !d.pmds.includes(p)) : [];
  findings.push(
    missing.length === 0
      ? {
          id: 'dpdk-pmds',
          area: 'dpdk',
          status: 'ok',
          message: d.pmdDir
            ? `vhost and virtio-user PMDs present (${d.pmdDir})`
            : 'PMDs built into testpmd (static DPDK)',
        }
      : {
          id: 'dpdk-pmds',
          area: 'dpdk',
          status: 'warn',
          message: `DPDK lacks the ${missing.join(', ')} PMD(s): testpmd cannot speak vhost-user`,
          fix: 'apt-get install --reinstall dpdk-dev librte-net-vhost23 librte-net-virtio23',
        },
  );
  const leftovers = dpdk.findHugepageFiles().filter((f) => f.heldBy.length === 0);
  if (leftovers.length > 0)
    findings.push({
      id: 'dpdk-leftovers',
      area: 'hugepages',
      status: 'warn',
      message: `${leftovers.length} hugepage file(s) left by dead DPDK processes hold memory`,
      fix: 'vipc dpdk hugepages --clean',
    });
  return findings;
}

function legacyTestpmdFinding(): Finding {
  const testpmd = which('dpdk-testpmd');
  return testpmd
    ? { id: 'dpdk-testpmd', area: 'dpdk', status: 'ok', message: `dpdk-testpmd at ${testpmd}` }
    : {
        id: 'dpdk-testpmd',
        area: 'dpdk',
        status: 'warn',
        message: 'dpdk-testpmd not found (needed only to talk to DPDK apps)',
        fix: 'apt-get install dpdk-dev   (Debian: the dpdk package alone has no testpmd)',
      };
}

/** Where `vipc demo` will run its front-end, and why. */
async function demoFinding(): Promise<Finding> {
  const { containerSupport } = await import('../container.js');
  const s = await containerSupport();
  return s.ok
    ? {
        id: 'demo-endpoint',
        area: 'lxc',
        status: 'ok',
        message: 'vipc demo runs its front-end in an LXC container',
      }
    : {
        id: 'demo-endpoint',
        area: 'lxc',
        status: 'warn',
        message: `vipc demo falls back to a second process: ${s.reason}`,
        fix: s.fix ?? 'run as root with LXC installed',
      };
}

/** The workspace packages the commands load: each must be built. */
async function buildFindings(): Promise<Finding[]> {
  const packages: [string, () => Promise<unknown>, string][] = [
    ['@vipc/vhost-user', () => import('@vipc/vhost-user'), 'demo, send, recv, up (vhost-user links)'],
    ['@vipc/vring', () => import('@vipc/vring'), 'the virtqueues under every link'],
    ['@vipc/dpdk', () => import('@vipc/dpdk'), 'vipc dpdk, DPDK endpoints of up'],
    ['@vipc/lxc', () => import('@vipc/lxc'), 'containers of demo, up and vipc lxc'],
    ['@vipc/yocto', () => import('@vipc/yocto'), 'vipc yocto emit'],
  ];
  const findings: Finding[] = [];
  for (const [name, load, what] of packages) {
    try {
      await load();
      findings.push({
        id: `package-${name.slice(6)}`,
        area: 'build',
        status: 'ok',
        message: `${name} is built`,
      });
    } catch (err) {
      findings.push({
        id: `package-${name.slice(6)}`,
        area: 'build',
        status: 'fail',
        message: `${name} cannot be loaded (${(err as Error).message.split('\n')[0]}); needed by ${what}`,
        fix: `pnpm --filter ${name} build   (or npm run setup)`,
      });
    }
  }
  return findings;
}

async function lxcFindings(): Promise<Finding[]> {
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
  let busybox: string | undefined;
  try {
    busybox = (await import('@vipc/lxc')).findStaticBusybox();
  } catch {
    busybox = undefined;
  }
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
          message: 'no static busybox for container root filesystems',
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
    ...(await dpdkFindings()),
    ...(await lxcFindings()),
    ...permissionFindings(),
    ...(await buildFindings()),
    await demoFinding(),
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
