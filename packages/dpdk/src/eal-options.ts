import { DpdkError } from './errors.js';

/** One `--lcores` group: logical core(s) running on physical CPU(s), "lcore@cpu" ("EAL parameters": --lcores). */
export interface LcoreMapping {
  lcore: number | readonly number[];
  cpus: number | readonly number[];
}

/** net_vhost devargs (doc/guides/nics/vhost.rst). Booleans become 0/1. */
export interface VhostVdev {
  driver: 'net_vhost';
  /** Instance number in the device name (net_vhost<id>); default 0. */
  id?: number;
  /** Unix socket path; the PMD creates it (server) unless `client` is set. */
  iface: string;
  queues?: number;
  client?: boolean;
  iommuSupport?: boolean;
  postcopySupport?: boolean;
  tso?: boolean;
  linearBuffer?: boolean;
  extBuffer?: boolean;
}

/** net_virtio_user devargs (doc/guides/howto/virtio_user_for_container_networking.rst). */
export interface VirtioUserVdev {
  driver: 'net_virtio_user';
  id?: number;
  /** vhost-user socket path (or /dev/vhost-net). */
  path: string;
  queues?: number;
  queueSize?: number;
  /** Create the socket and wait for the back-end to connect (vhost-user client mode on the other side). */
  server?: boolean;
  mrgRxbuf?: boolean;
  inOrder?: boolean;
  packedVq?: boolean;
  vectorized?: boolean;
  mac?: string;
}

/** net_null devargs (a sink/source with no peer). */
export interface NullVdev {
  driver: 'net_null';
  id?: number;
  size?: number;
  copy?: boolean;
}

/** Any other virtual device, passed through after checking its syntax. */
export interface OtherVdev {
  driver: 'other';
  /** Full device name, e.g. "net_ring0". */
  name: string;
  args?: Readonly<Record<string, string | number | boolean>>;
}

export type Vdev = VhostVdev | VirtioUserVdev | NullVdev | OtherVdev;

/** EAL options as a typed object ("EAL parameters"). Undefined fields are left to DPDK's defaults. */
export interface EalOptions {
  /** `-l`: core list, as numbers or DPDK list syntax ("0-1,3"). */
  lcores?: readonly number[] | string;
  /** `--lcores`: lcore-to-CPU mapping, e.g. [{lcore:0,cpus:0},{lcore:1,cpus:0}] -> "0@0,1@0". */
  lcoreMap?: readonly LcoreMapping[];
  /** `--main-lcore` */
  mainLcore?: number;
  /** `-n`: memory channels. */
  memoryChannels?: number;
  /** `-m`: memory in MiB. */
  memoryMb?: number;
  /** `--socket-mem`: MiB per NUMA node. */
  socketMemMb?: readonly number[];
  noHuge?: boolean;
  inMemory?: boolean;
  singleFileSegments?: boolean;
  hugeDir?: string;
  /** `--huge-unlink` (true) or `--huge-unlink=<mode>`. */
  hugeUnlink?: boolean | 'existing' | 'always' | 'never';
  filePrefix?: string;
  noPci?: boolean;
  /** `-a` device allow list (PCI addresses or device strings). */
  allow?: readonly string[];
  /** `-b` device block list. */
  block?: readonly string[];
  vdevs?: readonly Vdev[];
  /** `--log-level`, one entry per option: "8", "lib.eal:debug", "pmd.net.vhost,8". */
  logLevel?: string | number | readonly (string | number)[];
  iovaMode?: 'pa' | 'va';
  noTelemetry?: boolean;
  noShconf?: boolean;
  procType?: 'primary' | 'secondary' | 'auto';
  /** Extra EAL arguments appended verbatim (after validation of the rest). */
  extra?: readonly string[];
}

/** One problem found by `checkEalOptions`. */
export interface OptionProblem {
  code: 'INVALID_OPTION' | 'CONFLICTING_OPTIONS';
  /** The options involved, as they appear on the command line. */
  options: readonly string[];
  message: string;
}

const PCI_OR_DEVICE = /^[A-Za-z0-9_.:,=/-]+$/;
const FORBIDDEN_IN_DEVARG = /[,=\s]/;

