/**
 * What a vipc endpoint does with a link: echo, sink, source, or ping (send
 * numbered messages and time their echoes). Used in-process by `vipc demo` and
 * by the `vipc endpoint` command that `vipc up` and the demo's front-end run.
 */
import type { MessageLink } from './link.js';
import { checkMessage, LatencyStats, makeMessage, nowUs, throughput } from './traffic.js';

export type Action = 'echo' | 'sink' | 'source' | 'ping';

export interface Counters {
  sent: number;
  received: number;
  bytesSent: number;
  bytesReceived: number;
  /** Received messages that were not the generated pattern (sink/ping only). */
  corrupt: number;
}

export interface RunOptions {
  signal?: AbortSignal;
  /** Called about every `progressMs` with the counters so far (ping: and the mean round trip since the last call, µs). */
  onProgress?: (c: Readonly<Counters>, elapsedS: number, recentRttUs?: number) => void;
  progressMs?: number;
}

export interface PingOptions extends RunOptions {
  count: number;
  size: number;
  /** Messages in flight at most (must not exceed what the rings hold). */
  window: number;
  /** Give up waiting for missing echoes after this long without one (ms). */
  idleMs: number;
}

export interface PingResult extends Counters {
  lost: number;
  seconds: number;
  messagesPerSecond: number;
  megabytesPerSecond: number;
  /** Round-trip time of each message, in µs (includes queueing behind the window). */
  latency: ReturnType<LatencyStats['summary']>;
}

function counters(): Counters {
  return { sent: 0, received: 0, bytesSent: 0, bytesReceived: 0, corrupt: 0 };
}

function ticker(c: Counters, start: number, o: RunOptions, recent?: () => number | undefined): () => void {
  if (!o.onProgress) return () => {};
  const t = setInterval(() => o.onProgress!(c, (nowUs() - start) / 1e6, recent?.()), o.progressMs ?? 250);
  return () => clearInterval(t);
}

/** Returns when the link closes or `signal` aborts. */
export async function runEcho(link: MessageLink, o: RunOptions = {}): Promise<Counters> {
  const c = counters();
  const stop = ticker(c, nowUs(), o);
  const onAbort = () => void link.close();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const msg of link) {
      c.received++;
      c.bytesReceived += msg.length;
      await link.send(msg);
      c.sent++;
      c.bytesSent += msg.length;
    }
  } finally {
    stop();
    o.signal?.removeEventListener('abort', onAbort);
  }
  return c;
}

/** Counts (and checks, with `verify`) messages until `count` arrived (0: until the link closes). */
export async function runSink(
  link: MessageLink,
  o: RunOptions & {
    count: number;
    verify?: boolean;
    onMessage?: (m: Uint8Array) => Promise<void> | undefined;
  },
): Promise<Counters> {
  const c = counters();
  const stop = ticker(c, nowUs(), o);
  const onAbort = () => void link.close();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (o.count > 0 || !o.signal?.aborted) {
      for await (const msg of link) {
        c.received++;
        c.bytesReceived += msg.length;
        if (o.verify && checkMessage(msg) === undefined) c.corrupt++;
        const wait = o.onMessage?.(msg);
        if (wait) await wait;
        if (o.count > 0 && c.received >= o.count) break;
      }
    }
  } finally {
    stop();
    o.signal?.removeEventListener('abort', onAbort);
  }
  return c;
}

/** Sends `count` generated messages (0: until aborted). */
export async function runSource(
  link: MessageLink,
  o: RunOptions & { count: number; size: number },
): Promise<Counters> {
  const c = counters();
  const stop = ticker(c, nowUs(), o);
  // one buffer, refilled per message: send() has copied it once it resolves
  const scratch = new Uint8Array(o.size);
  try {
    for (let seq = 0; (o.count === 0 || seq < o.count) && !o.signal?.aborted; seq++) {
      await link.send(makeMessage(seq, o.size, scratch));
      c.sent++;
      c.bytesSent += o.size;
    }
  } finally {
    stop();
  }
  return c;
}

/**
 * Sends `count` numbered messages with at most `window` in flight and matches
 * each echo to its message: round-trip times, and lost/corrupt counts.
 */
export async function runPing(link: MessageLink, o: PingOptions): Promise<PingResult> {
  const c = counters();
  const latency = new LatencyStats();
  const sentAt = new Map<number, number>();
  const start = nowUs();
  let rttSum = 0;
  let rttN = 0;
  const stop = ticker(c, start, o, () => {
    const mean = rttN > 0 ? rttSum / rttN : undefined;
    rttSum = 0;
    rttN = 0;
    return mean;
  });
  let wake: (() => void) | undefined;
  const wakeSender = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  let lastEcho = nowUs();
  let receiverDone = false;

  const receiver = (async () => {
    try {
      for await (const msg of link) {
        const seq = checkMessage(msg, o.size);
        const at = seq === undefined ? undefined : sentAt.get(seq);
        if (seq === undefined || at === undefined) {
          c.corrupt++;
        } else {
          sentAt.delete(seq);
          c.received++;
          c.bytesReceived += msg.length;
          const rtt = nowUs() - at;
          latency.add(rtt);
          rttSum += rtt;
          rttN++;
        }
        lastEcho = nowUs();
        wakeSender();
        if (c.received + c.corrupt >= o.count) break;
      }
    } finally {
      receiverDone = true;
      wakeSender();
    }
  })();

  const abort = () => wakeSender();
  o.signal?.addEventListener('abort', abort, { once: true });
  // one buffer, refilled per message: send() has copied it once it resolves
  const scratch = new Uint8Array(o.size);
  try {
    for (let seq = 0; seq < o.count && !o.signal?.aborted && !receiverDone; seq++) {
      while (sentAt.size >= o.window && !o.signal?.aborted && !receiverDone) {
        await new Promise<void>((r) => {
          wake = r;
        });
      }
      if (o.signal?.aborted || receiverDone) break;
      sentAt.set(seq, nowUs());
      await link.send(makeMessage(seq, o.size, scratch));
      c.sent++;
      c.bytesSent += o.size;
    }
    // Wait for the last echoes; whatever has not come back after idleMs of silence is lost.
    lastEcho = Math.max(lastEcho, nowUs());
    while (!receiverDone && c.received + c.corrupt < c.sent && !o.signal?.aborted) {
      if (nowUs() - lastEcho > o.idleMs * 1000) break;
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    o.signal?.removeEventListener('abort', abort);
    stop();
  }
  const seconds = (nowUs() - start) / 1e6;
  if (!receiverDone) {
    await link.close();
    await receiver.catch(() => {});
  } else await receiver;
  return {
    ...c,
    lost: c.sent - c.received,
    ...throughput(c.received, c.bytesReceived, seconds),
    latency: latency.summary(),
  };
}
