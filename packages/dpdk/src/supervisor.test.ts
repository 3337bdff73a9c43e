import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DpdkError,
  type DpdkProcess,
  type ExitInfo,
  launchDpdk,
  removeRuntimeDir,
  spawnDpdk,
  uniqueFilePrefix,
} from './index.js';
import { bundleSource, leftoversOf, runPair, testpmdAvailable } from './test-peer.js';

const have = testpmdAvailable();
let dir: string;
let procs: DpdkProcess[] = [];
let prefixes: string[] = [];
let sockets: string[] = [];

function prefix(tag: string): string {
  const p = uniqueFilePrefix(`t${tag}`);
  prefixes.push(p);
  return p;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vipc-dpdk-'));
  procs = [];
  prefixes = [];
  sockets = [];
});

afterEach(async () => {
  // front-ends first, then back-ends; SIGKILL whatever does not stop
  for (const p of [...procs].reverse()) await p.stop({ timeoutMs: 10_000 }).catch(() => p.kill('SIGKILL'));
  const left = prefixes.flatMap((p) => leftoversOf(p, 0, sockets));
  rmSync(dir, { recursive: true, force: true });
  expect(left).toEqual([]);
});

const base = { noPci: true, noHuge: true, memoryMb: 256, memoryChannels: 1, noTelemetry: true } as const;

describe.skipIf(!have)('Supervisor against the real dpdk-testpmd', () => {
  it('vhost (rxonly) <-> virtio-user (txonly) reach link-up; the receiver counts exactly what the sender sent', async () => {
    const sock = join(dir, 'vhu.sock');
    sockets.push(sock);
    const rxSeen: number[] = [];
    const { sent, senderPort, received, linkUps } = await runPair({
      socket: sock,
      prefixes: [prefix('b'), prefix('f')],
      track: (p) => {
        procs.push(p);
        if (procs.length === 1) p.on('port-stats', (st) => rxSeen.push(st.rxPackets)); // the back-end
      },
      launch: { logFile: join(dir, 'pair.log') },
    });
    expect(linkUps).toBe(1);
    // the back-end's periodic NIC statistics, as 'port-stats' events: never decreasing, ending at the total
    expect(rxSeen.length).toBeGreaterThan(1);
    expect([...rxSeen].sort((a, b) => a - b)).toEqual(rxSeen.filter(() => true));
    expect(rxSeen).toContain(sent.accumulated.txPackets);
    expect(procs[0]!.portStats.get(0)?.rxPackets).toBe(sent.accumulated.txPackets);
    expect(sent.accumulated.txPackets).toBeGreaterThan(0);
    expect(senderPort.txPackets).toBe(sent.accumulated.txPackets);
    expect(received.requested).toBe(true);
    expect(received.forwardStats!.accumulated.rxPackets).toBe(sent.accumulated.txPackets);
    expect(received.forwardStats!.accumulated.rxDropped).toBe(0);
    expect(received.cleaned.runtimeDir).toBe(true);
    expect(existsSync(sock)).toBe(false); // testpmd removes it on a clean exit, cleanup otherwise
    expect(readFileSync(join(dir, 'pair.log'), 'utf8')).toContain('virtio is now ready for processing');
  });

  it('the packed ring (packed_vq=1) carries the same exact counts', async () => {
    const sock = join(dir, 'packed.sock');
    sockets.push(sock);
    const { sent, received } = await runPair({
      socket: sock,
      prefixes: [prefix('pb'), prefix('pf')],
      track: (p) => procs.push(p),
      frontend: { packedVq: true, queueSize: 256 },
    });
    expect(procs.map((p) => p.argv.find((a) => a.startsWith('net_virtio_user'))).filter(Boolean)).toEqual([
      `net_virtio_user0,path=${sock},queues=1,queue_size=256,packed_vq=1`,
    ]);
    expect(sent.accumulated.txPackets).toBeGreaterThan(0);
    expect(received.forwardStats!.accumulated.rxPackets).toBe(sent.accumulated.txPackets);
  });

  it('a SIGKILLed testpmd becomes an exit event with its last log lines, and is cleaned up', async () => {
    const sock = join(dir, 'crash.sock');
    sockets.push(sock);
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

  it('a testpmd whose Node parent is SIGKILLed dies with it (no orphaned busy-polling process)', async () => {
    const bundleDir = mkdtempSync(join(tmpdir(), 'vipc-bundle-'));
    const fp = prefix('o');
    try {
      const bundle = bundleSource(bundleDir);
      const script = `
        const m = await import(${JSON.stringify(bundle)});
        const p = await m.launchDpdk({ eal: ${JSON.stringify({ ...base, lcores: [0, 1], filePrefix: fp })},
          testpmd: { nbCores: 1, forwardMode: 'rxonly', totalNumMbufs: 8192, statsPeriod: 1 } });
        console.log(p.pid);
        setInterval(() => {}, 1000);`;
      const parent = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const pid = await new Promise<number>((resolve, reject) => {
        parent.stdout.setEncoding('utf8');
        parent.stdout.once('data', (d: string) => resolve(Number(d.trim())));
        parent.once('exit', (c) => reject(new Error(`parent exited early (${c})`)));
      });
      expect(existsSync(`/proc/${pid}`)).toBe(true);
      parent.kill('SIGKILL');
      // poll the real state (no fixed sleep): the kernel delivers the parent-death signal
      const deadline = Date.now() + 30_000;
      while (
        existsSync(`/proc/${pid}/cmdline`) &&
        readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] !== 'Z' &&
        Date.now() < deadline
      ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(
        existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] !== 'Z',
      ).toBe(false);
    } finally {
      rmSync(bundleDir, { recursive: true, force: true });
      removeRuntimeDir(fp); // its supervisor died with it: the runtime dir is ours to remove
    }
  });
});
