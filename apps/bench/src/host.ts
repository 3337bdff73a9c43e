import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type MessagePort, Worker } from 'node:worker_threads';
import { readFrames, writeFrame } from './control-socket.js';
import { BenchError } from './errors.js';
import type { FromEndpoint, ToEndpoint } from './protocol.js';

/**
 * The compiled endpoint entry. From dist/ it sits next to this module; when
 * this module runs from src/ (tests), the build in ../dist is used.
 */
export function endpointEntry(): string {
  const here = import.meta.url;
  const candidates = here.includes('/src/')
    ? [new URL('../dist/endpoint.js', here)]
    : [new URL('./endpoint.js', here), new URL('../dist/endpoint.js', here)];
  for (const c of candidates) {
    const p = fileURLToPath(c);
    if (existsSync(p)) return p;
  }
  throw new BenchError(
    'NOT_BUILT',
    'the bench endpoint is not built (dist/endpoint.js is missing): run `pnpm --filter @vipc/bench build`',
  );
}

/** An endpoint inside a container: started by `spawn`, controlled over a Unix socket it connects to. */
export interface ContainerLaunch {
  /** Starts `node <entry>` inside with these extra environment variables. */
  spawn(entry: string, env: Record<string, string>): ChildProcess;
  /** Control socket path (in a directory the container sees at the same path). */
  socketPath: string;
  /** @vipc/shm, loaded by the caller. */
  shm: typeof import('@vipc/shm');
}

export interface HostOptions {
  kind: 'process' | 'worker' | 'container';
  container?: ContainerLaunch;
  /** Processes: descriptors to inherit as fd 4, 5, ... */
  fds?: number[];
  /** Workers: shared memory and a port (transferred). */
  memory?: SharedArrayBuffer;
  port?: MessagePort;
  label: string;
}

type Waiter = {
  accept: (m: FromEndpoint) => boolean;
  resolve: (m: FromEndpoint) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
};

/** One endpoint (a child process or a worker thread) and its control channel. */
export class EndpointHost {
  readonly label: string;
  readonly #child: ChildProcess | undefined;
  readonly #worker: Worker | undefined;
  #server: import('@vipc/shm').UnixServer | undefined;
  #sock: import('@vipc/shm').UnixSocket | undefined;
  readonly #outbox: ToEndpoint[] = [];
  #fdsToSend: number[] = [];
  readonly #queue: FromEndpoint[] = [];
  readonly #waiters = new Set<Waiter>();
  #dead: Error | undefined;
  #stderr = '';
  readonly exited: Promise<void>;

  constructor(options: HostOptions) {
    this.label = options.label;
    const entry = endpointEntry();
    let exited: () => void = () => {};
    this.exited = new Promise((r) => {
      exited = r;
    });
    if (options.kind === 'container') {
      const c = options.container;
      if (c === undefined) throw new BenchError('PROTOCOL', 'container endpoint without launch options');
      this.#fdsToSend = options.fds ?? [];
      const server = c.shm.UnixServer.listen(c.socketPath, { removeStale: true });
      this.#server = server;
      server.on('connection', (sock: import('@vipc/shm').UnixSocket) => {
        if (this.#sock !== undefined) {
          sock.close();
          return;
        }
        this.#sock = sock;
        sock.on('error', () => {});
        for (const m of this.#outbox.splice(0)) this.#write(m);
        readFrames(sock, (m) => this.#deliver(m as FromEndpoint)).catch((err) =>
          this.#die(
            new BenchError('ENDPOINT_FAILED', `${this.label}: control socket: ${(err as Error).message}`),
          ),
        );
      });
      const child = c.spawn(entry, { VIPC_BENCH_CONTROL: c.socketPath });
      this.#child = child;
      child.stdout?.resume();
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (t: string) => {
        this.#stderr = (this.#stderr + t).slice(-4000);
      });
      child.on('error', (err) => this.#die(err));
      child.on('exit', (code, signal) => {
        this.#die(
          new BenchError(
            'ENDPOINT_FAILED',
            `${this.label} exited (${signal ?? `code ${code}`})${this.#tail()}`,
          ),
        );
        this.#closeControl();
        exited();
      });
    } else if (options.kind === 'process') {
      const extra = options.fds ?? [];
      const child = fork(entry, [], {
        stdio: ['ignore', 'ignore', 'pipe', 'ipc', ...extra],
        serialization: 'advanced',
        execArgv: [],
      });
      this.#child = child;
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (s: string) => {
        this.#stderr = (this.#stderr + s).slice(-4000);
      });
      child.on('message', (m) => this.#deliver(m as FromEndpoint));
      child.on('error', (err) => this.#die(err));
      child.on('exit', (code, signal) => {
        this.#die(
          new BenchError(
            'ENDPOINT_FAILED',
            `${this.label} exited (${signal ?? `code ${code}`})${this.#tail()}`,
          ),
        );
        exited();
      });
    } else {
      const data: { memory?: SharedArrayBuffer; port?: MessagePort } = {};
      if (options.memory) data.memory = options.memory;
      if (options.port) data.port = options.port;
      const worker = new Worker(entry, {
        workerData: data,
        transferList: options.port ? [options.port] : [],
        stdout: true,
        stderr: true,
      });
      this.#worker = worker;
      worker.stderr.setEncoding('utf8');
      worker.stderr.on('data', (s: string) => {
        this.#stderr = (this.#stderr + s).slice(-4000);
      });
      worker.stdout.resume();
      worker.on('message', (m) => this.#deliver(m as FromEndpoint));
      worker.on('error', (err) => this.#die(err));
      worker.on('exit', (code) => {
        this.#die(new BenchError('ENDPOINT_FAILED', `${this.label} exited (code ${code})${this.#tail()}`));
        exited();
      });
    }
  }

  #tail(): string {
    const t = this.#stderr.trim();
    return t === '' ? '' : `: ${t.split('\n').slice(-3).join(' | ')}`;
  }

