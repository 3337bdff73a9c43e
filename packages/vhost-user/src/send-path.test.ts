/**
 * The allocation-free send paths (VirtioNetDriver and VirtioNetDevice send,
 * sendBatch, queueFrame + flush; MessageChannel over both) through a real
 * vipc front-end and back-end over a Unix socket: frames stay exact for any
 * mix of lengths and batch sizes, split and packed, with the rings small
 * enough that back-pressure happens; and the per-frame objects are reused.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DescriptorChain, DriverBuffer } from '@vipc/vring';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VhostUserBackend } from './backend.js';
import { deviceEndpoint, driverEndpoint, MessageChannel } from './channel.js';
import { anyPeer, type VhostUserListener } from './connection.js';
import { VhostUserFrontend } from './frontend.js';
import { VirtioNetDevice } from './net-device.js';
import { NET_DRIVER_FEATURES, VirtioNetDriver } from './net-driver.js';
import { pollUntil } from './test-support/until.js';

let dir: string;
const cleanup: (() => void)[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), `vipc-vhu-send-${process.pid}-`));
});
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
  rmSync(dir, { recursive: true, force: true });
});

const until = (cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> =>
  pollUntil(cond, what, timeoutMs, 2);

const QUEUE_SIZE = 32;
const SLOT = 2048;
const HDR = 12;

async function pair(packed: boolean) {
  const sock = join(dir, `send-${packed ? 'p' : 's'}.sock`);
  const device = new VirtioNetDevice();
  const logs: string[] = [];
  const backend = new VhostUserBackend({ device, log: (l) => logs.push(l) });
  const listener: VhostUserListener = backend.listen(sock, { policy: anyPeer });
  cleanup.push(
    () => listener.close(),
    () => backend.close(),
  );
  const frontend = await VhostUserFrontend.connect(sock, {
    queueCount: 2,
    queueSize: QUEUE_SIZE,
    features: NET_DRIVER_FEATURES,
    packed,
    policy: anyPeer,
  });
  cleanup.push(() => frontend.close());
  const driver = new VirtioNetDriver(frontend);
  cleanup.push(() => driver.close());
  await until(() => device.linkUp(0), 'the link');
  return { device, backend, frontend, driver, logs };
}

/** Frame `i` of a run: `len` bytes from a small PRNG seeded by (seed, i). */
function frame(len: number, seed: number, i: number): Uint8Array {
  const f = new Uint8Array(len);
  let x = (seed * 2654435761 + i * 40503 + 1) >>> 0 || 1;
  for (let k = 0; k < len; k++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    f[k] = x & 0xff;
  }
  return f;
}

/** Lengths around the slot and header boundaries, and anything else up to `max`. */
const frameLength = (max: number) =>
  fc.oneof(
    fc.constantFrom(0, 1, 8, 60, 64, SLOT - HDR - 1, SLOT - HDR, SLOT - HDR + 1, 2 * SLOT - HDR, max),
    fc.integer({ min: 0, max }),
  );

/** Waits for 'writable' (or a short retry timer: the event may have fired already). */
function writable(emitter: VirtioNetDriver | VirtioNetDevice): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(t);
      emitter.off('writable', done);
      resolve();
    };
    const t = setTimeout(done, 10);
    emitter.on('writable', done);
  });
}

type Way = 'send' | 'sendBatch' | 'queueFrame';
const ways: Way[] = ['send', 'sendBatch', 'queueFrame'];

