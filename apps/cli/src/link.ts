/**
 * The one place the CLI touches a vhost-user link: open one end of it and
 * exchange messages. Everything above (demo, send, recv, up's endpoints) sees
 * only `MessageLink`.
 *
 * A message is one raw virtio-net frame (the 12-byte virtio_net_hdr is added
 * and removed by @vipc/vhost-user), so either end interoperates with DPDK:
 * our back-end with testpmd's net_virtio_user, our front-end with net_vhost.
 * That is why this sits on VirtioNetDevice / VirtioNetDriver and not on
 * @vipc/vhost-user's MessageChannel, whose 8-byte message header would make
 * every DPDK frame "invalid" and put a header on every frame DPDK counts.
 */
import type { BackendQueue, Connection, VhostUserListener, VirtioDevice } from '@vipc/vhost-user';
import { CliError } from './errors.js';
import type { Role } from './topology.js';
import { until } from './until.js';

export interface LinkOptions {
  socket: string;
  role: Role;
  /** Create the socket (server) instead of connecting to it. */
  listen: boolean;
  mode: 'poll' | 'event';
  ring: 'split' | 'packed';
  queues: number;
  queueSize: number;
  signal?: AbortSignal;
  /** How long to keep trying to connect / to wait for the peer (ms). */
  timeoutMs: number;
}

export interface MessageLink extends AsyncIterable<Uint8Array> {
  /** Queues one message; resolves once the ring took it, a copy (waits while the ring is full): `message` may be reused then. */
  send(message: Uint8Array): Promise<void>;
  /** Waits until the peer has consumed every message sent (or the link is gone). */
  flush(timeoutMs?: number): Promise<void>;
  /** Largest message the link carries. */
  readonly maxMessageSize: number;
  /** Resolves when the peer goes away (or close() is called). */
  readonly closed: Promise<void>;
  close(): Promise<void>;
}

type VhostUser = typeof import('@vipc/vhost-user');

async function load(): Promise<VhostUser> {
  try {
    return await import('@vipc/vhost-user');
  } catch (err) {
    throw new CliError(
      'PEER_MISSING',
      `@vipc/vhost-user is not available: ${(err as Error).message.split('\n')[0]}`,
      'pnpm --filter @vipc/vhost-user build',
    );
  }
}

/**
 * Received messages, in order, for a consumer that iterates. Frames are copied
 * out of the ring as they arrive (the views are only valid during the
 * callback); above HIGH_WATER queued messages the device or driver is paused,
 * so a slow consumer (a slow reader of `vipc recv`'s stdout) slows the sender
 * through the ring instead of growing memory. The iterator ends when the link
 * closes.
 */
const HIGH_WATER = 1024;

class Inbox implements AsyncIterable<Uint8Array> {
  #items: Uint8Array[] = [];
  #head = 0;
  #wake: (() => void) | undefined;
  #ended = false;
  #error: Error | undefined;
  #paused = false;

  constructor(readonly flow: { pause(): void; resume(): void }) {}

  push(frame: Uint8Array): void {
    this.#items.push(Uint8Array.prototype.slice.call(frame));
    if (!this.#paused && this.#items.length - this.#head >= HIGH_WATER) {
      this.#paused = true;
      this.flow.pause();
    }
    this.#notify();
  }

  end(error?: Error): void {
    this.#ended = true;
    this.#error ??= error;
    this.#notify();
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      if (this.#head < this.#items.length) {
        const item = this.#items[this.#head]!;
        this.#items[this.#head++] = EMPTY;
        if (this.#head > 4096 && this.#head * 2 > this.#items.length) {
          this.#items = this.#items.slice(this.#head);
          this.#head = 0;
        }
        if (this.#paused && this.#items.length - this.#head <= HIGH_WATER / 2) {
          this.#paused = false;
          this.flow.resume();
        }
        yield item;
        continue;
      }
      if (this.#ended) {
        if (this.#error) throw this.#error;
        return;
      }
      await new Promise<void>((r) => {
        this.#wake = r;
      });
    }
  }
}

