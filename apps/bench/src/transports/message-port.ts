import type { MessagePort } from 'node:worker_threads';
import { nowNs } from '../cpu.js';
import { MessageKind, type Phase, PORT_ACK_EVERY, PORT_WINDOW, PORT_WINDOW_BYTES } from '../defs.js';
import type { EndpointContext, ReceiverEndpoint, SenderEndpoint, TransportModule } from '../endpoint-api.js';
import { PhaseClock } from '../endpoint-api.js';
import { BenchError } from '../errors.js';
import { makeMessage, ReceiverTally } from '../message.js';
import type { SenderReport } from '../protocol.js';
import { RoundTrips, throughputReport } from './common.js';

/** Acknowledgement from B: messages received so far in the throughput phase. */
interface Ack {
  ack: number;
}

function portOf(ctx: EndpointContext): MessagePort {
  const port = ctx.shared?.port;
  if (port === undefined)
    throw new BenchError('PROTOCOL', 'the message-port transport runs only in a worker');
  return port;
}

/** Credit window in messages, and how often B acknowledges (a quarter window at most, so A never waits forever). */
export function portWindow(size: number): { window: number; ackEvery: number } {
  const window = Math.max(1, Math.min(PORT_WINDOW, Math.floor(PORT_WINDOW_BYTES / size)));
  return { window, ackEvery: Math.max(1, Math.min(PORT_ACK_EVERY, Math.floor(window / 4))) };
}

function asBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  throw new BenchError('PROTOCOL', 'message-port peer sent something other than bytes');
}

class PortSender implements SenderEndpoint {
  readonly #port: MessagePort;
  readonly #size: number;

  constructor(port: MessagePort, size: number) {
    this.#port = port;
    this.#size = size;
  }

  run(phase: Phase, warmupMs: number, durationMs: number): Promise<SenderReport> {
    return phase === 'throughput'
      ? this.#throughput(warmupMs, durationMs)
      : this.#latency(warmupMs, durationMs);
  }

  #throughput(warmupMs: number, durationMs: number): Promise<SenderReport> {
    const port = this.#port;
    const warm = makeMessage(this.#size, MessageKind.WARM);
    const measure = makeMessage(this.#size, MessageKind.MEASURE);
    const end = makeMessage(this.#size, MessageKind.END, 'throughput');
    const { window } = portWindow(this.#size);
    return new Promise((resolve) => {
      const clock = new PhaseClock(warmupMs, durationMs);
      let sent = 0;
      let measured = 0;
      let acked = 0;
      let stalls = 0;
      let finished = false;
      const pump = (): void => {
        if (finished) return;
        for (;;) {
          const state = clock.tick();
          if (state === 2) {
            finished = true;
            port.off('message', onMessage);
            port.postMessage(end);
            resolve(throughputReport(clock, sent, measured, { stalls }));
            return;
          }
          if (sent - acked >= window) {
            stalls++;
            return; // resumed by the next acknowledgement
          }
          const buf = state === 1 ? measure : warm;
          const n = Math.min(16, window - (sent - acked));
          for (let i = 0; i < n; i++) port.postMessage(buf);
          sent += n;
          if (state === 1) measured += n;
        }
      };
      const onMessage = (data: unknown) => {
        const a = data as Ack;
        if (typeof a === 'object' && a !== null && typeof a.ack === 'number') {
          acked = a.ack;
          pump();
        }
      };
      port.on('message', onMessage);
      pump();
    });
  }

  #latency(warmupMs: number, durationMs: number): Promise<SenderReport> {
    const port = this.#port;
    const pingWarm = makeMessage(this.#size, MessageKind.PING_WARM);
    const ping = makeMessage(this.#size, MessageKind.PING);
    const end = makeMessage(this.#size, MessageKind.END, 'latency');
    return new Promise((resolve, reject) => {
      const rt = new RoundTrips(warmupMs, durationMs);
      const send = () => {
        const state = rt.begin();
        if (state === 2) {
          port.off('message', onMessage);
          port.postMessage(end);
          resolve(rt.report());
          return;
        }
        port.postMessage(state === 1 ? ping : pingWarm);
      };
      const onMessage = (data: unknown) => {
        const t1 = nowNs();
        if (!(data instanceof Uint8Array)) return; // a late throughput acknowledgement
        if (data.length !== this.#size || data[0] !== MessageKind.PING) {
          reject(new BenchError('PROTOCOL', 'message-port reply is not a PING echo of the right size'));
          return;
        }
        rt.replied(t1);
        send();
      };
      port.on('message', onMessage);
      send();
    });
  }

  close(): void {
    this.#port.close();
  }
}

export const messagePort: TransportModule = {
  async createReceiver(ctx: EndpointContext): Promise<ReceiverEndpoint> {
    const port = portOf(ctx);
    const size = ctx.spec.size;
    const reply = makeMessage(size, MessageKind.PING);
    const { ackEvery } = portWindow(size);
    let sinceAck = 0;
    let receivedInPhase = 0;
    const tally = new ReceiverTally(size, (r) => {
      receivedInPhase = 0;
      sinceAck = 0;
      ctx.receiverReport(r);
    });
    port.on('message', (data: unknown) => {
      try {
        const bytes = asBytes(data);
        if (bytes.length !== size) {
          throw new BenchError('PROTOCOL', `message-port message of ${bytes.length} bytes, expected ${size}`);
        }
        const kind = bytes[0]!;
        if (tally.message(kind, bytes[1]!)) port.postMessage(reply);
        if (kind === MessageKind.WARM || kind === MessageKind.MEASURE) {
          receivedInPhase++;
          if (++sinceAck >= ackEvery) {
            sinceAck = 0;
            port.postMessage({ ack: receivedInPhase } satisfies Ack);
          }
        }
      } catch (err) {
        ctx.fail(err);
      }
    });
    return { close: () => port.close() };
  },
  async createSender(ctx: EndpointContext): Promise<SenderEndpoint> {
    return new PortSender(portOf(ctx), ctx.spec.size);
  },
};
