import { VringError, type VringErrorCode } from './errors.js';
import type { GuestMemory } from './guest-memory.js';
import type { QueueFeatures } from './queue-state.js';

/** `gen` of a broken queue: no memory generation (they start at 0) equals it. */
const BROKEN = -2;

/**
 * @internal The lifecycle the four queues share: the broken state (the first
 * rule the peer broke sticks until reset()), and the memory generation the ring
 * views were made for (memory.replace() remaps them; a mapping closed under
 * them breaks the queue). One class for all queues, so its call sites stay
 * monomorphic; the queue keeps its views in its own fields.
 *
 * The check at the start of every ring access is one compare in the queue:
 * `if (life.gen !== this.memory.generation) life.resync();` (a broken queue's
 * `gen` matches no generation, so the same compare catches it), then
 * checkMapped() on the queue's views.
 */
export class QueueLifecycle {
  /** The error that broke the queue, or null. */
  broken: VringError | null = null;
  /** memory.generation the ring views belong to (-1: remap at the next use; BROKEN once broken). */
  gen = -1;
  readonly #memory: GuestMemory;
  readonly #map: () => void;

  /** `map` makes the queue's ring views from the current region table (throws a VringError if it cannot). */
  constructor(memory: GuestMemory, map: () => void) {
    this.#memory = memory;
    this.#map = map;
  }

  /** Maps the rings now; errors propagate without breaking the queue (the constructor's case). */
  map(): void {
    const gen = this.#memory.generation;
    this.#map();
    this.gen = gen;
  }

  /**
   * The slow path of the check, when `gen` is not the memory's generation:
   * throws QUEUE_BROKEN once broken; else remaps (a failure breaks the queue).
   */
  resync(): void {
    const b = this.broken;
    if (b !== null) {
      throw new VringError('QUEUE_BROKEN', `the queue is broken: ${b.message}`, { cause: b });
    }
    try {
      this.map();
    } catch (err) {
      this.breakWith(err as VringError);
    }
  }

  /**
   * After the generation check: a zero-length view means the mapping under the
   * ring was closed (ArrayBuffer detached); that breaks the queue with MEMORY_UNMAPPED.
   */
  checkMapped(a: Uint32Array, b: Uint16Array, c: Uint16Array): void {
    if (a.length === 0 || b.length === 0 || c.length === 0) {
      this.breakWith(new VringError('MEMORY_UNMAPPED', 'the memory holding the ring was unmapped'));
    }
  }

  /** Breaks the queue with a new error `code: message` and throws it. */
  fail(code: VringErrorCode, message: string): never {
    this.breakWith(new VringError(code, message));
  }

  /** Breaks the queue with `err` and throws it. */
  breakWith(err: VringError): never {
    this.broken = err;
    this.gen = BROKEN;
    throw err;
  }

  /** Not broken, and the rings are remapped at the next use. */
  reset(): void {
    this.broken = null;
    this.gen = -1;
  }
}

/** @internal The queue's `features`: every flag as a boolean, frozen. */
export function frozenFeatures(features: QueueFeatures | undefined): Readonly<Required<QueueFeatures>> {
  const f = features ?? {};
  return Object.freeze({ eventIdx: !!f.eventIdx, indirect: !!f.indirect, inOrder: !!f.inOrder });
}
