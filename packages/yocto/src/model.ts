import { RELEASES, type Release } from './defs.js';
import { YoctoError } from './errors.js';

/** A vhost-user link (same fields as the CLI topology's links). */
export interface YoctoLink {
  name: string;
  /** Absolute socket path on the host; containers see the socket at the same path. */
  socket: string;
  queues: number;
  queueSize: number;
  ring: 'split' | 'packed';
  mode: 'poll' | 'event';
}

export type Role = 'frontend' | 'backend';

/** The project's own endpoint (the `vipc` CLI, a Node.js app). */
export interface YoctoVipcEndpoint {
  kind: 'vipc';
  link: string;
  role: Role;
  action: 'echo' | 'sink' | 'source';
}

/** A DPDK testpmd endpoint (vhost PMD as back-end, virtio-user PMD as front-end). */
export interface YoctoDpdkEndpoint {
  kind: 'dpdk';
  link: string;
  role: Role;
  app: 'testpmd';
  forwardMode: 'rxonly' | 'txonly' | 'io' | 'macswap';
  memoryMb: number;
  useHugepages: boolean;
}

export interface YoctoHostEndpoint {
  name: string;
  endpoint: YoctoVipcEndpoint | YoctoDpdkEndpoint;
}

export interface YoctoMount {
  source: string;
  target: string;
  readOnly: boolean;
}

export interface YoctoContainer {
  name: string;
  /** Extra packages for the guest image, on top of the init system, nodejs and vipc. */
  packages: string[];
  mounts: YoctoMount[];
  memoryLimitMb: number | undefined;
  /** Start with the host (lxc.start.auto). */
  autostart: boolean;
  endpoint: YoctoVipcEndpoint;
}

export interface YoctoHugepages {
  pageSize: '2M' | '1G';
  count: number;
  mount: string;
}

/** The deployment the layer is emitted for: a superset of the CLI's Topology. */
export interface YoctoTopology {
  name: string;
  socketDir: string;
  hugepages: YoctoHugepages | undefined;
  links: YoctoLink[];
  endpoints: YoctoHostEndpoint[];
  containers: YoctoContainer[];
}

export type InitSystem = 'systemd' | 'sysvinit';

export interface Maintainer {
  name: string;
  email: string;
}

/** Everything about the layer that is not the deployment. */
export interface LayerOptions {
  /** Layer directory name, `meta-<collection>`. */
  layerName: string;
  release: Release;
  /** Regular expression of MACHINEs DPDK is enabled for (COMPATIBLE_MACHINE:pn-dpdk). */
  machine: string;
  /** Name of the distro conf the layer provides (`conf/distro/<distro>.conf`) and its override. */
  distro: string;
  initSystem: InitSystem;
  /** Kernel recipe the fragments are appended to (a kernel-yocto based recipe). */
  kernelRecipe: string;
  /** DPDK drives physical NICs: adds VFIO/UIO kernel options and modules. */
  physicalNics: boolean;
  maintainer: Maintainer;
  /** Version of the vipc CLI recipe. */
  vipcVersion: string;
  /** BBFILE_PRIORITY of the layer. */
  priority: number;
}

export const DEFAULT_LAYER_OPTIONS: Readonly<LayerOptions> = {
  layerName: 'meta-vipc',
  release: 'scarthgap',
  machine: 'qemux86-64|genericx86-64|qemuarm64|genericarm64',
  distro: 'vipc',
  initSystem: 'systemd',
  kernelRecipe: 'linux-yocto',
  physicalNics: false,
  maintainer: { name: 'vipc maintainers', email: 'vipc@lists.example.org' },
  vipcVersion: '0.1.0',
  priority: 10,
};

/**
 * The default deployment: a vipc back-end on the host and a DPDK testpmd back-end,
 * each with a container front-end on its own link, over 2 MiB hugepages.
 */
export const DEFAULT_TOPOLOGY: Readonly<YoctoTopology> = {
  name: 'vipc-default',
  socketDir: '/run/vipc',
  hugepages: { pageSize: '2M', count: 256, mount: '/dev/hugepages' },
  links: [
    { name: 'ctl', socket: '/run/vipc/ctl.sock', queues: 1, queueSize: 256, ring: 'split', mode: 'event' },
    { name: 'data', socket: '/run/vipc/data.sock', queues: 2, queueSize: 1024, ring: 'packed', mode: 'poll' },
  ],
  endpoints: [
    { name: 'host-echo', endpoint: { kind: 'vipc', link: 'ctl', role: 'backend', action: 'echo' } },
    {
      name: 'host-pmd',
      endpoint: {
        kind: 'dpdk',
        link: 'data',
        role: 'backend',
        app: 'testpmd',
        forwardMode: 'rxonly',
        memoryMb: 256,
        useHugepages: true,
      },
    },
  ],
  containers: [
    {
      name: 'guest-ctl',
      packages: [],
      mounts: [],
      memoryLimitMb: 256,
      autostart: true,
      endpoint: { kind: 'vipc', link: 'ctl', role: 'frontend', action: 'source' },
    },
    {
      name: 'guest-data',
      packages: [],
      mounts: [],
      memoryLimitMb: 512,
      autostart: true,
      endpoint: { kind: 'vipc', link: 'data', role: 'frontend', action: 'source' },
    },
  ],
};

