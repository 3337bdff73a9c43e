/**
 * The project's testpmd peer (the PEERS notes' command line) on @vipc/dpdk,
 * shared by the benchmark (src/bench.ts) and the interop tests
 * (test-support/testpmd.ts): lcores 0-1 with one forwarding core, 16384
 * mbufs, `--no-huge -m 256` (a memfd virtio-user passes on) unless a
 * hugetlbfs is given, statistics every second unless interactive. @vipc/dpdk's
 * supervisor checks the file prefix, parses the output, stops testpmd (`quit`
 * or SIGINT, then SIGKILL) and removes its runtime directory, hugepage files
 * and the sockets its devices made.
 */
import { type ForwardMode, type LaunchOptions, TestpmdController, type Vdev } from '@vipc/dpdk';

export interface PeerOptions {
  /** --file-prefix (unique per run: include the pid, e.g. uniqueFilePrefix()). */
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
  /** `--no-telemetry` (the tests: no telemetry socket in the runtime directory). */
  noTelemetry?: boolean;
}

/** @vipc/dpdk launch options for the peer: interactive (`-i`) or forwarding at once with `--stats-period 1`. */
export function peerLaunchOptions(o: PeerOptions, interactive: boolean): LaunchOptions {
  return {
    eal: {
      lcores: '0-1',
      mainLcore: o.mainLcore ?? 0,
      memoryChannels: 1,
      filePrefix: o.prefix,
      noPci: true,
      ...(o.noTelemetry === true ? { noTelemetry: true } : {}),
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

/** The peer at its interactive prompt (forwarding starts with `start`). */
export function interactivePeer(o: PeerOptions): Promise<TestpmdController> {
  return TestpmdController.launch(peerLaunchOptions(o, true));
}
