import { cpuScope, nowNs } from '../cpu.js';
import type { Phase } from '../defs.js';
import { PhaseClock } from '../endpoint-api.js';
import { HdrHistogram } from '../hdr-histogram.js';
import type { SenderReport } from '../protocol.js';

/*
 * What the senders of every transport share: the report of a phase, and the
 * counting and timing of an event-driven round-trip phase. Nothing here runs
 * per message in the vring loops (they only build their reports with it).
 */

/** The fields every sender report has, for a phase timed by `clock`. */
function phaseReport(phase: Phase, clock: PhaseClock, sent: number, measured: number): SenderReport {
  return {
    phase,
    sent,
    measured,
    startNs: clock.startNs,
    endNs: clock.endNs,
    cpuNs: clock.cpuEnd - clock.cpuStart,
    cpuScope: cpuScope(),
  };
}

/** The sender's report of a throughput phase timed by `clock`. */
export function throughputReport(
  clock: PhaseClock,
  sent: number,
  measured: number,
  extra: Record<string, number>,
): SenderReport {
  const report = phaseReport('throughput', clock, sent, measured);
  report.extra = extra;
  return report;
}

/** The sender's report of a latency phase timed by `clock` (no `extra` field when `extra` is undefined). */
export function latencyReport(
  clock: PhaseClock,
  sent: number,
  measured: number,
  replies: number,
  histogram: HdrHistogram,
  extra?: Record<string, number>,
): SenderReport {
  const report = phaseReport('latency', clock, sent, measured);
  report.replies = replies;
  report.histogram = histogram.snapshot();
  if (extra !== undefined) report.extra = extra;
  return report;
}

/**
 * The latency phase of an event-driven transport (message port, streams):
 * one PING in flight, the next one sent from the reply handler. Per round
 * trip the caller does
 *
 *     const state = rt.begin();          // before sending
 *     if (state === 2) -> send END, resolve(rt.report())
 *     else send (state === 1 ? ping : pingWarm)
 *     ...
 *     const t1 = nowNs();                // first thing on arrival
 *     (validate the reply)
 *     rt.replied(t1);
 *
 * Two small monomorphic methods, no allocation.
 */
export class RoundTrips {
  readonly clock: PhaseClock;
  readonly histogram = new HdrHistogram();
  sent = 0;
  measured = 0;
  replies = 0;
  /** State of the round trip in flight: 0 warm-up, 1 measured, 2 phase over. */
  state: 0 | 1 | 2 = 0;
  #t0 = 0;

  constructor(warmupMs: number, durationMs: number) {
    this.clock = new PhaseClock(warmupMs, durationMs);
  }

  /**
   * Ticks the clock. Unless the phase is over (2), counts one round trip and
   * takes its start time: send the request right after.
   */
  begin(): 0 | 1 | 2 {
    const state = this.clock.tick();
    this.state = state;
    if (state === 2) return 2;
    this.sent++;
    if (state === 1) this.measured++;
    this.#t0 = nowNs();
    return state;
  }

  /** The reply to the round trip in flight arrived at `t1` (nowNs() on arrival). */
  replied(t1: number): void {
    this.replies++;
    if (this.state === 1) this.histogram.record(t1 - this.#t0);
  }

  report(extra?: Record<string, number>): SenderReport {
    return latencyReport(this.clock, this.sent, this.measured, this.replies, this.histogram, extra);
  }
}
