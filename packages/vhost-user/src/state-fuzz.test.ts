/**
 * A bounded fuzz run of the back-end state machine: random sequences of
 * schema-valid requests (random bodies, indexes, sizes, fds, NEED_REPLY) from
 * a raw front-end over a real socket. The back-end never throws out of its
 * loop, never leaks an fd, and serves a well-behaved front-end afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventFd, type Fd, memfdCreate, openFdCount } from '@vipc/shm';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VhostUserBackend } from './backend.js';
import { anyPeer, connectTo, type VhostUserListener } from './connection.js';
import { VhostUserFrontend } from './frontend.js';
import { FRONTEND_SCHEMAS, type MessageSchema, type PayloadBodies, type PayloadKind } from './messages.js';
import { VirtioNetDevice } from './net-device.js';
import { NET_DRIVER_FEATURES } from './net-driver.js';
import { pollUntil } from './test-support/until.js';

let dir: string;
let listener: VhostUserListener;
let backend: VhostUserBackend;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), `vipc-vhu-sfz-${process.pid}-`));
});
afterAll(() => {
  backend?.close();
  listener?.close();
  rmSync(dir, { recursive: true, force: true });
});

const until = (cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> =>
  pollUntil(cond, what, timeoutMs, 2);

const small = fc.oneof(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 0xffffffff }));
const u64 = fc.oneof(
  fc.constantFrom(0n, 1n, 0x40000000n, 0x7f0000000000n, (1n << 64n) - 1n),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
);
const region = fc.record({
  guestAddress: fc.constantFrom(0n, 0x40000000n, (1n << 63n) + 0n),
  size: fc.constantFrom(4096n, 1n << 20n, 1n << 21n),
  userAddress: fc.constantFrom(0x40000000n, 0x7f0000000000n),
  mmapOffset: fc.constantFrom(0n, 4096n),
});
const bodies: Partial<{ [K in PayloadKind]: fc.Arbitrary<PayloadBodies[K]> }> = {
  none: fc.constant(undefined),
  u64: fc.oneof(small.map(BigInt), u64, fc.constantFrom(0x100n, 0x101n, 0x40000000n | (1n << 32n))),
  vringState: fc.record({ index: small, num: fc.oneof(small, fc.constantFrom(64, 256, 0x8000, 0x80008000)) }),
  vringAddress: fc.record({
    index: small,
    flags: small,
    descUserAddr: u64,
    usedUserAddr: u64,
    availUserAddr: u64,
    logGuestAddr: u64,
  }),
  memoryTable: fc.record({ regions: fc.array(region, { maxLength: 3 }) }),
  singleRegion: region,
  log: fc.record({ size: u64, offset: u64 }),
  iotlb: fc.record({ iova: u64, size: u64, userAddress: u64, permissions: fc.nat(3), type: fc.nat(4) }),
  config: fc
    .uint8Array({ maxLength: 16 })
    .chain((data) =>
      fc.record({ offset: small, size: fc.constant(data.length), flags: small, data: fc.constant(data) }),
    ),
  vringArea: fc.record({ u64, size: u64, offset: u64 }),
  inflight: fc.record({ mmapSize: u64, mmapOffset: u64, numQueues: fc.nat(4), queueSize: fc.nat(300) }),
  shared: fc.record({ uuid: fc.uint8Array({ minLength: 16, maxLength: 16 }) }),
  deviceState: fc.record({ direction: small, phase: small }),
  opaque: fc.uint8Array({ maxLength: 64 }),
};

const schemas = Object.values(FRONTEND_SCHEMAS) as MessageSchema[];
const step = fc.record({
  schema: fc.constantFrom(...schemas),
  body: fc.constant(null),
  needReply: fc.boolean(),
  fdKind: fc.constantFrom('eventfd', 'memfd', 'small-memfd'),
  seed: fc.nat(),
});

function fdsFor(schema: MessageSchema, body: unknown, kind: string, seed: number): Fd[] {
  const rule = schema.fds;
  let n: number;
  if (rule === 'perRegion') n = (body as PayloadBodies['memoryTable']).regions.length;
  else if (rule === 'unlessNoFdFlag') n = ((body as bigint) & 0x100n) !== 0n ? 0 : 1;
  else n = 'exactly' in rule ? rule.exactly : rule.min + (seed % (rule.max - rule.min + 1));
  if (seed % 17 === 0) n++; // now and then one fd too many
  return Array.from({ length: n }, () =>
    kind === 'eventfd' ? EventFd.create().fd : memfdCreate('fz', { size: kind === 'memfd' ? 1 << 21 : 4096 }),
  );
}

describe('back-end state machine fuzz (bounded)', () => {
  it('random request sequences never crash the back-end or leak fds', async () => {
    const device = new VirtioNetDevice();
    backend = new VhostUserBackend({ device, inflight: true });
    const path = join(dir, 'fz.sock');
    listener = backend.listen(path, { policy: anyPeer });
    const before = openFdCount();
    const deadline = Date.now() + 20_000;
    let sequences = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 25 }),
        fc.nat(),
        fc.boolean(),
        async (steps, seed, prefix) => {
          if (Date.now() > deadline) return;
          const conn = await connectTo(path, { role: 'frontend', policy: anyPeer });
          await until(() => backend.connected, 'accept');
          // replies are read and thrown away so the socket never fills
          const drain = (async () => {
            try {
              for (;;) {
                const r = await conn.receiveRaw();
                for (const f of r.fds) f.close();
              }
            } catch {
              // closed
            }
          })();
          if (prefix) {
            // a valid start, so that the random part reaches the ring set-up and beyond
            conn.send(16, 'u64', backend.offeredProtocolFeatures);
            conn.send(2, 'u64', (1n << 30n) | (1n << 32n) | (seed % 2 === 0 ? 1n << 34n : 0n));
            const mem = memfdCreate('fz-mem', { size: 1 << 20 });
            conn.send(
              5,
              'memoryTable',
              {
                regions: [
                  { guestAddress: 0x40000000n, size: 1n << 20n, userAddress: 0x40000000n, mmapOffset: 0n },
                ],
              },
              { fds: [mem] },
            );
            mem.close();
            conn.send(8, 'vringState', { index: 1, num: 64 });
            conn.send(9, 'vringAddress', {
              index: 1,
              flags: 0,
              descUserAddr: 0x40000000n,
              availUserAddr: 0x40000400n,
              usedUserAddr: 0x40001000n,
              logGuestAddr: 0n,
            });
          }
          for (const [k, s] of steps.entries()) {
            if (conn.closed) break;
            const arb = bodies[s.schema.payload] as fc.Arbitrary<unknown>;
            const body = fc.sample(arb, { numRuns: 1, seed: seed + k })[0];
            const fds = fdsFor(s.schema, body, s.fdKind, s.seed);
            try {
              conn.send(s.schema.id, s.schema.payload, body as never, { fds, needReply: s.needReply });
            } catch {
              // encoder refused the body (e.g. a config size mismatch) or the socket closed
            }
            for (const f of fds) f.close();
          }
          conn.close();
          await drain;
          await until(() => !backend.connected, 'the back-end to drop the connection');
          sequences++;
        },
      ),
      { numRuns: 400 },
    );
    expect(sequences).toBeGreaterThan(0);
    await until(() => openFdCount() === before, `fds back to ${before} (now ${openFdCount()})`);
    // and a well-behaved front-end is still served
    const fe = await VhostUserFrontend.connect(path, {
      queueCount: 2,
      queueSize: 64,
      features: NET_DRIVER_FEATURES,
      policy: anyPeer,
    });
    expect(fe.started).toBe(true);
    await fe.stop();
  });
});
