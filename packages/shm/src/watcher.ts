import { raw } from './binding.js';
import { ShmError } from './errors.js';
import { Fd, type FdLike, fdNumber } from './fd.js';
import { errnoName } from './proc.js';

/** @internal */
export type EventFdKickHandler = (count: number, error?: ShmError) => void;

export interface WatchEvents {
  readable?: boolean;
  writable?: boolean;
}

/** Readiness reported to an FdWatcher callback. */
export interface Readiness {
  readable: boolean;
  writable: boolean;
  /** Set when libuv reported an error for the descriptor (e.g. EBADF). */
  error?: ShmError;
}

// Active watchers are kept reachable here, so that a running watch never
// depends on the caller holding the object (like a listening server).
const active = new Set<FdWatcher>();

/**
 * Readiness of any descriptor on the libuv loop (uv_poll), without blocking
 * the event loop. Level-triggered: the callback fires again while the
 * condition holds, so consume what is ready or stop the watch.
 */
export class FdWatcher implements Disposable {
  #handle: object | undefined;
  #events = 0;
  #unhook: (() => void) | undefined;

  /**
   * Watches `fd`. Given an Fd, the watch is closed automatically when the Fd
   * is; given a plain number, close the watcher before closing the descriptor.
   */
  constructor(fd: FdLike, onReady: (readiness: Readiness) => void, eventfdDrain?: EventFdKickHandler) {
    if (fd instanceof Fd) this.#unhook = fd.beforeClose(() => this.close());
    if (eventfdDrain !== undefined) {
      // eventfd mode: the counter is read in C on every wake-up.
      this.#handle = raw.watcherCreate(
        fdNumber(fd),
        (count, code) => {
          if (count < 0) {
            const errno = -code;
            eventfdDrain(
              0,
              new ShmError(`eventfd watch failed (errno ${errno})`, errnoName(errno), errno, 'read'),
            );
            return;
          }
          eventfdDrain(count);
        },
        true,
      );
      return;
    }
    this.#handle = raw.watcherCreate(
      fdNumber(fd),
      (status, events) => {
        if (status < 0) {
          const errno = -events;
          onReady({
            readable: false,
            writable: false,
            error: new ShmError(`poll on fd failed (errno ${errno})`, errnoName(errno), errno, 'uv_poll'),
          });
          return;
        }
        onReady({ readable: (events & 1) !== 0, writable: (events & 2) !== 0 });
      },
      false,
    );
  }

  get closed(): boolean {
    return this.#handle === undefined;
  }

  /** Starts (or changes) the watch. Default: readable. */
  start(events: WatchEvents = { readable: true }): this {
    const h = this.#live();
    const mask = (events.readable ? 1 : 0) | (events.writable ? 2 : 0);
    raw.watcherStart(h, mask);
    this.#events = mask;
    if (mask !== 0) active.add(this);
    else active.delete(this);
    return this;
  }

  stop(): this {
    if (this.#handle !== undefined && this.#events !== 0) {
      raw.watcherStart(this.#handle, 0);
      this.#events = 0;
      active.delete(this);
    }
    return this;
  }

  /** Keeps the process alive while the watch runs (the default). */
  ref(): this {
    raw.watcherRef(this.#live(), true);
    return this;
  }

  /** Lets the process exit even while the watch runs. */
  unref(): this {
    raw.watcherRef(this.#live(), false);
    return this;
  }

  close(): void {
    const h = this.#handle;
    if (h === undefined) return;
    this.#handle = undefined;
    this.#events = 0;
    active.delete(this);
    this.#unhook?.();
    this.#unhook = undefined;
    raw.watcherClose(h);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #live(): object {
    if (this.#handle === undefined) throw new ShmError('the watcher is closed', 'CLOSED');
    return this.#handle;
  }
}
