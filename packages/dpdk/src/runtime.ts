import { lstatSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { HUGEPAGE_FILE_INFIX, ROOT_RUNTIME_BASE, USER_RUNTIME_FALLBACK_BASE } from './defs.js';
import { DpdkError, fromSystemError } from './errors.js';

/**
 * The EAL runtime directory for a file prefix, as the EAL computes it for the given uid: /var/run/dpdk/<p>
 * for root, $XDG_RUNTIME_DIR/dpdk/<p> (or /tmp/dpdk/<p>) for other users.
 */
export function runtimeDir(prefix: string, uid: number = process.getuid?.() ?? 0, env = process.env): string {
  if (uid === 0) return join(ROOT_RUNTIME_BASE, prefix);
  const base =
    env.XDG_RUNTIME_DIR && env.XDG_RUNTIME_DIR !== '' ? env.XDG_RUNTIME_DIR : USER_RUNTIME_FALLBACK_BASE;
  return join(base, 'dpdk', prefix);
}

function pids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e))
      .map(Number);
  } catch {
    return [];
  }
}

/** Paths a process holds: its mapped files and its open fds (those we may read). */
export function heldPaths(pid: number): Set<string> {
  const out = new Set<string>();
  try {
    for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
      const i = line.indexOf('/');
      if (i > 0) out.add(line.slice(i).replace(/ \(deleted\)$/, ''));
    }
  } catch {
    /* gone or not ours */
  }
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        out.add(readlinkSync(`/proc/${pid}/fd/${fd}`).replace(/ \(deleted\)$/, ''));
      } catch {
        /* closed meanwhile */
      }
    }
  } catch {
    /* gone or not ours */
  }
  return out;
}

/** Live processes (other than `exclude`) holding any path for which `match` is true. */
export function processesHolding(
  match: (path: string) => boolean,
  exclude: readonly number[] = [],
): number[] {
  const out: number[] = [];
  for (const pid of pids()) {
    if (exclude.includes(pid)) continue;
    for (const p of heldPaths(pid)) {
      if (match(p)) {
        out.push(pid);
        break;
      }
    }
  }
  return out;
}

/** For each of `paths`, the live processes (other than `exclude`) mapping it or holding it open. */
export function holdersOf(
  paths: ReadonlySet<string>,
  exclude: readonly number[] = [],
): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const pid of pids()) {
    if (exclude.includes(pid)) continue;
    for (const p of heldPaths(pid)) {
      if (paths.has(p)) out.set(p, [...(out.get(p) ?? []), pid]);
    }
  }
  return out;
}

/** The --file-prefix values of live processes started with one (by their command line). */
export function runningFilePrefixes(): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const pid of pids()) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const sep = argv.indexOf('--');
    const eal = sep >= 0 ? argv.slice(0, sep) : argv;
    for (let i = 0; i < eal.length; i++) {
      const a = eal[i]!;
      let v: string | undefined;
      if (a.startsWith('--file-prefix=')) v = a.slice('--file-prefix='.length);
      else if (a === '--file-prefix') v = eal[i + 1];
      if (v !== undefined && v !== '') out.set(v, [...(out.get(v) ?? []), pid]);
    }
  }
  return out;
}

/**
 * Live processes using a file prefix: those whose command line names it plus those holding files of its
 * runtime directory (catches apps started with the default prefix "rte").
 */
export function processesUsingPrefix(prefix: string, exclude: readonly number[] = []): number[] {
  const byCmd = (runningFilePrefixes().get(prefix) ?? []).filter((p) => !exclude.includes(p));
  const dirs = [runtimeDir(prefix, 0), runtimeDir(prefix, 1), join('/tmp/dpdk', prefix)].map((d) => `${d}/`);
  const byFiles = processesHolding((p) => dirs.some((d) => p.startsWith(d)), exclude);
  return [...new Set([...byCmd, ...byFiles])].sort((a, b) => a - b);
}

/** Throw DUPLICATE_FILE_PREFIX when a live process uses `prefix` (what spawnDpdk checks before starting). */
export function assertFilePrefixFree(prefix: string): void {
  const users = processesUsingPrefix(prefix);
  if (users.length > 0) {
    throw new DpdkError(
      'DUPLICATE_FILE_PREFIX',
      `--file-prefix=${prefix} is in use by live process(es) ${users.join(', ')}; give every DPDK app its own prefix`,
      { filePrefix: prefix, pids: users },
    );
  }
}

/** Remove a DPDK runtime directory (config, fbarray files, mp_socket); returns whether something was removed. */
export function removeRuntimeDir(
  prefix: string,
  uid?: number,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  const dir = runtimeDir(prefix, uid, env);
  try {
    lstatSync(dir);
  } catch {
    return false;
  }
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (e) {
    throw fromSystemError(e, `remove ${dir}`);
  }
  return true;
}

/** Is `name` a hugepage backing file of `prefix` (<prefix>map_<n>, or <prefix>map_<n>_<m>)? */
export function isHugepageFileOf(name: string, prefix: string): boolean {
  if (!name.startsWith(prefix + HUGEPAGE_FILE_INFIX)) return false;
  return /^[0-9_]+$/.test(name.slice(prefix.length + HUGEPAGE_FILE_INFIX.length));
}
