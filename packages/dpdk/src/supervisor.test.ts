import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DpdkError,
  type DpdkProcess,
  type ExitInfo,
  launchDpdk,
  spawnDpdk,
  uniqueFilePrefix,
} from './index.js';
import { leftoversOf, runPair, testpmdAvailable } from './test-peer.js';

const have = testpmdAvailable();
let dir: string;
let procs: DpdkProcess[] = [];
let prefixes: string[] = [];

function prefix(tag: string): string {
  const p = uniqueFilePrefix(`t${tag}`);
  prefixes.push(p);
  return p;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vipc-dpdk-'));
  procs = [];
  prefixes = [];
});

afterEach(async () => {
  // front-ends first, then back-ends; SIGKILL whatever does not stop
  for (const p of [...procs].reverse()) await p.stop({ timeoutMs: 10_000 }).catch(() => p.kill('SIGKILL'));
  const left = prefixes.flatMap((p) => leftoversOf(p));
  rmSync(dir, { recursive: true, force: true });
  expect(left).toEqual([]);
});

const base = { noPci: true, noHuge: true, memoryMb: 256, memoryChannels: 1, noTelemetry: true } as const;

describe.skipIf(!have)('Supervisor against the real dpdk-testpmd', () => {
  it('vhost (rxonly) <-> virtio-user (txonly) reach link-up; the receiver counts exactly what the sender sent', async () => {
    const sock = join(dir, 'vhu.sock');
    const { sent, senderPort, received, linkUps } = await runPair(
      sock,
      [prefix('b'), prefix('f')],
      (p) => procs.push(p),
      {
        logFile: join(dir, 'pair.log'),
      },
    );
    expect(linkUps).toBe(1);
    expect(sent.accumulated.txPackets).toBeGreaterThan(0);
    expect(senderPort.txPackets).toBe(sent.accumulated.txPackets);
    expect(received.requested).toBe(true);
    expect(received.forwardStats!.accumulated.rxPackets).toBe(sent.accumulated.txPackets);
    expect(received.forwardStats!.accumulated.rxDropped).toBe(0);
    expect(received.cleaned.runtimeDir).toBe(true);
    expect(existsSync(sock)).toBe(false); // testpmd removes it on a clean exit, cleanup otherwise
    expect(readFileSync(join(dir, 'pair.log'), 'utf8')).toContain('virtio is now ready for processing');
  });

  it('a SIGKILLed testpmd becomes an exit event with its last log lines, and is cleaned up', async () => {
    const sock = join(dir, 'crash.sock');
    const p = await launchDpdk({
      eal: {
        ...base,
        lcores: [0, 1],
        filePrefix: prefix('c'),
        vdevs: [{ driver: 'net_vhost', iface: sock }],
      },
      testpmd: { nbCores: 1, forwardMode: 'rxonly', totalNumMbufs: 8192, statsPeriod: 1 },
      readyWhen: ['socket-created', 'forwarding'],
    });
    procs.push(p);
    const exit = new Promise<ExitInfo>((r) => p.once('exit', r));
    process.kill(p.pid, 'SIGKILL'); // from outside: not a requested stop
    const info = await exit;
    expect(info.signal).toBe('SIGKILL');
    expect(info.requested).toBe(false);
    expect(info.lastLines.some((l) => l.includes('socket created'))).toBe(true);
    expect(info.cleaned.runtimeDir).toBe(true);
    expect(info.cleaned.sockets).toEqual([sock]);
  });

  it('an app that fails at start-up rejects launch with EXITED and the EAL error', async () => {
    const err = await launchDpdk({
      eal: { ...base, lcores: [0, 1], filePrefix: prefix('e'), extra: ['--bogus-eal-option'] },
      testpmd: { nbCores: 1 },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DpdkError);
    expect((err as DpdkError).code).toBe('EXITED');
    expect((err as DpdkError).message).toMatch(/unrecognized option|Invalid/);
  });

  it('refuses a --file-prefix a live process uses', async () => {
    const fp = prefix('d');
    const p = await launchDpdk({
      eal: { ...base, lcores: [0, 1], filePrefix: fp },
      testpmd: { nbCores: 1, forwardMode: 'rxonly', totalNumMbufs: 8192, statsPeriod: 1, extra: [] },
      appArgs: undefined,
      readyWhen: 'forwarding',
    }).catch((e: unknown) => {
      throw e;
    });
    procs.push(p);
    expect(() =>
      spawnDpdk({ eal: { ...base, lcores: [0, 1], filePrefix: fp }, testpmd: { nbCores: 1 } }),
    ).toThrow(expect.objectContaining({ code: 'DUPLICATE_FILE_PREFIX' }));
  });
});
