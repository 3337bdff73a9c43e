import { readlinkSync } from 'node:fs';
import { raw } from './binding.js';
import { ShmError } from './errors.js';
import { Fd, type FdLike, fdNumber } from './fd.js';
import { FdWatcher } from './watcher.js';

export interface EventFdOptions {
  initialValue?: number;
  /** EFD_SEMAPHORE: each drain() takes 1 instead of the whole count. */
  semaphore?: boolean;
}

/** Whether a descriptor is an eventfd (checked through /proc/self/fd). */
export function isEventFd(fd: FdLike): boolean {
  try {
    return readlinkSync(`/proc/self/fd/${fdNumber(fd)}`) === 'anon_inode:[eventfd]';
  } catch {
    return false;
  }
}

/**
 * eventfd(2), non-blocking and close-on-exec: the doorbell of a virtqueue.
 * kick() adds to the counter, drain() reads and resets it, watch() calls back
 * on the event loop whenever it is non-zero.
 */
export class EventFd implements Disposable {
  readonly fd: Fd;
  #watcher: FdWatcher | undefined;

  private constructor(fd: Fd) {
    this.fd = fd;
  }

  static create(options: EventFdOptions = {}): EventFd {
    const init = options.initialValue ?? 0;
    if (!Number.isInteger(init) || init < 0 || init > 0xffffffff) {
      throw new ShmError(
        `initialValue must be an integer from 0 to 2^32-1 (got ${String(init)})`,
        'OUT_OF_RANGE',
      );
    }
    return new EventFd(new Fd(raw.eventfd(init, options.semaphore ? 1 : 0)));
  }

  /**
   * Adopts a descriptor received from a peer. It must really be an eventfd
   * (anything else is refused, and stays owned by the caller).
   */
  static from(fd: Fd): EventFd {
    if (!isEventFd(fd)) {
      throw new ShmError(`descriptor ${fd.fd} is not an eventfd (${describe(fd)})`, 'INVALID_ARGUMENT');
    }
    return new EventFd(fd);
  }

  /** Adds `value` (default 1) to the counter. Returns false if the counter is full. */
  kick(value = 1): boolean {
    return raw.eventfdWrite(this.fd.fd, value);
  }

  /** Reads and resets the counter; 0 when nothing was pending. */
  drain(): number {
    return raw.eventfdRead(this.fd.fd);
  }

  /**
   * Calls `onKick(count)` on the event loop each time the counter becomes
   * non-zero; the counter is drained before the call. One watch at a time.
   */
  watch(onKick: (count: number, error?: ShmError) => void): FdWatcher {
    if (this.#watcher !== undefined && !this.#watcher.closed) {
      throw new ShmError('this eventfd is already watched; close that watcher first', 'INVALID_ARGUMENT');
    }
    const w = new FdWatcher(this.fd, () => {}, onKick);
    w.start({ readable: true });
    this.#watcher = w;
    return w;
  }

  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    this.fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function describe(fd: Fd): string {
  try {
    return fd.describe();
  } catch {
    return 'unknown';
  }
}
