/**
 * The vhost-user interop tests' testpmd: the project's peer command line
 * (src/testpmd-peer.ts, shared with the benchmark) with `--no-telemetry`, on
 * @vipc/dpdk's supervisor (which checks the file prefix, parses the output,
 * stops with SIGINT then SIGKILL and removes the runtime directory, hugepage
 * files and the sockets it made). The peer availability checks and leftover
 * asserts come from `@vipc/dpdk/testing`.
 */
import {
  type DpdkProcess,
  type ExitInfo,
  type ForwardCounters,
  spawnDpdk,
  type TestpmdController,
} from '@vipc/dpdk';
import { interactivePeer, type PeerOptions, peerLaunchOptions } from '../testpmd-peer.js';

export type { PeerOptions };

/**
 * Starts testpmd forwarding at once (non-interactive) and returns without
 * waiting: its vipc peer runs in the test's own event loop.
 */
export function startTestpmd(o: PeerOptions): DpdkProcess {
  return spawnDpdk(peerLaunchOptions({ ...o, noTelemetry: true }, false));
}

/** testpmd at its interactive prompt (forwarding starts with `start`). */
export function interactiveTestpmd(o: PeerOptions): Promise<TestpmdController> {
  return interactivePeer({ ...o, noTelemetry: true });
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
