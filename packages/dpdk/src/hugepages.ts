import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HUGEPAGE_FILE_INFIX, SYSFS_HUGEPAGES, SYSFS_NODES } from './defs.js';
import { DpdkError, fromSystemError } from './errors.js';
import { holdersOf } from './runtime.js';

/** Pool counters of one page size, system-wide and per NUMA node (sysfs). */
export interface HugepagePool {
  /** Page size in KiB (2048, 1048576). */
  sizeKb: number;
  total: number;
  free: number;
  reserved: number;
  surplus: number;
  nodes: { node: number; total: number; free: number; surplus: number }[];
}

/** A mounted hugetlbfs (from /proc/mounts). */
export interface HugetlbfsMount {
  mountPoint: string;
  /** Page size in KiB, from the pagesize= option or the default page size. */
  pageSizeKb: number;
  options: string[];
  uid: number | undefined;
  gid: number | undefined;
  mode: number | undefined;
}

/** A DPDK hugepage backing file (<prefix>map_<n>). */
export interface HugepageFile {
  path: string;
  prefix: string;
  bytes: number;
  /** Live processes that map it or hold it open. Empty means it is a leftover of a dead process. */
  heldBy: number[];
}

function readNum(path: string): number {
  const v = Number(readFileSync(path, 'utf8').trim());
  if (!Number.isInteger(v) || v < 0) throw new DpdkError('PARSE_ERROR', `${path}: not a count`);
  return v;
}

function sizeDirs(base: string): { dir: string; sizeKb: number }[] {
  try {
    return readdirSync(base)
      .map((e) => ({ dir: join(base, e), m: /^hugepages-(\d+)kB$/.exec(e) }))
      .filter((x) => x.m !== null)
      .map((x) => ({ dir: x.dir, sizeKb: Number(x.m![1]) }))
      .sort((a, b) => a.sizeKb - b.sizeKb);
  } catch {
    return [];
  }
}

