/**
 * Round trips between the @vipc/vhost-user back-end and DPDK testpmd: the
 * back-end places one probe frame in testpmd's receive queue, testpmd
 * (`set fwd macswap`) swaps its MAC addresses and transmits it back on the
 * same port, and the back-end's frame handler takes the time when it returns.
 * One frame is in flight at a time, like the endpoints' echo probes.
 */
import { nowNs } from './cpu.js';
import type { TrialTiming } from './defs.js';
import { BenchError } from './errors.js';
import { HdrHistogram } from './hdr-histogram.js';
import { until } from './until.js';

/** Ethernet header: destination, source, EtherType (IEEE 802 local experimental 0x88B5). */
const DESTINATION = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, 0x02);
const SOURCE = Uint8Array.of(0x02, 0x76, 0x69, 0x70, 0x63, 0x01);
const ETHER_TYPE = 0x88b5;
/** Where the probe's sequence number sits (after the 14-byte Ethernet header). */
const SEQUENCE_OFFSET = 14;
/** The smallest probe: the Ethernet header and the 4-byte sequence number. */
export const MIN_PROBE_SIZE = SEQUENCE_OFFSET + 4;

/** A probe frame of `size` bytes with sequence number `seq`. */
export function probeFrame(size: number, seq = 0): Uint8Array {
  if (!Number.isInteger(size) || size < MIN_PROBE_SIZE) {
    throw new BenchError('OUT_OF_RANGE', `a round-trip probe frame needs at least ${MIN_PROBE_SIZE} bytes`);
  }
  const f = new Uint8Array(size);
  f.set(DESTINATION, 0);
  f.set(SOURCE, 6);
  const v = new DataView(f.buffer);
  v.setUint16(12, ETHER_TYPE);
  v.setUint32(SEQUENCE_OFFSET, seq >>> 0);
  for (let i = MIN_PROBE_SIZE; i < size; i++) f[i] = i & 0xff;
  return f;
}

/**
 * Why a frame is not the macswapped return of probe `seq` of `size` bytes
 * (null when it is): wrong length, addresses not swapped, other EtherType,
 * other sequence number.
 */
export function checkReturnedProbe(frame: Uint8Array, size: number, seq: number): string | null {
  if (frame.length !== size) return `a ${frame.length}-byte frame came back for a ${size}-byte probe`;
  for (let i = 0; i < 6; i++) {
    if (frame[i] !== SOURCE[i] || frame[6 + i] !== DESTINATION[i]) {
      return 'a frame came back without its MAC addresses swapped (not testpmd macswap)';
    }
  }
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (v.getUint16(12) !== ETHER_TYPE)
    return `a frame of EtherType 0x${v.getUint16(12).toString(16)} came back`;
  const got = v.getUint32(SEQUENCE_OFFSET);
  if (got !== seq >>> 0) return `probe ${got} came back while probe ${seq >>> 0} was in flight`;
  return null;
}

/** The slice of VirtioNetDevice the probes use. */
export interface ProbeDevice {
  send(frame: Uint8Array): boolean;
}

export interface RoundTripResult {
  /** Measured round trips (ns). */
  histogram: HdrHistogram;
  /** Probes sent, warm-up included. */
  sent: number;
  /** Probes that came back (every one is checked). */
  returned: number;
  /** Probes measured (after the warm-up). */
  measured: number;
  /** Sends that found no free receive buffer at once and were retried. */
  sendRetries: number;
}

/**
 * Sends probes one at a time and records each round trip. Route every frame
 * the back-end receives to `onFrame` while `run` is going; a frame that is not
 * the probe in flight fails the run with PROTOCOL, a probe that does not come
 * back within `timeoutMs` with ENDPOINT_TIMEOUT.
 */
export class RoundTripProbe {
  readonly #device: ProbeDevice;
  readonly #size: number;
  readonly #timeoutMs: number;
  readonly #frame: Uint8Array;
  readonly #view: DataView;
  #seq = 0;
  #inFlight = false;
  #returnedNs = 0;
  #returned = 0;
  #problem: string | undefined;
  #wake: (() => void) | undefined;

  constructor(device: ProbeDevice, size: number, timeoutMs: number) {
    this.#device = device;
    this.#size = size;
    this.#timeoutMs = timeoutMs;
    this.#frame = probeFrame(size);
    this.#view = new DataView(this.#frame.buffer);
  }

  /** The back-end's frame handler during the round-trip phase. */
  onFrame(frame: Uint8Array): void {
    const t = nowNs();
    this.#returned++;
    if (!this.#inFlight) this.#problem ??= 'a frame came back with no probe in flight';
    else this.#problem ??= checkReturnedProbe(frame, this.#size, this.#seq) ?? undefined;
    this.#inFlight = false;
    this.#returnedNs = t;
    this.#wake?.();
  }

  async #probe(): Promise<{ rttNs: number; retried: boolean }> {
    this.#seq = (this.#seq + 1) >>> 0;
    this.#view.setUint32(SEQUENCE_OFFSET, this.#seq);
    // Everything but the send is set up first, so that nothing but the frame's way runs inside the timing.
    let timer: NodeJS.Timeout | undefined;
    const back = new Promise<void>((resolve, reject) => {
      this.#wake = resolve;
      timer = setTimeout(
        () =>
          reject(
            new BenchError(
              'ENDPOINT_TIMEOUT',
              `probe ${this.#seq} did not come back from testpmd within ${this.#timeoutMs} ms`,
            ),
          ),
        this.#timeoutMs,
      );
    });
    back.catch(() => {}); // awaited below; a timeout while a send is retried must not go unhandled
    try {
      this.#inFlight = true;
      let t0 = nowNs();
      let retried = false;
      if (!this.#device.send(this.#frame)) {
        retried = true;
        await until(
          () => {
            t0 = nowNs();
            return this.#device.send(this.#frame);
          },
          'a free receive buffer of testpmd for the next probe',
          this.#timeoutMs,
          1,
        );
      }
      await back;
      if (this.#problem !== undefined) throw new BenchError('PROTOCOL', this.#problem);
      return { rttNs: this.#returnedNs - t0, retried };
    } finally {
      clearTimeout(timer);
      this.#wake = undefined;
    }
  }

  /** The warm-up (not recorded), then round trips for `latencyMs` (at least one). */
  async run(timing: Pick<TrialTiming, 'latencyWarmupMs' | 'latencyMs'>): Promise<RoundTripResult> {
    const histogram = new HdrHistogram();
    let sent = 0;
    let measured = 0;
    let sendRetries = 0;
    const warmEnd = nowNs() + timing.latencyWarmupMs * 1e6;
    while (nowNs() < warmEnd) {
      const p = await this.#probe();
      sent++;
      if (p.retried) sendRetries++;
    }
    const end = nowNs() + timing.latencyMs * 1e6;
    do {
      const p = await this.#probe();
      sent++;
      measured++;
      if (p.retried) sendRetries++;
      histogram.record(Math.max(1, p.rttNs));
    } while (nowNs() < end);
    return { histogram, sent, returned: this.#returned, measured, sendRetries };
  }
}