const EMPTY = new Uint8Array(0);

function linkError(err: unknown, what: string): CliError {
  const e = err as Error & { code?: string };
  if (e instanceof CliError) return e;
  const code = e.code && !e.message.includes(e.code) ? ` (${e.code})` : '';
  return new CliError('FAILED', `${what}: ${e.message}${code}`);
}

async function openBackend(vu: VhostUser, o: LinkOptions): Promise<MessageLink> {
  // Whether the link has been up at all. Sampling device.linkUp(0) now and then is not
  // enough: a quick front-end (`echo hi | vipc send`) can start its queues, send, stop
  // them and hang up between two samples; it did set up the link, and what it sent is
  // in the inbox. The back-end tells the device of every queue change: latch it there.
  let wasUp = false;
  class NetDevice extends vu.VirtioNetDevice {
    queueChanged(q: BackendQueue): void {
      (vu.VirtioNetDevice.prototype as VirtioDevice).queueChanged?.call(this, q);
      if (this.linkUp(0)) wasUp = true;
    }
  }
  const device = new NetDevice({ queuePairs: o.queues });
  const backend = new vu.VhostUserBackend({ device, mode: o.mode });
  const inbox = new Inbox({ pause: () => device.pause(0), resume: () => device.resume(0) });
  let problem: Error | undefined;
  backend.on('connection-error', (e: Error) => {
    problem = e;
  });
  device.onFrame = (frame) => inbox.push(frame);
  let listener: VhostUserListener | undefined;
  let connected = false;
  let gone = false;
  const closed = new Promise<void>((resolve) => {
    backend.on('connect', () => {
      connected = true;
    });
    backend.on('disconnect', () => {
      gone = true;
      inbox.end(problem ? linkError(problem, 'the front-end broke the protocol') : undefined);
      resolve();
    });
  });
  const shutdown = async () => {
    listener?.close();
    backend.close();
    inbox.end();
  };
  try {
    if (o.listen) {
      listener = backend.listen(o.socket);
    } else {
      const conn: Connection = await vu.connectTo(o.socket, {
        role: 'backend',
        timeoutMs: o.timeoutMs,
        ...(o.signal ? { signal: o.signal } : {}),
      });
      backend.serve(conn).catch(() => {});
    }
    // Up when the front-end has started the receive queue of the first pair (its transmit queue
    // starts with its first kick, and a front-end that only receives never kicks it).
    await until(
      () => {
        if (wasUp || device.linkUp(0)) return true;
        if (gone && connected)
          throw new CliError(
            'FAILED',
            `the front-end went away during set-up${problem ? `: ${problem.message}` : ''}`,
          );
        return false;
      },
      `a front-end to connect to ${o.socket} and start its queues`,
      { deadline: Date.now() + o.timeoutMs, intervalMs: 5, ...(o.signal ? { signal: o.signal } : {}) },
    );
  } catch (err) {
    await shutdown();
    throw linkError(err, `vhost-user back-end on ${o.socket}`);
  }
  return {
    maxMessageSize: 65_535,
    closed,
    async send(message) {
      for (;;) {
        if (gone) throw new CliError('FAILED', 'the front-end went away');
        if (device.send(message)) return;
        await new Promise<void>((resolve) => {
          const done = () => {
            device.off('writable', done);
            backend.off('disconnect', done);
            clearTimeout(t);
            resolve();
          };
          // Besides 'writable', retry now and then: a wake-up that never comes must not stall us.
          const t = setTimeout(done, 5);
          device.once('writable', done);
          backend.once('disconnect', done);
        });
      }
    },
    // Frames placed in the driver's receive queue are in its memory already.
    async flush() {},
    [Symbol.asyncIterator]: () => inbox[Symbol.asyncIterator](),
    close: shutdown,
  };
}