/** Expand a DPDK core list ("0-2,5") into sorted unique numbers; throws INVALID_OPTION on bad syntax. */
export function parseCoreList(list: string): number[] {
  const out = new Set<number>();
  const text = list.trim();
  if (text === '') throw new DpdkError('INVALID_OPTION', '-l: empty core list', { option: '-l' });
  for (const part of text.split(',')) {
    const m = /^(\d{1,4})(?:-(\d{1,4}))?$/.exec(part.trim());
    if (!m)
      throw new DpdkError('INVALID_OPTION', `-l: "${part}" is not a core number or range in "${list}"`, {
        option: '-l',
      });
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new DpdkError('INVALID_OPTION', `-l: range "${part}" runs backwards`, { option: '-l' });
    for (let i = a; i <= b; i++) out.add(i);
  }
  return [...out].sort((x, y) => x - y);
}

function asList(v: number | readonly number[]): readonly number[] {
  return typeof v === 'number' ? [v] : v;
}

function formatGroup(v: number | readonly number[]): string {
  const l = asList(v);
  return l.length === 1 ? String(l[0]) : `(${l.join(',')})`;
}

/** The logical cores an option set enables (from `-l` or `--lcores`), or undefined when DPDK picks all. */
export function enabledLcores(opts: EalOptions): number[] | undefined {
  if (opts.lcoreMap !== undefined) {
    const s = new Set<number>();
    for (const g of opts.lcoreMap) for (const l of asList(g.lcore)) s.add(l);
    return [...s].sort((a, b) => a - b);
  }
  if (opts.lcores === undefined) return undefined;
  return typeof opts.lcores === 'string'
    ? parseCoreList(opts.lcores)
    : [...new Set(opts.lcores)].sort((a, b) => a - b);
}

function vdevPrefix(v: Vdev): string {
  return v.driver === 'other' ? v.name : `${v.driver}${v.id ?? 0}`;
}

function devargValue(key: string, value: string | number | boolean, device: string): string {
  if (typeof value === 'boolean') return value ? '1' : '0';
  const s = String(value);
  if (s === '' || FORBIDDEN_IN_DEVARG.test(s)) {
    throw new DpdkError(
      'INVALID_OPTION',
      `--vdev ${device}: ${key}="${s}" is empty or contains a comma, '=' or whitespace, which devargs cannot carry`,
      { option: '--vdev', device, key },
    );
  }
  return s;
}

function checkCount(device: string, key: string, v: number | undefined, min: number, max: number): void {
  if (v === undefined) return;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new DpdkError(
      'INVALID_OPTION',
      `--vdev ${device}: ${key}=${v} must be an integer in ${min}..${max}`,
      {
        option: '--vdev',
        device,
        key,
      },
    );
  }
}

/** The devargs string of a virtual device, e.g. "net_vhost0,iface=/run/a.sock,queues=1". */
export function formatVdev(v: Vdev): string {
  const name = vdevPrefix(v);
  if (v.driver !== 'other' && v.id !== undefined && (!Number.isInteger(v.id) || v.id < 0 || v.id > 9999)) {
    throw new DpdkError('INVALID_OPTION', `--vdev ${v.driver}: id ${v.id} must be an integer in 0..9999`, {
      option: '--vdev',
    });
  }
  const pairs: [string, string | number | boolean | undefined][] = [];
  switch (v.driver) {
    case 'net_vhost':
      if (typeof v.iface !== 'string' || v.iface === '') {
        throw new DpdkError('INVALID_OPTION', `--vdev ${name}: iface (the socket path) is required`, {
          option: '--vdev',
        });
      }
      checkCount(name, 'queues', v.queues, 1, 1024);
      pairs.push(
        ['iface', v.iface],
        ['queues', v.queues],
        ['client', v.client],
        ['iommu-support', v.iommuSupport],
        ['postcopy-support', v.postcopySupport],
        ['tso', v.tso],
        ['linear-buffer', v.linearBuffer],
        ['ext-buffer', v.extBuffer],
      );
      break;
    case 'net_virtio_user':
      if (typeof v.path !== 'string' || v.path === '') {
        throw new DpdkError('INVALID_OPTION', `--vdev ${name}: path (the vhost-user socket) is required`, {
          option: '--vdev',
        });
      }
      checkCount(name, 'queues', v.queues, 1, 256);
      checkCount(name, 'queue_size', v.queueSize, 32, 32768);
      if (v.queueSize !== undefined && (v.queueSize & (v.queueSize - 1)) !== 0) {
        throw new DpdkError(
          'INVALID_OPTION',
          `--vdev ${name}: queue_size=${v.queueSize} must be a power of two`,
          {
            option: '--vdev',
          },
        );
      }
      if (v.mac !== undefined && !/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/.test(v.mac)) {
        throw new DpdkError(
          'INVALID_OPTION',
          `--vdev ${name}: mac="${v.mac}" is not a MAC address (xx:xx:xx:xx:xx:xx)`,
          {
            option: '--vdev',
          },
        );
      }
      pairs.push(
        ['path', v.path],
        ['queues', v.queues],
        ['queue_size', v.queueSize],
        ['server', v.server],
        ['mrg_rxbuf', v.mrgRxbuf],
        ['in_order', v.inOrder],
        ['packed_vq', v.packedVq],
        ['vectorized', v.vectorized],
        ['mac', v.mac],
      );
      break;
    case 'net_null':
      checkCount(name, 'size', v.size, 1, 65535);
      pairs.push(['size', v.size], ['copy', v.copy]);
      break;
    case 'other':
      if (!/^[a-z][a-z0-9_]*[0-9]+$/i.test(v.name)) {
        throw new DpdkError(
          'INVALID_OPTION',
          `--vdev "${v.name}": a device name is a driver name followed by a number`,
          {
            option: '--vdev',
          },
        );
      }
      for (const [k, val] of Object.entries(v.args ?? {})) {
        if (!/^[a-z][a-z0-9_-]*$/i.test(k)) {
          throw new DpdkError('INVALID_OPTION', `--vdev ${name}: devarg key "${k}" is not a valid key`, {
            option: '--vdev',
          });
        }
        pairs.push([k, val]);
      }
      break;
    default: {
      const bad = v as { driver?: unknown };
      throw new DpdkError('INVALID_OPTION', `--vdev: unknown driver ${JSON.stringify(bad.driver)}`, {
        option: '--vdev',
      });
    }
  }
  const parts = [name];
  for (const [k, val] of pairs) if (val !== undefined) parts.push(`${k}=${devargValue(k, val, name)}`);
  return parts.join(',');
}

