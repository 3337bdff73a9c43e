/**
 * The vhost-user connection: framing over an AF_UNIX socket from @vipc/shm
 * (header + fds, then payload), request/reply pairing, peer credentials.
 * Transport only: what the messages mean is up to the front-end and back-end.
 */
import { EventEmitter } from 'node:events';
import { connect, type Fd, type PeerCredentials, ShmError, UnixServer, type UnixSocket } from '@vipc/shm';
import {
  type CodecOptions,
  closeAll,
  decodeHeader,
  decodeReply,
  decodeRequest,
  encodeReply,
  encodeRequest,
  type Message,
  type RawMessage,
} from './codec.js';
import { HEADER_SIZE, VHOST_USER_MAX_FDS } from './defs.js';
import { VhostUserError } from './errors.js';
import type { Direction, FdRule, PayloadBodies, PayloadKind } from './messages.js';

/** Decides whether a peer may talk to us: true, or a reason for refusing. */
export type CredentialPolicy = (peer: PeerCredentials) => boolean | string;

/** The default policy: the peer runs as our uid, or as root. */
export const sameUserOrRoot: CredentialPolicy = (peer) =>
  peer.uid === process.getuid?.() ||
  peer.uid === 0 ||
  `peer uid ${peer.uid} (pid ${peer.pid}) is neither uid ${process.getuid?.()} nor root`;

/** Accepts any peer (for tests or when the socket's file mode already restricts access). */
export const anyPeer: CredentialPolicy = () => true;

function checkPeer(socket: UnixSocket, policy: CredentialPolicy): PeerCredentials {
  const creds = socket.peerCredentials();
  const verdict = policy(creds);
  if (verdict !== true) {
    throw new VhostUserError(
      `peer refused: ${typeof verdict === 'string' ? verdict : `uid ${creds.uid} pid ${creds.pid}`}`,
      'PEER_REFUSED',
    );
  }
  return creds;
}

export interface ConnectionOptions extends CodecOptions {
  /** Our role: the front-end sends requests, the back-end answers them. */
  role: 'frontend' | 'backend';
  /** How long request() waits for a reply (default 10 s). */
  replyTimeoutMs?: number;
}

function wrapShm(err: unknown): Error {
  if (err instanceof ShmError && (err.code === 'PEER_CLOSED' || err.code === 'CLOSED')) {
    const partial = err.message.includes('after');
    return new VhostUserError(
      partial
        ? `the peer closed the connection mid-message (${err.message})`
        : 'the peer closed the connection',
      partial ? 'PARTIAL_MESSAGE' : err.code === 'CLOSED' ? 'CLOSED' : 'PEER_CLOSED',
      { cause: err },
    );
  }
  return err as Error;
}

/**
 * One vhost-user connection. Events: 'close'. A connection that saw a
 * protocol violation is closed by whoever caught it (the stream can no longer
 * be trusted to be in sync).
 */
export class Connection extends EventEmitter implements Disposable {
  readonly socket: UnixSocket;
  readonly role: 'frontend' | 'backend';
  readonly peer: PeerCredentials | undefined;
  options: ConnectionOptions;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(socket: UnixSocket, options: ConnectionOptions, peer?: PeerCredentials) {
    super();
    this.socket = socket;
    this.role = options.role;
    this.options = options;
    this.peer = peer;
    socket.on('error', () => {
      // reported to readers as PEER_CLOSED / the syscall error; the socket closes itself
    });
    socket.on('close', () => this.#onClose());
    if (this.role === 'frontend') this.#armIdle();
  }

  #pending = 0;
  #idleArmed = false;

  /**
   * The front-end reads only replies. While no request is outstanding, watch
   * the socket anyway: end of stream means the back-end went away (reported
   * at once as 'close'), and bytes nobody asked for are a protocol violation.
   */
  #armIdle(): void {
    if (this.#closed || this.#pending > 0 || this.#idleArmed) return;
    let chunk: ReturnType<UnixSocket['read']>;
    try {
      chunk = this.socket.read(1, 0);
    } catch {
      this.close();
      return;
    }
    if (chunk === null) {
      this.#idleArmed = true;
      this.socket.once('readable', () => {
        this.#idleArmed = false;
        this.#armIdle();
      });
      return;
    }
    // end of stream, or an unsolicited message: either way this connection is over
    this.close();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The direction of requests we receive. */
  get #peerDirection(): Direction {
    return this.role === 'backend' ? 'frontend' : 'backend';
  }

  /** Reads one raw message: header with its fds, then the payload. */
  async receiveRaw(): Promise<RawMessage> {
    let head: Awaited<ReturnType<UnixSocket['readExact']>>;
    try {
      head = await this.socket.readExact(HEADER_SIZE, { maxFds: VHOST_USER_MAX_FDS });
    } catch (err) {
      throw wrapShm(err);
    }
    let header: ReturnType<typeof decodeHeader>;
    try {
      header = decodeHeader(head.data, this.options);
    } catch (err) {
      closeAll(head.fds);
      throw err;
    }
    if (header.size === 0)
      return { header, payload: new Uint8Array(0), fds: head.fds, fdsTruncated: head.fdsTruncated };
    let body: Awaited<ReturnType<UnixSocket['readExact']>>;
    try {
      body = await this.socket.readExact(header.size, { maxFds: VHOST_USER_MAX_FDS - head.fds.length });
    } catch (err) {
      closeAll(head.fds);
      throw wrapShm(err);
    }
    return {
      header,
      payload: body.data,
      fds: [...head.fds, ...body.fds],
      fdsTruncated: head.fdsTruncated || body.fdsTruncated,
    };
  }

  /** The next request from the peer, checked against its schema. */
  async receive(): Promise<Message> {
    const raw = await this.receiveRaw();
    return decodeRequest(this.#peerDirection, raw, this.options);
  }

  /** Sends a request without waiting for anything. */
  send<K extends PayloadKind>(
    request: number,
    kind: K,
    body: PayloadBodies[K],
    options: { fds?: readonly Fd[]; needReply?: boolean } = {},
  ): void {
    if (this.#closed) throw new VhostUserError('the connection is closed', 'CLOSED');
    this.socket.write(encodeRequest(request, kind, body, { ...this.options, ...options }), options.fds ?? []);
  }

  /** Sends a reply to `request`. */
  reply<K extends PayloadKind>(
    request: number,
    kind: K,
    body: PayloadBodies[K],
    fds: readonly Fd[] = [],
  ): void {
    if (this.#closed) throw new VhostUserError('the connection is closed', 'CLOSED');
    this.socket.write(encodeReply(request, kind, body, this.options), fds);
  }

  /**
   * Sends a request and waits for its reply (of `replyKind`, carrying fds per
   * `replyFds`). Requests are serialised: one outstanding at a time.
   */
  request<K extends PayloadKind, R extends PayloadKind>(
    request: number,
    kind: K,
    body: PayloadBodies[K],
    replyKind: R,
    options: { fds?: readonly Fd[]; needReply?: boolean; replyFds?: FdRule; timeoutMs?: number } = {},
  ): Promise<Message<R>> {
    const run = async (): Promise<Message<R>> => {
      this.send(request, kind, body, options);
      const timeoutMs = options.timeoutMs ?? this.options.replyTimeoutMs ?? 10_000;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(new VhostUserError(`no reply to request ${request} within ${timeoutMs} ms`, 'TIMEOUT'));
          // the stream is out of step now
          this.close();
        }, timeoutMs);
      });
      try {
        const raw = await Promise.race([this.receiveRaw(), timeout]);
        return decodeReply(this.role === 'frontend' ? 'frontend' : 'backend', request, replyKind, raw, {
          ...this.options,
          fds: options.replyFds ?? { exactly: 0 },
        });
      } finally {
        clearTimeout(timer);
      }
    };
    this.#pending++;
    const p = this.#queue.then(run, run).finally(() => {
      this.#pending--;
      if (this.role === 'frontend') this.#armIdle();
    });
    this.#queue = p.catch(() => undefined);
    return p;
  }

  close(): void {
    if (this.#closed) return;
    this.socket.close();
    this.#onClose();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.emit('close');
  }
}

