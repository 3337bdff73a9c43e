import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { APP_SEARCH_DIRS, DEBIAN_PACKAGE, TESTPMD } from './defs.js';
import { DpdkError } from './errors.js';

/** A DPDK installation found on this machine. */
export interface DpdkInstallation {
  installed: true;
  /** Absolute path of dpdk-testpmd. */
  testpmd: string;
  /** Every dpdk-* application found, by name. */
  apps: Record<string, string>;
  /** e.g. "22.11.11"; undefined when neither pkg-config nor the app tells. */
  version: string | undefined;
  versionSource: 'pkg-config' | 'app' | 'unknown';
  /** Directory the EAL auto-loads PMDs from (shared builds), if found. */
  pmdDir: string | undefined;
  /** Shared PMD libraries found there, as driver-library names ("net_vhost", "net_virtio", ...). */
  pmds: string[];
}

/** What discovery reports when DPDK is absent. */
export interface DpdkMissing {
  installed: false;
  /** Debian package to install. */
  package: string;
  /** Human-readable explanation with the install command. */
  message: string;
  searched: string[];
}

export interface DiscoverOptions {
  /** PATH to search (default process.env.PATH) before the standard directories. */
  path?: string;
  /** Also search /usr/bin, /usr/local/bin, ... (default true). */
  standardDirs?: boolean;
  /** Run the app for its version when pkg-config does not know it (default true). */
  probeApp?: boolean;
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function searchDirs(pathEnv: string | undefined, standard = true): string[] {
  const dirs = (pathEnv ?? '').split(delimiter).filter((d) => d.startsWith('/'));
  if (standard) for (const d of APP_SEARCH_DIRS) if (!dirs.includes(d)) dirs.push(d);
  return dirs;
}

/** Find an executable by name on PATH and the standard directories; undefined when absent. */
export function findExecutable(
  name: string,
  pathEnv: string | undefined = process.env.PATH,
  standardDirs = true,
): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined;
  for (const d of searchDirs(pathEnv, standardDirs)) {
    const p = join(d, name);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

/** The libdpdk version from pkg-config, or undefined. */
export function pkgConfigVersion(): string | undefined {
  const r = spawnSync('pkg-config', ['--modversion', 'libdpdk'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0 || typeof r.stdout !== 'string') return undefined;
  const v = r.stdout.trim();
  return /^\d+\.\d+(\.\d+)*$/.test(v) ? v : undefined;
}

/** Ask an EAL application for the RTE version (`-v --help` prints it and exits without initialising). */
export function appVersion(app: string): string | undefined {
  const r = spawnSync(app, ['-v', '--help'], {
    encoding: 'utf8',
    timeout: 15_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const m = /RTE Version: 'DPDK (\d+\.\d+(?:\.\d+)*)/.exec(`${r.stdout ?? ''}\n${r.stderr ?? ''}`);
  return m?.[1];
}

function libDirs(): string[] {
  const dirs: string[] = [];
  const r = spawnSync('pkg-config', ['--variable=libdir', 'libdpdk'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status === 0 && typeof r.stdout === 'string' && r.stdout.trim().startsWith('/'))
    dirs.push(r.stdout.trim());
  for (const base of ['/usr/lib', '/usr/local/lib', '/usr/lib64', '/usr/local/lib64']) {
    if (!existsSync(base)) continue;
    dirs.push(base);
    try {
      for (const e of readdirSync(base)) if (/-linux-gnu/.test(e)) dirs.push(join(base, e));
    } catch {
      /* unreadable */
    }
  }
  return [...new Set(dirs)];
}

/** The PMD directory (<libdir>/dpdk/pmds-<abi>) and the network/bus PMD libraries in it. */
export function findPmds(): { pmdDir: string | undefined; pmds: string[] } {
  for (const lib of libDirs()) {
    const dpdkDir = join(lib, 'dpdk');
    let entries: string[];
    try {
      entries = readdirSync(dpdkDir)
        .filter((e) => e.startsWith('pmds-'))
        .sort();
    } catch {
      continue;
    }
    const last = entries.at(-1);
    if (last === undefined) continue;
    const pmdDir = join(dpdkDir, last);
    const pmds = readdirSync(pmdDir)
      .map((f) => /^librte_([a-z0-9]+_[a-z0-9_]+)\.so$/.exec(f)?.[1])
      .filter((n): n is string => n !== undefined)
      .sort();
    return { pmdDir, pmds };
  }
  return { pmdDir: undefined, pmds: [] };
}

/** The shared library that provides a driver: net_virtio_user lives in net_virtio. */
export function pmdLibraryOf(driver: string): string {
  if (driver === 'net_virtio_user') return 'net_virtio';
  return driver;
}

function missing(searched: string[]): DpdkMissing {
  return {
    installed: false,
    package: DEBIAN_PACKAGE,
    searched,
    message: `DPDK is not installed: ${TESTPMD} was not found (searched ${searched.join(', ')}). On Debian/Ubuntu install the package ${DEBIAN_PACKAGE} (the package "dpdk" alone does not ship ${TESTPMD}): sudo apt-get install -y ${DEBIAN_PACKAGE}`,
  };
}

/** Look for DPDK on this machine: testpmd, the other apps, the version and the PMDs. Never throws. */
export function discoverDpdk(opts: DiscoverOptions = {}): DpdkInstallation | DpdkMissing {
  const pathEnv = opts.path ?? process.env.PATH;
  const dirs = searchDirs(pathEnv, opts.standardDirs !== false);
  const testpmd = findExecutable(TESTPMD, pathEnv, opts.standardDirs !== false);
  if (testpmd === undefined) return missing(dirs);
  const apps: Record<string, string> = {};
  for (const d of dirs) {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names)
      if (n.startsWith('dpdk-') && !(n in apps) && isExecutable(join(d, n))) apps[n] = join(d, n);
  }
  let version = pkgConfigVersion();
  let versionSource: DpdkInstallation['versionSource'] = version ? 'pkg-config' : 'unknown';
  if (version === undefined && opts.probeApp !== false) {
    version = appVersion(testpmd);
    if (version !== undefined) versionSource = 'app';
  }
  return { installed: true, testpmd, apps, version, versionSource, ...findPmds() };
}

let cached: DpdkInstallation | undefined;

/** Like discoverDpdk, but throws NOT_INSTALLED (naming the Debian package) when DPDK is absent. Cached. */
export function requireDpdk(): DpdkInstallation {
  if (cached) return cached;
  const d = discoverDpdk();
  if (!d.installed)
    throw new DpdkError('NOT_INSTALLED', d.message, { package: d.package, searched: d.searched });
  cached = d;
  return d;
}
