// Helpers for tests that run against the real DPDK testpmd, published as `@vipc/dpdk/testing` so that
// other packages' interop tests (vhost-user, bench, cli) use the same peer checks and leftover asserts.
import { existsSync } from 'node:fs';
import { discoverDpdk } from '../discovery.js';
import type { EalOptions, VhostVdev, VirtioUserVdev } from '../eal-options.js';
import { findHugepageFiles } from '../hugepages.js';
import { processesUsingPrefix, runtimeDir } from '../runtime.js';
import type { ForwardStats, PortStats } from '../stats.js';
import type { DpdkProcess, ExitInfo, LaunchOptions } from '../supervisor.js';
import { launchDpdk } from '../supervisor.js';
import { TestpmdController } from '../testpmd-controller.js';

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

/**
 * What survives of a prefix: live processes, the runtime directory (root's and a user's), hugepage files
 * in any hugetlbfs mount, and the given socket paths. Tests assert this is empty after each test.
 */
export function leftoversOf(prefix: string, uid = 0, sockets: readonly string[] = []): string[] {
  const out: string[] = [];
  const pids = processesUsingPrefix(prefix);
  if (pids.length) out.push(`processes ${pids.join(',')} still use prefix ${prefix}`);
  for (const d of new Set([runtimeDir(prefix, 0), runtimeDir(prefix, uid, {})])) {
    if (existsSync(d)) out.push(`runtime dir ${d} still exists`);
  }
  for (const f of findHugepageFiles({ prefix })) out.push(`hugepage file ${f.path} still exists`);
  for (const s of sockets) if (existsSync(s)) out.push(`socket ${s} still exists`);
  return out;
}

/** Whether this process may reserve hugepages and mount file systems; under CI it must. */
export function rootAvailable(): boolean {
  if (process.getuid?.() === 0) return true;
  if (process.env.CI === 'true') throw new Error('CI runs the hugepage tests as root');
  console.warn('skipping hugepage tests: they need root (run the suite as root, as CI does)');
  return false;
}

export interface PairResult {
  /** Sender's forward statistics at `stop` (while still connected). */
  sent: ForwardStats;
  /** Sender's NIC counters after `stop`. */
  senderPort: PortStats;
  /** Receiver's exit report (its final forward statistics). */
  received: ExitInfo;
  linkUps: number;
}

export interface PairOptions {
  /** vhost-user socket path (in a temp dir of the test). */
  socket: string;
  /** File prefixes of the back-end and the front-end. */
  prefixes: [string, string];
  /** Called with each process as soon as it runs, so the test can stop it in afterEach. */
  track: (p: DpdkProcess) => void;
  /** Extra launch options for both (uid/gid/env for non-root runs, logFile, ...). */
  launch?: Partial<Omit<LaunchOptions, 'eal' | 'testpmd'>>;
  /** Base EAL options (default: --no-pci --no-huge -m 256 -n 1 --no-telemetry). */
  eal?: EalOptions;
  /** Pass --no-mlockall (non-root runs). */
  noMlockall?: boolean;
  /** Extra devargs of the front-end (e.g. { packedVq: true }). */
  frontend?: Partial<Omit<VirtioUserVdev, 'driver' | 'path'>>;
  /** Extra devargs of the back-end. */
  backend?: Partial<Omit<VhostVdev, 'driver' | 'iface'>>;
}

/**
 * The talk's pair: a vhost back-end (rxonly, non-interactive) and a virtio-user front-end (txonly,
 * driven over its prompt). The front-end stops forwarding while still connected, the back-end drains
 * the ring until its RX counter reaches what was sent, and only then do both exit, so the counts must
 * be equal: a packet lost anywhere fails the wait (TIMEOUT).
 */
export async function runPair(o: PairOptions): Promise<PairResult> {
  const eal = o.eal ?? { noPci: true, noHuge: true, memoryMb: 256, memoryChannels: 1, noTelemetry: true };
  const noMlockall = o.noMlockall ?? false;
  const back = await launchDpdk({
    ...o.launch,
    eal: {
      ...eal,
      lcores: [0, 1],
      mainLcore: 1,
      filePrefix: o.prefixes[0],
      vdevs: [{ queues: 1, ...o.backend, driver: 'net_vhost', iface: o.socket }],
    },
    testpmd: { nbCores: 1, forwardMode: 'rxonly', totalNumMbufs: 16384, statsPeriod: 1, noMlockall },
  });
  o.track(back);
  let linkUps = 0;
  back.on('link-up', () => linkUps++);
  const front = await TestpmdController.launch({
    ...o.launch,
    eal: {
      ...eal,
      lcores: [0, 1],
      mainLcore: 0,
      filePrefix: o.prefixes[1],
      vdevs: [{ queues: 1, ...o.frontend, driver: 'net_virtio_user', path: o.socket }],
    },
    testpmd: { nbCores: 1, forwardMode: 'txonly', txpkts: 64, totalNumMbufs: 16384, noMlockall },
  });
  o.track(front.process);
  await back.waitFor('link-up', 60_000);
  await front.start();
  await back.waitFor(/RX-packets: [1-9]/, 60_000);
  const sent = await front.stop();
  const senderPort = (await front.portStats(0))[0]!;
  // drained: the receiver's periodic NIC statistics show exactly what was sent
  await back.waitFor(new RegExp(`RX-packets: ${sent.accumulated.txPackets} `), 60_000);
  await front.quit();
  const received = await back.stop();
  return { sent, senderPort, received, linkUps };
}
