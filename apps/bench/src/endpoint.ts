/**
 * The endpoint host: the entry point of every endpoint process and worker.
 * It receives its EndpointSpec from the coordinator, sets the transport up,
 * says `ready`, runs the phases it is asked to run (sender) or reports each
 * phase's END (receiver), and exits when told to or when the coordinator goes.
 */
import { isMainThread, type MessagePort, parentPort, workerData } from 'node:worker_threads';
import type { EndpointContext, ReceiverEndpoint, SenderEndpoint, TransportModule } from './endpoint-api.js';
import { BenchError } from './errors.js';
import type { EndpointSpec, FromEndpoint, ToEndpoint, TransportId } from './protocol.js';

async function loadTransport(id: TransportId): Promise<TransportModule> {
  switch (id) {
    case 'unix-socket':
      return (await import('./transports/stream.js')).unixSocket;
    case 'unix-socket-corked':
      return (await import('./transports/stream.js')).unixSocketCorked;
    case 'tcp':
      return (await import('./transports/stream.js')).tcp;
    case 'pipe':
      return (await import('./transports/stream.js')).pipe;
    case 'message-port':
      return (await import('./transports/message-port.js')).messagePort;
    case 'vring':
      return (await import('./transports/vring.js')).vring;
    default:
      throw new BenchError('PROTOCOL', `unknown transport ${String(id)}`);
  }
}

interface Channel {
  send(msg: FromEndpoint): void;
  onMessage(handler: (msg: ToEndpoint) => void): void;
  shared?: { memory?: SharedArrayBuffer; port?: MessagePort };
  exit(code: number): void;
}

/** Inside a container: the control socket named by VIPC_BENCH_CONTROL (fds arrive with the setup frame). */
async function socketChannel(path: string): Promise<Channel & { fdsFor: (spec: EndpointSpec) => void }> {
  const shm = await import('@vipc/shm');
  const { readFrames, writeFrame } = await import('./control-socket.js');
  const sock = await shm.connect(path, { timeoutMs: 20_000 });
  let handler: ((msg: ToEndpoint) => void) | undefined;
  const pending: ToEndpoint[] = [];
  let received: number[] = [];
  readFrames(sock, (m, fds) => {
    // Ownership of received descriptors passes to the transport (it wraps the numbers again).
    if (fds.length > 0) received = fds.map((f) => f.release());
    const msg = m as ToEndpoint;
    if (handler) handler(msg);
    else pending.push(msg);
  }).catch(() => process.exit(0)); // the coordinator went away
  return {
    send: (m) => writeFrame(sock, m),
    onMessage: (h) => {
      handler = h;
      for (const m of pending.splice(0)) h(m);
    },
    exit: (code) => {
      sock.close();
      process.exit(code);
    },
    fdsFor: (spec) => {
      if (received.length >= 3) spec.fds = { memory: received[0]!, kick: received[1]!, call: received[2]! };
    },
  };
}

function channel(): Channel {
  if (!isMainThread && parentPort !== null) {
    const port = parentPort;
    const data = (workerData ?? {}) as { memory?: SharedArrayBuffer; port?: MessagePort };
    const shared: { memory?: SharedArrayBuffer; port?: MessagePort } = {};
    if (data.memory) shared.memory = data.memory;
    if (data.port) shared.port = data.port;
    return {
      send: (m) => port.postMessage(m),
      onMessage: (h) => port.on('message', h),
      shared,
      exit: (code) => {
        port.close();
        process.exit(code);
      },
    };
  }
  if (typeof process.send !== 'function') {
    throw new BenchError(
      'PROTOCOL',
      'the endpoint host must be started by the bench coordinator (no IPC channel)',
    );
  }
  // The coordinator going away (crash, kill) must not leave a spinning orphan.
  process.on('disconnect', () => process.exit(0));
  return {
    send: (m) => process.send?.(m),
    onMessage: (h) => process.on('message', (m) => h(m as ToEndpoint)),
    exit: (code) => {
      process.disconnect?.();
      process.exit(code);
    },
  };
}

function errorMessage(err: unknown): FromEndpoint {
  const e = err as { code?: unknown; message?: unknown };
  return {
    type: 'error',
    code: typeof e?.code === 'string' ? e.code : 'ENDPOINT_FAILED',
    message: typeof e?.message === 'string' ? e.message : String(err),
  };
}

async function start(): Promise<void> {
  const control = process.env.VIPC_BENCH_CONTROL;
  const ch: Channel & { fdsFor?: (spec: EndpointSpec) => void } = control
    ? await socketChannel(control)
    : channel();
  let sender: SenderEndpoint | undefined;
  let receiver: ReceiverEndpoint | undefined;
  let failed = false;
  const fail = (err: unknown) => {
    if (failed) return;
    failed = true;
    ch.send(errorMessage(err));
    try {
      sender?.close();
      receiver?.close();
    } catch {
      // closing after a failure: nothing more to report
    }
  };
  ch.onMessage((msg) => {
    (async () => {
      switch (msg.type) {
        case 'setup': {
          ch.fdsFor?.(msg.spec);
          const transport = await loadTransport(msg.spec.transport);
          const ctx: EndpointContext = {
            spec: msg.spec,
            receiverReport: (report) => ch.send({ type: 'receiver-report', report }),
            fail,
          };
          if (ch.shared) ctx.shared = ch.shared;
          if (msg.spec.role === 'b') {
            receiver = await transport.createReceiver(ctx);
            ch.send(receiver.port === undefined ? { type: 'ready' } : { type: 'ready', port: receiver.port });
          } else {
            sender = await transport.createSender(ctx);
            ch.send({ type: 'ready' });
          }
          return;
        }
        case 'run': {
          if (sender === undefined)
            throw new BenchError('PROTOCOL', 'run before setup, or sent to a receiver');
          const report = await sender.run(msg.phase, msg.warmupMs, msg.durationMs);
          ch.send({ type: 'sender-report', report });
          return;
        }
        case 'exit':
          sender?.close();
          receiver?.close();
          // Let queued writes (the last reports) leave before going.
          setImmediate(() => ch.exit(0));
          return;
        default:
          throw new BenchError('PROTOCOL', `unknown control message ${JSON.stringify(msg)}`);
      }
    })().catch(fail);
  });
}

start().catch((err) => {
  process.stderr.write(`bench endpoint: ${(err as Error).message}\n`);
  process.exit(1);
});
