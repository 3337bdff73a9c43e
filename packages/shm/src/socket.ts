import { EventEmitter } from 'node:events';
import { chmodSync, lstatSync, type Stats, unlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { raw } from './binding.js';
import { MAX_FDS_PER_MESSAGE, S_IFMT, S_IFSOCK } from './defs.js';
import { ShmError } from './errors.js';
import { Fd, type FdLike, fdNumber } from './fd.js';
import { FdWatcher, type Readiness } from './watcher.js';

/** What one recvmsg(2) returned. */
export interface Chunk {
  /** The bytes; empty at end of stream. */
  data: Buffer;
  /** Descriptors that came with the first of these bytes (owned by the caller now). */
  fds: Fd[];
  /** More descriptors were sent than asked for; the kernel closed the rest. */
  fdsTruncated: boolean;
}

/** A complete read of an exact byte count. */
export interface ExactRead {
  data: Buffer;
  fds: Fd[];
  fdsTruncated: boolean;
}

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

interface PendingRead {
  want: number;
  maxFds: number;
  buf: Buffer;
  got: number;
  fds: Fd[];
  truncated: boolean;
  resolve: (r: ExactRead) => void;
  reject: (e: Error) => void;
}

interface PendingWrite {
  data: Uint8Array;
  sent: number;
  /** Duplicates of the caller's fds, sent with the first byte, then closed. */
  fds: Fd[];
}

const READ_CHUNK = 64 * 1024;
/** Flowing reads per wake-up, so that one busy peer cannot starve the event loop. */
const READS_PER_WAKEUP = 64;

function checkFds(fds: readonly FdLike[]): number[] {
  if (fds.length > MAX_FDS_PER_MESSAGE) {
    throw new ShmError(
      `at most ${MAX_FDS_PER_MESSAGE} fds can travel in one message (got ${fds.length})`,
      'OUT_OF_RANGE',
    );
  }
  return fds.map(fdNumber);
}

function checkMaxFds(maxFds: number): void {
  if (!Number.isInteger(maxFds) || maxFds < 0 || maxFds > MAX_FDS_PER_MESSAGE) {
    throw new ShmError(`maxFds must be an integer from 0 to ${MAX_FDS_PER_MESSAGE}`, 'OUT_OF_RANGE');
  }
}

/**
 * An AF_UNIX stream socket owned by the addon, so that it can carry file
 * descriptors (SCM_RIGHTS) both ways. Readiness comes from the libuv loop.
 *
 * Reading, three ways (use one at a time):
 * - `readExact(n, { maxFds })`: resolves with exactly n bytes and the fds that
 *   came with them; rejects with PEER_CLOSED if the stream ends first. This is
 *   what message protocols (vhost-user) use.
 * - flowing: a `'data'` listener receives `(data, fds)` chunks as they arrive;
 *   `setMaxFds(n)` says how many fds per chunk to accept (default 0).
 * - pull: `'readable'`, then `read()` until it returns null.
 *
 * Descriptors that arrive without being asked for are closed at once, never
 * leaked. Events: 'data', 'readable', 'end' (peer closed), 'drain', 'error'
 * (only emitted when someone listens: a dead peer never crashes the process),
 * 'close'.
 */
export class UnixSocket extends EventEmitter implements Disposable {
  readonly fd: Fd;
  #watcher: FdWatcher;
  #events = 0;
  #readers: PendingRead[] = [];
  #writes: PendingWrite[] = [];
  #wantReadable = false;
  #maxFds = 0;
  #ended = false;
  #closed = false;
  #endAfterFlush = false;

  /** Adopts a connected socket descriptor (e.g. one inherited from a parent process). */
  constructor(fd: Fd) {
    super();
    const st = raw.fstat(fd.fd);
    if ((st.mode & S_IFMT) !== S_IFSOCK) {
      throw new ShmError(`descriptor ${fd.fd} is not a socket`, 'INVALID_ARGUMENT');
    }
    this.fd = fd;
    this.#watcher = new FdWatcher(fd, (r) => this.#onReady(r));
    this.on('newListener', (event: string) => {
      if (event === 'data') queueMicrotask(() => this.#update());
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The peer closed its end (no more data will come). */
  get ended(): boolean {
    return this.#ended;
  }

  /** Bytes accepted by write() but not yet taken by the kernel. */
  get pendingWriteBytes(): number {
    let n = 0;
    for (const w of this.#writes) n += w.data.length - w.sent;
    return n;
  }

  /** SO_PEERCRED: the process and user at the other end, as of connect(). */
  peerCredentials(): PeerCredentials {
    return raw.socketPeerCred(this.#live());
  }

  /** How many fds each flowing 'data' chunk may carry (default 0: any fd sent is closed). */
  setMaxFds(maxFds: number): this {
    checkMaxFds(maxFds);
    this.#maxFds = maxFds;
    return this;
  }

  /**
   * One non-blocking recvmsg: null when nothing is ready (a 'readable' event
   * follows when it is). An empty chunk means end of stream.
   */
  read(maxBytes = READ_CHUNK, maxFds = 0): Chunk | null {
    const fd = this.#live();
    if (this.#readers.length > 0)
      throw new ShmError('read() while readExact() is pending', 'INVALID_ARGUMENT');
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      throw new ShmError('maxBytes must be a positive integer', 'OUT_OF_RANGE');
    }
    checkMaxFds(maxFds);
    if (this.#ended) return { data: Buffer.alloc(0), fds: [], fdsTruncated: false };
    const buf = Buffer.allocUnsafe(maxBytes);
    let r: ReturnType<typeof raw.socketRecv>;
    try {
      r = raw.socketRecv(fd, buf, 0, maxBytes, maxFds);
    } catch (err) {
      this.#fail(err as Error);
      return { data: Buffer.alloc(0), fds: [], fdsTruncated: false };
    }
    if (r === null) {
      this.#wantReadable = true;
      this.#update();
      return null;
    }
    const chunk = {
      data: buf.subarray(0, r.bytes),
      fds: r.fds.map((n) => new Fd(n)),
      fdsTruncated: r.truncated,
    };
    if (r.bytes === 0) this.#onEnd();
    return chunk;
  }

  /** Exactly `length` bytes, with the fds (at most maxFds) that came with them. */
  readExact(length: number, options: { maxFds?: number } = {}): Promise<ExactRead> {
    const maxFds = options.maxFds ?? 0;
    checkMaxFds(maxFds);
    if (!Number.isSafeInteger(length) || length < 0) {
      return Promise.reject(new ShmError('length must be a non-negative integer', 'OUT_OF_RANGE'));
    }
    if (this.#closed) return Promise.reject(new ShmError('the socket is closed', 'CLOSED'));
    if (this.#ended && length > 0) {
      return Promise.reject(new ShmError('the peer closed the connection', 'PEER_CLOSED'));
    }
    return new Promise<ExactRead>((resolve, reject) => {
      this.#readers.push({
        want: length,
        maxFds,
        buf: Buffer.allocUnsafe(length),
        got: 0,
        fds: [],
        truncated: false,
        resolve,
        reject,
      });
      this.#serviceReaders();
    });
  }

  /**
   * Queues `data` (and `fds`, which travel with its first byte) for sending.
   * The caller keeps its fds: they are duplicated if the send has to wait.
   * Returns false when the data had to be buffered ('drain' follows).
   */
  write(data: Uint8Array, fds: readonly FdLike[] = []): boolean {
    this.#live();
    if (this.#endAfterFlush) throw new ShmError('write() after end()', 'CLOSED');
    if (!(data instanceof Uint8Array)) throw new ShmError('data must be a Uint8Array', 'INVALID_ARGUMENT');
    const numbers = checkFds(fds);
    if (numbers.length > 0 && data.length === 0) {
      throw new ShmError('fds need at least one byte of data to travel with', 'INVALID_ARGUMENT');
    }
    if (data.length === 0) return this.#writes.length === 0;
    if (this.#writes.length === 0) {
      let n: number;
      try {
        n = raw.socketSend(this.fd.fd, data, 0, data.length, numbers);
      } catch (err) {
        process.nextTick(() => this.#fail(err as Error));
        return false;
      }
      if (n === data.length) return true;
      if (n > 0) {
        this.#writes.push({ data, sent: n, fds: [] });
        this.#update();
        return false;
      }
    }
    const dups = numbers.map((n) => new Fd(raw.dup(n)));
    this.#writes.push({ data, sent: 0, fds: dups });
    this.#update();
    return false;
  }

  /** Closes the writing side once everything queued is sent (the peer sees end of stream). */
  end(): void {
    if (this.#closed) return;
    this.#endAfterFlush = true;
    if (this.#writes.length === 0) raw.socketShutdown(this.fd.fd, 1);
  }

  /** Closes the socket at once; pending reads reject with CLOSED, unsent data is dropped. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher.close();
    for (const w of this.#writes) for (const f of w.fds) f.close();
    this.#writes = [];
    this.#rejectReaders(new ShmError('the socket is closed', 'CLOSED'));
    this.fd.close();
    process.nextTick(() => this.emit('close'));
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Let the process exit while this socket is open. */
  unref(): this {
    if (!this.#closed) this.#watcher.unref();
    return this;
  }

  ref(): this {
    if (!this.#closed) this.#watcher.ref();
    return this;
  }

  #live(): number {
    if (this.#closed) throw new ShmError('the socket is closed', 'CLOSED');
    return this.fd.fd;
  }

  #update(): void {
    if (this.#closed) return;
    const readable =
      !this.#ended && (this.#readers.length > 0 || this.#wantReadable || this.listenerCount('data') > 0);
    const mask = (readable ? 1 : 0) | (this.#writes.length > 0 ? 2 : 0);
    if (mask === this.#events) return;
    this.#events = mask;
    if (mask === 0) this.#watcher.stop();
    else this.#watcher.start({ readable: (mask & 1) !== 0, writable: (mask & 2) !== 0 });
  }

  #onReady(r: Readiness): void {
    if (this.#closed) return;
    if (r.error) {
      this.#fail(r.error);
      return;
    }
    if (r.writable) this.#flush();
    if (r.readable && !this.#closed) {
      if (this.#readers.length > 0) this.#serviceReaders();
      else if (this.listenerCount('data') > 0) this.#flow();
      else if (this.#wantReadable) {
        this.#wantReadable = false;
        this.#update();
        this.emit('readable');
      }
    }
    this.#update();
  }

  #serviceReaders(): void {
    while (this.#readers.length > 0 && !this.#closed) {
      const r = this.#readers[0]!;
      if (r.got === r.want) {
        this.#readers.shift();
        r.resolve({ data: r.buf, fds: r.fds, fdsTruncated: r.truncated });
        continue;
      }
      let res: ReturnType<typeof raw.socketRecv>;
      try {
        res = raw.socketRecv(this.fd.fd, r.buf, r.got, r.want - r.got, r.maxFds - r.fds.length);
      } catch (err) {
        this.#fail(err as Error);
        return;
      }
      if (res === null) break;
      if (res.bytes === 0) {
        this.#onEnd();
        return;
      }
      for (const n of res.fds) r.fds.push(new Fd(n));
      r.truncated ||= res.truncated;
      r.got += res.bytes;
    }
    this.#update();
  }

  #flow(): void {
    for (let i = 0; i < READS_PER_WAKEUP && !this.#closed && this.listenerCount('data') > 0; i++) {
      const buf = Buffer.allocUnsafe(READ_CHUNK);
      let res: ReturnType<typeof raw.socketRecv>;
      try {
        res = raw.socketRecv(this.fd.fd, buf, 0, READ_CHUNK, this.#maxFds);
      } catch (err) {
        this.#fail(err as Error);
        return;
      }
      if (res === null) return;
      if (res.bytes === 0) {
        this.#onEnd();
        return;
      }
      this.emit(
        'data',
        buf.subarray(0, res.bytes),
        res.fds.map((n) => new Fd(n)),
      );
    }
  }

  #flush(): void {
    while (this.#writes.length > 0) {
      const w = this.#writes[0]!;
      let n: number;
      try {
        n = raw.socketSend(
          this.fd.fd,
          w.data,
          w.sent,
          w.data.length - w.sent,
          w.fds.map((f) => f.fd),
        );
      } catch (err) {
        this.#fail(err as Error);
        return;
      }
      if (n < 0) break;
      if (n > 0 && w.fds.length > 0) {
        for (const f of w.fds) f.close();
        w.fds = [];
      }
      w.sent += n;
      if (w.sent === w.data.length) this.#writes.shift();
    }
    if (this.#writes.length === 0) {
      if (this.#endAfterFlush) raw.socketShutdown(this.fd.fd, 1);
      this.emit('drain');
    }
  }

  #rejectReaders(err: Error): void {
    const readers = this.#readers;
    this.#readers = [];
    for (const r of readers) {
      for (const f of r.fds) f.close();
      r.reject(err);
    }
  }

  #onEnd(): void {
    if (this.#ended) return;
    this.#ended = true;
    const partial = this.#readers[0];
    const detail =
      partial && partial.got > 0 ? ` after ${partial.got} of ${partial.want} bytes of a read` : '';
    this.#rejectReaders(new ShmError(`the peer closed the connection${detail}`, 'PEER_CLOSED'));
    this.#update();
    process.nextTick(() => this.emit('end'));
  }

  #fail(err: Error): void {
    if (this.#closed) return;
    this.#rejectReaders(err);
    if (this.listenerCount('error') > 0) this.emit('error', err);
    this.close();
  }
}

export interface ListenOptions {
  /** listen(2) backlog (default 16). */
  backlog?: number;
  /** chmod the socket file to this mode after binding, e.g. 0o660. */
  mode?: number;
  /**
   * Remove a stale socket file left by a dead process at `path` (nobody
   * accepts on it). A live socket, or any file that is not a socket, is never
   * removed: listening then fails with EADDRINUSE.
   */
  removeStale?: boolean;
}

/**
 * A listening AF_UNIX stream socket. 'connection' gives each accepted
 * UnixSocket. close() removes the socket file it created.
 */
export class UnixServer extends EventEmitter implements Disposable {
  readonly path: string;
  readonly fd: Fd;
  #watcher: FdWatcher;
  #ino: number;
  #closed = false;

  private constructor(path: string, fd: Fd) {
    super();
    this.path = path;
    this.fd = fd;
    this.#ino = lstatSync(path).ino;
    this.#watcher = new FdWatcher(fd, (r) => this.#onReady(r));
    this.#watcher.start({ readable: true });
  }

  static listen(path: string, options: ListenOptions = {}): UnixServer {
    if (options.removeStale) removeStaleSocket(path);
    const fd = new Fd(raw.socketListen(path, options.backlog ?? 16));
    try {
      if (options.mode !== undefined) chmodSync(path, options.mode);
      return new UnixServer(path, fd);
    } catch (err) {
      fd.close();
      throw err;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Accepts one pending connection, or returns null. */
  accept(): UnixSocket | null {
    if (this.#closed) throw new ShmError('the server is closed', 'CLOSED');
    const n = raw.socketAccept(this.fd.fd);
    return n < 0 ? null : new UnixSocket(new Fd(n));
  }

  /** Stops listening and removes the socket file (if it is still the one this server made). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher.close();
    this.fd.close();
    try {
      if (lstatSync(this.path).ino === this.#ino) unlinkSync(this.path);
    } catch {
      // already removed by someone else
    }
    process.nextTick(() => this.emit('close'));
  }

  [Symbol.dispose](): void {
    this.close();
  }

  unref(): this {
    if (!this.#closed) this.#watcher.unref();
    return this;
  }

  ref(): this {
    if (!this.#closed) this.#watcher.ref();
    return this;
  }

  #onReady(r: Readiness): void {
    if (this.#closed) return;
    if (r.error) {
      if (this.listenerCount('error') > 0) this.emit('error', r.error);
      return;
    }
    for (;;) {
      let sock: UnixSocket | null;
      try {
        sock = this.accept();
      } catch (err) {
        // EMFILE and friends: report, keep listening.
        if (this.listenerCount('error') > 0) this.emit('error', err);
        return;
      }
      if (sock === null) return;
      if (this.listenerCount('connection') === 0) sock.close();
      else this.emit('connection', sock);
    }
  }
}

function removeStaleSocket(path: string): void {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) return;
  let fd: number;
  try {
    fd = raw.socketConnect(path);
  } catch (err) {
    if (err instanceof ShmError && err.code === 'ECONNREFUSED') unlinkSync(path);
    return;
  }
  raw.close(fd);
}

export interface ConnectOptions {
  /** Keep retrying while the socket does not exist or refuses, up to this many ms (default 0: try once). */
  timeoutMs?: number;
  /** Delay between attempts (default 50 ms). */
  intervalMs?: number;
  signal?: AbortSignal;
}

const RETRYABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

/** Connects to a listening Unix socket, waiting for it to appear if asked to. */
export async function connect(path: string, options: ConnectOptions = {}): Promise<UnixSocket> {
  const deadline = Date.now() + (options.timeoutMs ?? 0);
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      return new UnixSocket(new Fd(raw.socketConnect(path)));
    } catch (err) {
      if (!(err instanceof ShmError) || !RETRYABLE.has(err.code) || Date.now() >= deadline) throw err;
    }
    await sleep(options.intervalMs ?? 50, undefined, { signal: options.signal });
  }
}

/** socketpair(2): two connected sockets, e.g. one for a child process. */
export function socketPair(): [UnixSocket, UnixSocket] {
  const [a, b] = raw.socketPair();
  return [new UnixSocket(new Fd(a)), new UnixSocket(new Fd(b))];
}
