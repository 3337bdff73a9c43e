/**
 * The DPDK scenarios: testpmd <-> testpmd over vhost-user (the C anchor), and
 * the @vipc/vhost-user back-end serving testpmd's virtio-user front-end.
 * testpmd sends (txonly) as fast as it can; the rate is what the receiving
 * side counted over the measured window; at the end the sender stops while
 * still connected and the receiver must count exactly what was sent.
 *
 * Round trips (vipc-testpmd only): the same testpmd is switched to macswap
 * forwarding, and the back-end sends it one frame at a time
 * (testpmd-round-trips.ts). testpmd <-> testpmd has none: testpmd cannot time
 * one (the scenario's `noRoundTrips` says why).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { nowNs } from './cpu.js';
import type { TrialTiming } from './defs.js';
import { BenchError } from './errors.js';
import { HdrHistogram } from './hdr-histogram.js';
import type { TrialResult } from './results.js';
import type { Scenario } from './scenarios.js';
import { RoundTripProbe } from './testpmd-round-trips.js';
import { sleep, until } from './until.js';

/** testpmd sends each packet from one mbuf (2048 B data room minus headroom). */
export const TESTPMD_MAX_PACKET = 1518;
/** The window is read from the sender's NIC counters at its ends (a prompt round trip each): at least this long. */
const MIN_WINDOW_MS = 300;
const WAIT_MS = 60_000;

// The slices of @vipc/dpdk and @vipc/vhost-user used here, typed locally (dynamic imports).
interface DpdkProcessLike {
  pid: number;
  waitFor(c: RegExp | string | (RegExp | string)[], timeoutMs?: number): Promise<void>;
  stop(o?: { timeoutMs?: number }): Promise<{ forwardStats?: { accumulated: { rxPackets: number } } }>;
  kill(signal?: NodeJS.Signals): void;
}
interface ControllerLike {
  process: DpdkProcessLike;
  start(o?: { txFirst?: boolean }): Promise<string>;
  stop(): Promise<{ accumulated: { txPackets: number; rxPackets: number } }>;
  setForwardMode(mode: 'macswap'): Promise<void>;
  portStats(port: number): Promise<{ txPackets: number; rxPackets: number }[]>;
  quit(timeoutMs?: number): Promise<unknown>;
}
interface DpdkModule {
  launchDpdk(o: unknown): Promise<DpdkProcessLike>;
  TestpmdController: { launch(o: unknown): Promise<ControllerLike> };
  uniqueFilePrefix(tag: string): string;
}
interface NetDeviceLike {
  stats: { received: number; receivedBytes: number };
  onFrame?: (frame: Uint8Array) => void;
  send(frame: Uint8Array): boolean;
}
interface VhostUserModule {
  VirtioNetDevice: new (options?: { txBatch?: number }) => NetDeviceLike;
  VhostUserBackend: new (o: {
    device: NetDeviceLike;
    log?: (l: string) => void;
  }) => {
    listen(path: string, o: { policy: unknown }): { close(): void };
    close(): void;
    connected: boolean;
  };
  anyPeer: unknown;
}

const EAL = { noPci: true, noHuge: true, memoryMb: 256, memoryChannels: 1, noTelemetry: true } as const;

const CLK_TCK = 100;
/** CPU time of a process and all its threads (ns), from /proc/<pid>/stat (utime + stime). */
function processCpuNs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1e9;
}

function emptyLatency() {
  return new HdrHistogram().snapshot();
}

async function launchFront(dpdk: DpdkModule, socket: string, size: number): Promise<ControllerLike> {
  return dpdk.TestpmdController.launch({
    eal: {
      ...EAL,
      lcores: [0, 1],
      mainLcore: 0,
      filePrefix: dpdk.uniqueFilePrefix('vbf'),
      vdevs: [{ driver: 'net_virtio_user', path: socket, queues: 1 }],
    },
    testpmd: { nbCores: 1, forwardMode: 'txonly', txpkts: size, totalNumMbufs: 16384 },
  });
}

