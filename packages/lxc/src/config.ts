import { MAX_CONFIG_BYTES } from './defs.js';
import { LxcError } from './errors.js';

/**
 * A typed LXC container config (lxc.container.conf(5), LXC 5; the keys are the
 * same in LXC 6). Keys the model does not know go to `extra`, in order, and are
 * rendered back unchanged.
 */
export interface LxcConfig {
  /** `lxc.include`: files (or directories) read in place. */
  includes?: string[];
  /** `lxc.arch` */
  arch?: string;
  /** `lxc.uts.name` */
  utsname?: string;
  /** `lxc.rootfs.path` (`dir:/path` or a plain path), `lxc.rootfs.options`, `lxc.rootfs.mount` */
  rootfs?: { path?: string; options?: string; mount?: string };
  /** `lxc.net.N.*`, one per interface. */
  net?: NetConfig[];
  /** `lxc.mount.auto`, e.g. `['proc:mixed', 'sys:ro', 'cgroup:mixed']` */
  mountAuto?: string[];
  /** `lxc.mount.fstab` */
  mountFstab?: string;
  /** `lxc.mount.entry`, in order. */
  mounts?: MountEntry[];
  /** `lxc.cap.drop` */
  capDrop?: string[];
  /** `lxc.cap.keep` */
  capKeep?: string[];
  /** `lxc.cgroup.<controller.file>` (cgroup v1), in order. */
  cgroup?: CgroupSetting[];
  /** `lxc.cgroup2.<controller.file>` (cgroup v2), in order. */
  cgroup2?: CgroupSetting[];
  /** `lxc.idmap` (unprivileged containers). */
  idmaps?: IdMap[];
  /** `lxc.init.cmd`, `lxc.init.cwd`, `lxc.init.uid`, `lxc.init.gid` */
  init?: { cmd?: string; cwd?: string; uid?: number; gid?: number };
  /** `lxc.signal.halt`, `lxc.signal.reboot`, `lxc.signal.stop` (e.g. `SIGTERM`) */
  signals?: { halt?: string; reboot?: string; stop?: string };
  /** `lxc.autodev` */
  autodev?: boolean;
  /** `lxc.tty.max`, `lxc.tty.dir` */
  tty?: { max?: number; dir?: string };
  /** `lxc.pty.max` */
  ptyMax?: number;
  /** `lxc.start.auto`, `lxc.start.delay`, `lxc.start.order` */
  start?: { auto?: boolean; delay?: number; order?: number };
  /** `lxc.environment`: `NAME=value`, or `NAME` alone to inherit the host's value. */
  environment?: EnvVar[];
  /** `lxc.apparmor.profile` (`unconfined` on hosts without AppArmor) */
  apparmorProfile?: string;
  /** `lxc.log.file`, `lxc.log.level` */
  log?: { file?: string; level?: string };
  /** Keys the model does not know (hooks, seccomp, console, LXC 6 keys, legacy keys...), in order. */
  extra?: ConfigEntry[];
  /**
   * The text this config was parsed from. `renderConfig` uses it to keep
   * comments, blank lines, the order of lines and their spelling; drop it to
   * render a fresh, canonical text.
   */
  layout?: ConfigLayout;
}

export interface NetConfig {
  /** N in `lxc.net.N.*`; defaults to the position in the array. */
  index?: number;
  /** `empty` (loopback only), `none` (host network), `veth`, `macvlan`, ... */
  type: string;
  /** `link`: the host bridge or device (veth, macvlan, phys). */
  link?: string;
  /** `name`: the interface name inside the container. */
  name?: string;
  /** `flags`, e.g. `up` */
  flags?: string;
  hwaddr?: string;
  mtu?: number;
  /** `ipv4.address`, one per address (`10.0.3.2/24`). */
  ipv4?: string[];
  ipv4Gateway?: string;
  ipv6?: string[];
  ipv6Gateway?: string;
  /** `veth.pair`: the host-side name of a veth pair. */
  vethPair?: string;
}

/** One `lxc.mount.entry`, in fstab(5) form. Paths are plain (not octal-escaped). */
export interface MountEntry {
  source: string;
  /** Relative to the container's root (no leading `/`), as LXC wants it. */
  target: string;
  fstype: string;
  options: string[];
  dump?: number;
  pass?: number;
}

export interface CgroupSetting {
  /** The controller file, e.g. `memory.limit_in_bytes`, `cpuset.cpus`, `devices.allow`. */
  key: string;
  value: string;
}

