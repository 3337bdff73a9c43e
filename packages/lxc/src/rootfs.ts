import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { MountEntry } from './config.js';
import { BUSYBOX_PACKAGE, BUSYBOX_PATHS } from './defs.js';
import { LxcError } from './errors.js';
import { bindMount } from './wiring.js';

/** How the host's Node.js runtime reaches the container. */
export type NodeRuntimeMode =
  /** Bind-mount the node binary and each library `ldd` lists, read-only (the default). */
  | 'libs'
  /** Bind-mount the host's /usr read-only plus /etc/ld.so.cache (the whole userland is visible). */
  | 'usr';

export interface RootfsOptions {
  /** Directory to create; it must not exist, or be empty. */
  path: string;
  /** The static busybox to copy (default: the first of /bin/busybox, /usr/bin/busybox). */
  busybox?: string;
  /** Make the host's node runnable inside (default 'libs'); false for a plain busybox rootfs. */
  node?: NodeRuntimeMode | false;
  /** The node binary (default: process.execPath). */
  nodeBinary?: string;
  /** Text of /sbin/init (default: a busybox sh loop that exits 0 on TERM, PWR, INT, USR1 or HUP). */
  init?: string;
  /**
   * Owner of every file (host ids), for unprivileged containers: the host ids
   * that the container's root maps to (`lxc.idmap = u 0 <uid> ...`).
   * Lxc.create sets it from the config's idmaps.
   */
  owner?: { uid: number; gid: number };
  /** More lines for /etc/passwd and /etc/group (root and nobody are always there). */
  passwd?: string[];
  group?: string[];
}

/** A root filesystem built by buildRootfs, and what its config needs. */
export interface Rootfs {
  path: string;
  /** Mount entries the container config needs (the node runtime binds). */
  mounts: MountEntry[];
  /** Where node is inside the container, when a runtime was added. */
  nodePath?: string;
  /** The init inside the container. */
  init: string;
}

/** Our init: PID 1 must install handlers, or the kernel drops TERM sent to it. */
export const DEFAULT_INIT = `#!/bin/sh
# vipc minimal init: stay up until asked to stop, then exit 0.
trap 'exit 0' TERM PWR INT USR1 HUP
while :; do
  sleep 3600 &
  wait $!
done
`;

const ROOTFS_DIRS = [
  'bin',
  'sbin',
  'etc',
  'dev',
  'proc',
  'sys',
  'tmp',
  'root',
  'run',
  'mnt',
  'var/tmp',
  'usr/bin',
  'usr/sbin',
];

function fail(message: string, cause?: unknown): LxcError {
  return new LxcError(message, 'ROOTFS_FAILED', {}, cause === undefined ? undefined : { cause });
}

/** True when the ELF file at path has no PT_INTERP program header (is statically linked). */
export function isStaticElf(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const hdr = Buffer.alloc(64);
    if (readSync(fd, hdr, 0, 64, 0) < 64 || hdr.readUInt32BE(0) !== 0x7f454c46) return false;
    const is64 = hdr[4] === 2;
    const le = hdr[5] === 1;
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const phoff = is64 ? Number(le ? hdr.readBigUInt64LE(32) : hdr.readBigUInt64BE(32)) : u32(hdr, 28);
    const phentsize = u16(hdr, is64 ? 54 : 42);
    const phnum = u16(hdr, is64 ? 56 : 44);
    if (phnum > 4096 || phentsize < 8) return false;
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) {
      if (u32(ph, i * phentsize) === 3 /* PT_INTERP */) return false;
    }
    return true;
  } finally {
    closeSync(fd);
  }
}

/** The host's static busybox, or DEPENDENCY_MISSING naming busybox-static. */
export function findStaticBusybox(candidate?: string): string {
  const list = candidate ? [candidate] : [...BUSYBOX_PATHS];
  for (const p of list) {
    if (existsSync(p) && isStaticElf(realpathSync(p))) return realpathSync(p);
  }
  throw new LxcError(
    `no statically linked busybox at ${list.join(' or ')} (Debian package "${BUSYBOX_PACKAGE}")`,
    'DEPENDENCY_MISSING',
    { fix: `apt-get install -y ${BUSYBOX_PACKAGE}` },
  );
}

/** One library (or the loader) from `ldd` output: the path as the loader names it. */
export function parseLdd(output: string): string[] {
  const paths: string[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('statically linked') || line.includes('not a dynamic executable'))
      continue;
    if (/=>\s*not found/.test(line)) throw fail(`a library node needs is missing on the host: ${line}`);
    const arrow = /=>\s*(\/\S+)/.exec(line);
    if (arrow) {
      paths.push(arrow[1] as string);
      continue;
    }
    const direct = /^(\/\S+)\s+\(/.exec(line);
    if (direct) paths.push(direct[1] as string);
    // linux-vdso.so.1 and friends have no file
  }
  return paths;
}

/**
 * The mount entries that make `binary` (default: this node) run inside a
 * container whose rootfs lacks it: the binary and its ldd libraries, each bound
 * read-only from its real path to the path the loader looks up ('libs'), or the
 * host's /usr plus /etc/ld.so.cache ('usr'; the rootfs needs the merged-/usr
 * symlinks that buildRootfs makes).
 */
