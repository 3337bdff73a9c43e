import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { BUSYBOX_PACKAGE, DEFAULT_LXCPATH, LXC_PACKAGE } from './defs.js';
import { findStaticBusybox } from './rootfs.js';
import { lxcTool } from './run.js';

/** ok: fine; warn: some features will not work; fail: containers cannot start. */
export type FindingStatus = 'ok' | 'warn' | 'fail';

export type FindingGroup =
  | 'tools'
  | 'privileges'
  | 'namespaces'
  | 'cgroups'
  | 'kernel'
  | 'security'
  | 'network'
  | 'ipc';

export interface Finding {
  /** Stable id, e.g. `namespace.user`, `kernel.CONFIG_VETH`, `cgroup.controller.memory`. */
  id: string;
  group: FindingGroup;
  status: FindingStatus;
  /** One line: what was checked and what was found. */
  detail: string;
  /** What to do when status is not ok. */
  fix?: string;
}

export interface HostReport {
  /** No finding failed. */
  ok: boolean;
  findings: Finding[];
  /** Where the kernel config was read from (undefined when none was found). */
  kernelConfigSource?: string;
  /** `legacy` (cgroup v1 only), `hybrid` (v1 controllers + a v2 tree), `unified` (v2 only), or `none`. */
  cgroupLayout: CgroupLayout;
}

export type CgroupLayout = 'legacy' | 'hybrid' | 'unified' | 'none';

export interface HostCheckOptions {
  /** Root of procfs (default /proc); tests point this at a fake tree. */
  procRoot?: string;
  /** Root of sysfs (default /sys). */
  sysRoot?: string;
  /** Directory with config-<release> files (default /boot). */
  bootDir?: string;
  /** Kernel release (default os.release()). */
  kernelRelease?: string;
  /** Where to look for the lxc-* tools (PATH syntax). */
  toolPath?: string;
  /** Where static busybox may be (default the Debian locations). */
  busybox?: string;
  /** The lxcpath that will be used (default /var/lib/lxc). */
  lxcpath?: string;
}

interface KernelOption {
  name: string;
  /** fail when missing, or warn */
  required: boolean;
  why: string;
}

/** The kernel options lxc-checkconfig looks at, plus what vipc endpoints need. */
export const KERNEL_OPTIONS: readonly KernelOption[] = [
  { name: 'CONFIG_NAMESPACES', required: true, why: 'namespaces' },
  { name: 'CONFIG_UTS_NS', required: true, why: 'the UTS namespace (hostname)' },
  { name: 'CONFIG_IPC_NS', required: true, why: 'the IPC namespace' },
  { name: 'CONFIG_PID_NS', required: true, why: 'the PID namespace' },
  { name: 'CONFIG_NET_NS', required: true, why: 'the network namespace' },
  { name: 'CONFIG_USER_NS', required: false, why: 'unprivileged containers (idmaps)' },
  { name: 'CONFIG_CGROUPS', required: true, why: 'control groups' },
  {
    name: 'CONFIG_CGROUP_DEVICE',
    required: false,
    why: 'the cgroup v1 devices controller (lxc.cgroup.devices.*)',
  },
  { name: 'CONFIG_CGROUP_BPF', required: false, why: 'device limits on cgroup v2 (lxc.cgroup2.devices.*)' },
  { name: 'CONFIG_CGROUP_FREEZER', required: false, why: 'freeze/unfreeze on cgroup v1' },
  { name: 'CONFIG_CGROUP_SCHED', required: false, why: 'CPU shares' },
  { name: 'CONFIG_CGROUP_PIDS', required: false, why: 'pids limits' },
  { name: 'CONFIG_CPUSETS', required: false, why: 'CPU pinning (cpuset.cpus)' },
  { name: 'CONFIG_MEMCG', required: false, why: 'memory limits and memory use in info' },
  { name: 'CONFIG_VETH', required: false, why: 'veth networks' },
  { name: 'CONFIG_MACVLAN', required: false, why: 'macvlan networks' },
  { name: 'CONFIG_BRIDGE', required: false, why: 'the lxcbr0 bridge' },
  { name: 'CONFIG_POSIX_MQUEUE', required: false, why: 'POSIX message queues inside' },
  { name: 'CONFIG_SECCOMP_FILTER', required: false, why: 'lxc.seccomp.profile' },
  { name: 'CONFIG_UNIX', required: true, why: 'Unix sockets (vhost-user, fd passing)' },
  { name: 'CONFIG_MEMFD_CREATE', required: false, why: 'memfd shared memory' },
  { name: 'CONFIG_HUGETLBFS', required: false, why: 'hugepage-backed shared memory' },
  { name: 'CONFIG_CHECKPOINT_RESTORE', required: false, why: 'lxc-checkpoint (CRIU)' },
];

