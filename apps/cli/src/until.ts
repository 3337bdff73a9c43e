/**
 * The CLI's one polling loop: waits for something nothing signals (a link
 * that comes up, a socket file that appears, a ring the peer drains) by
 * checking it again after a short pause, until a deadline.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CliError } from './errors.js';

export interface UntilOptions {
  /** Give up once `Date.now()` is past this time. */
  deadline: number;
  /** Pause between two checks (ms). */
  intervalMs: number;
  /** When aborted, rejects with FAILED "interrupted" (looked at before the deadline). */
  signal?: AbortSignal;
  /** Called before each pause, e.g. to show progress. */
  onWait?: () => void;
}

/**
 * Resolves as soon as `cond()` holds (checked at once, then after every
 * pause). After a failed check it rejects with FAILED "interrupted" when
 * `signal` was aborted, then, past the deadline, with FAILED "timed out
 * waiting for <what>" or the error `what()` returns. Whatever `cond()` throws
 * rejects as it is.
 */
export async function until(
  cond: () => boolean,
  what: string | (() => CliError),
  options: UntilOptions,
): Promise<void> {
  while (!cond()) {
    if (options.signal?.aborted) throw new CliError('FAILED', 'interrupted');
    if (Date.now() > options.deadline) {
      throw typeof what === 'string' ? new CliError('FAILED', `timed out waiting for ${what}`) : what();
    }
    options.onWait?.();
    await sleep(options.intervalMs);
  }
}
