/** The back-end program (dist/bin.js): --print-capabilities, --socket-path with --echo, --fd, SIGTERM. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { socketPair } from '@vipc/shm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Connection } from './connection.js';
import { VhostUserFrontend } from './frontend.js';
import { NET_DRIVER_FEATURES, VirtioNetDriver } from './net-driver.js';
import { pollUntil } from './test-support/until.js';

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'bin.js');

let dir: string;
let child: ChildProcess | undefined;
const cleanup: (() => void)[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), `vipc-vhu-bin-${process.pid}-`));
});
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
  child?.kill('SIGKILL');
  child = undefined;
  rmSync(dir, { recursive: true, force: true });
});

function run(
  args: string[],
  extraFd?: number,
): { proc: ChildProcess; out: () => string; err: () => string; exit: Promise<number | null> } {
  let out = '';
  let err = '';
  const stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'pipe', 'pipe'];
  if (extraFd !== undefined) stdio.push(extraFd);
  const proc = spawn(process.execPath, [bin, ...args], { stdio });
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    err += d;
  });
  const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  child = proc;
  return { proc, out: () => out, err: () => err, exit };
}

const until = (cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> =>
  pollUntil(cond, what, timeoutMs, 10);

async function echoRoundTrip(fe: VhostUserFrontend): Promise<void> {
  const driver = new VirtioNetDriver(fe);
  cleanup.push(() => driver.close());
  const back: number[] = [];
  driver.onFrame = (f) => back.push(f[0]!);
  for (let i = 0; i < 50; i++) {
    while (!driver.send(new Uint8Array([i, 1, 2, 3]))) await new Promise((r) => setTimeout(r, 5));
    // the echo needs the device's receive queue started: wait for each reply in turn
    await until(() => back.length === i + 1, `echo ${i}`);
  }
  expect(back).toEqual(Array.from({ length: 50 }, (_, i) => i));
}

describe('vipc-vhost-user-net program', () => {
  it('--print-capabilities prints JSON and exits 0; bad usage exits 2', async () => {
    const p = run(['--print-capabilities']);
    expect(await p.exit).toBe(0);
    expect(JSON.parse(p.out())).toEqual({ type: 'net', features: [] });
    const bad = run(['--socket-path=/x', '--fd=3']);
    expect(await bad.exit).toBe(2);
    expect(bad.err()).toMatch(/exactly one of --socket-path and --fd/);
    const unknown = run(['--bogus']);
    expect(await unknown.exit).toBe(2);
  });

  it('--socket-path --echo reflects frames; SIGTERM ends it cleanly and removes the socket', async () => {
    const path = join(dir, 'prog.sock');
    const p = run([`--socket-path=${path}`, '--echo']);
    const fe = await VhostUserFrontend.connect(path, {
      queueCount: 2,
      queueSize: 64,
      features: NET_DRIVER_FEATURES,
      timeoutMs: 20_000,
    });
    cleanup.push(() => fe.close());
    await echoRoundTrip(fe);
    p.proc.kill('SIGTERM');
    expect(await p.exit).toBe(0);
    expect(existsSync(path)).toBe(false);
  });

  it('--fd serves the socket it inherited', async () => {
    const [mine, theirs] = socketPair();
    const p = run(['--fd=3', '--echo'], theirs.fd.fd);
    theirs.close();
    const fe = new VhostUserFrontend(new Connection(mine, { role: 'frontend' }), {
      queueCount: 2,
      queueSize: 64,
      features: NET_DRIVER_FEATURES,
    });
    cleanup.push(() => fe.close());
    await fe.start();
    await echoRoundTrip(fe).catch((e) => {
      throw new Error(`${(e as Error).message}; program said: ${p.err()}`);
    });
    await fe.stop();
    expect(await p.exit).toBe(0);
    expect(p.err()).toMatch(/front-end gone/);
  });
});
