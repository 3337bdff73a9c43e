// Stress between two worker threads (SharedArrayBuffer, Atomics.wait bells) and
// between two processes (a memfd mapped by both, eventfd kicks), EVENT_IDX on:
// sequence numbers and checksums both ways, none lost, duplicated or reordered.
// Bounded by message count AND time; the peers use the built package (dist).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { EventFd, memfdCreate, mmap } from '@vipc/shm';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

const testDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'test');
const MESSAGES = Number(process.env.VRING_STRESS_MESSAGES ?? 2_000_000);
const SECONDS = Number(process.env.VRING_STRESS_SECONDS ?? 12);
const SIZE = 256;

interface StressLib {
  stressLayout(kind: string, size: number): { totalBytes: number };
  initStressArea(buffer: ArrayBuffer | SharedArrayBuffer, kind: string, size: number): void;
  StressDriver: new (
    o: object,
  ) => {
    step(): 'busy' | 'sleep' | 'done';
    sent: number;
    received: number;
    kicks: number;
    q: { hasUsed(): boolean };
  };
}
let lib: StressLib;

beforeAll(async () => {
  if (!existsSync(join(testDir, '..', 'dist', 'index.js'))) {
    throw new Error('the stress peers use the built package: run `pnpm --filter @vipc/vring build` first');
  }
  lib = (await import(pathToFileURL(join(testDir, 'stress-lib.mjs')).href)) as StressLib;
});

interface WorkerResult {
  ok: boolean;
  role: string;
  error?: string;
  sent?: number;
  received?: number;
  processed?: number;
  notifications: number;
  sleeps: number;
  lostWakeups: number;
}

const workers: Worker[] = [];
let child: ChildProcess | undefined;
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
  child?.kill('SIGKILL');
  child = undefined;
});

function runWorker(data: object): Promise<WorkerResult> {
  const w = new Worker(join(testDir, 'stress-worker.mjs'), { workerData: data });
  workers.push(w);
  return new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`worker exited with ${code} before reporting`)));
  });
}

describe('stress: two worker threads over a SharedArrayBuffer', () => {
  // A 4-entry ring makes both sides sleep every few messages: many more chances for a lost wakeup.
  const runs = [
    ...(['split', 'packed', 'slots'] as const).map((kind) => ({ kind, size: SIZE, total: MESSAGES })),
    ...(['split', 'packed', 'slots'] as const).map((kind) => ({
      kind,
      size: 4,
      total: Math.min(MESSAGES, 300_000),
    })),
  ];
  for (const { kind, size, total } of runs) {
    it(`${kind}, ring of ${size}: ${total} messages (or ${SECONDS} s), EVENT_IDX, none lost/duplicated/reordered`, async () => {
      const buffer = new SharedArrayBuffer(lib.stressLayout(kind, size).totalBytes);
      lib.initStressArea(buffer, kind, size);
      const bell = new SharedArrayBuffer(8);
      const common = { kind, size, buffer, bell, total, seconds: SECONDS };
      const results = [runWorker({ ...common, role: 'driver' }), runWorker({ ...common, role: 'device' })];
      // once one side is finished, the other must finish soon: otherwise it waits for a notification that never comes
      await Promise.race(results);
      let timer: NodeJS.Timeout | undefined;
      const [drv, dev] = (await Promise.race([
        Promise.all(results),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error('one side finished, the other is stuck (lost wakeup?)')),
            30_000,
          );
        }),
      ]).finally(() => clearTimeout(timer))) as [WorkerResult, WorkerResult];
      expect(drv.error).toBeUndefined();
      expect(dev.error).toBeUndefined();
      console.log(
        `vring stress workers ${kind}/${size}: ${drv.sent} messages, ${drv.notifications} kicks, ${dev.notifications} calls, ` +
          `${drv.sleeps}/${dev.sleeps} sleeps (driver/device)`,
      );
      expect(drv.sent).toBeGreaterThanOrEqual(Math.min(total, 20_000));
      expect(drv.received).toBe(drv.sent);
      expect(dev.processed).toBe(drv.sent);
      expect(drv.lostWakeups).toBe(0);
      expect(dev.lostWakeups).toBe(0);
    });
  }
});

describe('stress: two processes over a memfd, eventfd notifications', () => {
  for (const kind of ['split', 'packed', 'slots'] as const) {
    it(`${kind}: ${MESSAGES} messages (or ${SECONDS} s), EVENT_IDX, none lost/duplicated/reordered`, async () => {
      const bytes = lib.stressLayout(kind, SIZE).totalBytes;
      using memfd = memfdCreate(`vring-stress-${process.pid}`, { size: bytes });
      using map = mmap(memfd);
      using kick = EventFd.create();
      using call = EventFd.create();
      lib.initStressArea(map.buffer, kind, SIZE);
      const proc = spawn(process.execPath, [join(testDir, 'stress-child.mjs'), kind, String(SIZE)], {
        stdio: ['ignore', 'pipe', 'inherit', memfd.fd, kick.fd.fd, call.fd.fd],
        cwd: testDir,
      });
      child = proc;
      let out = '';
      proc.stdout!.on('data', (d) => {
        out += String(d);
      });
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
      const driver = new lib.StressDriver({
        kind,
        size: SIZE,
        buffer: map.buffer,
        total: MESSAGES,
        deadline: Date.now() + SECONDS * 1000,
        kick: () => kick.kick(),
      });
      let sleeps = 0;
      await new Promise<void>((resolve, reject) => {
        let last = -1;
        const watchdog = setInterval(() => {
          // no progress for a whole period while sleeping: a lost wakeup, or the peer died
          if (driver.received === last) {
            clearInterval(watchdog);
            reject(
              new Error(
                `stalled at ${driver.received}/${driver.sent} (used pending: ${driver.q.hasUsed()}, child exit ${proc.exitCode})`,
              ),
            );
          }
          last = driver.received;
        }, 15_000);
        const run = () => {
          try {
            for (;;) {
              const r = driver.step();
              if (r === 'done') {
                clearInterval(watchdog);
                resolve();
                return;
              }
              if (r === 'sleep') {
                sleeps++;
                return;
              }
            }
          } catch (e) {
            clearInterval(watchdog);
            reject(e);
          }
        };
        call.watch(() => run());
        proc.once('exit', (code) => {
          if (driver.received !== driver.sent || !driver.sent) {
            clearInterval(watchdog);
            reject(new Error(`device process exited with ${code}: ${out}`));
          }
        });
        run();
      });
      expect(await exited).toBe(0);
      const dev = JSON.parse(out.trim()) as { ok: boolean; processed: number; calls: number; sleeps: number };
      console.log(
        `vring stress processes ${kind}: ${driver.sent} messages, ${driver.kicks} kicks, ${dev.calls} calls, ` +
          `${sleeps}/${dev.sleeps} sleeps (driver/device)`,
      );
      expect(dev.ok).toBe(true);
      expect(driver.sent).toBeGreaterThanOrEqual(Math.min(MESSAGES, 20_000));
      expect(driver.received).toBe(driver.sent);
      expect(dev.processed).toBe(driver.sent);
    });
  }
});