export function nodeRuntimeMounts(
  mode: NodeRuntimeMode = 'libs',
  binary: string = process.execPath,
): MountEntry[] {
  if (!isAbsolute(binary))
    throw new LxcError(`node binary path must be absolute (got "${binary}")`, 'INVALID_ARGUMENT');
  if (!existsSync(binary)) {
    throw new LxcError(`node binary ${binary} does not exist`, 'DEPENDENCY_MISSING', {
      fix: 'apt-get install -y nodejs',
    });
  }
  if (mode === 'usr') {
    const mounts = [bindMount('/usr', '/usr', { readOnly: true, create: 'dir' })];
    if (existsSync('/etc/ld.so.cache'))
      mounts.push(bindMount('/etc/ld.so.cache', '/etc/ld.so.cache', { readOnly: true, create: 'file' }));
    for (const lib of LIB_DIRS) {
      if (existsSync(lib) && !lstatSync(lib).isSymbolicLink())
        mounts.push(bindMount(lib, lib, { readOnly: true, create: 'dir' }));
    }
    if (!binary.startsWith('/usr/'))
      mounts.push(bindMount(realpathSync(binary), binary, { readOnly: true, create: 'file' }));
    return mounts;
  }
  let out: string;
  try {
    out = execFileSync('ldd', [binary], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new LxcError(
      `ldd ${binary} failed (Debian package "libc-bin")`,
      'DEPENDENCY_MISSING',
      { fix: 'apt-get install -y libc-bin' },
      { cause: e },
    );
  }
  const seen = new Set<string>();
  const mounts: MountEntry[] = [];
  for (const p of [binary, ...parseLdd(out)]) {
    if (seen.has(p)) continue;
    seen.add(p);
    mounts.push(bindMount(realpathSync(p), p, { readOnly: true, create: 'file' }));
  }
  return mounts;
}

const LIB_DIRS = ['/lib', '/lib64', '/lib32', '/libx32'];

function chownTree(path: string, uid: number, gid: number): void {
  lchownSync(path, uid, gid);
  if (!lstatSync(path).isDirectory()) return;
  for (const entry of readdirSync(path)) chownTree(join(path, entry), uid, gid);
}

function writeExecutable(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o755 });
  chmodSync(path, 0o755);
}

/**
 * Builds a directory root filesystem: static busybox with its applets as
 * symlinks in /bin, a minimal /sbin/init, /etc/passwd and /etc/group, and
 * (unless `node: false`) the mount entries that bring the host's node in.
 * On failure the directory is removed again.
 */
export function buildRootfs(options: RootfsOptions): Rootfs {
  const root = options.path;
  if (!isAbsolute(root))
    throw new LxcError(`rootfs path must be absolute (got "${root}")`, 'INVALID_ARGUMENT');
  if (options.owner) {
    for (const id of [options.owner.uid, options.owner.gid]) {
      if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe) {
        throw new LxcError(
          `rootfs owner ids must be integers from 0 to 4294967294 (got ${id})`,
          'INVALID_ARGUMENT',
        );
      }
    }
  }
  const busybox = findStaticBusybox(options.busybox);
  const nodeMode = options.node === undefined ? 'libs' : options.node;
  const nodeBinary = options.nodeBinary ?? process.execPath;
  // Resolve everything that can fail on the host before touching the disk.
  const mounts = nodeMode === false ? [] : nodeRuntimeMounts(nodeMode, nodeBinary);
  let created = false;
  if (existsSync(root)) {
    if (readdirSync(root).length > 0) throw fail(`rootfs directory ${root} exists and is not empty`);
  } else {
    created = true;
  }
  try {
    mkdirSync(root, { recursive: true, mode: 0o755 });
    for (const d of ROOTFS_DIRS) mkdirSync(join(root, d), { recursive: true, mode: 0o755 });
    chmodSync(join(root, 'tmp'), 0o1777);
    chmodSync(join(root, 'var/tmp'), 0o1777);
    chmodSync(join(root, 'root'), 0o700);
    copyFileSync(busybox, join(root, 'bin/busybox'));
    chmodSync(join(root, 'bin/busybox'), 0o755);
    const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' })
      .split('\n')
      .map((s) => s.trim())
      .filter((s) => /^[A-Za-z0-9_.[-]+$/.test(s) && s !== 'busybox' && s !== 'init');
    for (const applet of applets) {
      const link = join(root, 'bin', applet);
      if (!existsSync(link)) symlinkSync('busybox', link);
    }
    writeExecutable(join(root, 'sbin/init'), options.init ?? DEFAULT_INIT);
    const passwd = [
      'root:x:0:0:root:/root:/bin/sh',
      'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
      ...(options.passwd ?? []),
    ];
    const group = ['root:x:0:', 'nogroup:x:65534:', ...(options.group ?? [])];
    writeFileSync(join(root, 'etc/passwd'), `${passwd.join('\n')}\n`);
    writeFileSync(join(root, 'etc/group'), `${group.join('\n')}\n`);
    writeFileSync(join(root, 'etc/hosts'), '127.0.0.1 localhost\n::1 localhost\n');
    if (nodeMode === 'usr') {
      // The /usr bind covers usr/bin, usr/sbin; the lib dirs follow the host's layout.
      for (const lib of LIB_DIRS) {
        if (!existsSync(lib)) continue;
        const st = lstatSync(lib);
        const target = join(root, lib.slice(1));
        if (st.isSymbolicLink()) symlinkSync(readlinkSync(lib), target);
        else mkdirSync(target, { recursive: true });
      }
    }
    if (options.owner) chownTree(root, options.owner.uid, options.owner.gid);
    const rootfs: Rootfs = { path: root, mounts, init: '/sbin/init' };
    if (nodeMode !== false) rootfs.nodePath = nodeBinary;
    return rootfs;
  } catch (e) {
    if (created) rmSync(root, { recursive: true, force: true });
    else for (const entry of readdirSync(root)) rmSync(join(root, entry), { recursive: true, force: true });
    if (e instanceof LxcError) throw e;
    throw fail(`building the rootfs at ${root} failed: ${(e as Error).message}`, e);
  }
}
