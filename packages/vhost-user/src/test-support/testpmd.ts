/**
 * The vhost-user interop tests' testpmd, on @vipc/dpdk's supervisor (which
 * checks the file prefix, parses the output, stops with SIGINT then SIGKILL
 * and removes the runtime directory, hugepage files and the sockets it made).
 * What is vhost-user specific here is the command line of the project's PEERS
 * notes: two lcores and one forwarding core, 16384 mbufs, `--no-huge -m 256`
 * (a memfd virtio-user passes on) unless a hugetlbfs is given, statistics
 * every second. The peer availability checks and leftover asserts come from
 * `@vipc/dpdk/testing`.
 */
import {
  type DpdkProcess,
  type ExitInfo,
  type ForwardCounters,
  type ForwardMode,
  type LaunchOptions,
  spawnDpdk,
  TestpmdController,
  type Vdev,
} from '@vipc/dpdk';

export interface PeerOptions {
  /** --file-prefix (unique per test: include the pid). */
  prefix: string;
  vdev: Vdev;
  forwardMode: ForwardMode;
  /** Main lcore (0 or 1; default 0): the forwarding core is the other one. */
  mainLcore?: number;
  /** Frame length for txonly. */
  txpkts?: number;
  /**
   * DPDK's dynamic memory mode in this hugetlbfs mount (`--huge-dir DIR
   * --single-file-segments`, no -m: the heap grows on demand, and virtio-user
   * re-sends SET_MEM_TABLE each time) instead of `--no-huge -m 256`.
   */
  hugeDir?: string;
}

function launchOptions(o: PeerOptions, interactive: boolean): LaunchOptions {
  return {
    eal: {
      lcores: [0, 1],
      mainLcore: o.mainLcore ?? 0,
      memoryChannels: 1,
      filePrefix: o.prefix,
      noPci: true,
      noTelemetry: true,
      ...(o.hugeDir !== undefined
        ? { hugeDir: o.hugeDir, singleFileSegments: true }
        : { noHuge: true, memoryMb: 256 }),
      vdevs: [o.vdev],
    },
    testpmd: {
      nbCores: 1,
      forwardMode: o.forwardMode,
      totalNumMbufs: 16384,
      ...(interactive ? { interactive: true } : { statsPeriod: 1 }),
      ...(o.txpkts !== undefined ? { txpkts: o.txpkts } : {}),
    },
    readyTimeoutMs: 90_000,
  };
}

/**
 * Starts testpmd forwarding at once (non-interactive) and returns without
 * waiting: its vipc peer runs in the test's own event loop.
 */
export function startTestpmd(o: PeerOptions): DpdkProcess {
  return spawnDpdk(launchOptions(o, false));
}

/** testpmd at its interactive prompt (forwarding starts with `start`). */
export function interactiveTestpmd(o: PeerOptions): Promise<TestpmdController> {
  return TestpmdController.launch(launchOptions(o, true));
}

/** The "Accumulated forward statistics" testpmd printed when it stopped. */
export function totalsOf(exit: ExitInfo): ForwardCounters {
  if (exit.forwardStats === undefined) {
    throw new Error(
      `testpmd exited (${exit.signal ?? `code ${exit.code}`}) without forward statistics:\n${exit.lastLines.join('\n')}`,
    );
  }
  return exit.forwardStats.accumulated;
}

/** The RX-packets of port 0 in testpmd's latest periodic NIC statistics (0 before the first). */
export function lastRxPackets(p: DpdkProcess): number {
  return p.portStats.get(0)?.rxPackets ?? 0;
}
