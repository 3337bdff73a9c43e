/**
 * The bench's one polling loop: waits for a condition that nothing signals
 * (a counter another party advances, a frame that may come back), checking it
 * every few milliseconds until a deadline.
 */
import { BenchError } from './errors.js';

/** Pause between two checks (ms) unless the caller asks for another. */
export const UNTIL_INTERVAL_MS = 5;

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Resolves as soon as `cond()` holds (checked first at once, then after every
 * pause); rejects with `ENDPOINT_TIMEOUT` "timed out waiting for <what>" once
 * `timeoutMs` have passed, and with whatever `cond()` throws.
 */
export async function until(
  cond: () => boolean,
  what: string,
  timeoutMs: number,
  intervalMs = UNTIL_INTERVAL_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new BenchError('ENDPOINT_TIMEOUT', `timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}
