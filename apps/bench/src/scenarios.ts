import type { TransportId, VringParams } from './protocol.js';

export type ScenarioGroup = 'baseline' | 'vipc' | 'anchor';

/** One way of moving messages between two endpoints. */
export interface Scenario {
  /** Stable id, used in --scenarios, the JSON and baseline comparisons. */
  id: string;
  /** The transport family reported as `transport` in the JSON. */
  transport: string;
  label: string;
  group: ScenarioGroup;
  /** How the two endpoints run. */
  endpoints: 'processes' | 'workers' | 'host-container' | 'testpmd';
  /** Endpoint transport (absent for scenarios run by an external peer). */
  endpointTransport?: TransportId;
  vring?: Pick<VringParams, 'layout' | 'mode' | 'spinUs'>;
  /** When set, the scenario needs something this machine may lack. */
  needs?: 'vring' | 'dpdk' | 'vhost-user' | 'lxc';
  /** Largest message the scenario can carry, and why (larger sizes are reported unavailable). */
  maxSize?: { bytes: number; reason: string };
  /** When set, the scenario measures no round trips, and this says why (the report prints it). */
  noRoundTrips?: string;
  description: string;
}

/**
 * Why testpmd <-> testpmd reports no round trips. testpmd timestamps no
 * packet: its forwarding modes only move packets, and `--latencystats`
 * (DPDK's latencystats library) times a packet inside one testpmd, from its
 * RX callback to its TX callback (min, mean, max and jitter, read through
 * DPDK's metrics library, e.g. by dpdk-proc-info), which is not a round trip
 * between two processes; a one-packet loop between two testpmd would give a
 * mean from a packet rate, no percentiles.
 */
export const TESTPMD_NO_ROUND_TRIPS =
  'testpmd cannot time a round trip: its forwarding modes carry no timestamps, and --latencystats (DPDK latencystats) only times a packet inside one testpmd, from RX to TX, not a round trip between two processes';

/** Default spin before sleeping in spin-then-sleep mode (µs). */
export const DEFAULT_SPIN_US = 50;