export interface IdMap {
  /** `u` (uids), `g` (gids) or `b` (both). */
  type: 'u' | 'g' | 'b';
  /** First id inside the container. */
  nsid: number;
  /** First id on the host. */
  hostid: number;
  range: number;
}

export interface EnvVar {
  name: string;
  /** Absent: inherit the value from the environment of the lxc-* tool. */
  value?: string;
}

export interface ConfigEntry {
  key: string;
  value: string;
}

type Kind = 'scalar' | 'tokens' | 'items';

interface KeySpec {
  kind: Kind;
  /** An empty value resets the list (LXC's `lxc_config_value_empty` → clear). */
  clearable: boolean;
  /** Canonical spelling of a value; throws on a value LXC would reject. */
  normalize(value: string): string;
}

interface SourceText {
  type: 'text';
  raw: string;
}
interface SourceEntry {
  type: 'entry';
  raw: string;
  key: string;
  /** See groupOf. */
  group: string;
  /** Normalized value (scalar, items) or its tokens joined by one space (tokens). */
  norm: string;
  clear: boolean;
}
type SourceLine = SourceText | SourceEntry;

/** The lines of a parsed config text (opaque; used by renderConfig). */
export class ConfigLayout {
  /** @internal */
  readonly lines: readonly SourceLine[];
  /** @internal */
  constructor(lines: readonly SourceLine[]) {
    this.lines = lines;
  }
}

const KEY_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** White space as C's isspace() sees it (LXC trims with it); not JavaScript's wider \s. */
const C_SPACE = /[ \t\n\v\f\r]+/;
const C_TRIM = /^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g;

function cTrim(s: string): string {
  return s.replace(C_TRIM, '');
}

function invalid(message: string, line?: number): LxcError {
  return new LxcError(line === undefined ? message : `line ${line}: ${message}`, 'INVALID_CONFIG', { line });
}

// ---------------------------------------------------------------- codecs

function parseUint(value: string, what: string): number {
  if (!/^\d{1,10}$/.test(value)) throw invalid(`${what} must be a non-negative integer (got "${value}")`);
  const n = Number(value);
  if (n > 0xffffffff) throw invalid(`${what} is out of range (got "${value}")`);
  return n;
}

function parseBool(value: string, what: string): boolean {
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  throw invalid(`${what} must be 0 or 1 (got "${value}")`);
}

function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

