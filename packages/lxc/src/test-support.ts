// Shared by the tests that need real LXC (not exported from the package).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lxc } from './container.js';
import { LXC_PACKAGE } from './defs.js';

/** Why LXC tests cannot run here, or undefined when they can. */
export function lxcUnavailable(): string | undefined {
  if (!Lxc.available()) return `LXC is not installed: apt-get install -y ${LXC_PACKAGE}`;
  if (process.getuid?.() !== 0) return 'LXC tests need root (privileged containers)';
  return undefined;
}

/** Under CI a missing peer is a failure, never a skip. */
export const mustRun = process.env.CI === 'true';

/** A fresh lxcpath in the temp dir, unique per process. */
export function tempLxc(tag: string): Lxc {
  const dir = mkdtempSync(join(tmpdir(), `vipc-lxc-${tag}-${process.pid}-`));
  return new Lxc({ lxcpath: dir });
}

/** Mount points (host mount namespace) under a path. */
export function mountsUnder(path: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === path || m.startsWith(`${path}/`));
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