export const SCENARIOS: readonly Scenario[] = [
  {
    id: 'unix-socket',
    transport: 'unix-socket',
    label: 'Unix socket',
    group: 'baseline',
    endpoints: 'processes',
    endpointTransport: 'unix-socket',
    description: 'AF_UNIX stream (node:net), one write() per message',
  },
  {
    id: 'unix-socket-corked',
    transport: 'unix-socket',
    label: 'Unix socket, corked',
    group: 'baseline',
    endpoints: 'processes',
    endpointTransport: 'unix-socket-corked',
    description:
      'AF_UNIX stream, cork() / 128 writes / uncork(): coalesced into one writev (as many as the ring publishes per batch)',
  },
  {
    id: 'tcp',
    transport: 'tcp',
    label: 'TCP loopback',
    group: 'baseline',
    endpoints: 'processes',
    endpointTransport: 'tcp',
    description: 'TCP over 127.0.0.1, TCP_NODELAY, one write() per message',
  },
  {
    id: 'pipe',
    transport: 'pipe',
    label: 'pipe',
    group: 'baseline',
    endpoints: 'processes',
    endpointTransport: 'pipe',
    description: 'two FIFOs (one per direction), one write() per message',
  },
  {
    id: 'message-port',
    transport: 'message-port',
    label: 'worker MessagePort',
    group: 'baseline',
    endpoints: 'workers',
    endpointTransport: 'message-port',
    description: 'MessageChannel between two worker threads, structured clone of a Uint8Array, credit window',
  },
  {
    id: 'vring-split-poll-workers',
    transport: 'vring',
    label: 'vring split, poll, workers',
    group: 'vipc',
    endpoints: 'workers',
    endpointTransport: 'vring',
    vring: { layout: 'split', mode: 'poll', spinUs: 0 },
    needs: 'vring',
    description: 'split virtqueue in a SharedArrayBuffer shared by two workers, both busy-polling',
  },
  {
    id: 'vring-split-event-workers',
    transport: 'vring',
    label: 'vring split, event, workers',
    group: 'vipc',
    endpoints: 'workers',
    endpointTransport: 'vring',
    vring: { layout: 'split', mode: 'event', spinUs: 0 },
    needs: 'vring',
    description:
      'split virtqueue in a SharedArrayBuffer shared by two workers, Atomics.waitAsync doorbells with VIRTIO notification suppression',
  },
  {
    id: 'vring-split-poll',
    transport: 'vring',
    label: 'vring split, poll',
    group: 'vipc',
    endpoints: 'processes',
    endpointTransport: 'vring',
    vring: { layout: 'split', mode: 'poll', spinUs: 0 },
    needs: 'vring',
    description: 'split virtqueue in a memfd mapped by two processes (plain ArrayBuffer views), busy-polling',
  },
  {
    id: 'vring-slots-poll',
    transport: 'vring',
    label: 'vring slots, poll',
    group: 'vipc',
    endpoints: 'processes',
    endpointTransport: 'vring',
    vring: { layout: 'slots', mode: 'poll', spinUs: 0 },
    needs: 'vring',
    description:
      'split virtqueue in a memfd, driven by SplitSlotDriver (IN_ORDER, one fixed data slot per descriptor, one used element per run), busy-polling',
  },
  {
    id: 'vring-packed-poll',
    transport: 'vring',
    label: 'vring packed, poll',
    group: 'vipc',
    endpoints: 'processes',
    endpointTransport: 'vring',
    vring: { layout: 'packed', mode: 'poll', spinUs: 0 },
    needs: 'vring',
    description: 'packed virtqueue in a memfd mapped by two processes, busy-polling',
  },
  {
    id: 'vring-split-event',
    transport: 'vring',
    label: 'vring split, event',
    group: 'vipc',
    endpoints: 'processes',
    endpointTransport: 'vring',
    vring: { layout: 'split', mode: 'event', spinUs: 0 },
    needs: 'vring',
    description: 'split virtqueue over memfd, eventfd kicks and calls with VIRTIO notification suppression',
  },
  {
    id: 'vring-split-spin',
    transport: 'vring',
    label: 'vring split, spin-then-sleep',
    group: 'vipc',
    endpoints: 'processes',
    endpointTransport: 'vring',
    vring: { layout: 'split', mode: 'spin', spinUs: DEFAULT_SPIN_US },
    needs: 'vring',
    description: `split virtqueue over memfd, spin ${DEFAULT_SPIN_US} µs, then re-enable notifications and sleep on the eventfd`,
  },
  {
    id: 'vring-packed-event',
    transport: 'vring',
    label: 'vring packed, event',
    group: 'vipc',
    endpoints: 'processes',
    endpointTransport: 'vring',
    vring: { layout: 'packed', mode: 'event', spinUs: 0 },
    needs: 'vring',
    description: 'packed virtqueue over memfd, eventfd kicks and calls with notification suppression',
  },
  {
    id: 'vring-host-container',
    transport: 'vring',
    label: 'vring split, poll, host-container',
    group: 'vipc',
    endpoints: 'host-container',
    endpointTransport: 'vring',
    vring: { layout: 'split', mode: 'poll', spinUs: 0 },
    needs: 'lxc',
    description:
      'split virtqueue in a memfd shared by a host process and a process in an LXC container (fds passed over a bind-mounted socket), busy-polling',
  },
  {
    id: 'testpmd-testpmd',
    transport: 'dpdk',
    label: 'testpmd <-> testpmd (vhost-user)',
    group: 'anchor',
    endpoints: 'testpmd',
    needs: 'dpdk',
    maxSize: { bytes: 1518, reason: 'testpmd sends each packet from one 2 KiB mbuf (at most 1518 B)' },
    noRoundTrips: TESTPMD_NO_ROUND_TRIPS,
    description: 'DPDK testpmd with a vhost-user port and testpmd with virtio-user: the C anchor',
  },
  {
    id: 'vipc-testpmd',
    transport: 'vhost-user',
    label: 'vipc back-end <-> testpmd',
    group: 'vipc',
    endpoints: 'testpmd',
    needs: 'vhost-user',
    maxSize: { bytes: 1518, reason: 'testpmd sends each packet from one 2 KiB mbuf (at most 1518 B)' },
    description:
      'the @vipc/vhost-user back-end serving DPDK testpmd (virtio-user front-end): testpmd txonly streams to it; round trips: the back-end sends one frame at a time, testpmd macswap returns it',
  },
];

/** Baselines the terminal table reports ratios against, in column order. */
export const BASELINE_IDS = ['unix-socket', 'unix-socket-corked', 'tcp', 'pipe', 'message-port'] as const;

export function findScenario(id: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.id === id);
}