  #deliver(m: FromEndpoint): void {
    if (m?.type === 'error') {
      this.#die(new BenchError('ENDPOINT_FAILED', `${this.label}: ${m.code}: ${m.message}`));
      return;
    }
    for (const w of this.#waiters) {
      if (w.accept(m)) {
        this.#waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(m);
        return;
      }
    }
    this.#queue.push(m);
  }

  #die(err: Error): void {
    if (this.#dead !== undefined) return;
    this.#dead = err;
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.#waiters.clear();
  }

  #write(msg: ToEndpoint): void {
    const sock = this.#sock!;
    const fds = this.#fdsToSend;
    this.#fdsToSend = [];
    writeFrame(sock, msg, fds); // the descriptors go with the first frame (setup)
  }

  #closeControl(): void {
    this.#sock?.close();
    this.#server?.close();
  }

  send(msg: ToEndpoint): void {
    if (this.#dead) throw this.#dead;
    if (this.#server) {
      if (this.#sock) this.#write(msg);
      else this.#outbox.push(msg);
    } else if (this.#child) this.#child.send(msg);
    else this.#worker?.postMessage(msg);
  }

  /** The next control message of `type` (queued or future); rejects on timeout or endpoint death. */
  next<T extends FromEndpoint['type']>(
    type: T,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<Extract<FromEndpoint, { type: T }>> {
    const idx = this.#queue.findIndex((m) => m.type === type);
    if (idx >= 0) {
      const [m] = this.#queue.splice(idx, 1);
      return Promise.resolve(m as Extract<FromEndpoint, { type: T }>);
    }
    if (this.#dead) return Promise.reject(this.#dead);
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        accept: (m) => m.type === type,
        resolve: (m) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(m as Extract<FromEndpoint, { type: T }>);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
        timer: setTimeout(() => {
          this.#waiters.delete(w);
          w.reject(
            new BenchError(
              'ENDPOINT_TIMEOUT',
              `${this.label}: no ${type} within ${timeoutMs} ms${this.#tail()}`,
            ),
          );
        }, timeoutMs),
      };
      const onAbort = () => {
        this.#waiters.delete(w);
        clearTimeout(w.timer);
        w.reject(new BenchError('ABORTED', 'the benchmark was aborted'));
      };
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(w);
    });
  }

  /** Asks the endpoint to exit; kills it if it has not gone within `graceMs`. */
  async stop(graceMs = 2000): Promise<void> {
    if (this.#dead === undefined) {
      try {
        this.send({ type: 'exit' });
      } catch {
        // already gone
      }
    }
    const timer = setTimeout(() => this.kill(), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.#child && this.#child.exitCode === null && this.#child.signalCode === null)
      this.#child.kill('SIGKILL');
    if (this.#worker) void this.#worker.terminate();
  }
}
