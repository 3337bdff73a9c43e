/** Default message sizes in bytes: a small packet, an Ethernet MTU, a large block. */
export const DEFAULT_SIZES: readonly number[] = [64, 1500, 65536];

/** Smallest message: the in-band header (kind byte, phase byte, two reserved, a u32 sequence). */
export const MIN_MESSAGE_SIZE = 8;
/** Largest message accepted from the command line (1 MiB). */
export const MAX_MESSAGE_SIZE = 1 << 20;

/** First byte of every message: what it is. Anything else is a protocol error. */
export const MessageKind = {
  /** Throughput warm-up: counted, not measured. */
  WARM: 1,
  /** Throughput, measured. */
  MEASURE: 2,
  /** End of a phase: the receiver reports to the coordinator. */
  END: 3,
  /** Round-trip probe during latency warm-up (echoed, not recorded). */
  PING_WARM: 4,
  /** Round-trip probe, recorded. */
  PING: 5,
} as const;
export type MessageKindValue = (typeof MessageKind)[keyof typeof MessageKind];

export const PHASES = ['throughput', 'latency'] as const;
export type Phase = (typeof PHASES)[number];
/** Second byte of an END message: which phase ends. */
export const PHASE_CODE: Record<Phase, number> = { throughput: 1, latency: 2 };

/** Messages written per cork()/uncork() in the coalesced socket baseline. */
export const CORK_BATCH = 128;

/** MessagePort credit window: the sender keeps at most this many unacknowledged messages... */
export const PORT_WINDOW = 2048;
/** ...or this many bytes, and the receiver acknowledges every PORT_ACK_EVERY messages. */
export const PORT_WINDOW_BYTES = 8 << 20;
export const PORT_ACK_EVERY = 256;

/** Timings of one trial (one scenario at one size). */
export interface TrialTiming {
  /** Throughput warm-up before measuring (ms). */
  warmupMs: number;
  /** Measured throughput phase (ms). */
  durationMs: number;
  /** Round trips before recording (ms). */
  latencyWarmupMs: number;
  /** Recorded round trips (ms). */
  latencyMs: number;
}

/** The standard suite: under 5 minutes on 2 cores with every scenario available. */
export const STANDARD_TIMING: TrialTiming = {
  // long enough for V8 to optimise the hot loops of a freshly started endpoint
  warmupMs: 300,
  durationMs: 700,
  latencyWarmupMs: 40,
  latencyMs: 300,
};
export const STANDARD_ROUNDS = 3;

/** `--quick`: under a minute. */
export const QUICK_TIMING: TrialTiming = {
  warmupMs: 40,
  durationMs: 150,
  latencyWarmupMs: 20,
  latencyMs: 80,
};
export const QUICK_ROUNDS = 1;

/** Readiness of an endpoint (spawn, listen, connect, map) may take this long on a loaded machine. */
export const READY_TIMEOUT_MS = 30_000;
/** Extra time allowed past a phase's own duration before the trial is declared hung. */
export const PHASE_GRACE_MS = 30_000;

/**
 * Targets from the vring and vhost-user issues. Reported as ratios with a
 * pass/fail mark; never asserted by tests.
 */
export const TARGETS = {
  pollVsUnixSocket64: 40,
  roundTripP50FractionOfUnixSocket: 1 / 20,
  pollVsUnixSocket1500: 15,
  largeFractionOfMemcpy: 0.5,
  eventVsUnixSocket64: 10,
  backendFractionOfTestpmd: 0.5,
} as const;
