#!/usr/bin/env node
/**
 * Packet-rate benchmark, side by side in one run (`pnpm --filter
 * @vipc/vhost-user bench`): 64-byte frames through three sender -> receiver
 * pairs, in interleaved rounds so that the machine's load hits them alike:
 *
 *  - vipc -> vipc: a vipc front-end (VirtioNetDriver, child process) into a
 *    vipc back-end (VirtioNetDevice, this process);
 *  - vipc -> vipc (channel): the same through the message API (MessageChannel
 *    sendBatch of 56-byte messages, 64-byte frames with the message header)
 *    into a back-end's MessageChannel, which copies each message out;
 *  - testpmd -> vipc: DPDK testpmd net_virtio_user txonly into a vipc back-end,
 *    measured twice per round: frames read as views, and copied out ("copy");
 *  - testpmd -> testpmd: net_virtio_user txonly into testpmd's own vhost PMD
 *    (net_vhost, rxonly).
 *
 * Every peer is started once and stays connected; in its turn a pair is
 * started (`start` at testpmd's prompt, a message to the vipc sender), warmed
 * up, measured at the receiver (frames it took over the window: our count, or
 * testpmd's RX-packets) and stopped, so the idle pairs
 * neither send nor spin (event-mode back-ends sleep on their eventfds).
 * The ratio testpmd->vipc / testpmd->testpmd is the issue's target (>= 50 %),
 * reported for both vipc receiver variants.
 *
 * The testpmd peers run under @vipc/dpdk (src/testpmd-peer.ts: the command
 * line, the prompt driven by its TestpmdController, `quit` then SIGKILL, and
 * the runtime directory and sockets removed after exit).
 *
 * For the vipc pairs the CPU time per frame of the sender (child process)
 * and of the receiver (this process) is reported too (process.cpuUsage over
 * the pair's turn): less sensitive to the machine's load than the rate.
 *
 * Options: --rounds=N (5), --seconds=S measured per pair and round (3),
 * --warmup=S (0.5), --mode=event|poll for the vipc back-ends (event), --no-pin,
 * --vipc-only (only the two vipc -> vipc pairs; no testpmd needed).
 */
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { discoverDpdk, type TestpmdController, uniqueFilePrefix } from '@vipc/dpdk';
import { VhostUserBackend } from './backend.js';
import { deviceEndpoint, driverEndpoint, MESSAGE_HEADER_SIZE, MessageChannel } from './channel.js';
import { anyPeer, type VhostUserListener } from './connection.js';
import { VhostUserFrontend } from './frontend.js';
import { VirtioNetDevice } from './net-device.js';
import { NET_DRIVER_FEATURES, VirtioNetDriver } from './net-driver.js';
import { pollUntil } from './poll-until.js';
import { interactivePeer, type PeerOptions } from './testpmd-peer.js';

const FRAME = 64;

/**
 * Pins every thread of a process to one CPU (util-linux taskset). Every pair
 * then runs its receiver on CPU 0 and its sender on CPU 1, as testpmd's
 * forwarding lcores are (an unpinned event-mode receiver sharing the sender's
 * CPU ping-pongs with it, one wake-up per burst, and measures the scheduler).
 */
function pin(pid: number, cpu: number): boolean {
  const r = spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { encoding: 'utf8' });
  return r.status === 0;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const until = (cond: () => boolean, what: string, timeoutMs: number): Promise<void> =>
  pollUntil(cond, what, timeoutMs, 20);

// ---------------------------------------------------------------- the vipc sender (child process)

type ToSender = { cmd: 'start' } | { cmd: 'stop' } | { cmd: 'quit' };
/** `stopped`: frames sent in all; `frames` and `cpuUs`: sent, and CPU time used, since the start. */
type FromSender = { ready: true } | { stopped: number; frames: number; cpuUs: number };
type SenderKind = 'frames' | 'channel';

