import { cpuNs, cpuScope, nowNs } from './cpu.js';
import { MessageKind, PHASE_CODE, type Phase } from './defs.js';
import { BenchError } from './errors.js';
import type { ReceiverReport } from './protocol.js';

/** A message of `size` bytes whose header says `kind` (and the phase for END). */
export function makeMessage(size: number, kind: number, phase?: Phase): Buffer {
  const b = Buffer.alloc(size);
  // A recognisable payload, so a torn or shifted message shows up as a bad kind byte.
  for (let i = 8; i < size; i++) b[i] = (i * 31 + 7) & 0xff;
  b[0] = kind;
  b[1] = phase === undefined ? 0 : PHASE_CODE[phase];
  return b;
}

export function phaseOf(code: number): Phase {
  if (code === PHASE_CODE.throughput) return 'throughput';
  if (code === PHASE_CODE.latency) return 'latency';
  throw new BenchError('PROTOCOL', `END message names an unknown phase ${code}`);
}

/**
 * The receiver's count of one phase. Cheap per message (no clock read): the
 * clock is read at the first measured message and at END.
 */
export class ReceiverTally {
  #received = 0;
  #measured = 0;
  #firstNs = 0;
  #cpuStart = 0;
  #bytes = 0;
  readonly size: number;
  readonly #onEnd: (report: ReceiverReport) => void;

  constructor(size: number, onEnd: (report: ReceiverReport) => void) {
    this.size = size;
    this.#onEnd = onEnd;
  }

  /**
   * Counts one message by its kind byte. Returns true when the caller must echo
   * it (a PING). Throws a PROTOCOL error on an unknown kind.
   */
  message(kind: number, phaseByte: number): boolean {
    switch (kind) {
      case MessageKind.WARM:
      case MessageKind.PING_WARM:
        this.#received++;
        this.#bytes += this.size;
        return kind === MessageKind.PING_WARM;
      case MessageKind.MEASURE:
      case MessageKind.PING:
        if (this.#measured === 0) {
          this.#firstNs = nowNs();
          this.#cpuStart = cpuNs();
        }
        this.#received++;
        this.#measured++;
        this.#bytes += this.size;
        return kind === MessageKind.PING;
      case MessageKind.END:
        this.end(phaseOf(phaseByte));
        return false;
      default:
        throw new BenchError('PROTOCOL', `message with unknown kind byte ${kind}`);
    }
  }

  /** Counts `n` measured-or-warm messages of one kind at once (batched transports). */
  messages(kind: number, n: number): void {
    if (n <= 0) return;
    if (kind === MessageKind.MEASURE || kind === MessageKind.PING) {
      if (this.#measured === 0) {
        this.#firstNs = nowNs();
        this.#cpuStart = cpuNs();
      }
      this.#measured += n;
    } else if (kind !== MessageKind.WARM && kind !== MessageKind.PING_WARM) {
      throw new BenchError('PROTOCOL', `message with unknown kind byte ${kind}`);
    }
    this.#received += n;
    this.#bytes += n * this.size;
  }

  end(phase: Phase, extra?: Record<string, number>): void {
    const lastNs = nowNs();
    const cpu = this.#measured === 0 ? 0 : cpuNs() - this.#cpuStart;
    const report: ReceiverReport = {
      phase,
      received: this.#received,
      measured: this.#measured,
      firstNs: this.#firstNs,
      lastNs,
      cpuNs: cpu,
      cpuScope: cpuScope(),
      bytes: this.#bytes,
    };
    if (extra) report.extra = extra;
    this.#received = 0;
    this.#measured = 0;
    this.#firstNs = 0;
    this.#bytes = 0;
    this.#onEnd(report);
  }
}

/**
 * Splits a byte stream into fixed-size messages and hands each message's
 * first chunk position to `onMessage` (kind byte and phase byte). Messages
 * split across chunks are handled; a header split across chunks is joined.
 */
export class StreamFramer {
  readonly size: number;
  #pos = 0;
  #kind = 0;
  #phase = -1;
  readonly #onMessage: (kind: number, phase: number) => void;

  constructor(size: number, onMessage: (kind: number, phase: number) => void) {
    this.size = size;
    this.#onMessage = onMessage;
  }

  push(chunk: Uint8Array): void {
    const size = this.size;
    const len = chunk.length;
    let i = 0;
    while (i < len) {
      if (this.#pos === 0) {
        this.#kind = chunk[i]!;
        this.#phase = i + 1 < len ? chunk[i + 1]! : -1;
      } else if (this.#pos === 1 && this.#phase === -1) {
        this.#phase = chunk[i]!;
      }
      const step = Math.min(size - this.#pos, len - i);
      i += step;
      this.#pos += step;
      if (this.#pos === size) {
        this.#pos = 0;
        this.#onMessage(this.#kind, this.#phase);
      }
    }
  }

  /** Bytes of a partial message held (0 at a message boundary). */
  get partial(): number {
    return this.#pos;
  }
}