async function openFrontend(vu: VhostUser, o: LinkOptions): Promise<MessageLink> {
  const feOptions = {
    queueCount: 2 * o.queues,
    queueSize: o.queueSize,
    packed: o.ring === 'packed',
    features: vu.NET_DRIVER_FEATURES,
  };
  let fe: InstanceType<VhostUser['VhostUserFrontend']>;
  let listener: VhostUserListener | undefined;
  try {
    if (o.listen) {
      // Server mode (testpmd net_vhost with client=1 connects to us).
      listener = vu.VhostUserListener.listen(o.socket, { role: 'frontend' });
      const l = listener;
      const conn = await new Promise<Connection>((resolve, reject) => {
        const t = setTimeout(
          () => reject(new CliError('FAILED', `no back-end connected to ${o.socket}`)),
          o.timeoutMs,
        );
        o.signal?.addEventListener('abort', () => reject(new CliError('FAILED', 'interrupted')), {
          once: true,
        });
        l.once('connection', (c: Connection) => {
          clearTimeout(t);
          resolve(c);
        });
      });
      fe = new vu.VhostUserFrontend(conn, feOptions);
      try {
        await fe.start();
      } catch (err) {
        fe.close();
        throw err;
      }
    } else {
      fe = await vu.VhostUserFrontend.connect(o.socket, {
        ...feOptions,
        timeoutMs: o.timeoutMs,
        ...(o.signal ? { signal: o.signal } : {}),
      });
    }
  } catch (err) {
    listener?.close();
    throw linkError(err, `vhost-user front-end on ${o.socket}`);
  }
  const front = fe;
  const driver = new vu.VirtioNetDriver(front, { mode: o.mode });
  const inbox = new Inbox({ pause: () => driver.pause(), resume: () => driver.resume() });
  driver.onFrame = (frame) => inbox.push(frame);
  let gone = false;
  let broken: Error | undefined;
  driver.on('error', (e: Error) => {
    broken = e;
    inbox.end(linkError(e, 'the back-end broke a ring'));
  });
  const closed = new Promise<void>((resolve) => {
    front.once('disconnect', () => {
      gone = true;
      inbox.end();
      resolve();
    });
  });
  let closing: Promise<void> | undefined;
  return {
    maxMessageSize: driver.maxFrame,
    closed,
    async send(message) {
      for (;;) {
        if (broken) throw linkError(broken, 'the link is broken');
        if (gone) throw new CliError('FAILED', 'the back-end went away');
        if (driver.send(message)) return;
        await new Promise<void>((resolve) => {
          const done = () => {
            driver.off('writable', done);
            front.off('disconnect', done);
            clearTimeout(t);
            resolve();
          };
          // 'writable' needs a call from the back-end; a poll-mode peer may not send one.
          const t = setTimeout(() => {
            driver.poll();
            done();
          }, 2);
          driver.once('writable', done);
          front.once('disconnect', done);
        });
      }
    },
    async flush(timeoutMs = 30_000) {
      await until(
        () => {
          driver.poll();
          return gone || broken !== undefined || driver.tx.ring.freeCount() >= driver.tx.ring.size;
        },
        () => new CliError('FAILED', 'the back-end did not take every message in time'),
        { deadline: Date.now() + timeoutMs, intervalMs: 2 },
      );
    },
    [Symbol.asyncIterator]: () => inbox[Symbol.asyncIterator](),
    close() {
      closing ??= (async () => {
        driver.close();
        inbox.end();
        try {
          if (!gone) await front.stop();
        } catch {
          // the back-end may be gone already
        } finally {
          front.close();
          listener?.close();
        }
      })();
      return closing;
    },
  };
}

/** Opens one end of a vhost-user link; resolves when the link is up (negotiation done). */
export async function openLink(options: LinkOptions): Promise<MessageLink> {
  const vu = await load();
  return options.role === 'backend' ? openBackend(vu, options) : openFrontend(vu, options);
}