function escapeMount(field: string): string {
  return field.replace(/[\\ \t\n\v\f\r]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/** Parses the value of one `lxc.mount.entry` (fstab(5) fields). */
export function parseMountEntry(value: string): MountEntry {
  const fields = cTrim(value).split(C_SPACE);
  if (fields.length < 3 || fields.length > 6 || fields[0] === '') {
    throw invalid(`a mount entry needs "source target fstype [options [dump [pass]]]" (got "${value}")`);
  }
  const [source, target, fstype, options, dump, pass] = fields as [string, string, string, ...string[]];
  const entry: MountEntry = {
    source: unescapeMount(source),
    target: unescapeMount(target),
    fstype,
    options: options === undefined ? ['defaults'] : options.split(','),
  };
  if (dump !== undefined) entry.dump = parseUint(dump, 'mount entry dump');
  if (pass !== undefined) entry.pass = parseUint(pass, 'mount entry pass');
  return entry;
}

/** Renders one `lxc.mount.entry` value. */
export function renderMountEntry(entry: MountEntry): string {
  for (const [what, v] of [
    ['source', entry.source],
    ['target', entry.target],
    ['fstype', entry.fstype],
  ] as const) {
    if (typeof v !== 'string' || v === '')
      throw new LxcError(`mount entry ${what} must be a non-empty string`, 'INVALID_ARGUMENT');
  }
  if (C_SPACE.test(entry.fstype))
    throw new LxcError(`mount entry fstype "${entry.fstype}" has white space`, 'INVALID_ARGUMENT');
  const options = entry.options.length === 0 ? ['defaults'] : entry.options;
  for (const o of options) {
    if (o === '' || o.includes(',') || C_SPACE.test(o))
      throw new LxcError(`mount option "${o}" is empty or has white space or a comma`, 'INVALID_ARGUMENT');
  }
  return [
    escapeMount(entry.source),
    escapeMount(entry.target),
    entry.fstype,
    options.join(','),
    String(entry.dump ?? 0),
    String(entry.pass ?? 0),
  ].join(' ');
}

function parseIdMap(value: string): IdMap {
  const f = cTrim(value).split(C_SPACE);
  if (f.length !== 4 || (f[0] !== 'u' && f[0] !== 'g' && f[0] !== 'b')) {
    throw invalid(`an idmap needs "u|g|b nsid hostid range" (got "${value}")`);
  }
  const range = parseUint(f[3] as string, 'idmap range');
  if (range === 0) throw invalid('idmap range must be at least 1');
  return {
    type: f[0],
    nsid: parseUint(f[1] as string, 'idmap nsid'),
    hostid: parseUint(f[2] as string, 'idmap hostid'),
    range,
  };
}

function renderIdMap(m: IdMap): string {
  if (m.type !== 'u' && m.type !== 'g' && m.type !== 'b')
    throw new LxcError(`idmap type must be u, g or b`, 'INVALID_ARGUMENT');
  for (const n of [m.nsid, m.hostid, m.range]) {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
      throw new LxcError(`idmap ids must be 32-bit unsigned integers`, 'INVALID_ARGUMENT');
  }
  if (m.range === 0) throw new LxcError('idmap range must be at least 1', 'INVALID_ARGUMENT');
  return `${m.type} ${m.nsid} ${m.hostid} ${m.range}`;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function parseEnv(value: string): EnvVar {
  const eq = value.indexOf('=');
  const name = eq < 0 ? value : value.slice(0, eq);
  if (!ENV_NAME.test(name)) throw invalid(`environment variable name "${name}" is not valid`);
  return eq < 0 ? { name } : { name, value: value.slice(eq + 1) };
}

function renderEnv(e: EnvVar): string {
  if (!ENV_NAME.test(e.name))
    throw new LxcError(`environment variable name "${e.name}" is not valid`, 'INVALID_ARGUMENT');
  return e.value === undefined ? e.name : `${e.name}=${e.value}`;
}

const identity = (v: string): string => v;
const uintNorm = (what: string) => (v: string) => String(parseUint(v, what));
const boolNorm = (what: string) => (v: string) => (parseBool(v, what) ? '1' : '0');

const SCALAR: KeySpec = { kind: 'scalar', clearable: true, normalize: identity };
const TOKENS: KeySpec = { kind: 'tokens', clearable: true, normalize: identity };
const UNKNOWN: KeySpec = { kind: 'items', clearable: false, normalize: identity };

const KNOWN: Record<string, KeySpec> = {
  'lxc.include': { kind: 'items', clearable: false, normalize: identity },
  'lxc.arch': SCALAR,
  'lxc.uts.name': SCALAR,
  'lxc.rootfs.path': SCALAR,
  'lxc.rootfs.options': SCALAR,
  'lxc.rootfs.mount': SCALAR,
  'lxc.mount.auto': TOKENS,
  'lxc.mount.fstab': SCALAR,
  'lxc.mount.entry': {
    kind: 'items',
    clearable: true,
    normalize: (v) => renderMountEntry(parseMountEntry(v)),
  },
  'lxc.cap.drop': TOKENS,
  'lxc.cap.keep': TOKENS,
  'lxc.idmap': { kind: 'items', clearable: true, normalize: (v) => renderIdMap(parseIdMap(v)) },
  'lxc.init.cmd': SCALAR,
  'lxc.init.cwd': SCALAR,
  'lxc.init.uid': { ...SCALAR, normalize: uintNorm('lxc.init.uid') },
  'lxc.init.gid': { ...SCALAR, normalize: uintNorm('lxc.init.gid') },
  'lxc.signal.halt': SCALAR,
  'lxc.signal.reboot': SCALAR,
  'lxc.signal.stop': SCALAR,
  'lxc.autodev': { ...SCALAR, normalize: boolNorm('lxc.autodev') },
  'lxc.tty.max': { ...SCALAR, normalize: uintNorm('lxc.tty.max') },
  'lxc.tty.dir': SCALAR,
  'lxc.pty.max': { ...SCALAR, normalize: uintNorm('lxc.pty.max') },
  'lxc.start.auto': { ...SCALAR, normalize: boolNorm('lxc.start.auto') },
  'lxc.start.delay': { ...SCALAR, normalize: uintNorm('lxc.start.delay') },
  'lxc.start.order': { ...SCALAR, normalize: uintNorm('lxc.start.order') },
  'lxc.environment': { kind: 'items', clearable: true, normalize: (v) => renderEnv(parseEnv(v)) },
  'lxc.apparmor.profile': SCALAR,
  'lxc.log.file': SCALAR,
  'lxc.log.level': SCALAR,
};

/** Sub-keys of lxc.net.N that the model types; others stay in `extra`. */
const NET_KEYS: Record<string, KeySpec> = {
  type: SCALAR,
  link: SCALAR,
  name: SCALAR,
  flags: SCALAR,
  hwaddr: SCALAR,
  mtu: { ...SCALAR, normalize: uintNorm('lxc.net mtu') },
  'ipv4.address': { kind: 'items', clearable: false, normalize: identity },
  'ipv4.gateway': SCALAR,
  'ipv6.address': { kind: 'items', clearable: false, normalize: identity },
  'ipv6.gateway': SCALAR,
  'veth.pair': SCALAR,
};

const NET_KEY = /^lxc\.net\.(\d{1,4})\.(.+)$/;
/** lxc.cgroup.* keys that are not controller settings. */
const CGROUP_RESERVED = /^lxc\.cgroup2?\.(dir|relative)(\.|$)/;
const CGROUP_KEY = /^lxc\.(cgroup2?)\.([A-Za-z0-9_]+\.[A-Za-z0-9_.]+)$/;

function specOf(key: string): KeySpec {
  const known = KNOWN[key];
  if (known) return known;
  const net = NET_KEY.exec(key);
  if (net) return NET_KEYS[net[2] as string] ?? UNKNOWN;
  if (CGROUP_KEY.test(key) && !CGROUP_RESERVED.test(key))
    return { kind: 'items', clearable: false, normalize: identity };
  return UNKNOWN;
}

/** Is this key one the typed model holds (rather than `extra`)? */
export function isModelledKey(key: string): boolean {
  return specOf(key) !== UNKNOWN;
}

/** The group of the unknown keys: their relative order is kept across keys. */
const EXTRA_GROUP = '(extra)';

/**
 * Lines whose relative order matters across keys share a group: the cgroup
 * settings of one family (a `devices.deny = a` must stay before the allows),
 * and all unknown keys. Every other key is its own group.
 */
function groupOf(key: string): string {
  if (specOf(key) === UNKNOWN) return EXTRA_GROUP;
  const cg = CGROUP_KEY.exec(key);
  if (cg && !CGROUP_RESERVED.test(key)) return `lxc.${cg[1]}`;
  return key;
}

function isFamily(group: string): boolean {
  return group === EXTRA_GROUP || group === 'lxc.cgroup' || group === 'lxc.cgroup2';
}

/**
 * LXC trims values and strips one pair of matching quotes; a value that would
 * lose something that way is written in double quotes.
 */
function quoteValue(value: string): string {
  const quoted =
    value.length >= 2 && (value[0] === '"' || value[0] === "'") && value[value.length - 1] === value[0];
  return quoted || value !== cTrim(value) ? `"${value}"` : value;
}

/** A new line for one value of a group (family values are whole `key = value` lines already). */
function lineOf(group: string, value: string): string {
  if (!isFamily(group)) return `${group} = ${quoteValue(value)}`;
  const eq = value.indexOf(' = ');
  return `${value.slice(0, eq)} = ${quoteValue(value.slice(eq + 3))}`;
}

// ---------------------------------------------------------------- typed <-> key/values

interface KeyValues {
  key: string;
  values: string[];
}

function put(out: KeyValues[], key: string, values: (string | undefined)[] | undefined): void {
  if (!values) return;
  const vs = values.filter((v): v is string => v !== undefined);
  if (vs.length === 0) return;
  out.push({ key, values: vs });
}

function num(n: number | undefined, what: string): string | undefined {
  if (n === undefined) return undefined;
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
    throw new LxcError(`${what} must be a 32-bit unsigned integer`, 'INVALID_ARGUMENT');
  return String(n);
}

function bool(b: boolean | undefined): string | undefined {
  return b === undefined ? undefined : b ? '1' : '0';
}

/** The typed config as ordered (key, values) groups, canonical order. */
function toKeyValues(c: LxcConfig): KeyValues[] {
  const out: KeyValues[] = [];
  put(out, 'lxc.include', c.includes);
  put(out, 'lxc.arch', [c.arch]);
  put(out, 'lxc.uts.name', [c.utsname]);
  put(out, 'lxc.rootfs.path', [c.rootfs?.path]);
  put(out, 'lxc.rootfs.options', [c.rootfs?.options]);
  put(out, 'lxc.rootfs.mount', [c.rootfs?.mount]);
  const seen = new Set<number>();
  (c.net ?? []).forEach((n, pos) => {
    const i = n.index ?? pos;
    if (!Number.isInteger(i) || i < 0 || i > 9999)
      throw new LxcError(`net index must be an integer 0..9999`, 'INVALID_ARGUMENT');
    if (seen.has(i)) throw new LxcError(`two net entries use index ${i}`, 'INVALID_ARGUMENT');
    seen.add(i);
    const p = `lxc.net.${i}.`;
    put(out, `${p}type`, [n.type]);
    put(out, `${p}link`, [n.link]);
    put(out, `${p}name`, [n.name]);
    put(out, `${p}flags`, [n.flags]);
    put(out, `${p}hwaddr`, [n.hwaddr]);
    put(out, `${p}mtu`, [num(n.mtu, 'net mtu')]);
    put(out, `${p}ipv4.address`, n.ipv4);
    put(out, `${p}ipv4.gateway`, [n.ipv4Gateway]);
    put(out, `${p}ipv6.address`, n.ipv6);
    put(out, `${p}ipv6.gateway`, [n.ipv6Gateway]);
    put(out, `${p}veth.pair`, [n.vethPair]);
  });
  put(out, 'lxc.mount.fstab', [c.mountFstab]);
  if (c.mountAuto && c.mountAuto.length > 0) out.push({ key: 'lxc.mount.auto', values: [...c.mountAuto] });
  put(out, 'lxc.mount.entry', c.mounts?.map(renderMountEntry));
  if (c.capDrop && c.capDrop.length > 0) out.push({ key: 'lxc.cap.drop', values: [...c.capDrop] });
  if (c.capKeep && c.capKeep.length > 0) out.push({ key: 'lxc.cap.keep', values: [...c.capKeep] });
  for (const [family, list] of [
    ['cgroup', c.cgroup],
    ['cgroup2', c.cgroup2],
  ] as const) {
    const values: string[] = [];
    for (const setting of list ?? []) {
      const key = `lxc.${family}.${setting.key}`;
      if (!CGROUP_KEY.test(key) || CGROUP_RESERVED.test(key)) {
        throw new LxcError(
          `"${setting.key}" is not a cgroup controller setting (controller.file)`,
          'INVALID_ARGUMENT',
        );
      }
      if (typeof setting.value !== 'string')
        throw new LxcError(`${key}: value must be a string`, 'INVALID_ARGUMENT');
      values.push(`${key} = ${setting.value}`);
    }
    put(out, `lxc.${family}`, values);
  }
  put(out, 'lxc.idmap', c.idmaps?.map(renderIdMap));
  put(out, 'lxc.init.cmd', [c.init?.cmd]);
  put(out, 'lxc.init.cwd', [c.init?.cwd]);
  put(out, 'lxc.init.uid', [num(c.init?.uid, 'init uid')]);
  put(out, 'lxc.init.gid', [num(c.init?.gid, 'init gid')]);
  put(out, 'lxc.signal.halt', [c.signals?.halt]);
  put(out, 'lxc.signal.reboot', [c.signals?.reboot]);
  put(out, 'lxc.signal.stop', [c.signals?.stop]);
  put(out, 'lxc.autodev', [bool(c.autodev)]);
  put(out, 'lxc.tty.max', [num(c.tty?.max, 'tty max')]);
  put(out, 'lxc.tty.dir', [c.tty?.dir]);
  put(out, 'lxc.pty.max', [num(c.ptyMax, 'pty max')]);
  put(out, 'lxc.start.auto', [bool(c.start?.auto)]);
  put(out, 'lxc.start.delay', [num(c.start?.delay, 'start delay')]);
  put(out, 'lxc.start.order', [num(c.start?.order, 'start order')]);
  put(out, 'lxc.environment', c.environment?.map(renderEnv));
  put(out, 'lxc.apparmor.profile', [c.apparmorProfile]);
  put(out, 'lxc.log.file', [c.log?.file]);
  put(out, 'lxc.log.level', [c.log?.level]);
  const extras: string[] = [];
  for (const e of c.extra ?? []) {
    if (!KEY_PATTERN.test(e.key))
      throw new LxcError(`config key "${e.key}" is not valid`, 'INVALID_ARGUMENT');
    if (isModelledKey(e.key)) {
      throw new LxcError(
        `config key "${e.key}" belongs in its typed field, not in extra`,
        'INVALID_ARGUMENT',
      );
    }
    if (typeof e.value !== 'string')
      throw new LxcError(`${e.key}: value must be a string`, 'INVALID_ARGUMENT');
    extras.push(`${e.key} = ${e.value}`);
  }
  put(out, EXTRA_GROUP, extras);
  for (const kv of out) {
    for (const v of kv.values) {
      if (typeof v !== 'string') throw new LxcError(`${kv.key}: value must be a string`, 'INVALID_ARGUMENT');
      if (/[\r\n\0]/.test(v))
        throw new LxcError(`${kv.key}: value must not contain line breaks or NUL`, 'INVALID_ARGUMENT');
      const spec = specOf(kv.key);
      if (spec.clearable && spec.kind !== 'tokens' && v === '') {
        throw new LxcError(
          `${kv.key}: an empty value resets the key in LXC; leave the field out instead`,
          'INVALID_ARGUMENT',
        );
      }
      if (spec.kind === 'tokens' && (v === '' || C_SPACE.test(v))) {
        throw new LxcError(`${kv.key}: "${v}" must be one word`, 'INVALID_ARGUMENT');
      }
    }
  }
  return out;
}

type Sub = 'rootfs' | 'init' | 'signals' | 'tty' | 'start' | 'log';

/** The nested object of a typed field, created on first use. */
function sub<K extends Sub>(c: LxcConfig, key: K): NonNullable<LxcConfig[K]> {
  c[key] ??= {};
  return c[key] as NonNullable<LxcConfig[K]>;
}

function applyKey(c: LxcConfig, key: string, values: string[], line: number): void {
  const one = values[values.length - 1] as string;
  const at = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof LxcError) throw invalid(`${key}: ${e.message}`, line);
      throw e;
    }
  };
  const net = NET_KEY.exec(key);
  if (net && NET_KEYS[net[2] as string]) {
    const index = Number(net[1]);
    c.net ??= [];
    let n = c.net.find((x) => x.index === index);
    if (!n) {
      n = { index, type: '' };
      c.net.push(n);
    }
    switch (net[2]) {
      case 'type':
        n.type = one;
        break;
      case 'link':
        n.link = one;
        break;
      case 'name':
        n.name = one;
        break;
      case 'flags':
        n.flags = one;
        break;
      case 'hwaddr':
        n.hwaddr = one;
        break;
      case 'mtu':
        n.mtu = at(() => parseUint(one, 'mtu'));
        break;
      case 'ipv4.address':
        n.ipv4 = [...values];
        break;
      case 'ipv4.gateway':
        n.ipv4Gateway = one;
        break;
      case 'ipv6.address':
        n.ipv6 = [...values];
        break;
      case 'ipv6.gateway':
        n.ipv6Gateway = one;
        break;
      case 'veth.pair':
        n.vethPair = one;
        break;
    }
    return;
  }
  const cg = CGROUP_KEY.exec(key);
  if (cg && !CGROUP_RESERVED.test(key)) {
    const family = cg[1] as 'cgroup' | 'cgroup2';
    c[family] ??= [];
    const list = c[family];
    for (const value of values) list.push({ key: cg[2] as string, value });
    return;
  }
  switch (key) {
    case 'lxc.include':
      c.includes = [...values];
      return;
    case 'lxc.arch':
      c.arch = one;
      return;
    case 'lxc.uts.name':
      c.utsname = one;
      return;
    case 'lxc.rootfs.path':
      sub(c, 'rootfs').path = one;
      return;
    case 'lxc.rootfs.options':
      sub(c, 'rootfs').options = one;
      return;
    case 'lxc.rootfs.mount':
      sub(c, 'rootfs').mount = one;
      return;
    case 'lxc.mount.auto':
      c.mountAuto = [...values];
      return;
    case 'lxc.mount.fstab':
      c.mountFstab = one;
      return;
    case 'lxc.mount.entry':
      c.mounts = values.map(parseMountEntry);
      return;
    case 'lxc.cap.drop':
      c.capDrop = [...values];
      return;
    case 'lxc.cap.keep':
      c.capKeep = [...values];
      return;
    case 'lxc.idmap':
      c.idmaps = values.map(parseIdMap);
      return;
    case 'lxc.init.cmd':
      sub(c, 'init').cmd = one;
      return;
    case 'lxc.init.cwd':
      sub(c, 'init').cwd = one;
      return;
    case 'lxc.init.uid':
      sub(c, 'init').uid = Number(one);
      return;
    case 'lxc.init.gid':
      sub(c, 'init').gid = Number(one);
      return;
    case 'lxc.signal.halt':
      sub(c, 'signals').halt = one;
      return;
    case 'lxc.signal.reboot':
      sub(c, 'signals').reboot = one;
      return;
    case 'lxc.signal.stop':
      sub(c, 'signals').stop = one;
      return;
    case 'lxc.autodev':
      c.autodev = one === '1';
      return;
    case 'lxc.tty.max':
      sub(c, 'tty').max = Number(one);
      return;
    case 'lxc.tty.dir':
      sub(c, 'tty').dir = one;
      return;
    case 'lxc.pty.max':
      c.ptyMax = Number(one);
      return;
    case 'lxc.start.auto':
      sub(c, 'start').auto = one === '1';
      return;
    case 'lxc.start.delay':
      sub(c, 'start').delay = Number(one);
      return;
    case 'lxc.start.order':
      sub(c, 'start').order = Number(one);
      return;
    case 'lxc.environment':
      c.environment = values.map(parseEnv);
      return;
    case 'lxc.apparmor.profile':
      c.apparmorProfile = one;
      return;
    case 'lxc.log.file':
      sub(c, 'log').file = one;
      return;
    case 'lxc.log.level':
      sub(c, 'log').level = one;
      return;
  }
  c.extra ??= [];
  for (const value of values) c.extra.push({ key, value });
}

