/**
 * Generated traffic: numbered messages with a verifiable payload, and the
 * counters and latency statistics the demo, `send` and `recv` report.
 *
 * Layout of a generated message (little-endian):
 *   0..3  magic 'vipc' (0x63706976)
 *   4..7  sequence number (u32)
 *   8..   payload: byte i = (i + s) & 0xff, s = the sum of seq's four bytes
 *         (so a flipped bit anywhere, header included, is detected once there is a payload)
 * Messages shorter than 8 bytes carry only a prefix of that header.
 */
import { usageError } from './errors.js';

export const TRAFFIC_MAGIC = 0x63706976;
export const HEADER_BYTES = 8;

function seqSum(seq: number): number {
  return (seq & 0xff) + ((seq >>> 8) & 0xff) + ((seq >>> 16) & 0xff) + (seq >>> 24);
}

export function makeMessage(seq: number, size: number, into?: Uint8Array): Uint8Array {
  const buf = into && into.length === size ? into : new Uint8Array(size);
  const n = seq >>> 0;
  // the header byte by byte (no temporary buffer or DataView per message)
  const header = Math.min(size, HEADER_BYTES);
  for (let i = 0; i < header; i++) {
    buf[i] = i < 4 ? (TRAFFIC_MAGIC >>> (8 * i)) & 0xff : (n >>> (8 * (i - 4))) & 0xff;
  }
  const s = seqSum(n);
  for (let i = HEADER_BYTES; i < size; i++) buf[i] = (s + i) & 0xff;
  return buf;
}

/** The sequence number of a generated message, or undefined if `msg` is not one (or is corrupt). */
export function checkMessage(msg: Uint8Array, expectedSize?: number): number | undefined {
  if (msg.length < HEADER_BYTES) return undefined;
  if (expectedSize !== undefined && msg.length !== expectedSize) return undefined;
  const magic = (msg[0]! | (msg[1]! << 8) | (msg[2]! << 16) | (msg[3]! << 24)) >>> 0;
  if (magic !== TRAFFIC_MAGIC) return undefined;
  const seq = (msg[4]! | (msg[5]! << 8) | (msg[6]! << 16) | (msg[7]! << 24)) >>> 0;
  const s = seqSum(seq);
  for (let i = HEADER_BYTES; i < msg.length; i++) if (msg[i] !== ((s + i) & 0xff)) return undefined;
  return seq;
}

/** Latency samples in microseconds; percentiles by sorting at the end (bounded by the message count). */
export class LatencyStats {
  #samples: number[] = [];
  #max = 0;
  constructor(readonly limit = 1_000_000) {}

  add(us: number): void {
    if (this.#samples.length < this.limit) this.#samples.push(us);
    if (us > this.#max) this.#max = us;
  }

  get count(): number {
    return this.#samples.length;
  }

  summary(): { count: number; p50Us: number; p99Us: number; maxUs: number; meanUs: number } | null {
    const n = this.#samples.length;
    if (n === 0) return null;
    const sorted = Float64Array.from(this.#samples).sort();
    const at = (p: number) => round(sorted[Math.min(n - 1, Math.floor(p * n))]!);
    let sum = 0;
    for (const s of sorted) sum += s;
    return { count: n, p50Us: at(0.5), p99Us: at(0.99), maxUs: round(this.#max), meanUs: round(sum / n) };
  }
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

/** Messages and bytes over a time span. */
export function throughput(messages: number, bytes: number, seconds: number) {
  const s = seconds > 0 ? seconds : Number.EPSILON;
  return {
    seconds: Math.round(seconds * 1000) / 1000,
    messagesPerSecond: Math.round(messages / s),
    megabytesPerSecond: Math.round((bytes / s / 1e6) * 100) / 100,
  };
}

export function formatRate(messagesPerSecond: number, megabytesPerSecond: number): string {
  const m =
    messagesPerSecond >= 1e6
      ? `${(messagesPerSecond / 1e6).toFixed(2)} M`
      : messagesPerSecond >= 1e3
        ? `${(messagesPerSecond / 1e3).toFixed(1)} k`
        : `${messagesPerSecond} `;
  return `${m}msg/s, ${megabytesPerSecond.toFixed(1)} MB/s`;
}

export function progressBar(done: number, total: number, width = 24): string {
  const f = total > 0 ? Math.min(1, done / total) : 0;
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${Math.floor(f * 100)
    .toString()
    .padStart(3)}%`;
}

export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Parses a positive integer option, with a usage error naming it. */
export function intOption(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const text = String(value);
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw usageError(`--${name} must be an integer from ${min} to ${max} (got '${text}')`);
  }
  return n;
}

/** Parses an option that must be one of `values`. */
export function choiceOption<T extends string>(
  value: unknown,
  name: string,
  values: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (!values.includes(value as T))
    throw usageError(`--${name} must be one of: ${values.join(', ')} (got '${String(value)}')`);
  return value as T;
}
