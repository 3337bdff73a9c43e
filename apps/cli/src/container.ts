/**
 * Containers for endpoints, through @vipc/lxc: a node root filesystem, bind
 * mounts (the socket directory read-write, the workspace read-only), start,
 * run a command inside with its stdio piped, destroy.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { CliError } from './errors.js';

export interface Bind {
  source: string;
  target: string;
  readOnly: boolean;
}

export interface ContainerHandle {
  name: string;
  lxcPath: string;
  /** Runs argv inside the running container; stdout and stderr are piped. */
  exec(argv: string[], env?: Record<string, string>): ChildProcess;
  /** Runs argv inside, detached from us (own session, output appended to `log` on the host). */
  spawnDetached(
    argv: string[],
    log: string,
    env: Record<string, string>,
  ): { pid: number; startTime: string | undefined };
  /** Stops and destroys the container (and its root filesystem). */
  destroy(): Promise<void>;
}

export type Support = { ok: true } | { ok: false; reason: string; fix?: string };

export async function containerSupport(): Promise<Support> {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'not root', fix: 'run as root (sudo vipc demo)' };
  if (!['/usr/bin/lxc-start', '/usr/sbin/lxc-start', '/bin/lxc-start'].some((p) => existsSync(p)))
    return { ok: false, reason: 'LXC is not installed', fix: 'apt-get install lxc' };
  return {
    ok: false,
    reason: '@vipc/lxc is not available in this build',
    fix: 'pnpm --filter @vipc/lxc build',
  };
}

export interface ContainerOptions {
  name: string;
  binds: Bind[];
  /** 'node' (busybox + the host's Node.js) or an existing root filesystem directory. */
  rootfs?: string;
  memoryLimitMb?: number | undefined;
  signal?: AbortSignal;
  /** Called as soon as the container exists (before it runs), with its lxcpath. */
  onCreated?: (lxcPath: string) => void;
}

export async function startContainer(options: ContainerOptions): Promise<ContainerHandle> {
  void options;
  throw new CliError(
    'PEER_MISSING',
    '@vipc/lxc is not available in this build',
    'pnpm --filter @vipc/lxc build',
  );
}