// ---------------------------------------------------------------- parse

/** Splits `key = value` the way LXC's parse_line does: trim both, strip one pair of matching quotes. */
function splitLine(raw: string, line: number): { key: string; value: string } {
  const eq = raw.indexOf('=');
  if (eq < 0) throw invalid(`"${raw.trim().slice(0, 80)}" is not a comment and has no "="`, line);
  const key = cTrim(raw.slice(0, eq));
  if (!KEY_PATTERN.test(key)) throw invalid(`config key "${key.slice(0, 80)}" is not valid`, line);
  let value = cTrim(raw.slice(eq + 1));
  if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value[value.length - 1] === value[0]) {
    value = value.slice(1, -1);
  }
  return { key, value };
}

/**
 * Parses an LXC config text into the typed model. The returned config's
 * `layout` remembers the text, so `renderConfig(parseConfig(t)) === t`, and
 * edits to the typed fields change only the lines concerned.
 * Throws LxcError INVALID_CONFIG naming the line of anything LXC would reject
 * as malformed (unknown keys are kept, in `extra`).
 */
export function parseConfig(text: string): LxcConfig {
  if (typeof text !== 'string') throw new LxcError('config text must be a string', 'INVALID_ARGUMENT');
  if (text.length > MAX_CONFIG_BYTES) throw invalid(`config text is larger than ${MAX_CONFIG_BYTES} bytes`);
  if (text.includes('\0')) throw invalid('config text contains a NUL byte');
  const lines: SourceLine[] = [];
  /** Effective entries per group, in first-appearance order. */
  const effective = new Map<string, { entries: { key: string; value: string; line: number }[] }>();
  text.split('\n').forEach((raw, i) => {
    const lineNo = i + 1;
    const trimmed = cTrim(raw);
    if (trimmed === '' || trimmed.startsWith('#')) {
      lines.push({ type: 'text', raw });
      return;
    }
    const { key, value } = splitLine(raw, lineNo);
    const spec = specOf(key);
    const group = groupOf(key);
    const clear = spec.clearable && value === '';
    let norm: string;
    try {
      norm = clear ? '' : spec.kind === 'tokens' ? value.split(C_SPACE).join(' ') : spec.normalize(value);
    } catch (e) {
      if (e instanceof LxcError) throw invalid(`${key}: ${e.message}`, lineNo);
      throw e;
    }
    if (isFamily(group)) norm = `${key} = ${norm}`;
    lines.push({ type: 'entry', raw, key, group, norm, clear });
    let eff = effective.get(group);
    if (!eff) {
      eff = { entries: [] };
      effective.set(group, eff);
    }
    if (clear) eff.entries = [];
    else if (spec.kind === 'scalar') eff.entries = [{ key, value, line: lineNo }];
    else if (spec.kind === 'tokens') {
      for (const t of value.split(C_SPACE)) eff.entries.push({ key, value: t, line: lineNo });
    } else eff.entries.push({ key, value, line: lineNo });
  });
  const config: LxcConfig = {};
  for (const [group, { entries }] of effective) {
    if (entries.length === 0) continue;
    if (isFamily(group)) {
      for (const e of entries) applyKey(config, e.key, [e.value], e.line);
    } else {
      applyKey(
        config,
        group,
        entries.map((e) => e.value),
        (entries[entries.length - 1] as { line: number }).line,
      );
    }
  }
  if (config.net) {
    for (const n of config.net) {
      if (n.type === '') throw invalid(`lxc.net.${n.index} has settings but no type`);
    }
    config.net.sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
    config.net.forEach((n, pos) => {
      if (n.index === pos) delete n.index;
    });
  }
  config.layout = new ConfigLayout(lines);
  return config;
}

