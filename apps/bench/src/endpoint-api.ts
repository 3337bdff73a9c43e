import type { MessagePort } from 'node:worker_threads';
import { cpuNs, nowNs } from './cpu.js';
import type { Phase } from './defs.js';
import type { EndpointSpec, ReceiverReport, SenderReport } from './protocol.js';

/** What a transport's endpoint gets from the endpoint host. */
export interface EndpointContext {
  spec: EndpointSpec;
  /** Receiver: report the end of a phase to the coordinator. */
  receiverReport(report: ReceiverReport): void;
  /** A fatal transport error (reported to the coordinator; the endpoint then exits). */
  fail(error: unknown): void;
  /** Worker endpoints: objects handed over by the coordinator. */
  shared?: { memory?: SharedArrayBuffer; port?: MessagePort };
}

export interface SenderEndpoint {
  run(phase: Phase, warmupMs: number, durationMs: number): Promise<SenderReport>;
  close(): void;
}

export interface ReceiverEndpoint {
  /** tcp: the port bound. */
  port?: number;
  close(): void;
}

export interface TransportModule {
  createReceiver(ctx: EndpointContext): Promise<ReceiverEndpoint>;
  createSender(ctx: EndpointContext): Promise<SenderEndpoint>;
}

/** Phase timing of a sender: warm-up, then measuring, then done. Reads the clock only when asked. */
export class PhaseClock {
  readonly #warmEnd: number;
  readonly #durationNs: number;
  #stopAt = 0;
  startNs = 0;
  endNs = 0;
  cpuStart = 0;
  cpuEnd = 0;
  /** 0 warm-up, 1 measuring, 2 done. */
  state: 0 | 1 | 2 = 0;

  constructor(warmupMs: number, durationMs: number) {
    this.#warmEnd = nowNs() + warmupMs * 1e6;
    this.#durationNs = durationMs * 1e6;
  }

  /** Reads the clock and advances the state; returns it. */
  tick(): 0 | 1 | 2 {
    if (this.state === 2) return 2;
    const t = nowNs();
    if (this.state === 0) {
      if (t < this.#warmEnd) return 0;
      this.state = 1;
      this.startNs = t;
      this.#stopAt = t + this.#durationNs;
      this.cpuStart = cpuNs();
      return 1;
    }
    if (t < this.#stopAt) return 1;
    this.state = 2;
    this.endNs = t;
    this.cpuEnd = cpuNs();
    return 2;
  }
}
