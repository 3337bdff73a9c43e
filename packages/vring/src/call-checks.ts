import { VringError } from './errors.js';

/** @internal The caller-side checks of serve() (both device queues). */
export function checkServe(max: unknown, visit: unknown): void {
  if (typeof max !== 'number' || max >>> 0 !== max) {
    throw new VringError(
      'INVALID_ARGUMENT',
      `serve(): max must be a non-negative integer (got ${String(max)})`,
    );
  }
  if (typeof visit !== 'function') {
    throw new VringError('INVALID_ARGUMENT', `serve(): visit must be a function (got ${typeof visit})`);
  }
}

/**
 * @internal serve(): what `visit` returned for chain `id` (`kind` names it in
 * the error: "chain" for split heads, "buffer" for packed ids) must be a u32
 * within its writable capacity. The message is built only on failure.
 */
export function checkWritten(written: number, writable: number, kind: string, id: number): void {
  if (written >>> 0 !== written || written > writable) {
    throw new VringError(
      'INVALID_ARGUMENT',
      `serve(): visit returned ${String(written)} for ${kind} ${id}, which has ${writable} writable bytes`,
    );
  }
}

/** @internal The caller-side checks of popUsedBatch() (both driver queues). */
export function checkUsedBatch(tokens: unknown, lens: unknown, max: unknown): void {
  if (!Array.isArray(tokens)) {
    throw new VringError('INVALID_ARGUMENT', 'popUsedBatch(): tokens must be an array');
  }
  if (lens !== undefined && !(lens instanceof Uint32Array)) {
    throw new VringError('INVALID_ARGUMENT', 'popUsedBatch(): lens must be a Uint32Array when given');
  }
  if (typeof max !== 'number' || max >>> 0 !== max) {
    throw new VringError(
      'INVALID_ARGUMENT',
      `popUsedBatch(): max must be a non-negative integer (got ${String(max)})`,
    );
  }
}

/**
 * @internal addUsed() (both device queues): `head` must be a chain the device
 * popped and has not completed, `writtenLen` a u32 within that chain's
 * writable capacity, and with IN_ORDER the oldest chain popped (`oldest`, -1
 * when the feature is off). `kind` names it: "chain" (split) or "buffer id"
 * (packed).
 */
export function checkAddUsed(
  inflight: Uint8Array,
  writable: Uint32Array,
  head: number,
  writtenLen: number,
  kind: string,
  oldest: number,
): void {
  if (!Number.isInteger(head) || head < 0 || head >= inflight.length || inflight[head] !== 1) {
    throw new VringError('INVALID_ARGUMENT', `${kind} ${String(head)} is not in use by the device`);
  }
  if (writtenLen >>> 0 !== writtenLen || writtenLen > writable[head]!) {
    throw new VringError(
      'INVALID_ARGUMENT',
      `written length ${String(writtenLen)} for ${kind} ${head}, which has ${writable[head]} writable bytes`,
    );
  }
  checkInOrder(head, oldest, kind);
}

/**
 * @internal addUsed() and serve() with IN_ORDER: `head` must be the oldest
 * chain in flight (`oldest`, -1 when the feature is off).
 */
export function checkInOrder(head: number, oldest: number, kind: string): void {
  if (oldest >= 0 && head !== oldest) {
    throw new VringError(
      'INVALID_ARGUMENT',
      `IN_ORDER: ${kind} ${head} completed before ${oldest}, which was made available first`,
    );
  }
}

/**
 * @internal add() (both driver queues): a chain may not be longer than the
 * queue size, direct or in an indirect table (2.7.5.3.1, 2.8.*).
 */
export function checkChainLength(buffers: number, size: number): void {
  if (buffers > size) {
    throw new VringError(
      'INVALID_ARGUMENT',
      `a chain of ${buffers} buffers is longer than the queue size ${size} (direct or indirect)`,
    );
  }
}