// ---------------------------------------------------------------- render

function renderFresh(groups: KeyValues[]): string {
  const out: string[] = [];
  for (const { key, values } of groups) {
    if (specOf(key).kind === 'tokens') out.push(lineOf(key, values.join(' ')));
    else for (const v of values) out.push(lineOf(key, v));
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/**
 * Renders a config. Without `layout`, a canonical text (one `key = value` per
 * line, includes first). With the `layout` of a parsed text, that text with
 * only the changed lines rewritten: unchanged lines keep their spelling,
 * comments and blank lines stay, removed values lose their lines, new values
 * go where their order puts them among the lines of the same key (or group),
 * or at the end. Parsing the result always gives back the typed fields.
 */
export function renderConfig(config: LxcConfig): string {
  const groups = toKeyValues(config);
  if (!config.layout) return renderFresh(groups);
  const target = new Map<string, { values: string[]; next: number }>();
  for (const { key, values } of groups) target.set(key, { values, next: 0 });
  const src = config.layout.lines;
  const last = new Map<string, number>();
  const lastClear = new Map<string, number>();
  src.forEach((l, i) => {
    if (l.type !== 'entry') return;
    last.set(l.group, i);
    if (l.clear) lastClear.set(l.group, i);
  });
  const out: string[] = [];
  const done = new Set<string>();
  /** Emits the group's values from `next` up to (not including) `end` as new lines. */
  const emitNew = (group: string, end?: number): void => {
    const t = target.get(group);
    if (!t) return;
    const stop = end ?? t.values.length;
    if (stop <= t.next) return;
    const fresh = t.values.slice(t.next, stop);
    if (specOf(group).kind === 'tokens') out.push(lineOf(group, fresh.join(' ')));
    else for (const v of fresh) out.push(lineOf(group, v));
    t.next = stop;
  };
  src.forEach((l, i) => {
    if (l.type === 'text') {
      out.push(l.raw);
      return;
    }
    const spec = specOf(l.key);
    const t = target.get(l.group);
    const isLast = last.get(l.group) === i;
    const finish = (): void => {
      if (isLast) {
        emitNew(l.group);
        done.add(l.group);
      }
    };
    if (l.clear || i < (lastClear.get(l.group) ?? -1)) {
      // A reset, or a line a later reset cancels: both keep their meaning as they are.
      out.push(l.raw);
      finish();
      return;
    }
    if (!t) return;
    if (spec.kind === 'scalar') {
      if (!isLast) out.push(l.raw);
      else {
        const want = t.values[0] as string;
        out.push(l.norm === spec.normalize(want) ? l.raw : lineOf(l.group, want));
        t.next = t.values.length;
        done.add(l.group);
      }
      return;
    }
    if (spec.kind === 'items') {
      const at = t.values.indexOf(l.norm, t.next);
      if (at >= 0) {
        emitNew(l.group, at);
        out.push(l.raw);
        t.next = at + 1;
      }
      finish();
      return;
    }
    const tokens = l.norm.split(' ');
    const kept: string[] = [];
    for (const token of tokens) {
      const at = t.values.indexOf(token, t.next);
      if (at < 0) continue;
      kept.push(...t.values.slice(t.next, at + 1));
      t.next = at + 1;
    }
    if (kept.length === tokens.length && kept.every((k, j) => k === tokens[j])) out.push(l.raw);
    else if (kept.length > 0) out.push(lineOf(l.group, kept.join(' ')));
    finish();
  });
  // Groups the text did not have go before the text's final newline.
  const tail = out.length > 0 && out[out.length - 1] === '' ? out.pop() : undefined;
  for (const { key } of groups) if (!done.has(key)) emitNew(key);
  if (tail !== undefined) out.push(tail);
  return out.join('\n');
}

/** A copy of the config without its layout (for comparisons and canonical rendering). */
export function withoutLayout(config: LxcConfig): LxcConfig {
  const { layout: _layout, ...rest } = config;
  return rest;
}
