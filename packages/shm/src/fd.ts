import { readlinkSync } from 'node:fs';
import { raw } from './binding.js';
import { ShmError } from './errors.js';

// An Fd that becomes unreachable while open is closed by the GC, like Node's
// FileHandle: ownership means the descriptor dies with its owner.
const leaked = new FinalizationRegistry<number>((fd) => {
  try {
    raw.close(fd);
  } catch {
    // already gone: nothing to release
  }
});

/**
 * An owned file descriptor. Close it with `close()` or a `using` declaration;
 * closing twice is harmless. `release()` hands the number over to someone else.
 */
export class Fd implements Disposable {
  #fd: number;
  #beforeClose: Set<() => void> | undefined;

  /** Takes ownership of an open descriptor number. */
  constructor(fd: number) {
    if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
      throw new ShmError(`not a file descriptor: ${String(fd)}`, 'INVALID_ARGUMENT');
    }
    this.#fd = fd;
    leaked.register(this, fd, this);
  }

  /** The descriptor number; throws CLOSED after close() or release(). */
  get fd(): number {
    if (this.#fd < 0) throw new ShmError('the file descriptor is closed', 'CLOSED');
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  close(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    // Whatever watches this fd on the loop must stop first: libuv must never
    // poll a closed descriptor (its number may be reused at once).
    const hooks = this.#beforeClose;
    this.#beforeClose = undefined;
    if (hooks) for (const hook of hooks) hook();
    this.#fd = -1;
    leaked.unregister(this);
    raw.close(fd);
  }

  /** @internal Runs `hook` just before the descriptor is closed; returns the undo. */
  beforeClose(hook: () => void): () => void {
    this.#beforeClose ??= new Set();
    this.#beforeClose.add(hook);
    return () => this.#beforeClose?.delete(hook);
  }

  /** Gives up ownership and returns the number, which the caller must close. */
  release(): number {
    const fd = this.fd;
    this.#fd = -1;
    leaked.unregister(this);
    return fd;
  }

  /** A new descriptor (close-on-exec) for the same open file. */
  dup(): Fd {
    return new Fd(raw.dup(this.fd));
  }

  /** What the kernel says this descriptor is, e.g. `anon_inode:[eventfd]`, `/memfd:x (deleted)`, `socket:[123]`. */
  describe(): string {
    return readlinkSync(`/proc/self/fd/${this.fd}`);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  toString(): string {
    return this.#fd < 0 ? 'Fd(closed)' : `Fd(${this.#fd})`;
  }
}

/** An Fd or a plain descriptor number (which stays owned by the caller). */
export type FdLike = Fd | number;

export function fdNumber(fd: FdLike): number {
  if (typeof fd === 'number') {
    if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
      throw new ShmError(`not a file descriptor: ${String(fd)}`, 'INVALID_ARGUMENT');
    }
    return fd;
  }
  if (!(fd instanceof Fd)) throw new ShmError('expected an Fd or a descriptor number', 'INVALID_ARGUMENT');
  return fd.fd;
}

/** Whether a descriptor number is open in this process. */
export function isOpen(fd: number): boolean {
  return raw.isOpen(fd);
}
