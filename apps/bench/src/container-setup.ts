import { existsSync, mkdirSync, rmdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { ContainerLaunch } from './host.js';
import { endpointEntry } from './host.js';

interface LxcContainerLike {
  spawn(
    argv: readonly string[],
    options?: { env?: Record<string, string> },
  ): import('node:child_process').ChildProcess;
  destroy(options?: { force?: boolean }): Promise<unknown>;
}
interface LxcModule {
  Lxc: (new (o: {
    lxcpath: string;
  }) => {
    launch(name: string, o: { config: unknown; rootfs: boolean }): Promise<LxcContainerLike>;
  }) & { available(): boolean };
  baseConfig(): { mounts?: unknown[] };
  bindMount(host: string, container: string, o?: { readOnly?: boolean }): unknown;
  socketDirMount(host: string, container: string): unknown;
}

/** The monorepo checkout the endpoint runs from (bind-mounted read-only at the same path inside). */
export function repoRoot(): string | null {
  let dir = path.dirname(endpointEntry());
  for (;;) {
    if (existsSync(path.join(dir, 'pnpm-workspace.yaml'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** null when a host<->container scenario can run here, else why not. */
export async function containerAvailability(): Promise<string | null> {
  let lxc: LxcModule;
  try {
    lxc = (await import('@vipc/lxc' as string)) as LxcModule;
  } catch (err) {
    return `@vipc/lxc cannot be loaded (${(err as Error).message.split('\n')[0]}); build it with \`pnpm --filter @vipc/lxc build\``;
  }
  for (const k of ['Lxc', 'baseConfig', 'bindMount', 'socketDirMount'] as const) {
    if (lxc[k] === undefined) return `@vipc/lxc (this build) lacks ${k}`;
  }
  if (!lxc.Lxc.available()) return 'LXC is not installed (Debian: apt-get install lxc busybox-static)';
  if (process.getuid?.() !== 0) return 'the container scenario needs root (privileged LXC containers)';
  try {
    if (repoRoot() === null) return 'the container scenario runs from the vipc monorepo checkout only';
  } catch (err) {
    return (err as Error).message;
  }
  return null;
}

export interface ContainerResources {
  launch: ContainerLaunch;
  close(): Promise<void>;
}

/**
 * A fresh container for one trial: a busybox rootfs with the host's node, the
 * checkout bound read-only at its own path (so the endpoint resolves its
 * workspace packages as on the host), and a shared directory for the control
 * socket. Destroyed by close().
 */
export async function launchContainer(workDir: string, n: number): Promise<ContainerResources> {
  const lxc = (await import('@vipc/lxc' as string)) as LxcModule;
  const shm = await import('@vipc/shm');
  const root = repoRoot();
  if (root === null) throw new Error('the container scenario runs from the vipc monorepo checkout only');
  const share = path.join(workDir, `t${n}-share`);
  mkdirSync(share, { recursive: true });
  const config = lxc.baseConfig();
  config.mounts = [
    ...(config.mounts ?? []),
    lxc.socketDirMount(share, share),
    lxc.bindMount(root, root, { readOnly: true }),
  ];
  const lxcpath = path.join(workDir, 'lxc');
  const manager = new lxc.Lxc({ lxcpath });
  const box = await manager.launch(`vbench-${process.pid}-${n}`, { config, rootfs: true });
  return {
    launch: {
      socketPath: path.join(share, 'control.sock'),
      shm,
      spawn: (entry, env) => box.spawn(['node', entry], { env }),
    },
    close: async () => {
      try {
        await box.destroy({ force: true });
      } finally {
        rmSync(share, { recursive: true, force: true });
        // The lxcpath is per run; remove it once no container is left in it.
        try {
          rmdirSync(lxcpath);
        } catch {
          // another trial's container still lives there, or it is already gone
        }
      }
    },
  };
}
