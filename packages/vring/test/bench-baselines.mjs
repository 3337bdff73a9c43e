// The baselines of `pnpm --filter @vipc/vring bench`: what a Node user would
// pick instead of a vring. A Unix-socket stream between two processes (one
// write() per message, and writes coalesced with cork()/uncork() per 128, the
// ring's batch), and a worker MessagePort (one postMessage per message, the
// bytes cloned). Each measures messages/s at the receiver and a one-in-flight
// round trip.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker } from 'node:worker_threads';

const SELF = fileURLToPath(import.meta.url);
const CORK = 128;

/** Splits a stream into `msg`-byte messages; calls onMessage(firstByte) per message. */
function framer(msg, onMessage) {
  let pos = 0;
  let first = 0;
  return (chunk) => {
    let i = 0;
    while (i < chunk.length) {
      if (pos === 0) first = chunk[i];
      const step = Math.min(msg - pos, chunk.length - i);
      i += step;
      pos += step;
      if (pos === msg) {
        pos = 0;
        onMessage(first);
      }
    }
  };
}

// ---- the receiving process -------------------------------------------------
// `node bench-baselines.mjs sink|echo <path> <msg>`: listens on `path`, takes
// one connection. sink: counts messages from the first one on; at the
// sender's end of stream writes {messages, seconds} and exits. echo: writes
// every message back.
async function receiver([role, path, msgText]) {
  const msg = Number(msgText);
  const server = net.createServer((s) => {
    server.close();
    if (role === 'echo') {
      const reply = Buffer.alloc(msg, 2);
      s.on(
        'data',
        framer(msg, () => s.write(reply)),
      );
      s.on('end', () => s.end());
      return;
    }
    let messages = 0;
    let t0 = 0n;
    let last = 0n;
    s.on(
      'data',
      framer(msg, () => {
        if (messages === 0) t0 = process.hrtime.bigint();
        messages++;
        last = process.hrtime.bigint();
      }),
    );
    s.on('end', () => {
      // the last message counted marks the end (the sender's close can lag)
      s.end(JSON.stringify({ messages: messages - 1, seconds: Number(last - t0) / 1e9 }));
    });
  });
  server.listen(path, () => process.stdout.write('ready\n'));
}

