// Test-only helpers (not exported from the package).
import { existsSync } from 'node:fs';
import { discoverDpdk } from './discovery.js';
import { processesUsingPrefix, runtimeDir } from './runtime.js';

/**
 * Whether the real testpmd is here. On a developer machine without it, tests skip with the package to
 * install; under CI=true its absence fails the suite instead.
 */
export function testpmdAvailable(): boolean {
  const d = discoverDpdk({ probeApp: false });
  if (d.installed) return true;
  if (process.env.CI === 'true') throw new Error(`CI requires DPDK: ${d.message}`);
  console.warn(`skipping testpmd tests: ${d.message}`);
  return false;
}

/** Assert nothing of a prefix survives: no process, no runtime directory. */
export function leftoversOf(prefix: string, uid = 0): string[] {
  const out: string[] = [];
  const pids = processesUsingPrefix(prefix);
  if (pids.length) out.push(`processes ${pids.join(',')} still use prefix ${prefix}`);
  if (existsSync(runtimeDir(prefix, uid))) out.push(`runtime dir ${runtimeDir(prefix, uid)} still exists`);
  return out;
}