function problem(code: OptionProblem['code'], options: string[], message: string): OptionProblem {
  return { code, options, message };
}

/**
 * Every problem of an option set: bad values and the combinations DPDK 22.11 rejects or that are known
 * not to work (measured on the real testpmd; see the package README). Returns [] when the set is fine.
 */
export function checkEalOptions(opts: EalOptions): OptionProblem[] {
  const out: OptionProblem[] = [];
  const intIn = (name: string, v: number | undefined, min: number, max: number) => {
    if (v !== undefined && (!Number.isInteger(v) || v < min || v > max)) {
      out.push(problem('INVALID_OPTION', [name], `${name} ${v}: must be an integer in ${min}..${max}`));
    }
  };
  let lcores: number[] | undefined;
  try {
    lcores = enabledLcores(opts);
  } catch (e) {
    out.push(problem('INVALID_OPTION', ['-l'], (e as Error).message));
  }
  if (opts.lcores !== undefined && opts.lcoreMap !== undefined) {
    out.push(
      problem(
        'CONFLICTING_OPTIONS',
        ['-l', '--lcores'],
        '-l and --lcores both set the core list; give only one',
      ),
    );
  }
  if (Array.isArray(opts.lcores)) {
    for (const c of opts.lcores as readonly number[]) intIn('-l', c, 0, 1023);
    if ((opts.lcores as readonly number[]).length === 0)
      out.push(problem('INVALID_OPTION', ['-l'], '-l: empty core list'));
  }
  for (const g of opts.lcoreMap ?? []) {
    for (const l of asList(g.lcore)) intIn('--lcores', l, 0, 1023);
    for (const c of asList(g.cpus)) intIn('--lcores', c, 0, 1023);
    if (asList(g.lcore).length === 0 || asList(g.cpus).length === 0) {
      out.push(
        problem('INVALID_OPTION', ['--lcores'], '--lcores: a group needs at least one lcore and one cpu'),
      );
    }
  }
  intIn('--main-lcore', opts.mainLcore, 0, 1023);
  if (opts.mainLcore !== undefined && lcores !== undefined && !lcores.includes(opts.mainLcore)) {
    out.push(
      problem(
        'CONFLICTING_OPTIONS',
        ['--main-lcore', opts.lcoreMap ? '--lcores' : '-l'],
        `--main-lcore ${opts.mainLcore} is not among the enabled lcores (${lcores.join(',')})`,
      ),
    );
  }
  intIn('-n', opts.memoryChannels, 1, 32);
  intIn('-m', opts.memoryMb, 1, 1 << 24);
  for (const m of opts.socketMemMb ?? []) intIn('--socket-mem', m, 0, 1 << 24);
  if (opts.memoryMb !== undefined && opts.socketMemMb !== undefined) {
    out.push(
      problem(
        'CONFLICTING_OPTIONS',
        ['-m', '--socket-mem'],
        'Options -m and --socket-mem cannot be specified at the same time',
      ),
    );
  }
  if (opts.noHuge && opts.socketMemMb !== undefined) {
    out.push(
      problem(
        'CONFLICTING_OPTIONS',
        ['--socket-mem', '--no-huge'],
        '--socket-mem cannot be used with --no-huge (use -m)',
      ),
    );
  }
  const unlink = opts.hugeUnlink !== undefined && opts.hugeUnlink !== false && opts.hugeUnlink !== 'never';
  if (opts.noHuge && unlink) {
    out.push(
      problem(
        'CONFLICTING_OPTIONS',
        ['--huge-unlink', '--no-huge'],
        '--huge-unlink cannot be used with --no-huge (there are no hugepage files)',
      ),
    );
  }
  if (opts.singleFileSegments && unlink) {
    out.push(
      problem(
        'CONFLICTING_OPTIONS',
        ['--single-file-segments', '--huge-unlink'],
        '--single-file-segments with --huge-unlink: the segment files are unlinked, so a vhost-user back-end cannot map guest memory by file; use --in-memory --single-file-segments instead',
      ),
    );
  }
  if (opts.inMemory && unlink) {
    out.push(
      problem(
        'CONFLICTING_OPTIONS',
        ['--in-memory', '--huge-unlink'],
        '--in-memory already implies unlinked hugepages; drop --huge-unlink',
      ),
    );
  }
  if (opts.noHuge && opts.hugeDir !== undefined) {
    out.push(
      problem('CONFLICTING_OPTIONS', ['--huge-dir', '--no-huge'], '--huge-dir has no effect with --no-huge'),
    );
  }
  if (opts.hugeDir !== undefined && (opts.hugeDir === '' || !opts.hugeDir.startsWith('/'))) {
    out.push(
      problem('INVALID_OPTION', ['--huge-dir'], `--huge-dir "${opts.hugeDir}": must be an absolute path`),
    );
  }
  if (opts.filePrefix !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(opts.filePrefix)) {
    out.push(
      problem(
        'INVALID_OPTION',
        ['--file-prefix'],
        `--file-prefix "${opts.filePrefix}": use 1-64 characters from A-Z a-z 0-9 _ . - (it names a directory and hugepage files)`,
      ),
    );
  }
  if ((opts.allow?.length ?? 0) > 0 && (opts.block?.length ?? 0) > 0) {
    out.push(
      problem(
        'CONFLICTING_OPTIONS',
        ['-a', '-b'],
        'allow (-a) and block (-b) lists cannot be used at the same time',
      ),
    );
  }
  for (const d of [...(opts.allow ?? []), ...(opts.block ?? [])]) {
    if (!PCI_OR_DEVICE.test(d))
      out.push(
        problem('INVALID_OPTION', ['-a/-b'], `device "${d}" contains characters a device string cannot have`),
      );
  }
  if (opts.iovaMode !== undefined && opts.iovaMode !== 'pa' && opts.iovaMode !== 'va') {
    out.push(
      problem('INVALID_OPTION', ['--iova-mode'], `--iova-mode "${opts.iovaMode}": must be "pa" or "va"`),
    );
  }
  if (opts.procType !== undefined && !['primary', 'secondary', 'auto'].includes(opts.procType)) {
    out.push(
      problem(
        'INVALID_OPTION',
        ['--proc-type'],
        `--proc-type "${opts.procType}": must be primary, secondary or auto`,
      ),
    );
  }
  const logs =
    opts.logLevel === undefined ? [] : Array.isArray(opts.logLevel) ? opts.logLevel : [opts.logLevel];
  for (const l of logs as (string | number)[]) {
    if (!/^[A-Za-z0-9_.*^$]*[:,]?[A-Za-z0-9]+$/.test(String(l))) {
      out.push(
        problem(
          'INVALID_OPTION',
          ['--log-level'],
          `--log-level "${l}": expected "<level>" or "<pattern>:<level>"`,
        ),
      );
    }
  }
  // Devices
  const names = new Set<string>();
  const vhostServers = new Map<string, string>();
  const vdevs = opts.vdevs ?? [];
  for (const v of vdevs) {
    let s: string;
    try {
      s = formatVdev(v);
    } catch (e) {
      out.push(problem('INVALID_OPTION', ['--vdev'], (e as Error).message));
      continue;
    }
    const name = s.split(',')[0]!;
    if (names.has(name))
      out.push(
        problem('INVALID_OPTION', ['--vdev'], `--vdev ${name} appears twice; give each device its own id`),
      );
    names.add(name);
    if (v.driver === 'net_vhost' && !v.client) vhostServers.set(v.iface, name);
  }
  for (const v of vdevs) {
    if (v.driver !== 'net_virtio_user') continue;
    const name = vdevPrefix(v);
    if (!opts.noHuge && !opts.singleFileSegments) {
      out.push(
        problem(
          'CONFLICTING_OPTIONS',
          ['--vdev net_virtio_user', '--single-file-segments'],
          `${name} with hugepages needs --single-file-segments (or --no-huge): a vhost-user back-end accepts at most 8 memory regions${opts.inMemory ? ' ("Too many memory regions" with --in-memory alone)' : ''}`,
        ),
      );
    }
    const server = vhostServers.get(v.path);
    if (server !== undefined && !v.server) {
      out.push(
        problem(
          'CONFLICTING_OPTIONS',
          ['--vdev net_vhost', '--vdev net_virtio_user'],
          `${name} and ${server} share socket ${v.path} on one command line: the socket does not exist yet when ${name} is probed; attach ${name} at run time from the testpmd prompt (port attach) instead`,
        ),
      );
    }
  }
  return out;
}

