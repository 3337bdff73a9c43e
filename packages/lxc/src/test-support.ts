// Shared by the tests that need real LXC (not exported from the package).
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroupRoots, Lxc } from './container.js';
import { LXC_PACKAGE } from './defs.js';

/** Why LXC tests cannot run here, or undefined when they can. */
export function lxcUnavailable(): string | undefined {
  if (!Lxc.available()) return `LXC is not installed: apt-get install -y ${LXC_PACKAGE}`;
  if (process.getuid?.() !== 0) return 'LXC tests need root (privileged containers)';
  return undefined;
}

/** Under CI a missing peer is a failure, never a skip. */
export const mustRun = process.env.CI === 'true';

/**
 * A fresh lxcpath in the temp dir, unique per process. Not created here
 * (Lxc.create makes it), so a skipped suite leaves nothing behind.
 */
export function tempLxc(tag: string): Lxc {
  const dir = join(tmpdir(), `vipc-lxc-${tag}-${process.pid}-${randomBytes(4).toString('hex')}`);
  return new Lxc({ lxcpath: dir });
}

/** Mount points (host mount namespace) under a path. */
export function mountsUnder(path: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === path || m.startsWith(`${path}/`));
}

/** Pids of LXC monitors (running containers) of an lxcpath. */
export function monitorsOf(lxcpath: string): number[] {
  const prefix = `[lxc monitor] ${lxcpath} `;
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith(prefix);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Waits (up to timeoutMs) for the monitors of an lxcpath to exit; returns those still there. */
export async function monitorsGone(lxcpath: string, timeoutMs = 15_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = monitorsOf(lxcpath);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * For afterEach: destroys whatever a test left in the lxcpath (also after a
 * failure) and returns the names it found, which a passing test must not leave.
 */
export async function leftovers(lxc: Lxc): Promise<string[]> {
  const names = await lxc.list().catch(() => [] as string[]);
  for (const name of names) {
    await lxc
      .container(name)
      .destroy({ force: true })
      .catch(() => undefined);
  }
  return names;
}

/** Destroys every container of the lxcpath by name, then removes the lxcpath. */
export async function cleanupLxc(lxc: Lxc): Promise<void> {
  const names = await lxc.list().catch(() => [] as string[]);
  for (const name of names) {
    await lxc
      .container(name)
      .destroy({ force: true })
      .catch(() => undefined);
  }
  rmSync(lxc.lxcpath, { recursive: true, force: true });
}

/** LXC cgroups (in any hierarchy) of containers whose names end with this process's pid. */
export function leftoverCgroups(): string[] {
  const mine = new RegExp(`^lxc\\.(monitor|payload)\\..*-${process.pid}$`);
  const found: string[] = [];
  for (const root of cgroupRoots()) {
    try {
      for (const e of readdirSync(root)) if (mine.test(e)) found.push(`${root}/${e}`);
    } catch {
      // unreadable hierarchy
    }
  }
  return found;
}