function nodeIds(): number[] {
  try {
    return readdirSync(SYSFS_NODES)
      .map((e) => /^node(\d+)$/.exec(e)?.[1])
      .filter((x): x is string => x !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  } catch {
    return [];
  }
}

/** The system's default hugepage size in KiB (/proc/meminfo Hugepagesize), or undefined. */
export function defaultHugepageSizeKb(): number | undefined {
  try {
    const m = /^Hugepagesize:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Totals and free pages for every page size, and per NUMA node. */
export function hugepagePools(): HugepagePool[] {
  const nodes = nodeIds();
  return sizeDirs(SYSFS_HUGEPAGES).map(({ dir, sizeKb }) => ({
    sizeKb,
    total: readNum(join(dir, 'nr_hugepages')),
    free: readNum(join(dir, 'free_hugepages')),
    reserved: readNum(join(dir, 'resv_hugepages')),
    surplus: readNum(join(dir, 'surplus_hugepages')),
    nodes: nodes
      .map((node) => {
        const d = join(SYSFS_NODES, `node${node}`, 'hugepages', `hugepages-${sizeKb}kB`);
        if (!existsSync(d)) return undefined;
        return {
          node,
          total: readNum(join(d, 'nr_hugepages')),
          free: readNum(join(d, 'free_hugepages')),
          surplus: readNum(join(d, 'surplus_hugepages')),
        };
      })
      .filter((n): n is NonNullable<typeof n> => n !== undefined),
  }));
}

export interface ReserveOptions {
  /** Page size in KiB (default 2048). */
  sizeKb?: number;
  /** Reserve on one NUMA node only. */
  node?: number;
}

/**
 * Set the number of persistent hugepages of a size (system-wide or on one node). Needs root.
 * Returns the previous and the resulting count (the kernel may reserve fewer than asked when memory is
 * fragmented); throws NOT_PERMITTED without privileges, NOT_FOUND for an unsupported size or node.
 */
export function setHugepageCount(
  count: number,
  opts: ReserveOptions = {},
): { previous: number; current: number } {
  if (!Number.isInteger(count) || count < 0 || count > 1 << 24) {
    throw new DpdkError('INVALID_OPTION', `hugepage count ${count}: must be an integer in 0..${1 << 24}`);
  }
  const sizeKb = opts.sizeKb ?? 2048;
  const dir =
    opts.node === undefined
      ? join(SYSFS_HUGEPAGES, `hugepages-${sizeKb}kB`)
      : join(SYSFS_NODES, `node${opts.node}`, 'hugepages', `hugepages-${sizeKb}kB`);
  if (!existsSync(dir)) {
    throw new DpdkError(
      'NOT_FOUND',
      `no hugepage pool of ${sizeKb} kB${opts.node === undefined ? '' : ` on node ${opts.node}`} (${dir})`,
    );
  }
  const file = join(dir, 'nr_hugepages');
  const previous = readNum(file);
  try {
    writeFileSync(file, `${count}\n`);
  } catch (e) {
    throw fromSystemError(e, `reserve ${count} hugepages of ${sizeKb} kB`);
  }
  return { previous, current: readNum(file) };
}

function parseMountOptions(
  opts: string[],
): Pick<HugetlbfsMount, 'uid' | 'gid' | 'mode'> & { pagesize?: string } {
  const out: Pick<HugetlbfsMount, 'uid' | 'gid' | 'mode'> & { pagesize?: string } = {
    uid: undefined,
    gid: undefined,
    mode: undefined,
  };
  for (const o of opts) {
    const [k, v] = o.split('=');
    if (v === undefined) continue;
    if (k === 'uid') out.uid = Number(v);
    else if (k === 'gid') out.gid = Number(v);
    else if (k === 'mode') out.mode = Number.parseInt(v, 8);
    else if (k === 'pagesize') out.pagesize = v;
  }
  return out;
}

/** Parse a page size such as "2M", "1G", "2048k" or "2097152" (bytes) into KiB. */
export function parsePageSizeKb(s: string): number {
  const m = /^(\d+)([KkMmGg]?)[Bb]?$/.exec(s.trim());
  if (!m) throw new DpdkError('INVALID_OPTION', `page size "${s}": expected e.g. 2M or 1G`);
  const n = Number(m[1]);
  switch (m[2]!.toUpperCase()) {
    case 'K':
      return n;
    case 'M':
      return n * 1024;
    case 'G':
      return n * 1024 * 1024;
    default:
      return n / 1024;
  }
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** Mounted hugetlbfs file systems. */
export function hugetlbfsMounts(): HugetlbfsMount[] {
  let text: string;
  try {
    text = readFileSync('/proc/mounts', 'utf8');
  } catch {
    return [];
  }
  const def = defaultHugepageSizeKb() ?? 2048;
  const out: HugetlbfsMount[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f[2] !== 'hugetlbfs' || f[1] === undefined) continue;
    const options = (f[3] ?? '').split(',');
    const p = parseMountOptions(options);
    out.push({
      mountPoint: unescapeMount(f[1]),
      pageSizeKb: p.pagesize ? parsePageSizeKb(p.pagesize) : def,
      options,
      uid: p.uid,
      gid: p.gid,
      mode: p.mode,
    });
  }
  return out;
}

export interface MountOptions {
  /** "2M", "1G" (default: the system default size). */
  pageSize?: string;
  /** Owner of the mount root: lets a non-root DPDK app use it with --huge-dir. */
  uid?: number;
  gid?: number;
  /** Permission bits of the mount root, e.g. 0o770. */
  mode?: number;
  /** Limit, e.g. "256M" (hugetlbfs size= option). */
  size?: string;
  /** Create the directory when missing (default true). */
  create?: boolean;
}

function runMount(cmd: string, args: string[], what: string): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw fromSystemError(r.error, what);
  if (r.status !== 0) {
    const msg = `${r.stderr ?? ''}`.trim();
    const perm = /permission denied|must be superuser|only root|not permitted/i.test(msg);
    throw new DpdkError(
      perm ? 'NOT_PERMITTED' : /busy/i.test(msg) ? 'BUSY' : 'SYSTEM_ERROR',
      `${what}: ${msg || `exit ${r.status}`}`,
      {
        status: r.status,
      },
    );
  }
}

/** Mount a hugetlbfs at `dir` (root). Returns the mount as /proc/mounts reports it. */
export function mountHugetlbfs(dir: string, opts: MountOptions = {}): HugetlbfsMount {
  if (!dir.startsWith('/')) throw new DpdkError('INVALID_OPTION', `mount point "${dir}": must be absolute`);
  const o: string[] = [];
  if (opts.pageSize !== undefined) {
    parsePageSizeKb(opts.pageSize);
    o.push(`pagesize=${opts.pageSize}`);
  }
  if (opts.uid !== undefined) {
    if (!Number.isInteger(opts.uid) || opts.uid < 0)
      throw new DpdkError('INVALID_OPTION', `uid ${opts.uid}: not a user id`);
    o.push(`uid=${opts.uid}`);
  }
  if (opts.gid !== undefined) {
    if (!Number.isInteger(opts.gid) || opts.gid < 0)
      throw new DpdkError('INVALID_OPTION', `gid ${opts.gid}: not a group id`);
    o.push(`gid=${opts.gid}`);
  }
  if (opts.mode !== undefined) {
    if (!Number.isInteger(opts.mode) || opts.mode < 0 || opts.mode > 0o7777)
      throw new DpdkError('INVALID_OPTION', `mode ${opts.mode}: not a permission mode`);
    o.push(`mode=${opts.mode.toString(8).padStart(4, '0')}`);
  }
  if (opts.size !== undefined) {
    if (!/^\d+[KkMmGg%]?$/.test(opts.size))
      throw new DpdkError('INVALID_OPTION', `size "${opts.size}": expected e.g. 256M`);
    o.push(`size=${opts.size}`);
  }
  if (opts.create !== false) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw fromSystemError(e, `create mount point ${dir}`);
    }
  }
  runMount(
    'mount',
    ['-t', 'hugetlbfs', ...(o.length ? ['-o', o.join(',')] : []), 'nodev', dir],
    `mount hugetlbfs on ${dir}`,
  );
  const m = hugetlbfsMounts()
    .filter((x) => x.mountPoint === dir)
    .at(-1);
  if (!m)
    throw new DpdkError(
      'SYSTEM_ERROR',
      `mount hugetlbfs on ${dir}: mount succeeded but /proc/mounts does not list it`,
    );
  return m;
}

