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
