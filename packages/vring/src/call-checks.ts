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