function startReceiver(role, msg) {
  const dir = mkdtempSync(join(tmpdir(), 'vring-bench-'));
  const path = join(dir, 's');
  const child = spawn(process.execPath, [SELF, role, path, String(msg)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ready = new Promise((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) =>
      reject(new Error(`socket ${role} process exited (${code}) before it listened`)),
    );
  });
  const cleanup = () => {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  return { path, child, ready, cleanup };
}

function connect(path) {
  return new Promise((resolve, reject) => {
    const s = net.connect(path, () => resolve(s));
    s.once('error', reject);
  });
}

/** Messages/s through a Unix socket at the receiver: one write per message, or `corked` per CORK. */
export async function socketThroughput(msg, seconds, corked) {
  const r = startReceiver('sink', msg);
  try {
    await r.ready;
    const s = await connect(r.path);
    const payload = Buffer.alloc(msg, 0x5a);
    const end = Date.now() + seconds * 1000;
    await new Promise((resolve, reject) => {
      s.once('error', reject);
      const pump = () => {
        while (Date.now() < end) {
          let ok = true;
          if (corked) s.cork();
          for (let i = 0; i < (corked ? CORK : 16); i++) ok = s.write(payload) && ok;
          if (corked) s.uncork();
          if (!ok) return s.once('drain', pump);
        }
        resolve();
      };
      pump();
    });
    const reply = await new Promise((resolve, reject) => {
      let text = '';
      s.on('data', (d) => {
        text += d;
      });
      s.once('end', () => resolve(text));
      s.once('error', reject);
      s.end();
    });
    const { messages, seconds: dt } = JSON.parse(reply);
    return { rate: messages / dt, gbps: (messages * msg) / dt / 1e9 };
  } finally {
    r.cleanup();
  }
}

/** One message in flight through a Unix socket: send, wait for the whole echo; µs per round trip. */
export async function socketRoundTrip(msg, samples) {
  const r = startReceiver('echo', msg);
  try {
    await r.ready;
    const s = await connect(r.path);
    const payload = Buffer.alloc(msg, 1);
    const times = new Float64Array(samples);
    const warm = Math.min(2000, samples);
    await new Promise((resolve, reject) => {
      let i = -warm;
      let t = 0n;
      const send = () => {
        t = process.hrtime.bigint();
        s.write(payload);
      };
      s.on(
        'data',
        framer(msg, () => {
          if (i >= 0) times[i] = Number(process.hrtime.bigint() - t) / 1000;
          if (++i === samples) return resolve();
          send();
        }),
      );
      s.once('error', reject);
      send();
    });
    s.destroy();
    return percentiles(times);
  } finally {
    r.cleanup();
  }
}

// ---- MessagePort -----------------------------------------------------------
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { port, mode } = workerData;
let messages = 0, t0 = 0n, last = 0n;
port.on('message', (m) => {
  if (mode === 'echo') { port.postMessage(m); return; }
  if (m === 'end') { port.postMessage({ messages: messages - 1, seconds: Number(last - t0) / 1e9 }); return; }
  if (messages === 0) t0 = process.hrtime.bigint();
  messages++;
  last = process.hrtime.bigint();
  if ((messages & 1023) === 0) port.postMessage(messages);
});
parentPort.postMessage('ready');
`;

function startWorker(mode) {
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(WORKER, { eval: true, workerData: { port: port2, mode }, transferList: [port2] });
  const ready = new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return { port: port1, worker, ready };
}

/** Messages/s through a worker MessagePort (a Uint8Array cloned per postMessage), at most 8192 in flight. */
export async function portThroughput(msg, seconds) {
  const w = startWorker('sink');
  try {
    await w.ready;
    const payload = new Uint8Array(msg).fill(0x5a);
    let acked = 0;
    let sent = 0;
    let wake = null;
    const result = new Promise((resolve) => {
      w.port.on('message', (m) => {
        if (typeof m === 'number') {
          acked = m;
          if (wake) {
            const f = wake;
            wake = null;
            f();
          }
        } else resolve(m);
      });
    });
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      while (sent - acked < 8192) {
        for (let i = 0; i < 64; i++) w.port.postMessage(payload);
        sent += 64;
      }
      await new Promise((r) => {
        wake = r;
      });
    }
    w.port.postMessage('end');
    const { messages, seconds: dt } = await result;
    return { rate: messages / dt, gbps: (messages * msg) / dt / 1e9 };
  } finally {
    w.port.close();
    await w.worker.terminate();
  }
}

/** One message in flight through a MessagePort and back; µs per round trip. */
export async function portRoundTrip(msg, samples) {
  const w = startWorker('echo');
  try {
    await w.ready;
    const payload = new Uint8Array(msg).fill(1);
    const times = new Float64Array(samples);
    const warm = Math.min(2000, samples);
    await new Promise((resolve) => {
      let i = -warm;
      let t = 0n;
      const send = () => {
        t = process.hrtime.bigint();
        w.port.postMessage(payload);
      };
      w.port.on('message', () => {
        if (i >= 0) times[i] = Number(process.hrtime.bigint() - t) / 1000;
        if (++i === samples) return resolve();
        send();
      });
      send();
    });
    return percentiles(times);
  } finally {
    w.port.close();
    await w.worker.terminate();
  }
}

export function percentiles(times) {
  const sorted = Float64Array.from(times).sort();
  return { p50: sorted[sorted.length >> 1], p99: sorted[Math.floor(sorted.length * 0.99)] };
}

if (process.argv[1] === SELF && (process.argv[2] === 'sink' || process.argv[2] === 'echo')) {
  await receiver(process.argv.slice(2));
}
