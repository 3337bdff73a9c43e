import { constants as fsConstants, openSync } from 'node:fs';
import net from 'node:net';
import { nowNs } from '../cpu.js';
import { CORK_BATCH, MessageKind, type Phase } from '../defs.js';
import type { EndpointContext, ReceiverEndpoint, SenderEndpoint, TransportModule } from '../endpoint-api.js';
import { PhaseClock } from '../endpoint-api.js';
import { BenchError } from '../errors.js';
import { makeMessage, ReceiverTally, StreamFramer } from '../message.js';
import type { SenderReport } from '../protocol.js';
import { RoundTrips, throughputReport } from './common.js';

interface Duplex {
  input: net.Socket;
  output: net.Socket;
  close(): void;
}

function duplexOf(socket: net.Socket): Duplex {
  return { input: socket, output: socket, close: () => socket.destroy() };
}

/** Opens both FIFOs read-write and non-blocking (no open-order deadlock; EOF never matters here). */
function openFifos(readPath: string, writePath: string): Duplex {
  const flags = fsConstants.O_RDWR | fsConstants.O_NONBLOCK;
  const input = new net.Socket({ fd: openSync(readPath, flags), readable: true, writable: false });
  const output = new net.Socket({ fd: openSync(writePath, flags), readable: false, writable: true });
  return {
    input,
    output,
    close: () => {
      input.destroy();
      output.destroy();
    },
  };
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new BenchError('PROTOCOL', `endpoint spec lacks ${what}`);
  return value;
}

/** B: counts messages, echoes PINGs with a same-size reply, reports at END. */
function serve(ctx: EndpointContext, d: Duplex): void {
  const size = ctx.spec.size;
  const reply = makeMessage(size, MessageKind.PING);
  const tally = new ReceiverTally(size, (r) => ctx.receiverReport(r));
  const framer = new StreamFramer(size, (kind, phase) => {
    if (tally.message(kind, phase)) d.output.write(reply);
  });
  d.input.on('data', (chunk: Buffer) => {
    try {
      framer.push(chunk);
    } catch (err) {
      ctx.fail(err);
    }
  });
  d.input.on('error', (err) => ctx.fail(err));
  d.output.on('error', (err) => ctx.fail(err));
}

function connectSocket(options: net.NetConnectOpts): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(options);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

function listen(server: net.Server, arg: { path: string } | { port: number; host: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(arg, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

class StreamSender implements SenderEndpoint {
  readonly #d: Duplex;
  readonly #size: number;
  readonly #corked: boolean;

  constructor(d: Duplex, size: number, corked: boolean) {
    this.#d = d;
    this.#size = size;
    this.#corked = corked;
  }

  run(phase: Phase, warmupMs: number, durationMs: number): Promise<SenderReport> {
    return phase === 'throughput'
      ? this.#throughput(warmupMs, durationMs)
      : this.#latency(warmupMs, durationMs);
  }

  #throughput(warmupMs: number, durationMs: number): Promise<SenderReport> {
    const out = this.#d.output;
    const warm = makeMessage(this.#size, MessageKind.WARM);
    const measure = makeMessage(this.#size, MessageKind.MEASURE);
    const end = makeMessage(this.#size, MessageKind.END, 'throughput');
    const corked = this.#corked;
    const perCheck = corked ? CORK_BATCH : 16;
    return new Promise((resolve, reject) => {
      const clock = new PhaseClock(warmupMs, durationMs);
      let sent = 0;
      let measured = 0;
      let drains = 0;
      const onError = (err: Error) => reject(err);
      out.once('error', onError);
      const pump = (): void => {
        for (;;) {
          const state = clock.tick();
          if (state === 2) {
            out.off('error', onError);
            out.write(end);
            resolve(throughputReport(clock, sent, measured, { drains }));
            return;
          }
          const buf = state === 1 ? measure : warm;
          let ok = true;
          let n = 0;
          if (corked) out.cork();
          while (n < perCheck) {
            n++;
            ok = out.write(buf);
            if (!ok) break;
          }
          if (corked) out.uncork();
          sent += n;
          if (state === 1) measured += n;
          if (!ok) {
            drains++;
            out.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
  }

  #latency(warmupMs: number, durationMs: number): Promise<SenderReport> {
    const { input, output } = this.#d;
    const pingWarm = makeMessage(this.#size, MessageKind.PING_WARM);
    const ping = makeMessage(this.#size, MessageKind.PING);
    const end = makeMessage(this.#size, MessageKind.END, 'latency');
    return new Promise((resolve, reject) => {
      const rt = new RoundTrips(warmupMs, durationMs);
      const send = () => {
        const state = rt.begin();
        if (state === 2) {
          input.off('data', onData);
          input.off('error', reject);
          output.write(end);
          resolve(rt.report());
          return;
        }
        output.write(state === 1 ? ping : pingWarm);
      };
      const framer = new StreamFramer(this.#size, (kind) => {
        const t1 = nowNs();
        if (kind !== MessageKind.PING) {
          reject(new BenchError('PROTOCOL', `reply with kind byte ${kind}, expected a PING echo`));
          return;
        }
        rt.replied(t1);
        send();
      });
      const onData = (chunk: Buffer) => {
        try {
          framer.push(chunk);
        } catch (err) {
          reject(err);
        }
      };
      input.on('data', onData);
      input.once('error', reject);
      send();
    });
  }

  close(): void {
    this.#d.close();
  }
}

function streamModule(kind: 'unix-socket' | 'unix-socket-corked' | 'tcp' | 'pipe'): TransportModule {
  const corked = kind === 'unix-socket-corked';
  return {
    async createReceiver(ctx: EndpointContext): Promise<ReceiverEndpoint> {
      if (kind === 'pipe') {
        const d = openFifos(required(ctx.spec.fifoAtoB, 'fifoAtoB'), required(ctx.spec.fifoBtoA, 'fifoBtoA'));
        serve(ctx, d);
        return { close: () => d.close() };
      }
      const sockets = new Set<net.Socket>();
      const server = net.createServer((socket) => {
        if (sockets.size > 0) {
          socket.destroy();
          return;
        }
        sockets.add(socket);
        if (kind === 'tcp') socket.setNoDelay(true);
        serve(ctx, duplexOf(socket));
      });
      if (kind === 'tcp') await listen(server, { port: 0, host: '127.0.0.1' });
      else await listen(server, { path: required(ctx.spec.path, 'path') });
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : undefined;
      const close = () => {
        for (const s of sockets) s.destroy();
        server.close();
      };
      return port === undefined ? { close } : { port, close };
    },
    async createSender(ctx: EndpointContext): Promise<SenderEndpoint> {
      if (kind === 'pipe') {
        const d = openFifos(required(ctx.spec.fifoBtoA, 'fifoBtoA'), required(ctx.spec.fifoAtoB, 'fifoAtoB'));
        return new StreamSender(d, ctx.spec.size, false);
      }
      const socket =
        kind === 'tcp'
          ? await connectSocket({ port: required(ctx.spec.port, 'port'), host: '127.0.0.1', noDelay: true })
          : await connectSocket({ path: required(ctx.spec.path, 'path') });
      return new StreamSender(duplexOf(socket), ctx.spec.size, corked);
    },
  };
}

export const unixSocket = streamModule('unix-socket');
export const unixSocketCorked = streamModule('unix-socket-corked');
export const tcp = streamModule('tcp');
export const pipe = streamModule('pipe');
