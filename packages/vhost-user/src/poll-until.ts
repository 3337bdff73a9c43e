/**
 * Polls `cond` every `intervalMs` until it holds; rejects naming `what` once `timeoutMs` has passed.
 * The one way the benchmark and the tests wait for a peer: never a fixed sleep.
 */
export function pollUntil(
  cond: () => boolean,
  what: string,
  timeoutMs: number,
  intervalMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (cond()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, intervalMs);
    };
    tick();
  });
}
