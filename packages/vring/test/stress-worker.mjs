// One side of the worker_threads stress test; wakes the other through
// Atomics.wait/notify on a bell (the thread equivalent of an eventfd).
import { parentPort, workerData } from 'node:worker_threads';
import { StressDevice, StressDriver } from './stress-lib.mjs';

const { role, kind, size, buffer, bell, total, seconds } = workerData;
const bells = new Int32Array(bell);
const KICK = 0;
const CALL = 1;
const ring = (i) => {
  Atomics.add(bells, i, 1);
  Atomics.notify(bells, i);
};
const WAIT_MS = Number(process.env.VRING_STRESS_WAIT_MS ?? 10_000);

try {
  const side =
    role === 'driver'
      ? new StressDriver({
          kind,
          size,
          buffer,
          total,
          deadline: Date.now() + seconds * 1000,
          kick: () => ring(KICK),
        })
      : new StressDevice({ kind, size, buffer, call: () => ring(CALL) });
  const mine = role === 'driver' ? CALL : KICK;
  let sleeps = 0;
  let lostWakeups = 0;
  for (;;) {
    const seen = Atomics.load(bells, mine); // before step(): a notification after this wakes the wait below
    const r = side.step();
    if (r === 'done') break;
    if (r === 'sleep') {
      sleeps++;
      if (Atomics.wait(bells, mine, seen, WAIT_MS) === 'timed-out') {
        // Nobody rang for 10 s. If there is work now, a notification was lost.
        const pending = role === 'driver' ? side.q.hasUsed() : side.hasWork();
        if (pending) lostWakeups++;
      }
    }
  }
  parentPort.postMessage({
    ok: true,
    role,
    sent: side.sent,
    received: side.received,
    processed: side.processed,
    notifications: role === 'driver' ? side.kicks : side.calls,
    sleeps,
    lostWakeups,
  });
} catch (e) {
  parentPort.postMessage({ ok: false, role, error: String(e?.stack ?? e) });
}