/** Unmount a hugetlbfs (root). Throws NOT_FOUND when `dir` is not a hugetlbfs mount, BUSY when in use. */
export function unmountHugetlbfs(dir: string, opts: { removeDir?: boolean } = {}): void {
  if (!hugetlbfsMounts().some((m) => m.mountPoint === dir)) {
    throw new DpdkError('NOT_FOUND', `${dir} is not a hugetlbfs mount point`);
  }
  runMount('umount', [dir], `unmount ${dir}`);
  if (opts.removeDir) {
    try {
      rmSync(dir, { recursive: false, force: true });
    } catch {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch (e) {
        throw fromSystemError(e, `remove ${dir}`);
      }
    }
  }
}

const MAP_FILE = new RegExp(`^(.*?)${HUGEPAGE_FILE_INFIX}\\d+(?:_\\d+)?$`);

export interface HugepageFileQuery {
  /** Only files of this prefix. */
  prefix?: string;
  /** Directories to look in (default: every hugetlbfs mount). */
  dirs?: readonly string[];
}

/** DPDK hugepage files (<prefix>map_<n>) with the live processes holding them. */
export function findHugepageFiles(q: HugepageFileQuery = {}): HugepageFile[] {
  const dirs = q.dirs ?? hugetlbfsMounts().map((m) => m.mountPoint);
  const files: { path: string; prefix: string; bytes: number }[] = [];
  for (const d of new Set(dirs)) {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names) {
      const m = MAP_FILE.exec(n);
      if (!m || m[1] === '') continue;
      if (q.prefix !== undefined && m[1] !== q.prefix) continue;
      const path = join(d, n);
      try {
        const st = statSync(path);
        if (st.isFile()) files.push({ path, prefix: m[1]!, bytes: st.blocks * 512 || st.size });
      } catch {
        /* vanished */
      }
    }
  }
  if (files.length === 0) return [];
  const holders = holdersOf(new Set(files.map((f) => f.path)));
  return files.map((f) => ({ ...f, heldBy: holders.get(f.path) ?? [] }));
}

/**
 * Remove hugepage files that no live process maps or holds open (leftovers of crashed or killed DPDK
 * apps, which keep their pages allocated). Files in use are never touched. Returns the removed files.
 */
export function removeLeftoverHugepageFiles(q: HugepageFileQuery = {}): HugepageFile[] {
  const removed: HugepageFile[] = [];
  for (const f of findHugepageFiles(q)) {
    if (f.heldBy.length > 0) continue;
    try {
      rmSync(f.path, { force: true });
    } catch (e) {
      throw fromSystemError(e, `remove ${f.path}`);
    }
    removed.push(f);
  }
  return removed;
}
