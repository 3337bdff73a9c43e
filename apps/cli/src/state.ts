/**
 * The state file of `vipc up`: a journal of everything a topology started, so
 * that `vipc down` can undo it, also after `vipc up` itself crashed.
 *
 * Every resource is recorded as `pending` BEFORE it is created and marked
 * `ready` once it exists, and the file is replaced atomically (write + rename)
 * at each step. `down` therefore knows of everything that may exist; it removes
 * resources in reverse order and treats "already gone" as success. Processes
 * are recorded with their start time (field 22 of /proc/PID/stat) so that a
 * recycled pid is never killed, and every process vipc starts carries an
 * instance tag (the VIPC_INSTANCE environment variable, or the DPDK
 * --file-prefix) so that one spawned in the instant before its record reached
 * the disk is still found by `down`.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CliError } from './errors.js';

export type ResourceStatus = 'pending' | 'ready';

export type Resource =
  | { kind: 'dir'; path: string; status: ResourceStatus }
  | { kind: 'socket'; path: string; status: ResourceStatus }
  | {
      kind: 'process';
      name: string;
      /** What it is: a vipc endpoint or a DPDK app. */
      role: 'endpoint' | 'dpdk';
      pid?: number;
      startTime?: string;
      /** Instance tag: VIPC_INSTANCE in its environment, or the DPDK --file-prefix in its argv. */
      tag: string;
      statusFile?: string;
      log?: string;
      status: ResourceStatus;
    }
  | { kind: 'container'; name: string; lxcPath: string; statusFile?: string; status: ResourceStatus }
  | { kind: 'mount'; target: string; status: ResourceStatus }
  /** Pages we added to the pool: `down` gives back `reserved - previous` (others may have changed it since). */
  | { kind: 'hugepages'; sysfs: string; previous: number; reserved: number; status: ResourceStatus }
  | { kind: 'hugepage-files'; dir: string; prefix: string; status: ResourceStatus }
  /** The EAL runtime directory of a DPDK --file-prefix (/var/run/dpdk/PREFIX for root). */
  | { kind: 'dpdk-runtime'; prefix: string; status: ResourceStatus };

export interface State {
  version: 1;
  name: string;
  file: string;
  /** The `vipc up` process that wrote this. */
  owner: { pid: number; startTime: string | undefined };
  phase: 'starting' | 'up' | 'failed';
  startedAt: string;
  /** Per-instance scratch directory: logs, status files. */
  runDir: string;
  resources: Resource[];
  error?: string;
}

export function defaultStateDir(): string {
  if (process.env.VIPC_STATE_DIR) return process.env.VIPC_STATE_DIR;
  if (process.getuid?.() === 0) return '/run/vipc/state';
  return join(process.env.XDG_RUNTIME_DIR ?? '/tmp', `vipc-${process.getuid?.() ?? 'user'}`, 'state');
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot), or undefined if the pid is gone. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may hold spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/** Is this exactly the process we recorded (same pid, same start time) and not a zombie? */
export function isSameProcess(pid: number | undefined, startTime: string | undefined): boolean {
  if (!pid) return false;
  const now = processStartTime(pid);
  if (now === undefined || (startTime !== undefined && now !== startTime)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Pids of live processes tagged with `tag` (VIPC_INSTANCE=tag in their environment, or tag in argv). */
export function findTagged(tag: string): number[] {
  const found: number[] = [];
  const env = Buffer.from(`VIPC_INSTANCE=${tag}\0`);
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const environ = readFileSync(`/proc/${pid}/environ`);
      if (environ.includes(env) || environ.equals(env.subarray(0, env.length - 1))) {
        found.push(pid);
        continue;
      }
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a === `--file-prefix=${tag}`)) found.push(pid);
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

export class StateStore {
  constructor(readonly dir: string = defaultStateDir()) {}

  path(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  read(name: string): State | undefined {
    let text: string;
    try {
      text = readFileSync(this.path(name), 'utf8');
    } catch {
      return undefined;
    }
    try {
      const s = JSON.parse(text) as State;
      if (s.version !== 1 || !Array.isArray(s.resources)) throw new Error('unknown layout');
      return s;
    } catch (err) {
      throw new CliError(
        'STATE',
        `state file ${this.path(name)} is unreadable: ${(err as Error).message}`,
        'inspect it, then remove it by hand',
      );
    }
  }

  list(): State[] {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((f) => f.endsWith('.json'));
    } catch {
      return [];
    }
    return names.flatMap((f) => {
      const s = this.read(f.slice(0, -5));
      return s ? [s] : [];
    });
  }

  /** Atomic replace: a crash leaves either the old or the new file, never half of one. */
  write(state: State): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path(state.name)}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.path(state.name));
  }

  remove(name: string): void {
    rmSync(this.path(name), { force: true });
  }
}

/** Records resources as they are created: pending first, ready after. */
export class Journal {
  constructor(
    readonly store: StateStore,
    readonly state: State,
  ) {
    store.write(state);
  }

  /** Records `r` as pending, runs `create`, then marks it ready (with whatever `create` filled in). */
  async step<R extends Resource>(r: R, create: (r: R) => Promise<void> | void): Promise<R> {
    this.state.resources.push(r);
    this.store.write(this.state);
    await create(r);
    r.status = 'ready';
    this.store.write(this.state);
    return r;
  }

  /** Writes changes made to recorded resources (e.g. a pid learnt after spawning). */
  save(): void {
    this.store.write(this.state);
  }

  phase(phase: State['phase'], error?: string): void {
    this.state.phase = phase;
    if (error !== undefined) this.state.error = error;
    this.store.write(this.state);
  }
}