/** Runs one DPDK scenario at one size. */
export async function runTestpmdTrial(
  scenario: Scenario,
  size: number,
  round: number,
  timing: TrialTiming,
  workDir: string,
  n: number,
): Promise<TrialResult> {
  const dpdk = (await import('@vipc/dpdk' as string)) as DpdkModule;
  const socket = path.join(workDir, `t${n}-vhu.sock`);
  const cleanup: (() => Promise<unknown>)[] = [];
  const windowMs = Math.max(MIN_WINDOW_MS, timing.durationMs);
  try {
    // The receiving side: testpmd rxonly (anchor) or the vipc back-end in this process.
    let received: () => number;
    let receiverCpu: () => number;
    let finalReceived: () => Promise<number>;
    let back: DpdkProcessLike | undefined;
    // vipc-testpmd: routes the back-end's frames to round-trip probes from now on
    let startProbes: (() => RoundTripProbe) | undefined;
    if (scenario.id === 'testpmd-testpmd') {
      const b = await dpdk.launchDpdk({
        eal: {
          ...EAL,
          lcores: [0, 1],
          mainLcore: 1,
          filePrefix: dpdk.uniqueFilePrefix('vbb'),
          vdevs: [{ driver: 'net_vhost', iface: socket, queues: 1 }],
        },
        testpmd: { nbCores: 1, forwardMode: 'rxonly', totalNumMbufs: 16384, statsPeriod: 1 },
      });
      back = b;
      cleanup.push(() => b.stop({ timeoutMs: 10_000 }).catch(() => b.kill('SIGKILL')));
      received = () => Number.NaN; // read from the sender's NIC counters instead (the receiver prints once a second)
      receiverCpu = () => processCpuNs(b.pid);
      finalReceived = async () => 0;
    } else {
      const vu = (await import('@vipc/vhost-user' as string)) as VhostUserModule;
      // frames in batches of 64 through the ring's fast path: this consumer never pauses
      const device = new vu.VirtioNetDevice({ txBatch: 64 });
      let bad = 0;
      let probe: RoundTripProbe | undefined;
      device.onFrame = (frame) => {
        if (probe !== undefined) probe.onFrame(frame);
        else if (frame.length !== size) bad++;
      };
      startProbes = () => {
        probe = new RoundTripProbe(device, size, WAIT_MS);
        return probe;
      };
      const errors: string[] = [];
      const backend = new vu.VhostUserBackend({ device, log: (l) => errors.push(l) });
      const listener = backend.listen(socket, { policy: vu.anyPeer });
      cleanup.push(async () => {
        backend.close();
        listener.close();
      });
      received = () => {
        if (bad > 0) throw new BenchError('PROTOCOL', `${bad} frames of the wrong size reached the back-end`);
        return device.stats.received;
      };
      const self = () => {
        const u = process.cpuUsage();
        return (u.user + u.system) * 1000;
      };
      receiverCpu = self;
      finalReceived = async () => device.stats.received;
    }
    const front = await launchFront(dpdk, socket, size);
    cleanup.push(() => front.quit().catch(() => front.process.kill('SIGKILL')));
    if (back) await back.waitFor('link-up', WAIT_MS);
    await front.start();
    if (back) await back.waitFor(/RX-packets: [1-9]/, WAIT_MS);
    else await until(() => received() > 0, 'the first packets at the vipc back-end', WAIT_MS);
    await sleep(timing.warmupMs);
    const s0 = (await front.portStats(0))[0]!;
    const r0 = back ? 0 : received();
    const t0 = nowNs();
    const cpuS0 = processCpuNs(front.process.pid);
    const cpuR0 = receiverCpu();
    await sleep(windowMs);
    const s1 = (await front.portStats(0))[0]!;
    const r1 = back ? 0 : received();
    const t1 = nowNs();
    const cpuS = processCpuNs(front.process.pid) - cpuS0;
    const cpuR = receiverCpu() - cpuR0;
    const sent = await front.stop();
    const total = sent.accumulated.txPackets;
    // Drained: the receiver has counted exactly what was sent (a lost packet times out).
    let rx: number;
    if (back) {
      await back.waitFor(new RegExp(`RX-packets: ${total} `), WAIT_MS);
      rx = total;
    } else {
      await until(() => received() >= total, `the back-end to count ${total} packets`, WAIT_MS);
      rx = await finalReceived();
    }
    // Round trips: testpmd now returns what it receives (macswap, the same port), one frame in flight.
    let latency = emptyLatency();
    const pings = { sent: 0, received: 0, replies: 0, equal: true };
    const latencyExtra: Record<string, number> = {};
    if (startProbes !== undefined) {
      await front.setForwardMode('macswap');
      await front.start();
      const rt = await startProbes().run(timing);
      const fwd = (await front.stop()).accumulated;
      latency = rt.histogram.snapshot();
      pings.sent = rt.sent;
      pings.received = fwd.rxPackets;
      pings.replies = rt.returned;
      pings.equal = fwd.rxPackets === rt.sent && fwd.txPackets === rt.sent && rt.returned === rt.sent;
      latencyExtra.roundTripsMeasured = rt.measured;
      latencyExtra.roundTripSendRetries = rt.sendRetries;
      latencyExtra.roundTripTestpmdTx = fwd.txPackets;
    }
    // Delivered in the window: the back-end's own count (vipc), else the packets the sender's NIC
    // enqueued (testpmd's vhost port drops nothing here: the exact-count check above proves it).
    const measured = back ? s1.txPackets - s0.txPackets : r1 - r0;
    const mps = (measured / (t1 - t0)) * 1e9;
    const perMsg = (ns: number) => (measured > 0 ? ns / measured : 0);
    return {
      scenario: scenario.id,
      size,
      round,
      messagesPerSecond: mps,
      bytesPerSecond: mps * size,
      cpuNsPerMessage: perMsg(cpuS + cpuR),
      cpuNsPerMessageSender: perMsg(cpuS),
      cpuNsPerMessageReceiver: perMsg(cpuR),
      cpuScope: 'process',
      latency,
      counts: {
        throughputSent: total,
        throughputReceived: rx,
        measuredSent: s1.txPackets - s0.txPackets,
        measuredReceived: measured,
        pingsSent: pings.sent,
        pingsReceived: pings.received,
        repliesReceived: pings.replies,
        equal: rx === total && pings.equal,
      },
      extra: {
        windowMs,
        senderNicTxPps: ((s1.txPackets - s0.txPackets) / (t1 - t0)) * 1e9,
        ...latencyExtra,
      },
    };
  } finally {
    for (const c of cleanup.reverse()) await c().catch(() => {});
  }
}
