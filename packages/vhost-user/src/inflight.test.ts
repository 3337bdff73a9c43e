/** INFLIGHT_SHMFD: the spec's split layout, its recovery algorithm, and a restart that uses it. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VhostUserBackend } from './backend.js';
import { anyPeer } from './connection.js';
import type { BackendQueue } from './device.js';
import type { VhostUserError } from './errors.js';
import { VhostUserFrontend } from './frontend.js';
import { InflightBuffer, inflightQueueSize, PackedTracker } from './inflight.js';
import { InOrderDevice } from './test-support/in-order-device.js';
import { pollUntil } from './test-support/until.js';

describe('inflight buffer', () => {
  it('has the spec layout size and repairs a half-published batch', () => {
    // 16-byte QueueRegionSplit header + 16 bytes per DescStateSplit, 64-byte aligned
    expect(inflightQueueSize(256)).toBe(4160);
    expect(inflightQueueSize(4)).toBe(128);
    using buf = InflightBuffer.create(2, 8);
    const q = buf.splitQueue(1);
    expect(q.version).toBe(0);
    q.init(0);
    expect(q.version).toBe(1);
    q.fetched(5, 10n);
    q.fetched(3, 11n);
    q.fetched(6, 12n);
    q.fetched(0, 13n);
    // heads 5 and 3 were used and used.idx reached 2, then the back-end died before clearing them
    q.used(5);
    q.used(3);
    expect(q.recover(2)).toEqual([6, 0]);
    expect(q.usedIdx).toBe(2);
    // the normal path: publish clears the batch
    q.used(6);
    q.published(3);
    expect(q.recover(3)).toEqual([0]);
    expect(() => q.recover(100)).toThrow(/behind the used ring/);
  });
});

let dir: string;
const cleanup: (() => void)[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), `vipc-vhu-if-${process.pid}-`));
});
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
  rmSync(dir, { recursive: true, force: true });
});

const until = (cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> =>
  pollUntil(cond, what, timeoutMs, 5);

/** A back-end with INFLIGHT_SHMFD listening on `path`; `die()` drops it like a crash. */
function backendOn(path: string, device: InOrderDevice) {
  const backend = new VhostUserBackend({ device, inflight: true });
  const listener = backend.listen(path, { policy: anyPeer });
  const die = (): void => {
    listener.close();
    backend.close();
  };
  cleanup.push(die);
  return { backend, die };
}

/** A front-end with one queue of 16 and INFLIGHT_SHMFD, reconnecting to a restarted back-end. */
async function frontendOn(path: string, packed: boolean): Promise<VhostUserFrontend> {
  const fe = await VhostUserFrontend.connect(path, {
    queueCount: 1,
    queueSize: 16,
    packed,
    inflight: true,
    policy: anyPeer,
    reconnect: true,
  });
  cleanup.push(() => fe.close());
  return fe;
}

/** Makes `count` chains of two descriptors available (a packed region holds one entry per descriptor). */
function offer(fe: VhostUserFrontend, count: number): number[] {
  const q = fe.queues[0]!;
  const heads: number[] = [];
  for (let i = 0; i < count; i++) {
    const slot = fe.pool.alloc();
    const a = fe.pool.address(slot);
    heads.push(
      q.ring.add(
        [
          { addr: a, len: 32 },
          { addr: a + 32n, len: 32 },
        ],
        slot,
      ),
    );
  }
  q.publish();
  return heads;
}

describe('INFLIGHT_SHMFD across a back-end restart', () => {
  for (const packed of [false, true]) {
    const ring = packed ? 'packed' : 'split';
    it(`the restarted back-end finds the inflight chains in fetch order and completes them (${ring} ring)`, async () => {
      const path = join(dir, `if-${ring}.sock`);
      const d1 = new InOrderDevice(3);
      const b1 = backendOn(path, d1);
      const fe = await frontendOn(path, packed);
      const q = fe.queues[0]!;
      const heads = offer(fe, 6);
      await until(() => d1.popped.length === 6, 'the first back-end to take all six');
      expect(d1.popped).toEqual(heads);
      // three completed, three inflight: the back-end dies before the driver looked at the
      // used ones (a packed driver's own used position is still 0)
      b1.die();
      const d2 = new InOrderDevice(100);
      const { backend: b2 } = backendOn(path, d2);
      const resubmitted: number[][] = [];
      const resync: number[][] = [];
      const errors: Error[] = [];
      b2.on('inflight-resubmit', (_q: BackendQueue, h: number[]) => resubmitted.push(h));
      b2.on('queue-resync', (_q: BackendQueue, from: number, to: number) => resync.push([from, to]));
      b2.on('queue-error', (_q: BackendQueue, e: Error) => errors.push(e));
      await new Promise((r) => fe.once('reconnect', r));
      await until(() => d2.popped.length === 3, 'the second back-end to redo the inflight three');
      expect(errors).toEqual([]);
      expect(resubmitted).toEqual([heads.slice(3)]);
      expect(d2.popped).toEqual(heads.slice(3));
      // split: the used index is in the ring; packed: only the region knows the device
      // used 6 descriptors, the front-end's base says 0
      expect(resync).toEqual(packed ? [[0, 6]] : []);
      const used: number[] = [];
      await until(() => {
        for (let u = q.ring.popUsed(); u !== null; u = q.ring.popUsed()) used.push(u.head);
        return used.length === 6;
      }, 'all six used');
      expect(used).toEqual(heads);
    });
  }

  it('a corrupt packed region (a loop in its free list) fails only that queue, with INFLIGHT_CORRUPT', async () => {
    const path = join(dir, 'if-bad.sock');
    const d1 = new InOrderDevice(0);
    const b1 = backendOn(path, d1);
    const fe = await frontendOn(path, true);
    offer(fe, 2);
    await until(() => d1.popped.length === 2, 'the first back-end to take both');
    // the region as a broken old process could leave it: entry 0 released twice and
    // committed, so the free list runs 0 -> 1 -> 0 -> ...
    const tracker = b1.backend.queues[0]!.inflight;
    expect(tracker).toBeInstanceOf(PackedTracker);
    const region = (tracker as PackedTracker).queue;
    region.release([0, 0]);
    region.commit([0, 0]);
    b1.die();
    const { backend: b2 } = backendOn(path, new InOrderDevice(100));
    const errors: Error[] = [];
    b2.on('queue-error', (_q: BackendQueue, e: Error) => errors.push(e));
    await new Promise((r) => fe.once('reconnect', r));
    await until(() => errors.length > 0, 'the queue to fail');
    expect((errors[0] as VhostUserError).code).toBe('INFLIGHT_CORRUPT');
    expect(errors[0]!.message).toMatch(/inflight region: the free list loops at entry 0/);
    // the connection stays: only the queue is broken
    expect(b2.connected).toBe(true);
    expect(b2.queues[0]!.failure).toBe(errors[0]);
  });
});
