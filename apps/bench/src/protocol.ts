import type { Phase } from './defs.js';
import type { HistogramSnapshot } from './hdr-histogram.js';

/** Which transport an endpoint speaks. */
export type TransportId = 'unix-socket' | 'unix-socket-corked' | 'tcp' | 'pipe' | 'message-port' | 'vring';

export type Role = 'a' | 'b';

/** Options of the vring transport. */
export interface VringParams {
  /** slots: a split ring driven by SplitSlotDriver (IN_ORDER, one fixed slot per descriptor). */
  layout: 'split' | 'packed' | 'slots';
  /** poll: busy-poll both ends; event: eventfd kicks; spin: spin spinUs, then sleep on the eventfd. */
  mode: 'poll' | 'event' | 'spin';
  spinUs: number;
  queueSize: number;
  /** Data slots (each `slotBytes`), at most queueSize. */
  slots: number;
  slotBytes: number;
  /** Most chains published per batch, and most bytes. */
  batch: number;
  batchBytes: number;
  /** Guest addresses (= byte offsets in the shared memory) of the ring parts. */
  addresses: Record<string, number>;
  /** VIRTIO_F_EVENT_IDX on both sides (event and spin modes). */
  eventIdx: boolean;
  dataOffset: number;
  memoryBytes: number;
  /**
   * Workers in event or spin mode: byte offset in the shared memory (past the
   * guest memory) of two Int32 doorbells, kick then call, rung with
   * Atomics.notify and awaited with Atomics.waitAsync.
   */
  doorbells?: number;
}

/** Everything an endpoint needs to set itself up. */
export interface EndpointSpec {
  transport: TransportId;
  role: Role;
  size: number;
  /** unix-socket: the socket path; pipe: the two FIFOs. */
  path?: string;
  fifoAtoB?: string;
  fifoBtoA?: string;
  /** tcp: the port B listens on (given to A). */
  port?: number;
  vring?: VringParams;
  /** Processes: fd numbers of inherited descriptors (memfd, eventfds). */
  fds?: { memory?: number; kick?: number; call?: number };
}

export type ToEndpoint =
  | { type: 'setup'; spec: EndpointSpec }
  | { type: 'run'; phase: 'throughput'; warmupMs: number; durationMs: number }
  | { type: 'run'; phase: 'latency'; warmupMs: number; durationMs: number }
  | { type: 'exit' };

/** What the sender (A) reports at the end of a phase. */
export interface SenderReport {
  phase: Phase;
  /** Messages sent in the phase, END excluded. */
  sent: number;
  /** Of which measured (MEASURE or PING). */
  measured: number;
  /** hrtime (ns, CLOCK_MONOTONIC, comparable across processes) when measuring started and ended. */
  startNs: number;
  endNs: number;
  /** CPU time of this end while measuring (ns). */
  cpuNs: number;
  cpuScope: 'process' | 'thread';
  /** latency: replies received and the round-trip histogram (ns). */
  replies?: number;
  histogram?: HistogramSnapshot;
  /** Transport-specific counters (kicks, batches, ...). */
  extra?: Record<string, number>;
}

/** What the receiver (B) reports when it sees END. */
export interface ReceiverReport {
  phase: Phase;
  /** Messages received in the phase, END excluded. */
  received: number;
  measured: number;
  /** hrtime of the first and last measured message (ns). */
  firstNs: number;
  lastNs: number;
  cpuNs: number;
  cpuScope: 'process' | 'thread';
  bytes: number;
  extra?: Record<string, number>;
}

export type FromEndpoint =
  | { type: 'ready'; port?: number }
  | { type: 'sender-report'; report: SenderReport }
  | { type: 'receiver-report'; report: ReceiverReport }
  | { type: 'error'; code: string; message: string };