async function runSender(path: string, kind: SenderKind): Promise<void> {
  const fe = await VhostUserFrontend.connect(path, {
    queueCount: 2,
    queueSize: 256,
    features: NET_DRIVER_FEATURES,
    policy: anyPeer,
    timeoutMs: 30_000,
  });
  const driver = new VirtioNetDriver(fe, { mode: 'event' });
  const frame = new Uint8Array(FRAME);
  frame.fill(0xff, 0, 6);
  frame.set([0x02, 0, 0, 0, 0, 1, 0x08, 0x00], 6);
  const batch = Array.from({ length: 32 }, () => frame);
  const channel = kind === 'channel' ? new MessageChannel(driverEndpoint(driver)) : undefined;
  const message = frame.subarray(MESSAGE_HEADER_SIZE); // 64-byte frames with the header
  const messages = Array.from({ length: 32 }, () => message);
  const sent = (): number => (channel === undefined ? driver.stats.sent : channel.stats.sent);
  let running = false;
  let loop: Promise<void> | undefined;
  let cpu0 = process.cpuUsage();
  let sent0 = 0;
  const sendFrames = async (): Promise<void> => {
    let sinceYield = 0;
    while (running) {
      const n = driver.sendBatch(batch);
      if (n < batch.length) {
        // ring full: wait for the back-end to return buffers
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(t);
            driver.off('writable', done);
            resolve();
          };
          const t = setTimeout(done, 5);
          driver.on('writable', done);
        });
        sinceYield = 0;
      } else if (++sinceYield >= 8) {
        // let the event loop serve the call eventfd (used buffers)
        await new Promise((r) => setImmediate(r));
        sinceYield = 0;
      }
    }
  };
  const sendMessages = async (): Promise<void> => {
    let sinceYield = 0;
    while (running) {
      // waits inside while the ring is full (back-pressure)
      await channel!.sendBatch(messages);
      if (++sinceYield >= 8) {
        await new Promise((r) => setImmediate(r));
        sinceYield = 0;
      }
    }
  };
  process.on('message', (m: ToSender) => {
    if (m.cmd === 'start' && !running) {
      running = true;
      cpu0 = process.cpuUsage();
      sent0 = sent();
      loop = channel === undefined ? sendFrames() : sendMessages();
    } else if (m.cmd === 'stop') {
      running = false;
      void (loop ?? Promise.resolve()).then(() => {
        const cpu = process.cpuUsage(cpu0);
        process.send!({
          stopped: sent(),
          frames: sent() - sent0,
          cpuUs: cpu.user + cpu.system,
        } as FromSender);
      });
    } else if (m.cmd === 'quit') {
      running = false;
      channel?.close();
      driver.close();
      fe.stop().finally(() => {
        fe.close();
        process.exit(0);
      });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ ready: true } as FromSender);
}

// ---------------------------------------------------------------- the orchestrator

interface Pair {
  name: string;
  /** Starts the sender (and receiver); resolves when traffic may flow. */
  start(): Promise<void>;
  /** Frames the receiver has taken so far (testpmd: RX-packets from `show port stats 0`). */
  count(): number | Promise<number>;
  stop(): Promise<void>;
}

/** testpmd's own Rx-pps of the last `show port stats` (its TSC, "since last show"): a cross-check. */
let lastRxPps = 0;

/** RX-packets of port 0 (`show port stats 0`); keeps its Rx-pps in lastRxPps. */
async function rxPackets(tp: TestpmdController): Promise<number> {
  const st = (await tp.portStats(0)).find((s) => s.port === 0);
  if (st === undefined) throw new Error('testpmd printed no statistics for port 0');
  lastRxPps = st.rxPps;
  return st.rxPackets;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const k = s.length >> 1;
  return s.length % 2 ? s[k]! : (s[k - 1]! + s[k]!) / 2;
}

const mpps = (pps: number): string => (pps / 1e6).toFixed(2);
const pct = (x: number): string => `${(100 * x).toFixed(0)} %`;

const USAGE =
  'usage: bench [--rounds=N] [--seconds=S] [--warmup=S] [--mode=event|poll] [--no-pin] [--vipc-only]';

