// Shared by the CLI's tests: run the built bin, check for the real peers.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'vitest';

export const bin = join(import.meta.dirname, '..', 'dist', 'bin.js');

export function vipc(
  args: string[],
  opts: { env?: Record<string, string>; input?: string | Buffer; timeout?: number } = {},
) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    timeout: opts.timeout ?? 120_000,
    env: { ...process.env, ...opts.env },
    input: opts.input,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal };
}

/** Starts the bin in the background; collects its output. */
export function vipcSpawn(args: string[], env: Record<string, string> = {}) {
  const child: ChildProcess = spawn(process.execPath, [bin, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const out = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out.stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, out, exit };
}

export async function waitFor<T>(
  what: string,
  fn: () => T | undefined | false,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Waits until `proc` has created the socket at `path`; fails at once, with its stderr,
 * if it exits first (instead of waiting the whole timeout for a socket that cannot come).
 */
export function listening(
  proc: ReturnType<typeof vipcSpawn>,
  path: string,
  timeoutMs?: number,
): Promise<true> {
  return waitFor(
    `the socket ${path}`,
    () => {
      const { exitCode, signalCode } = proc.child;
      if (exitCode !== null || signalCode !== null)
        throw new Error(
          `the process exited (${exitCode ?? signalCode}) before it created ${path}:\n${proc.out.stderr}`,
        );
      return existsSync(path);
    },
    timeoutMs,
  );
}

const CI = process.env.CI === 'true' || process.env.CI === '1';

/**
 * A test that needs a real peer: runs when it is there; on a developer machine
 * without it, it is skipped with the Debian package to install; under CI it fails.
 */
type TestFn = (name: string, fn: () => unknown, timeout?: number) => void;

export function peerTest(peer: { name: string; available: boolean; install: string }): TestFn {
  if (peer.available) return (name, fn, timeout) => it(name, fn, timeout);
  if (CI)
    return (name) =>
      it(name, () => {
        throw new Error(`${peer.name} is missing (CI must have it): ${peer.install}`);
      });
  console.warn(`skipping ${peer.name} tests: ${peer.install}`);
  return (name, fn, timeout) => it.skip(name, fn, timeout);
}

export const TESTPMD = {
  name: 'DPDK testpmd',
  available: existsSync('/usr/bin/dpdk-testpmd'),
  install: 'apt-get install dpdk-dev',
};

export const LXC = {
  name: 'LXC (as root)',
  available:
    process.getuid?.() === 0 &&
    existsSync('/usr/bin/lxc-start') &&
    spawnSync('lxc-info', ['--version']).status === 0,
  install: 'apt-get install lxc busybox-static, and run the tests as root',
};
