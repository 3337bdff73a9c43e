/**
 * Containers for endpoints, through @vipc/lxc: a node root filesystem, bind
 * mounts (the socket directory read-write, the workspace read-only), start,
 * run a command inside with its stdio piped, destroy.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { CliError } from './errors.js';
import { processStartTime } from './state.js';
import { removeContainer } from './teardown.js';

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

/** Where vipc keeps its containers: apart from the system's (/var/lib/lxc). */
export function defaultLxcPath(): string {
  return process.env.VIPC_LXC_PATH ?? '/var/lib/vipc/lxc';
}

type LxcModule = typeof import('@vipc/lxc');

async function loadLxc(): Promise<LxcModule> {
  try {
    return await import('@vipc/lxc');
  } catch (err) {
    throw new CliError(
      'PEER_MISSING',
      `@vipc/lxc is not available: ${(err as Error).message.split('\n')[0]}`,
      'pnpm --filter @vipc/lxc build',
    );
  }
}

export async function containerSupport(): Promise<Support> {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'not root', fix: 'run as root (sudo vipc demo)' };
  let lxc: LxcModule;
  try {
    lxc = await loadLxc();
  } catch (err) {
    return { ok: false, reason: (err as Error).message, fix: 'pnpm --filter @vipc/lxc build' };
  }
  if (!lxc.Lxc.available()) return { ok: false, reason: 'LXC is not installed', fix: 'apt-get install lxc' };
  try {
    lxc.findStaticBusybox();
  } catch {
    return {
      ok: false,
      reason: 'no static busybox for the root filesystem',
      fix: 'apt-get install busybox-static',
    };
  }
  return { ok: true };
}

export interface ContainerOptions {
  name: string;
  binds: Bind[];
  /** 'node' (busybox + the host's Node.js) or an existing root filesystem directory. */
  rootfs?: string;
  memoryLimitMb?: number | undefined;
  lxcPath?: string;
  /** Called as soon as the container exists (before it runs), with its lxcpath. */
  onCreated?: (lxcPath: string) => void;
}

/** Creates and starts a container; on failure nothing of it is left. */
export async function startContainer(options: ContainerOptions): Promise<ContainerHandle> {
  const { Lxc, baseConfig, bindMount, LxcError } = await loadLxc();
  const lxc = new Lxc({ lxcpath: options.lxcPath ?? defaultLxcPath() });
  const config = baseConfig();
  config.mounts = options.binds.map((b) =>
    bindMount(b.source, b.target, { readOnly: b.readOnly, create: 'dir' }),
  );
  if (options.memoryLimitMb !== undefined)
    config.cgroup = [{ key: 'memory.limit_in_bytes', value: `${options.memoryLimitMb}M` }];
  const custom = options.rootfs !== undefined && options.rootfs !== 'node';
  if (custom) {
    if (!existsSync(options.rootfs!))
      throw new CliError('NOT_FOUND', `container rootfs ${options.rootfs} does not exist`);
    config.rootfs = { path: `dir:${options.rootfs}` };
  }
  let container: Awaited<ReturnType<typeof lxc.create>>;
  try {
    container = await lxc.create(options.name, custom ? { config } : { config, rootfs: true });
  } catch (err) {
    if (err instanceof LxcError)
      throw new CliError('FAILED', `cannot create container ${options.name}: ${err.message}`, err.fix);
    throw err;
  }
  options.onCreated?.(lxc.lxcpath);
  try {
    await container.start({ timeoutMs: 30_000 });
  } catch (err) {
    await container.destroy().catch(() => {});
    const e = err as InstanceType<typeof LxcError>;
    throw new CliError('FAILED', `cannot start container ${options.name}: ${e.message}`, e.fix);
  }
  const lxcAttach =
    ['/usr/bin/lxc-attach', '/usr/sbin/lxc-attach'].find((p) => existsSync(p)) ?? 'lxc-attach';
  const attachArgs = (argv: string[], env: Record<string, string>) => [
    '-P',
    lxc.lxcpath,
    '-n',
    options.name,
    '--clear-env',
    ...Object.entries({ PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', ...env }).flatMap(([k, v]) => [
      '--set-var',
      `${k}=${v}`,
    ]),
    '--',
    ...argv,
  ];
  return {
    name: options.name,
    lxcPath: lxc.lxcpath,
    exec: (argv, env = {}) => container.spawn(argv, { env }),
    spawnDetached(argv, log, env) {
      const fd = openSync(log, 'a', 0o600);
      try {
        const child = spawn(lxcAttach, attachArgs(argv, env), {
          detached: true,
          stdio: ['ignore', fd, fd],
          env: { ...process.env, ...env },
        });
        if (child.pid === undefined) throw new CliError('FAILED', 'cannot run lxc-attach');
        child.unref();
        return { pid: child.pid, startTime: processStartTime(child.pid) };
      } finally {
        closeSync(fd);
      }
    },
    destroy: async () => {
      if (!container.exists()) return;
      try {
        await container.destroy({ force: true });
      } catch (err) {
        // A busy machine can make a step time out: fall back to the plain tools, then report.
        await removeContainer(options.name, lxc.lxcpath);
        if (container.exists()) throw err;
      }
    },
  };
}

/**
 * Removes what demos that died without cleaning up (kill -9, a closed
 * terminal) left: `vipc-demo-PID` containers and `demo-PID-*` socket
 * directories whose PID is no longer running. Returns the names removed.
 */
export async function removeStaleDemos(socketBase: string, lxcPath = defaultLxcPath()): Promise<string[]> {
  const { readdirSync, rmSync } = await import('node:fs');
  const alive = (pid: number) => processStartTime(pid) !== undefined;
  const removed: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(lxcPath);
  } catch {
    // no containers yet
  }
  for (const n of names) {
    const m = /^vipc-demo-(\d+)$/.exec(n);
    if (!m || alive(Number(m[1]))) continue;
    await removeContainer(n, lxcPath).catch(() => {});
    rmSync(`${lxcPath}/${n}`, { recursive: true, force: true });
    removed.push(n);
  }
  try {
    for (const d of readdirSync(socketBase)) {
      const m = /^demo-(\d+)-/.exec(d);
      if (m && !alive(Number(m[1]))) {
        rmSync(`${socketBase}/${d}`, { recursive: true, force: true });
        removed.push(d);
      }
    }
  } catch {
    // no socket directory yet
  }
  return removed;
}