/** The shape of the CLI's parsed topology (apps/cli topology.ts), structurally. */
export interface CliTopologyLike {
  version: 1;
  name: string;
  socketDir: string;
  hugepages: YoctoHugepages | undefined;
  links: YoctoLink[];
  endpoints: YoctoHostEndpoint[];
  containers: Array<{
    name: string;
    rootfs: string;
    mounts: YoctoMount[];
    memoryLimitMb: number | undefined;
    endpoint: YoctoVipcEndpoint;
    /** Optional extras this package understands. */
    packages?: string[];
    autostart?: boolean;
  }>;
}

/**
 * Maps the CLI's Topology to the emitter's. A container's `rootfs` does not carry
 * over: in a Yocto build every container's root filesystem is a guest image.
 */
export function fromCliTopology(t: CliTopologyLike): YoctoTopology {
  return {
    name: t.name,
    socketDir: t.socketDir,
    hugepages: t.hugepages ? { ...t.hugepages } : undefined,
    links: t.links.map((l) => ({ ...l })),
    endpoints: t.endpoints.map((e) => ({ name: e.name, endpoint: { ...e.endpoint } })),
    containers: t.containers.map((c) => ({
      name: c.name,
      packages: [...(c.packages ?? [])],
      mounts: c.mounts.map((m) => ({ ...m })),
      memoryLimitMb: c.memoryLimitMb,
      autostart: c.autostart ?? true,
      endpoint: { ...c.endpoint },
    })),
  };
}

