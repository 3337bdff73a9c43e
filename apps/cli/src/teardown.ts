/**
 * Undoes a state file, newest resource first. Every step is idempotent
 * ("already gone" is success), so `vipc down` can run again after a partial
 * teardown, and after a `vipc up` that crashed half-way.
 */
import { execFile } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findTagged, isSameProcess, processStartTime, type Resource, type State } from './state.js';

const run = promisify(execFile);

export interface TeardownStep {
  resource: string;
  result: 'removed' | 'absent' | 'failed';
  detail?: string;
}

function describe(r: Resource): string {
  switch (r.kind) {
    case 'process':
      return `process ${r.name}${r.pid ? ` (pid ${r.pid})` : ''}`;
    case 'container':
      return `container ${r.name}`;
    case 'mount':
      return `mount ${r.target}`;
    case 'hugepages':
      return `hugepage reservation ${r.sysfs}`;
    case 'dpdk-runtime':
      return `DPDK runtime directory of ${r.prefix}`;
    case 'hugepage-files':
      return `hugepage files ${join(r.dir, `${r.prefix}*`)}`;
    default:
      return `${r.kind} ${r.path}`;
  }
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Signals a process and waits (up to graceMs) for it to go; then SIGKILL. True if it was alive. */
export async function stopProcess(
  pid: number,
  startTime: string | undefined,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = 5000,
): Promise<boolean> {
  if (!isSameProcess(pid, startTime)) return false;
  try {
    process.kill(pid, signal);
  } catch {
    return false;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isSameProcess(pid, startTime)) return true;
    await delay(50);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // exited meanwhile
  }
  const hard = Date.now() + 5000;
  while (Date.now() < hard && isSameProcess(pid, startTime)) await delay(50);
  return true;
}

async function lxc(cmd: string, args: string[]): Promise<{ ok: boolean; stderr: string }> {
  try {
    await run(cmd, args, { timeout: 30_000 });
    return { ok: true, stderr: '' };
  } catch (err) {
    const e = err as Error & { stderr?: string; code?: string | number };
    if (e.code === 'ENOENT') return { ok: false, stderr: `${cmd} not found` };
    return { ok: false, stderr: String(e.stderr ?? e.message).trim() };
  }
}

export async function removeContainer(name: string, lxcPath: string): Promise<'removed' | 'absent'> {
  const info = await lxc('lxc-info', ['-P', lxcPath, '-n', name, '-s']);
  if (!info.ok) return 'absent';
  await lxc('lxc-stop', ['-P', lxcPath, '-n', name, '-k']);
  const d = await lxc('lxc-destroy', ['-P', lxcPath, '-n', name]);
  if (!d.ok && !/does not exist|not defined/i.test(d.stderr)) throw new Error(d.stderr);
  return 'removed';
}

async function undo(r: Resource): Promise<'removed' | 'absent'> {
  switch (r.kind) {
    case 'process': {
      const sig = r.role === 'dpdk' ? 'SIGINT' : 'SIGTERM';
      let removed = r.pid ? await stopProcess(r.pid, r.startTime, sig) : false;
      for (const pid of findTagged(r.tag)) {
        if (await stopProcess(pid, processStartTime(pid), sig)) removed = true;
      }
      return removed ? 'removed' : 'absent';
    }
    case 'container':
      return removeContainer(r.name, r.lxcPath);
    case 'mount': {
      try {
        await run('umount', [r.target]);
        return 'removed';
      } catch (err) {
        const msg = String((err as { stderr?: string }).stderr ?? '');
        if (/not mounted|no mount point|not found/i.test(msg)) return 'absent';
        throw new Error(msg.trim() || (err as Error).message);
      }
    }
    case 'hugepages': {
      const added = r.reserved - r.previous;
      if (r.status === 'pending' || added <= 0) {
        // Crashed between the record and the write: give back at most what we asked for.
        const now = Number(readFileSync(r.sysfs, 'utf8').trim());
        if (now <= r.previous) return 'absent';
        writeFileSync(r.sysfs, String(Math.max(r.previous, now - Math.max(added, 0))));
        return 'removed';
      }
      const now = Number(readFileSync(r.sysfs, 'utf8').trim());
      writeFileSync(r.sysfs, String(Math.max(0, now - added)));
      return 'removed';
    }
    case 'dpdk-runtime': {
      const { removeRuntimeDir } = await import('@vipc/dpdk');
      return removeRuntimeDir(r.prefix) ? 'removed' : 'absent';
    }
    case 'hugepage-files': {
      let n = 0;
      try {
        for (const f of readdirSync(r.dir)) {
          if (f.startsWith(r.prefix)) {
            rmSync(join(r.dir, f), { force: true });
            n++;
          }
        }
      } catch {
        return 'absent';
      }
      return n > 0 ? 'removed' : 'absent';
    }
    case 'socket':
    case 'dir': {
      try {
        lstatSync(r.path);
      } catch {
        return 'absent';
      }
      rmSync(r.path, { recursive: true, force: true });
      return 'removed';
    }
  }
}

/** Removes everything the state records, newest first; failures are reported, not thrown. */
export async function teardown(state: State, onStep?: (s: TeardownStep) => void): Promise<TeardownStep[]> {
  const steps: TeardownStep[] = [];
  for (const r of [...state.resources].reverse()) {
    let step: TeardownStep;
    try {
      step = { resource: describe(r), result: await undo(r) };
    } catch (err) {
      step = { resource: describe(r), result: 'failed', detail: (err as Error).message };
    }
    steps.push(step);
    onStep?.(step);
  }
  return steps;
}