/** `CONFIG_X=y|m|value` lines of a kernel .config; `# CONFIG_X is not set` gives 'n'. */
export function parseKernelConfig(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split('\n')) {
    const set = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (set) map.set(set[1] as string, set[2] as string);
    const unset = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line);
    if (unset) map.set(unset[1] as string, 'n');
  }
  return map;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The running kernel's config: /proc/config.gz, else /boot/config-<release>. */
export function readKernelConfig(
  options: HostCheckOptions = {},
): { source: string; options: Map<string, string> } | undefined {
  const proc = options.procRoot ?? '/proc';
  const gz = join(proc, 'config.gz');
  try {
    return { source: gz, options: parseKernelConfig(gunzipSync(readFileSync(gz)).toString('utf8')) };
  } catch {
    // not there (CONFIG_IKCONFIG_PROC off, or module not loaded)
  }
  const boot = join(options.bootDir ?? '/boot', `config-${options.kernelRelease ?? release()}`);
  const text = read(boot);
  return text === undefined ? undefined : { source: boot, options: parseKernelConfig(text) };
}

/** Mount points of a filesystem type, from mountinfo. */
function mountsOf(mountinfo: string, fstype: string): { point: string; options: string }[] {
  const out: { point: string; options: string }[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    if (right[0] === fstype) out.push({ point: left[4] ?? '', options: right[2] ?? '' });
  }
  return out;
}

const NAMESPACES: [string, string][] = [
  ['mnt', 'CONFIG_NAMESPACES'],
  ['uts', 'CONFIG_UTS_NS'],
  ['ipc', 'CONFIG_IPC_NS'],
  ['pid', 'CONFIG_PID_NS'],
  ['net', 'CONFIG_NET_NS'],
  ['user', 'CONFIG_USER_NS'],
  ['cgroup', 'CONFIG_CGROUPS'],
];

/**
 * A structured lxc-checkconfig: the tools, privileges, namespaces, cgroup
 * layout and controllers, kernel options, AppArmor, the default bridge and
 * the IPC facilities vipc uses, each finding with its fix. Reads only.
 */