const NAME = /^[a-z][a-z0-9-]{0,30}$/;
const LAYER_NAME = /^meta-[a-z][a-z0-9-]{0,30}$/;
const PACKAGE = /^[a-z0-9][a-z0-9+.-]*$/;
/** Characters that would need quoting in a BitBake value, an LXC config or a systemd unit. */
const SAFE_PATH = /^\/[A-Za-z0-9._/-]*$/;
const EMAIL = /^[^\s@<>"]+@[^\s@<>"]+\.[^\s@<>"]+$/;

function checkPath(issues: string[], field: string, p: string): void {
  if (!SAFE_PATH.test(p))
    issues.push(`${field}: '${p}' must be an absolute path of letters, digits and ._/-`);
  else if (p.split('/').includes('..')) issues.push(`${field}: '${p}' must not contain '..'`);
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The JavaScript shape (objects, arrays, strings, numbers) before any field check: input may come from JSON. */
function checkShape(t: unknown): void {
  const issues: string[] = [];
  const str = (v: unknown, f: string) => typeof v === 'string' || issues.push(`${f}: must be a string`);
  const num = (v: unknown, f: string) => typeof v === 'number' || issues.push(`${f}: must be a number`);
  const obj = (v: unknown, f: string): v is Record<string, unknown> =>
    isObject(v) || !issues.push(`${f}: must be an object`);
  const arr = (v: unknown, f: string): v is unknown[] =>
    Array.isArray(v) || !issues.push(`${f}: must be a list`);
  const endpoint = (e: unknown, f: string) => {
    if (!obj(e, f)) return;
    str(e.kind, `${f}.kind`);
    str(e.link, `${f}.link`);
    str(e.role, `${f}.role`);
    if (e.kind === 'dpdk') {
      str(e.forwardMode, `${f}.forwardMode`);
      num(e.memoryMb, `${f}.memoryMb`);
    } else str(e.action, `${f}.action`);
  };
  if (obj(t, 'topology')) {
    str(t.name, 'name');
    str(t.socketDir, 'socketDir');
    if (t.hugepages !== undefined && obj(t.hugepages, 'hugepages')) {
      str(t.hugepages.pageSize, 'hugepages.pageSize');
      num(t.hugepages.count, 'hugepages.count');
      str(t.hugepages.mount, 'hugepages.mount');
    }
    if (arr(t.links, 'links'))
      t.links.forEach((l, i) => {
        if (!obj(l, `links[${i}]`)) return;
        str(l.name, `links[${i}].name`);
        str(l.socket, `links[${i}].socket`);
        for (const k of ['queues', 'queueSize']) num(l[k], `links[${i}].${k}`);
      });
    if (arr(t.endpoints, 'endpoints'))
      t.endpoints.forEach((e, i) => {
        if (!obj(e, `endpoints[${i}]`)) return;
        str(e.name, `endpoints[${i}].name`);
        endpoint(e.endpoint, `endpoints[${i}].endpoint`);
      });
    if (arr(t.containers, 'containers'))
      t.containers.forEach((c, i) => {
        const f = `containers[${i}]`;
        if (!obj(c, f)) return;
        str(c.name, `${f}.name`);
        endpoint(c.endpoint, `${f}.endpoint`);
        if (arr(c.packages, `${f}.packages`))
          c.packages.forEach((p, j) => {
            str(p, `${f}.packages[${j}]`);
          });
        if (arr(c.mounts, `${f}.mounts`))
          c.mounts.forEach((m, j) => {
            if (!obj(m, `${f}.mounts[${j}]`)) return;
            str(m.source, `${f}.mounts[${j}].source`);
            str(m.target, `${f}.mounts[${j}].target`);
          });
        if (c.memoryLimitMb !== undefined) num(c.memoryLimitMb, `${f}.memoryLimitMb`);
      });
  }
  if (issues.length > 0) throw new YoctoError('INVALID_TOPOLOGY', 'invalid topology', issues);
}

/** Checks a topology; throws YoctoError('INVALID_TOPOLOGY') listing every problem. */
export function validateTopology(t: YoctoTopology): void {
  checkShape(t);
  const issues: string[] = [];
  if (!NAME.test(t.name)) issues.push(`name: '${t.name}' must be lowercase letters, digits and -`);
  checkPath(issues, 'socketDir', t.socketDir);
  if (t.hugepages) {
    if (t.hugepages.pageSize !== '2M' && t.hugepages.pageSize !== '1G')
      issues.push(`hugepages.pageSize: must be 2M or 1G`);
    if (!Number.isInteger(t.hugepages.count) || t.hugepages.count < 1 || t.hugepages.count > 1_000_000)
      issues.push('hugepages.count: must be an integer from 1 to 1000000');
    checkPath(issues, 'hugepages.mount', t.hugepages.mount);
  }
  if (t.links.length === 0) issues.push('links: at least one link is required');
  const links = new Set<string>();
  t.links.forEach((l, i) => {
    const f = `links[${i}]`;
    if (!NAME.test(l.name)) issues.push(`${f}.name: '${l.name}' must be lowercase letters, digits and -`);
    if (links.has(l.name)) issues.push(`${f}.name: duplicate link '${l.name}'`);
    links.add(l.name);
    checkPath(issues, `${f}.socket`, l.socket);
    if (Buffer.byteLength(l.socket) > 107) issues.push(`${f}.socket: longer than 107 bytes`);
    if (!Number.isInteger(l.queues) || l.queues < 1 || l.queues > 128)
      issues.push(`${f}.queues: must be an integer from 1 to 128`);
    if (!Number.isInteger(l.queueSize) || l.queueSize < 2 || l.queueSize > 32768)
      issues.push(`${f}.queueSize: must be an integer from 2 to 32768`);
    if (l.ring !== 'split' && l.ring !== 'packed') issues.push(`${f}.ring: must be split or packed`);
    if (l.mode !== 'poll' && l.mode !== 'event') issues.push(`${f}.mode: must be poll or event`);
  });
  const names = new Set<string>();
  const ends = new Map<string, Role[]>();
  const use = (field: string, link: string, role: Role) => {
    if (!links.has(link)) issues.push(`${field}.link: '${link}' is not declared under links`);
    if (role !== 'frontend' && role !== 'backend') issues.push(`${field}.role: must be frontend or backend`);
    ends.set(link, [...(ends.get(link) ?? []), role]);
  };
  t.endpoints.forEach((e, i) => {
    const f = `endpoints[${i}]`;
    if (!NAME.test(e.name)) issues.push(`${f}.name: '${e.name}' must be lowercase letters, digits and -`);
    if (names.has(e.name)) issues.push(`${f}.name: duplicate name '${e.name}'`);
    names.add(e.name);
    use(f, e.endpoint.link, e.endpoint.role);
    if (e.endpoint.kind === 'dpdk') {
      const d = e.endpoint;
      if (!Number.isInteger(d.memoryMb) || d.memoryMb < 64 || d.memoryMb > 65536)
        issues.push(`${f}.memoryMb: must be an integer from 64 to 65536`);
      if (d.useHugepages && !t.hugepages) issues.push(`${f}.useHugepages: needs a hugepages section`);
      if (!['rxonly', 'txonly', 'io', 'macswap'].includes(d.forwardMode))
        issues.push(`${f}.forwardMode: must be rxonly, txonly, io or macswap`);
    } else if (e.endpoint.kind === 'vipc') {
      if (!['echo', 'sink', 'source'].includes(e.endpoint.action))
        issues.push(`${f}.action: must be echo, sink or source`);
    } else issues.push(`${f}.kind: must be vipc or dpdk`);
  });
  if (t.containers.length === 0) issues.push('containers: at least one container is required');
  t.containers.forEach((c, i) => {
    const f = `containers[${i}]`;
    if (!NAME.test(c.name)) issues.push(`${f}.name: '${c.name}' must be lowercase letters, digits and -`);
    if (names.has(c.name)) issues.push(`${f}.name: duplicate name '${c.name}'`);
    names.add(c.name);
    if (c.endpoint.kind !== 'vipc') issues.push(`${f}.endpoint.kind: containers run vipc endpoints`);
    use(`${f}.endpoint`, c.endpoint.link, c.endpoint.role);
    for (const p of c.packages)
      if (!PACKAGE.test(p)) issues.push(`${f}.packages: '${p}' is not a package name`);
    c.mounts.forEach((m, j) => {
      checkPath(issues, `${f}.mounts[${j}].source`, m.source);
      checkPath(issues, `${f}.mounts[${j}].target`, m.target);
    });
    if (
      c.memoryLimitMb !== undefined &&
      (!Number.isInteger(c.memoryLimitMb) || c.memoryLimitMb < 16 || c.memoryLimitMb > 1 << 20)
    )
      issues.push(`${f}.memoryLimitMb: must be an integer from 16 to 1048576`);
  });
  for (const [link, roles] of ends) {
    for (const role of ['frontend', 'backend'] as const) {
      const n = roles.filter((r) => r === role).length;
      if (n > 1) issues.push(`links.${link}: has ${n} ${role}s; a vhost-user link has one of each`);
    }
  }
  if (issues.length > 0) throw new YoctoError('INVALID_TOPOLOGY', 'invalid topology', issues);
}

/** Fills defaults and checks layer options; throws YoctoError('INVALID_OPTIONS'). */
export function resolveOptions(options: Partial<LayerOptions> = {}): LayerOptions {
  const o: LayerOptions = {
    ...DEFAULT_LAYER_OPTIONS,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    maintainer: { ...DEFAULT_LAYER_OPTIONS.maintainer, ...(options.maintainer ?? {}) },
  };
  const issues: string[] = [];
  for (const k of [
    'layerName',
    'release',
    'machine',
    'distro',
    'initSystem',
    'kernelRecipe',
    'vipcVersion',
  ] as const)
    if (typeof o[k] !== 'string') issues.push(`${k}: must be a string`);
  if (typeof o.maintainer.name !== 'string' || typeof o.maintainer.email !== 'string')
    issues.push('maintainer: name and email must be strings');
  if (issues.length > 0) throw new YoctoError('INVALID_OPTIONS', 'invalid layer options', issues);
  if (!LAYER_NAME.test(o.layerName))
    issues.push(`layerName: '${o.layerName}' must be meta-<name> (lowercase letters, digits and -)`);
  if (!RELEASES.includes(o.release))
    issues.push(`release: '${o.release}' is not one of ${RELEASES.join(', ')}`);
  if (!NAME.test(o.distro)) issues.push(`distro: '${o.distro}' must be lowercase letters, digits and -`);
  if (o.initSystem !== 'systemd' && o.initSystem !== 'sysvinit')
    issues.push(`initSystem: '${o.initSystem}' must be systemd or sysvinit`);
  if (!/^[a-z][a-z0-9.+-]*$/.test(o.kernelRecipe))
    issues.push(`kernelRecipe: '${o.kernelRecipe}' is not a recipe name`);
  if (o.machine === '' || /["\\\s$]/.test(o.machine)) {
    issues.push(
      `machine: '${o.machine}' must be a non-empty regular expression without quotes, spaces, \\ or $`,
    );
  } else {
    try {
      new RegExp(o.machine);
    } catch {
      issues.push(`machine: '${o.machine}' is not a valid regular expression`);
    }
  }
  if (typeof o.physicalNics !== 'boolean') issues.push('physicalNics: must be true or false');
  if (!/^[^"\\\n]+$/.test(o.maintainer.name)) issues.push('maintainer.name: must be one line without quotes');
  if (!EMAIL.test(o.maintainer.email))
    issues.push(`maintainer.email: '${o.maintainer.email}' is not an e-mail address`);
  if (!/^[0-9]+(\.[0-9]+){1,3}$/.test(o.vipcVersion))
    issues.push(`vipcVersion: '${o.vipcVersion}' is not a version`);
  if (!Number.isInteger(o.priority) || o.priority < 1 || o.priority > 99)
    issues.push('priority: must be an integer from 1 to 99');
  if (issues.length > 0) throw new YoctoError('INVALID_OPTIONS', 'invalid layer options', issues);
  return o;
}
