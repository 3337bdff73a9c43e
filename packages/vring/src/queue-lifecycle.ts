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
 * monomorphic; the queue keeps its views and the generation they belong to in
 * its own fields (set through `setGen`), so its hot path reads nothing here.
 *
 * The check at the start of every ring access is, in the queue:
 * `if (this.#gen !== this.memory.generation) this.#life.resync();` (a broken
 * queue's gen matches no generation, so the same compare catches it), then
 * `if (<a view is empty>) this.#life.unmapped();`.
 */
export class QueueLifecycle {
  /** The error that broke the queue, or null. */
  broken: VringError | null = null;
  readonly #memory: GuestMemory;
  readonly #map: () => void;
  readonly #setGen: (gen: number) => void;

  /**
   * `map` makes the queue's ring views from the current region table (throws a
   * VringError if it cannot); `setGen` stores the memory generation they belong
   * to (-1: remap at the next use; BROKEN once broken) in the queue.
   */
  constructor(memory: GuestMemory, map: () => void, setGen: (gen: number) => void) {
    this.#memory = memory;
    this.#map = map;
    this.#setGen = setGen;
  }

  /** Maps the rings now; errors propagate without breaking the queue (the constructor's case). */
  map(): void {
    const gen = this.#memory.generation;
    this.#map();
    this.#setGen(gen);
  }

  /**
   * The slow path of the check, when the queue's gen is not the memory's generation:
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
   * After the generation check, when a ring view is zero-length: the mapping
   * under the ring was closed (ArrayBuffer detached); breaks the queue with MEMORY_UNMAPPED.
   */
  unmapped(): never {
    this.breakWith(new VringError('MEMORY_UNMAPPED', 'the memory holding the ring was unmapped'));
  }

  /** Breaks the queue with a new error `code: message` and throws it. */
  fail(code: VringErrorCode, message: string): never {
    this.breakWith(new VringError(code, message));
  }

  /** Breaks the queue with `err` and throws it. */
  breakWith(err: VringError): never {
    this.broken = err;
    this.#setGen(BROKEN);
    throw err;
  }

  /** Not broken, and the rings are remapped at the next use. */
  reset(): void {
    this.broken = null;
    this.#setGen(-1);
  }
}

/** @internal The queue's `features`: every flag as a boolean, frozen. */
export function frozenFeatures(features: QueueFeatures | undefined): Readonly<Required<QueueFeatures>> {
  const f = features ?? {};
  return Object.freeze({ eventIdx: !!f.eventIdx, indirect: !!f.indirect, inOrder: !!f.inOrder });
}