export function checkHost(options: HostCheckOptions = {}): HostReport {
  const proc = options.procRoot ?? '/proc';
  const sys = options.sysRoot ?? '/sys';
  const findings: Finding[] = [];
  const add = (f: Finding): void => {
    findings.push(f);
  };

  // tools
  try {
    const start = lxcTool('lxc-start', options.toolPath);
    let version = '';
    try {
      version = execFileSync(start, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim();
    } catch {
      // version unknown
    }
    add({
      id: 'tools.lxc',
      group: 'tools',
      status: 'ok',
      detail: `lxc-start ${version || '(version unknown)'} at ${start}`,
    });
  } catch {
    add({
      id: 'tools.lxc',
      group: 'tools',
      status: 'fail',
      detail: `the lxc-* tools are not installed (Debian package "${LXC_PACKAGE}")`,
      fix: `apt-get install -y ${LXC_PACKAGE}`,
    });
  }
  try {
    add({
      id: 'tools.busybox',
      group: 'tools',
      status: 'ok',
      detail: `static busybox at ${findStaticBusybox(options.busybox)}`,
    });
  } catch {
    add({
      id: 'tools.busybox',
      group: 'tools',
      status: 'warn',
      detail: 'no statically linked busybox: buildRootfs cannot make root filesystems',
      fix: `apt-get install -y ${BUSYBOX_PACKAGE}`,
    });
  }

  // privileges
  const uid = process.getuid?.() ?? -1;
  add(
    uid === 0
      ? {
          id: 'privileges.root',
          group: 'privileges',
          status: 'ok',
          detail: 'running as root: privileged containers work',
        }
      : {
          id: 'privileges.root',
          group: 'privileges',
          status: 'warn',
          detail: `running as uid ${uid}: only unprivileged containers (with lxc.idmap) can start`,
          fix: 'run as root, or set up /etc/subuid, /etc/subgid and the uidmap package for unprivileged containers',
        },
  );
  const lxcpath = options.lxcpath ?? DEFAULT_LXCPATH;
  try {
    accessSync(existsSync(lxcpath) ? lxcpath : join(lxcpath, '..'), constants.W_OK);
    add({ id: 'privileges.lxcpath', group: 'privileges', status: 'ok', detail: `${lxcpath} is writable` });
  } catch {
    add({
      id: 'privileges.lxcpath',
      group: 'privileges',
      status: 'warn',
      detail: `${lxcpath} is not writable: containers cannot be created there`,
      fix: 'pass another lxcpath (Lxc({ lxcpath })) or run as root',
    });
  }

  // namespaces
  const nsDir = join(proc, 'self/ns');
  const present = new Set(existsSync(nsDir) ? readdirSync(nsDir) : []);
  for (const [ns, option] of NAMESPACES) {
    const ok = present.has(ns);
    add({
      id: `namespace.${ns}`,
      group: 'namespaces',
      status: ok ? 'ok' : ns === 'user' || ns === 'cgroup' ? 'warn' : 'fail',
      detail: ok
        ? `the ${ns} namespace is available`
        : `the kernel has no ${ns} namespace (${nsDir}/${ns} is missing)`,
      ...(ok ? {} : { fix: `use a kernel built with ${option}=y` }),
    });
  }
  const maxUserNs = read(join(proc, 'sys/user/max_user_namespaces'))?.trim();
  if (maxUserNs !== undefined) {
    const n = Number(maxUserNs);
    add(
      n > 0
        ? {
            id: 'namespace.user.max',
            group: 'namespaces',
            status: 'ok',
            detail: `user.max_user_namespaces = ${n}`,
          }
        : {
            id: 'namespace.user.max',
            group: 'namespaces',
            status: 'warn',
            detail: 'user.max_user_namespaces = 0: unprivileged containers cannot start',
            fix: 'sysctl -w user.max_user_namespaces=15000',
          },
    );
  }
  const userClone = read(join(proc, 'sys/kernel/unprivileged_userns_clone'))?.trim();
  if (userClone === '0') {
    add({
      id: 'namespace.user.unprivileged',
      group: 'namespaces',
      status: 'warn',
      detail: 'kernel.unprivileged_userns_clone = 0: only root can create user namespaces',
      fix: 'sysctl -w kernel.unprivileged_userns_clone=1',
    });
  }

  // cgroups
  const mountinfo = read(join(proc, 'self/mountinfo')) ?? '';
  const v1 = mountsOf(mountinfo, 'cgroup');
  const v2 = mountsOf(mountinfo, 'cgroup2');
  const layout: CgroupLayout =
    v1.length > 0 && v2.length > 0 ? 'hybrid' : v1.length > 0 ? 'legacy' : v2.length > 0 ? 'unified' : 'none';
  add(
    layout === 'none'
      ? {
          id: 'cgroup.layout',
          group: 'cgroups',
          status: 'fail',
          detail: 'no cgroup filesystem is mounted',
          fix: 'mount -t cgroup2 none /sys/fs/cgroup (or boot with systemd, which mounts them)',
        }
      : { id: 'cgroup.layout', group: 'cgroups', status: 'ok', detail: `cgroup layout: ${layout}` },
  );
  if (layout === 'hybrid') {
    add({
      id: 'cgroup.v2-limits',
      group: 'cgroups',
      status: 'warn',
      detail: 'hybrid layout: the controllers are on v1, so lxc.cgroup2.* limits are ignored',
      fix: 'use lxc.cgroup.* (v1) keys here, or boot with systemd.unified_cgroup_hierarchy=1 for v2 only',
    });
  }
  const wanted = ['cpuset', 'memory', 'devices', 'freezer', 'pids'];
  if (layout === 'legacy' || layout === 'hybrid') {
    const table = read(join(proc, 'cgroups')) ?? '';
    const enabled = new Map<string, boolean>();
    for (const line of table.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length === 4 && !line.startsWith('#')) enabled.set(f[0] as string, f[3] === '1');
    }
    const mountedControllers = new Set(v1.flatMap((m) => m.options.split(',')));
    for (const c of wanted) {
      const on = enabled.get(c) === true;
      const mounted = mountedControllers.has(c);
      add({
        id: `cgroup.controller.${c}`,
        group: 'cgroups',
        status: on && mounted ? 'ok' : c === 'devices' || c === 'cpuset' ? 'fail' : 'warn',
        detail:
          on && mounted
            ? `cgroup v1 controller ${c} is enabled and mounted`
            : `cgroup v1 controller ${c} is ${on ? 'not mounted' : 'not enabled'}`,
        ...(on && mounted
          ? {}
          : {
              fix: on
                ? `mount -t cgroup -o ${c} cgroup /sys/fs/cgroup/${c}`
                : `boot with cgroup_enable=${c} (and a kernel that has it)`,
            }),
      });
    }
  } else if (layout === 'unified') {
    const root = v2[0]?.point ?? '/sys/fs/cgroup';
    const controllers = new Set((read(join(root, 'cgroup.controllers')) ?? '').trim().split(/\s+/));
    for (const c of wanted) {
      // v2 has no freezer or devices controller: freezing is cgroup.freeze, devices are eBPF.
      if (c === 'freezer' || c === 'devices') continue;
      const on = controllers.has(c);
      add({
        id: `cgroup.controller.${c}`,
        group: 'cgroups',
        status: on ? 'ok' : 'warn',
        detail: on
          ? `cgroup v2 controller ${c} is available`
          : `cgroup v2 controller ${c} is not in ${root}/cgroup.controllers`,
        ...(on ? {} : { fix: `echo +${c} > ${root}/cgroup.subtree_control (or enable it in the kernel)` }),
      });
    }
  }

  // kernel options
  const kconfig = readKernelConfig(options);
  if (!kconfig) {
    add({
      id: 'kernel.config',
      group: 'kernel',
      status: 'warn',
      detail: `the kernel config is not readable (no ${join(proc, 'config.gz')}, no /boot/config-${options.kernelRelease ?? release()})`,
      fix: 'modprobe configs (CONFIG_IKCONFIG_PROC), or install the kernel package that ships /boot/config-*',
    });
  } else {
    add({
      id: 'kernel.config',
      group: 'kernel',
      status: 'ok',
      detail: `kernel config read from ${kconfig.source}`,
    });
    for (const opt of KERNEL_OPTIONS) {
      const v = kconfig.options.get(opt.name);
      const on = v === 'y' || v === 'm';
      add({
        id: `kernel.${opt.name}`,
        group: 'kernel',
        status: on ? 'ok' : opt.required ? 'fail' : 'warn',
        detail: on
          ? `${opt.name}=${v} (${opt.why})`
          : `${opt.name} is ${v === 'n' ? 'not set' : 'missing'}: no ${opt.why}`,
        ...(on ? {} : { fix: `use a kernel built with ${opt.name}=y` }),
      });
    }
  }

  // security
  const apparmor = read(join(sys, 'module/apparmor/parameters/enabled'))?.trim();
  add(
    apparmor === 'Y'
      ? {
          id: 'security.apparmor',
          group: 'security',
          status: 'ok',
          detail: 'AppArmor is enabled: LXC confines containers with its profiles',
        }
      : {
          id: 'security.apparmor',
          group: 'security',
          status: 'warn',
          detail:
            'AppArmor is not enabled: LXC ignores lxc.apparmor.profile, containers are not confined by it',
          fix: 'nothing is needed to run containers; for confinement use a kernel with AppArmor (security=apparmor), else keep lxc.apparmor.profile = unconfined as baseConfig() does',
        },
  );

  // network
  const bridge = existsSync(join(sys, 'class/net/lxcbr0'));
  add(
    bridge
      ? { id: 'network.lxcbr0', group: 'network', status: 'ok', detail: 'the default bridge lxcbr0 exists' }
      : {
          id: 'network.lxcbr0',
          group: 'network',
          status: 'warn',
          detail: 'no lxcbr0 bridge: configs with lxc.net.0.type = veth and link lxcbr0 fail to start',
          fix: 'use lxc.net.0.type = empty (loopback only) or none; or enable lxc-net (USE_LXC_BRIDGE="true" in /etc/default/lxc-net)',
        },
  );

  // ipc
  const huge = mountsOf(mountinfo, 'hugetlbfs');
  const nrHuge = Number(read(join(sys, 'kernel/mm/hugepages/hugepages-2048kB/nr_hugepages'))?.trim() ?? '0');
  add(
    huge.length > 0 && nrHuge > 0
      ? {
          id: 'ipc.hugepages',
          group: 'ipc',
          status: 'ok',
          detail: `hugetlbfs at ${huge.map((m) => m.point).join(', ')}, ${nrHuge} 2 MiB pages reserved`,
        }
      : {
          id: 'ipc.hugepages',
          group: 'ipc',
          status: 'warn',
          detail:
            huge.length === 0
              ? 'no hugetlbfs is mounted: hugetlbfsMount() has nothing to share (memfd works without)'
              : `hugetlbfs is mounted but no 2 MiB pages are reserved`,
          fix: 'echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages && mount -t hugetlbfs nodev /dev/hugepages',
        },
  );
  const shm = mountsOf(mountinfo, 'tmpfs').some((m) => m.point === '/dev/shm');
  add(
    shm
      ? { id: 'ipc.dev-shm', group: 'ipc', status: 'ok', detail: '/dev/shm is a tmpfs' }
      : {
          id: 'ipc.dev-shm',
          group: 'ipc',
          status: 'warn',
          detail: '/dev/shm is not a tmpfs mount',
          fix: 'mount -t tmpfs tmpfs /dev/shm',
        },
  );

  return {
    ok: findings.every((f) => f.status !== 'fail'),
    findings,
    ...(kconfig ? { kernelConfigSource: kconfig.source } : {}),
    cgroupLayout: layout,
  };
}