function parseOptions() {
  return parseArgs({
    // `pnpm bench -- --rounds=1` passes the "--" through
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: {
      rounds: { type: 'string', default: '5' },
      seconds: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '0.5' },
      mode: { type: 'string', default: 'event' },
      'no-pin': { type: 'boolean', default: false },
      'vipc-only': { type: 'boolean', default: false },
    },
  });
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values } = parsed;
  const rounds = Number(values.rounds);
  const windowMs = Number(values.seconds) * 1000;
  const warmupMs = Number(values.warmup) * 1000;
  const mode = values.mode as 'event' | 'poll';
  if (!Number.isInteger(rounds) || rounds < 1 || !(windowMs > 0) || !(warmupMs >= 0)) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  if (mode !== 'event' && mode !== 'poll') {
    process.stderr.write('--mode must be event or poll\n');
    return 2;
  }
  const vipcOnly = values['vipc-only'];
  if (!vipcOnly) {
    const dpdk = discoverDpdk();
    if (!dpdk.installed) {
      process.stderr.write(`${dpdk.message}\n`);
      return 1;
    }
  }

  let pinned = false;
  if (!values['no-pin'] && cpus().length >= 2) {
    pinned = pin(process.pid, 0);
    if (!pinned) process.stderr.write('taskset (util-linux) failed: running unpinned\n');
  }

  const dir = mkdtempSync(join(tmpdir(), `vipc-bench-${process.pid}-`));
  const cleanups: (() => unknown)[] = [];
  const cleanup = async (): Promise<void> => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (err) {
        process.stderr.write(`cleanup: ${(err as Error).message}\n`);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (): void => {
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const load0 = loadavg();
  const t0 = Date.now();
  try {
    const backend = (device: VirtioNetDevice, sock: string): VhostUserBackend => {
      const b = new VhostUserBackend({
        device,
        mode,
        log: (l) => process.stderr.write(`${l}\n`),
      });
      const listener: VhostUserListener = b.listen(sock, { policy: anyPeer });
      cleanups.push(
        () => listener.close(),
        () => b.close(),
      );
      return b;
    };

    // A vipc receiver gets each frame as a view into guest memory and reads its first
    // byte; in the "copy" slot it copies every frame out, as testpmd's vhost PMD copies
    // each one into an mbuf.
    const scratch = new Uint8Array(65536);
    let copy = false;
    let sink = 0;
    const receiver = (): VirtioNetDevice =>
      new VirtioNetDevice({
        onFrame: (f) => {
          if (copy) scratch.set(f);
          else sink ^= f[0]!;
        },
      });

    // vipc -> vipc, frames and messages: one sender process each
    const vipcSender = async (sock: string, kind: SenderKind) => {
      const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--vipc-sender', sock, kind], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      cleanups.push(async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((r) => child.once('exit', r));
        child.send({ cmd: 'quit' } as ToSender);
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      });
      const fromChild = (pred: (m: FromSender) => boolean): Promise<FromSender> =>
        new Promise((resolve, reject) => {
          const onMsg = (m: FromSender): void => {
            if (!pred(m)) return;
            child.off('message', onMsg);
            child.off('exit', onExit);
            resolve(m);
          };
          const onExit = (): void => reject(new Error('the vipc sender exited'));
          child.on('message', onMsg);
          child.once('exit', onExit);
        });
      if (pinned && !pin(child.pid!, 1)) throw new Error('cannot pin the vipc sender to CPU 1');
      await fromChild((m) => 'ready' in m);
      return {
        start: () => child.send({ cmd: 'start' } as ToSender),
        /** Stops the sender; resolves with what it reports. */
        stop: async () => {
          const stopped = fromChild((m) => 'stopped' in m);
          child.send({ cmd: 'stop' } as ToSender);
          return (await stopped) as { stopped: number; frames: number; cpuUs: number };
        },
      };
    };
    const devA = receiver();
    const sockA = join(dir, 'a.sock');
    backend(devA, sockA);
    const senderA = await vipcSender(sockA, 'frames');
    const devD = new VirtioNetDevice();
    const sockD = join(dir, 'd.sock');
    backend(devD, sockD);
    const channelD = new MessageChannel(deviceEndpoint(devD));
    channelD.on('message', (m: Uint8Array) => {
      sink ^= m[0]!;
    });
    cleanups.push(() => channelD.close());
    const senderD = await vipcSender(sockD, 'channel');
    /** Sender and receiver CPU ns per frame of each round, by pair name (the vipc pairs). */
    const cpuNs = new Map<string, number[]>();
    const rxCpuNs = new Map<string, number[]>();
    const vipcPair = (
      name: string,
      sender: Awaited<ReturnType<typeof vipcSender>>,
      received: () => number,
    ): Pair => {
      cpuNs.set(name, []);
      rxCpuNs.set(name, []);
      // this process's CPU time over the pair's turn (the other back-ends sleep meanwhile)
      let rxCpu0 = process.cpuUsage();
      let rx0 = 0;
      return {
        name,
        start: async () => {
          rxCpu0 = process.cpuUsage();
          rx0 = received();
          sender.start();
        },
        count: received,
        stop: async () => {
          const r = await sender.stop();
          cpuNs.get(name)!.push((r.cpuUs * 1000) / Math.max(r.frames, 1));
          await until(() => received() >= r.stopped, 'the vipc back-end to drain', 30_000);
          const rx = process.cpuUsage(rxCpu0);
          rxCpuNs.get(name)!.push(((rx.user + rx.system) * 1000) / Math.max(received() - rx0, 1));
        },
      };
    };
    const pairs: Pair[] = [
      vipcPair('vipc -> vipc', senderA, () => devA.stats.received),
      vipcPair('vipc -> vipc (channel)', senderD, () => channelD.stats.received),
    ];

    if (!vipcOnly) {
      /** One interactive testpmd, stopped (`quit`, SIGKILL after 10 s) and cleaned up by cleanup(). */
      const testpmd = async (o: PeerOptions): Promise<TestpmdController> => {
        const tp = await interactivePeer(o);
        cleanups.push(() => tp.quit(10_000));
        return tp;
      };
      // testpmd -> vipc
      const devB = receiver();
      const sockB = join(dir, 'b.sock');
      backend(devB, sockB);
      // testpmd -> testpmd: the vhost PMD first (it creates the socket)
      const sockC = join(dir, 'c.sock');
      // both start up at once; each one that came up is stopped even when the other failed
      const [b, cr] = await Promise.allSettled([
        testpmd({
          prefix: uniqueFilePrefix('vbench'),
          vdev: { driver: 'net_virtio_user', path: sockB, queues: 1 },
          forwardMode: 'txonly',
          txpkts: FRAME,
          mainLcore: 0,
        }),
        testpmd({
          prefix: uniqueFilePrefix('vbench'),
          vdev: { driver: 'net_vhost', iface: sockC, queues: 1 },
          forwardMode: 'rxonly',
          mainLcore: 1,
        }),
      ]);
      if (b.status === 'rejected') throw b.reason;
      if (cr.status === 'rejected') throw cr.reason;
      const tpB = b.value;
      const tpCrx = cr.value;
      await tpCrx.process.waitFor('socket-created', 60_000);
      const tpCtx = await testpmd({
        prefix: uniqueFilePrefix('vbench'),
        vdev: { driver: 'net_virtio_user', path: sockC, queues: 1 },
        forwardMode: 'txonly',
        txpkts: FRAME,
        mainLcore: 0,
      });
      await tpCrx.process.waitFor('link-up', 60_000);
      await until(() => devB.linkUp(0), 'the vipc back-end to start', 60_000);
      pairs.push(
        {
          name: 'testpmd -> vipc',
          start: async () => {
            await tpB.start();
          },
          count: () => devB.stats.received,
          stop: async () => {
            await tpB.stop();
          },
        },
        {
          name: 'testpmd -> vipc (copy)',
          start: async () => {
            copy = true;
            await tpB.start();
          },
          count: () => devB.stats.received,
          stop: async () => {
            await tpB.stop();
            copy = false;
          },
        },
        {
          name: 'testpmd -> testpmd',
          start: async () => {
            await tpCrx.start();
            await tpCtx.start();
          },
          count: () => rxPackets(tpCrx),
          stop: async () => {
            await tpCtx.stop();
            await tpCrx.stop();
          },
        },
      );
    }
    await until(() => devA.linkUp(0) && devD.linkUp(0), 'the vipc back-ends to start', 60_000);

    const results: number[][] = pairs.map(() => []);
    const at = (name: string): number[] => results[pairs.findIndex((p) => p.name === name)]!;
    process.stdout.write(
      `vipc vhost-user packet-rate benchmark: ${FRAME}-byte frames, ${rounds} rounds, ${windowMs / 1000} s per pair and round, vipc back-ends in ${mode} mode, ${cpus().length} CPUs, ${pinned ? 'receivers on CPU 0 and senders on CPU 1' : 'unpinned'}, load average ${load0.map((x) => x.toFixed(2)).join(' ')}\n`,
    );
    for (let r = 0; r < rounds; r++) {
      // rotate the order so that no pair always runs first
      for (let k = 0; k < pairs.length; k++) {
        const i = (k + r) % pairs.length;
        const p = pairs[i]!;
        await p.start();
        await sleep(warmupMs);
        // the same measure for every pair: frames the receiver took over the window, by this clock
        const c0 = await p.count();
        const s = performance.now();
        await sleep(windowMs);
        const c1 = await p.count();
        const pps = ((c1 - c0) * 1000) / (performance.now() - s);
        await p.stop();
        results[i]!.push(pps);
      }
      const cpu = [...cpuNs]
        .map(([name, xs]) => `${name} ${xs[r]!.toFixed(0)} / ${rxCpuNs.get(name)![r]!.toFixed(0)} ns`)
        .join(', ');
      const ratios = vipcOnly
        ? ''
        : ` (its own Rx-pps: ${mpps(lastRxPps)}), ratios ${pct(at('testpmd -> vipc')[r]! / at('testpmd -> testpmd')[r]!)}, ${pct(at('testpmd -> vipc (copy)')[r]! / at('testpmd -> testpmd')[r]!)}`;
      process.stdout.write(
        `round ${r + 1}: ${pairs.map((p, i) => `${p.name} ${mpps(results[i]![r]!)} Mpps`).join(', ')}${ratios}; CPU per frame, sender / receiver: ${cpu}\n`,
      );
    }
    void sink;
    const load1 = loadavg();
    const ratios = vipcOnly ? [] : at('testpmd -> vipc').map((x, r) => x / at('testpmd -> testpmd')[r]!);
    const copyRatios = vipcOnly
      ? []
      : at('testpmd -> vipc (copy)').map((x, r) => x / at('testpmd -> testpmd')[r]!);
    const row = (cells: string[]): string => `| ${cells.join(' | ')} |\n`;
    const cpuNames = [...cpuNs.keys()];
    let table = row([
      'round',
      ...pairs.map((p) => `${p.name} (Mpps)`),
      ...(vipcOnly ? [] : ['testpmd->vipc / testpmd->testpmd', '(copy) / testpmd->testpmd']),
      ...cpuNames.map((n) => `${n}: sender / receiver CPU ns/frame`),
    ]);
    table += row([
      '---',
      ...pairs.map(() => '---:'),
      ...(vipcOnly ? [] : ['---:', '---:']),
      ...cpuNames.map(() => '---:'),
    ]);
    for (let r = 0; r < rounds; r++) {
      table += row([
        String(r + 1),
        ...pairs.map((_, i) => mpps(results[i]![r]!)),
        ...(vipcOnly ? [] : [pct(ratios[r]!), pct(copyRatios[r]!)]),
        ...cpuNames.map((n) => `${cpuNs.get(n)![r]!.toFixed(0)} / ${rxCpuNs.get(n)![r]!.toFixed(0)}`),
      ]);
    }
    table += row([
      'median',
      ...pairs.map((_, i) => mpps(median(results[i]!))),
      ...(vipcOnly ? [] : [pct(median(ratios)), pct(median(copyRatios))]),
      ...cpuNames.map((n) => `${median(cpuNs.get(n)!).toFixed(0)} / ${median(rxCpuNs.get(n)!).toFixed(0)}`),
    ]);
    process.stdout.write(`\n${table}\n`);
    process.stdout.write(
      `load average before ${load0.map((x) => x.toFixed(2)).join(' ')}, after ${load1.map((x) => x.toFixed(2)).join(' ')}; ${((Date.now() - t0) / 1000).toFixed(0)} s\n`,
    );
    if (!vipcOnly) {
      const verdict = (x: number): string => (x >= 0.5 ? 'met' : 'NOT met');
      process.stdout.write(
        `target (testpmd->vipc >= 50 % of testpmd->testpmd, median of the same-round ratios): ${verdict(median(ratios))}; with the copy: ${verdict(median(copyRatios))}\n`,
      );
    }
    return 0;
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

if (process.argv[2] === '--vipc-sender') {
  await runSender(process.argv[3]!, process.argv[4] === 'channel' ? 'channel' : 'frames');
} else {
  process.exitCode = await main();
}
