import { isAbsolute, normalize } from 'node:path';
import type { MountEntry } from './config.js';
import { LxcError } from './errors.js';

export interface BindOptions {
  readOnly?: boolean;
  /** Create the mount point inside the container: a directory (default) or an empty file. */
  create?: 'dir' | 'file';
  /** Do not fail the start when the host path is missing. */
  optional?: boolean;
}

/** A container path as LXC wants a mount target: absolute in, relative to the rootfs out. */
export function containerTarget(containerPath: string): string {
  if (typeof containerPath !== 'string' || !isAbsolute(containerPath)) {
    throw new LxcError(`container path must be absolute (got "${containerPath}")`, 'INVALID_ARGUMENT');
  }
  const clean = normalize(containerPath).replace(/^\/+/, '').replace(/\/+$/, '');
  if (clean === '' || clean.split('/').includes('..')) {
    throw new LxcError(`container path "${containerPath}" must name something below /`, 'INVALID_ARGUMENT');
  }
  return clean;
}

/**
 * `lxc.mount.entry = <host> <target> none bind[,ro],create=dir|file 0 0`:
 * the host path appears at containerPath inside the container.
 */
export function bindMount(hostPath: string, containerPath: string, options: BindOptions = {}): MountEntry {
  if (typeof hostPath !== 'string' || !isAbsolute(hostPath)) {
    throw new LxcError(`host path must be absolute (got "${hostPath}")`, 'INVALID_ARGUMENT');
  }
  const opts = ['bind'];
  if (options.readOnly) opts.push('ro');
  opts.push(`create=${options.create ?? 'dir'}`);
  if (options.optional) opts.push('optional');
  return {
    source: normalize(hostPath),
    target: containerTarget(containerPath),
    fstype: 'none',
    options: opts,
    dump: 0,
    pass: 0,
  };
}

/**
 * Bind-mounts a host directory of Unix sockets (vhost-user, @vipc/shm) into the
 * container, read-write, so servers on either side are reachable from the other.
 */
export function socketDirMount(hostDir: string, containerPath = '/run/vipc'): MountEntry {
  return bindMount(hostDir, containerPath, { create: 'dir' });
}

/**
 * Bind-mounts a host hugetlbfs mount (default /dev/hugepages) into the
 * container, so hugepage-backed files (DPDK, memfd-less peers) are shared.
 */
export function hugetlbfsMount(hostMount = '/dev/hugepages', containerPath = '/dev/hugepages'): MountEntry {
  return bindMount(hostMount, containerPath, { create: 'dir' });
}

/** Bind-mounts one host file (a socket, a device, a config) at a file path inside. */
export function fileMount(
  hostFile: string,
  containerPath: string,
  options: Omit<BindOptions, 'create'> = {},
): MountEntry {
  return bindMount(hostFile, containerPath, { ...options, create: 'file' });
}