/** Sends `frames` in batches of `batch` the given way, waiting while the ring is full. */
async function sendAll(
  sender: { send(f: Uint8Array): boolean; sendBatch(fs: readonly Uint8Array[]): number },
  queue: (f: Uint8Array, prefix: Uint8Array) => boolean,
  flush: () => void,
  frames: Uint8Array[],
  batch: number,
  way: Way,
  emitter: VirtioNetDriver | VirtioNetDevice,
): Promise<void> {
  let i = 0;
  while (i < frames.length) {
    let n = 0;
    if (way === 'send') n = sender.send(frames[i]!) ? 1 : 0;
    else if (way === 'sendBatch') n = sender.sendBatch(frames.slice(i, i + batch));
    else {
      // the frame as a prefix (its first bytes, up to 8) and the rest
      for (let k = i; k < frames.length && n < batch; k++) {
        const f = frames[k]!;
        const cut = Math.min(8, f.length);
        if (!queue(f.subarray(cut), f.subarray(0, cut))) break;
        n++;
      }
      if (n > 0) flush();
    }
    i += n;
    if (i < frames.length && n < (way === 'send' ? 1 : batch)) await writable(emitter);
  }
}

for (const packed of [false, true]) {
  const kind = packed ? 'packed' : 'split';
  describe(`send paths, front-end and back-end in one process (${kind})`, () => {
    it(`property: driver -> device frames arrive exact and in order, any lengths and batch sizes (${kind})`, async () => {
      const { device, driver } = await pair(packed);
      const got: Uint8Array[] = [];
      device.onFrame = (f) => {
        got.push(f.slice());
      };
      // up to 8 slots a frame: the 32-entry ring holds a few and then pushes back
      const max = 8 * SLOT - HDR;
      let seed = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(frameLength(max), { minLength: 1, maxLength: 80 }),
          fc.integer({ min: 1, max: 64 }),
          fc.constantFrom(...ways),
          async (lengths, batch, way) => {
            seed++;
            got.length = 0;
            const before = device.stats.received;
            const frames = lengths.map((len, i) => frame(len, seed, i));
            await sendAll(
              driver,
              (f, p) => driver.queueFrame(f, p),
              () => driver.flush(),
              frames,
              batch,
              way,
              driver,
            );
            await until(() => device.stats.received - before >= frames.length, 'the frames');
            expect(got.length).toBe(frames.length);
            for (let i = 0; i < frames.length; i++) expect(got[i]).toEqual(frames[i]);
          },
        ),
        { numRuns: 40 },
      );
      expect(driver.stats.sent).toBe(device.stats.received);
      // every transmit descriptor and slot came back: nothing leaked by the recycled tokens
      await until(() => {
        driver.poll();
        return driver.tx.ring.freeCount() === QUEUE_SIZE;
      }, 'the used transmit buffers');
      const pool = driver.frontend.pool;
      // the receive ring keeps what it posted; everything else is free again
      expect(pool.available).toBe(pool.count - driver.rx.ring.size + driver.rx.ring.freeCount());
    });

    it(`property: device -> driver frames arrive exact and in order, merged over receive buffers (${kind})`, async () => {
      const { device, driver } = await pair(packed);
      const got: Uint8Array[] = [];
      driver.onFrame = (f) => {
        got.push(f.slice());
      };
      // at most 8 receive buffers a frame: the driver keeps up to 32 posted
      const max = 8 * SLOT - HDR;
      let seed = 1000;
      await fc.assert(
        fc.asyncProperty(
          fc.array(frameLength(max), { minLength: 1, maxLength: 80 }),
          fc.integer({ min: 1, max: 64 }),
          fc.constantFrom(...ways),
          async (lengths, batch, way) => {
            seed++;
            got.length = 0;
            const before = driver.stats.received;
            const frames = lengths.map((len, i) => frame(len, seed, i));
            await sendAll(
              { send: (f) => device.send(f), sendBatch: (fs) => device.sendBatch(fs) },
              (f, p) => device.queueFrame(f, p),
              () => device.flush(),
              frames,
              batch,
              way,
              device,
            );
            await until(() => driver.stats.received - before >= frames.length, 'the frames');
            expect(got.length).toBe(frames.length);
            for (let i = 0; i < frames.length; i++) expect(got[i]).toEqual(frames[i]);
          },
        ),
        { numRuns: 40 },
      );
      expect(device.stats.sent).toBe(driver.stats.received);
      expect(driver.stats.rxErrors).toBe(0);
    });

    it(`MessageChannel both ways: every message exact, in order, with back-pressure (${kind})`, async () => {
      const { device, driver } = await pair(packed);
      const toDevice = new MessageChannel(deviceEndpoint(device), { highWaterMark: 16 });
      const toDriver = new MessageChannel(driverEndpoint(driver), { highWaterMark: 16 });
      cleanup.push(
        () => toDevice.close(),
        () => toDriver.close(),
      );
      const count = 600;
      const msgs = Array.from({ length: count }, (_, i) => frame((i * 977) % 5000, 7, i));
      for (const [from, to] of [
        [toDriver, toDevice],
        [toDevice, toDriver],
      ] as const) {
        // half as single sends, half as one batch: all queued at once, far more than the rings hold
        const sends = msgs.slice(0, count / 2).map((m) => from.send(m));
        sends.push(from.sendBatch(msgs.slice(count / 2)));
        let i = 0;
        for await (const m of to) {
          expect(m).toEqual(msgs[i]);
          if (++i === count) break;
        }
        await Promise.all(sends);
      }
      expect(toDevice.stats.received).toBe(count);
      expect(toDriver.stats.received).toBe(count);
      expect(toDevice.stats.duplicates + toDriver.stats.duplicates).toBe(0);
      expect(toDevice.stats.invalid + toDriver.stats.invalid).toBe(0);
    });

    it(`bad frames and messages are refused with INVALID_ARGUMENT and leave nothing behind (${kind})`, async () => {
      const { device, driver } = await pair(packed);
      const code = async (f: () => unknown): Promise<string | undefined> => {
        try {
          await f();
        } catch (err) {
          return (err as { code?: string }).code;
        }
        return undefined;
      };
      const txFree = driver.tx.ring.freeCount();
      const poolFree = driver.frontend.pool.available;
      expect(await code(() => driver.send('frame' as never))).toBe('INVALID_ARGUMENT');
      expect(await code(() => driver.queueFrame(new Uint8Array(4), [1, 2] as never))).toBe(
        'INVALID_ARGUMENT',
      );
      expect(await code(() => driver.send(new Uint8Array(driver.maxFrame + 1)))).toBe('INVALID_ARGUMENT');
      expect(await code(() => device.send({ length: 3 } as never))).toBe('INVALID_ARGUMENT');
      expect(await code(() => device.queueFrame(new Uint8Array(4), 'x' as never))).toBe('INVALID_ARGUMENT');
      expect(driver.tx.ring.freeCount()).toBe(txFree);
      expect(driver.frontend.pool.available).toBe(poolFree);
      expect(driver.stats.sent + device.stats.sent).toBe(0);
      const channel = new MessageChannel(driverEndpoint(driver));
      cleanup.push(() => channel.close());
      // a bad message in a batch: the ones before it are sent, the promise rejects
      const ok = frame(10, 9, 0);
      expect(await code(() => channel.sendBatch([ok, 'x' as never, ok]))).toBe('INVALID_ARGUMENT');
      expect(await code(() => channel.send(new Uint8Array(channel.maxMessage + 1)))).toBe('INVALID_ARGUMENT');
      expect(channel.stats.sent).toBe(1);
      await until(() => device.stats.received === 1, 'the one good message');
      channel.close();
      expect(await code(() => channel.send(ok))).toBe('CLOSED');
    });

    it(`the per-frame objects are reused: buffer lists, tokens, receive chains, message headers (${kind})`, async () => {
      const { device, backend, driver } = await pair(packed);
      let received = 0;
      device.onFrame = () => {
        received++;
      };
      // Driver side: what the ring gets for each transmitted frame.
      const ring = driver.tx.ring as typeof driver.tx.ring & {
        addBuffer(addr: number, len: number, token?: unknown, writable?: boolean): number;
      };
      const lists = new Set<readonly DriverBuffer[]>();
      const entries = new Set<DriverBuffer>();
      const tokens = new Set<unknown>();
      let oneSlot = 0;
      const add = ring.add.bind(ring);
      ring.add = (buffers, token) => {
        lists.add(buffers);
        for (const b of buffers) entries.add(b);
        tokens.add(token);
        return add(buffers, token);
      };
      const addBuffer = ring.addBuffer.bind(ring);
      ring.addBuffer = (addr, len, token, writable) => {
        oneSlot++;
        expect(typeof token).toBe('number'); // the slot itself, not an array made per frame
        expect(typeof addr).toBe('number'); // no BigInt address per frame
        return addBuffer(addr, len, token, writable);
      };
      const small = frame(64, 1, 0);
      const big = frame(3 * SLOT, 1, 1); // 4 slots
      const frames = [small, small, big, small];
      const rounds = 200;
      for (let r = 0; r < rounds; r++) {
        await sendAll(
          driver,
          () => false,
          () => {},
          frames,
          frames.length,
          'sendBatch',
          driver,
        );
      }
      await until(() => received === rounds * frames.length, 'the frames');
      // one-slot frames go in as one buffer (addBuffer: no list); the
      // four-slot ones reuse one list of the same four entry objects throughout
      expect(oneSlot).toBe(rounds * 3);
      expect(lists.size).toBe(1);
      expect(entries.size).toBe(4);
      // the 600 one-slot tokens were slot numbers (checked in add); the 200
      // four-slot ones are recycled arrays, no more than can be in flight at once
      const arrays = [...tokens].filter((t) => Array.isArray(t));
      expect(arrays.length).toBeGreaterThan(0);
      expect(arrays.length).toBeLessThanOrEqual(QUEUE_SIZE / 4);

      // Device side: the receive chains it pops are refilled, not new ones.
      const rxq = backend.queues[0]!;
      const chains = new Set<DescriptorChain>();
      let pops = 0;
      const pop = rxq.pop.bind(rxq);
      rxq.pop = (reuse) => {
        const c = pop(reuse);
        if (c !== null) {
          chains.add(c);
          pops++;
        }
        return c;
      };
      let delivered = 0;
      driver.onFrame = () => {
        delivered++;
      };
      for (let r = 0; r < rounds; r++) {
        await sendAll(
          { send: (f) => device.send(f), sendBatch: (fs) => device.sendBatch(fs) },
          () => false,
          () => {},
          [small, small, small, small],
          4,
          'sendBatch',
          device,
        );
      }
      await until(() => delivered === rounds * 4, 'the frames from the device');
      expect(pops).toBe(rounds * 4);
      // one chain object serves 800 frames (refilled by every pop after the first)
      expect(chains.size).toBe(1);

      // Channel: one header object for every message, the message itself as the body.
      const channel = new MessageChannel(driverEndpoint(driver));
      cleanup.push(() => channel.close());
      const ep = channel.endpoint;
      const queue = ep.queueFrame!.bind(ep);
      const prefixes = new Set<Uint8Array>();
      const bodies: Uint8Array[] = [];
      ep.queueFrame = (f, prefix) => {
        prefixes.add(prefix);
        bodies.push(f);
        return queue(f, prefix);
      };
      const msg = frame(100, 3, 0);
      const first = channel.send(msg);
      // a message that fits is placed at once and gets the shared resolved promise
      expect(bodies).toEqual([msg]);
      expect(bodies[0]).toBe(msg);
      const second = channel.send(msg);
      expect(second).toBe(first);
      await channel.sendBatch(Array.from({ length: 10 }, () => msg));
      await first;
      expect(prefixes.size).toBe(1);
      expect(bodies.length).toBe(12);
      expect(bodies.every((b) => b === msg)).toBe(true);
      await until(() => channel.stats.sent === 12, 'the messages');
    });
  });
}