export interface ListenOptions extends Omit<ConnectionOptions, 'role'> {
  role: 'frontend' | 'backend';
  /** Peer credential policy (default: same uid or root). */
  policy?: CredentialPolicy;
  /** Socket file mode (default 0o600). */
  mode?: number;
  /** Remove a stale socket file left by a dead process (default true). */
  removeStale?: boolean;
}

/**
 * Server mode: listens on a socket path and emits 'connection' with each
 * accepted, policy-checked Connection; refused peers give 'refused' (error).
 */
export class VhostUserListener extends EventEmitter implements Disposable {
  readonly path: string;
  readonly server: UnixServer;

  private constructor(path: string, server: UnixServer, options: ListenOptions) {
    super();
    this.path = path;
    this.server = server;
    const policy = options.policy ?? sameUserOrRoot;
    server.on('error', (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
    server.on('connection', (socket: UnixSocket) => {
      let peer: PeerCredentials;
      try {
        peer = checkPeer(socket, policy);
      } catch (err) {
        socket.close();
        if (this.listenerCount('refused') > 0) this.emit('refused', err);
        return;
      }
      const conn = new Connection(socket, { ...options }, peer);
      if (this.listenerCount('connection') === 0) conn.close();
      else this.emit('connection', conn);
    });
  }

  static listen(path: string, options: ListenOptions): VhostUserListener {
    const server = UnixServer.listen(path, {
      removeStale: options.removeStale ?? true,
      mode: options.mode ?? 0o600,
    });
    return new VhostUserListener(path, server, options);
  }

  /** The next accepted connection. */
  next(options: { signal?: AbortSignal } = {}): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const onConn = (c: Connection): void => {
        cleanup();
        resolve(c);
      };
      const onAbort = (): void => {
        cleanup();
        reject(options.signal?.reason ?? new VhostUserError('aborted', 'CLOSED'));
      };
      const onClose = (): void => {
        cleanup();
        reject(new VhostUserError('the listener was closed', 'CLOSED'));
      };
      const cleanup = (): void => {
        this.off('connection', onConn);
        this.server.off('close', onClose);
        options.signal?.removeEventListener('abort', onAbort);
      };
      this.on('connection', onConn);
      this.server.once('close', onClose);
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  close(): void {
    this.server.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

export interface ConnectOptions extends Omit<ConnectionOptions, 'role'> {
  role: 'frontend' | 'backend';
  /** Keep retrying while the socket does not exist or refuses (default 0). */
  timeoutMs?: number;
  policy?: CredentialPolicy;
  signal?: AbortSignal;
}

/** Client mode: connects to a listening peer and checks its credentials. */
export async function connectTo(path: string, options: ConnectOptions): Promise<Connection> {
  const socket = await connect(path, {
    timeoutMs: options.timeoutMs ?? 0,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  let peer: PeerCredentials;
  try {
    peer = checkPeer(socket, options.policy ?? sameUserOrRoot);
  } catch (err) {
    socket.close();
    throw err;
  }
  return new Connection(socket, options, peer);
}