/** Throw one DpdkError listing every problem (code of the first problem), or return when there is none. */
export function assertEalOptions(opts: EalOptions): void {
  const problems = checkEalOptions(opts);
  if (problems.length === 0) return;
  throw new DpdkError(
    problems[0]!.code,
    `invalid EAL options: ${problems.map((p) => p.message).join('; ')}`,
    { problems },
  );
}

/** Validate and turn EAL options into argv (without the program name and without the trailing "--"). */
export function buildEalArgs(opts: EalOptions): string[] {
  assertEalOptions(opts);
  const a: string[] = [];
  if (opts.lcoreMap !== undefined) {
    a.push('--lcores', opts.lcoreMap.map((g) => `${formatGroup(g.lcore)}@${formatGroup(g.cpus)}`).join(','));
  } else if (opts.lcores !== undefined) {
    a.push('-l', typeof opts.lcores === 'string' ? opts.lcores.trim() : opts.lcores.join(','));
  }
  if (opts.mainLcore !== undefined) a.push('--main-lcore', String(opts.mainLcore));
  if (opts.memoryChannels !== undefined) a.push('-n', String(opts.memoryChannels));
  if (opts.memoryMb !== undefined) a.push('-m', String(opts.memoryMb));
  if (opts.socketMemMb !== undefined) a.push('--socket-mem', opts.socketMemMb.join(','));
  if (opts.noHuge) a.push('--no-huge');
  if (opts.inMemory) a.push('--in-memory');
  if (opts.singleFileSegments) a.push('--single-file-segments');
  if (opts.hugeDir !== undefined) a.push('--huge-dir', opts.hugeDir);
  if (opts.hugeUnlink === true) a.push('--huge-unlink');
  else if (typeof opts.hugeUnlink === 'string') a.push(`--huge-unlink=${opts.hugeUnlink}`);
  if (opts.filePrefix !== undefined) a.push(`--file-prefix=${opts.filePrefix}`);
  if (opts.procType !== undefined) a.push(`--proc-type=${opts.procType}`);
  if (opts.noPci) a.push('--no-pci');
  for (const d of opts.allow ?? []) a.push('-a', d);
  for (const d of opts.block ?? []) a.push('-b', d);
  for (const v of opts.vdevs ?? []) a.push('--vdev', formatVdev(v));
  const logs =
    opts.logLevel === undefined ? [] : Array.isArray(opts.logLevel) ? opts.logLevel : [opts.logLevel];
  for (const l of logs as (string | number)[]) a.push(`--log-level=${l}`);
  if (opts.iovaMode !== undefined) a.push(`--iova-mode=${opts.iovaMode}`);
  if (opts.noTelemetry) a.push('--no-telemetry');
  if (opts.noShconf) a.push('--no-shconf');
  a.push(...(opts.extra ?? []));
  return a;
}

/** Paths of Unix sockets that the devices of this option set create (net_vhost server, virtio_user server=1). */
export function createdSocketPaths(opts: EalOptions): string[] {
  const out: string[] = [];
  for (const v of opts.vdevs ?? []) {
    if (v.driver === 'net_vhost' && !v.client) out.push(v.iface);
    if (v.driver === 'net_virtio_user' && v.server) out.push(v.path);
  }
  return out;
}
