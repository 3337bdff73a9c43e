import { EventFd, type Fd, isOpen, openFdCount } from '@vipc/shm';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeHeader,
  decodePayload,
  decodeReply,
  decodeRequest,
  encodePayload,
  encodeReply,
  encodeRequest,
  type RawMessage,
} from './codec.js';
import { FrontendRequest, HEADER_SIZE, VHOST_USER_NEED_REPLY_MASK } from './defs.js';
import { VhostUserError } from './errors.js';
import {
  BACKEND_SCHEMAS,
  FRONTEND_SCHEMAS,
  type MessageSchema,
  type PayloadBodies,
  type PayloadKind,
} from './messages.js';

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const region = fc
  .record({
    guestAddress: fc.bigInt({ min: 0n, max: 1n << 60n }),
    size: fc.bigInt({ min: 1n, max: 1n << 40n }),
    userAddress: fc.bigInt({ min: 0n, max: 1n << 60n }),
    mmapOffset: fc.bigInt({ min: 0n, max: 1n << 40n }),
  })
  .map((r) => r);

/** A valid body for every payload kind. */
const bodies: { [K in PayloadKind]: fc.Arbitrary<PayloadBodies[K]> } = {
  none: fc.constant(undefined),
  u64,
  vringState: fc.record({ index: u32, num: u32 }),
  vringAddress: fc.record({
    index: u32,
    flags: u32,
    descUserAddr: u64,
    usedUserAddr: u64,
    availUserAddr: u64,
    logGuestAddr: u64,
  }),
  memoryTable: fc.record({ regions: fc.array(region, { maxLength: 8 }) }),
  singleRegion: region,
  log: fc.record({ size: u64, offset: u64 }),
  iotlb: fc.record({
    iova: u64,
    size: u64,
    userAddress: u64,
    permissions: fc.integer({ min: 0, max: 255 }),
    type: fc.integer({ min: 0, max: 255 }),
  }),
  config: fc
    .uint8Array({ maxLength: 256 })
    .chain((data) =>
      fc.record({ offset: u32, size: fc.constant(data.length), flags: u32, data: fc.constant(data) }),
    ),
  vringArea: fc.record({ u64, size: u64, offset: u64 }),
  inflight: fc.record({ mmapSize: u64, mmapOffset: u64, numQueues: u16, queueSize: u16 }),
  shared: fc.record({ uuid: fc.uint8Array({ minLength: 16, maxLength: 16 }) }),
  deviceState: fc.record({ direction: u32, phase: u32 }),
  opaque: fc.uint8Array({ maxLength: 512 }),
};

function split(bytes: Buffer, fds: Fd[] = []): RawMessage {
  const header = decodeHeader(bytes.subarray(0, HEADER_SIZE));
  return { header, payload: bytes.subarray(HEADER_SIZE), fds };
}

function eventFds(n: number): Fd[] {
  return Array.from({ length: n }, () => EventFd.create().fd);
}

function fdsFor(schema: MessageSchema, body: unknown): number {
  const rule = schema.fds;
  if (rule === 'perRegion') return (body as PayloadBodies['memoryTable']).regions.length;
  if (rule === 'unlessNoFdFlag') return ((body as bigint) & 0x100n) !== 0n ? 0 : 1;
  return 'exactly' in rule ? rule.exactly : rule.min;
}

function bodyFor(schema: MessageSchema): fc.Arbitrary<unknown> {
  if (schema.fds === 'unlessNoFdFlag') return fc.integer({ min: 0, max: 0x1ff }).map(BigInt);
  return bodies[schema.payload] as fc.Arbitrary<unknown>;
}

describe('codec: every request of the spec', () => {
  const tables = [
    ['frontend', FRONTEND_SCHEMAS],
    ['backend', BACKEND_SCHEMAS],
  ] as const;
  for (const [direction, table] of tables) {
    for (const [name, schema] of Object.entries(table)) {
      it(`${direction} ${name}: encode/decode round trip with its fds`, () => {
        fc.assert(
          fc.property(bodyFor(schema), fc.boolean(), (body, needReply) => {
            const bytes = encodeRequest(schema.id, schema.payload, body as never, { needReply });
            const fds = eventFds(fdsFor(schema, body));
            const msg = decodeRequest(direction, split(bytes, fds));
            expect(msg.name).toBe(name);
            expect(msg.request).toBe(schema.id);
            expect(msg.needReply).toBe(needReply);
            expect(msg.body).toEqual(body);
            const closeExtra = typeof schema.fds === 'object' && 'closeExtra' in schema.fds;
            expect(msg.fds.length).toBe(closeExtra ? 0 : fds.length);
            for (const f of msg.fds) f.close();
          }),
          { numRuns: 30 },
        );
      });
    }
  }
});

describe('codec: malformed messages', () => {
  const getFeatures = () => encodeRequest(FrontendRequest.GET_FEATURES, 'none', undefined);

  it('rejects a wrong version', () => {
    const b = getFeatures();
    b.writeUInt32LE(2, 4);
    expect(() => decodeHeader(b.subarray(0, 12))).toThrow(
      expect.objectContaining({ code: 'INVALID_VERSION' }),
    );
  });

  it('rejects an oversize payload before reading it', () => {
    const b = getFeatures();
    b.writeUInt32LE(0xffffffff, 8);
    expect(() => decodeHeader(b.subarray(0, 12))).toThrow(
      expect.objectContaining({ code: 'OVERSIZE_PAYLOAD' }),
    );
    b.writeUInt32LE(5000, 8);
    expect(() => decodeHeader(b.subarray(0, 12))).toThrow(/exceeds the cap of 4096/);
    expect(decodeHeader(b.subarray(0, 12), { maxPayload: 8192 }).size).toBe(5000);
  });

  it('rejects an unknown request and closes its fds', () => {
    for (const id of [0, 44, 1000, 0xffffffff]) {
      const b = encodeRequest(id, 'u64', 1n);
      const fds = eventFds(2);
      expect(() => decodeRequest('frontend', split(b, fds))).toThrow(
        expect.objectContaining({ code: 'UNKNOWN_REQUEST' }),
      );
      expect(fds.every((f) => f.closed)).toBe(true);
    }
    expect(() => decodeRequest('backend', split(encodeRequest(9, 'none', undefined)))).toThrow(
      /unknown back-end request 9/,
    );
  });

  it('rejects wrong payload sizes for every fixed-size request', () => {
    for (const [name, schema] of Object.entries(FRONTEND_SCHEMAS)) {
      if (schema.payload === 'opaque') continue;
      // iotlb and inflight accept the unpadded and the padded C struct sizes
      const deltas =
        schema.payload === 'iotlb' ? [-7, 1] : schema.payload === 'inflight' ? [-5, 1] : [-1, 1, 7];
      const good = encodeRequest(schema.id, schema.payload, fc.sample(bodyFor(schema), 1)[0] as never);
      for (const delta of deltas) {
        const size = good.length - HEADER_SIZE + delta;
        if (size < 0) continue;
        const bad = Buffer.alloc(HEADER_SIZE + size);
        good.copy(bad, 0, 0, Math.min(good.length, bad.length));
        bad.writeUInt32LE(size, 8);
        expect(() => decodeRequest('frontend', split(bad)), `${name} ${delta}`).toThrow(VhostUserError);
      }
    }
  });

  it('rejects missing and extra fds, closing all of them', () => {
    const kick = encodeRequest(FrontendRequest.SET_VRING_KICK, 'u64', 0n);
    expect(() => decodeRequest('frontend', split(kick))).toThrow(
      expect.objectContaining({ code: 'INCORRECT_FDS' }),
    );
    const two = eventFds(2);
    expect(() => decodeRequest('frontend', split(kick, two))).toThrow(/carries 2 fds, must carry 1/);
    expect(two.every((f) => f.closed)).toBe(true);
    // bit 8: no fd may come
    const noFd = encodeRequest(FrontendRequest.SET_VRING_CALL, 'u64', 0x100n);
    const one = eventFds(1);
    expect(() => decodeRequest('frontend', split(noFd, one))).toThrow(/must carry 0/);
    expect(one[0]!.closed).toBe(true);
    // fds on a message that takes none
    const feat = encodeRequest(FrontendRequest.SET_FEATURES, 'u64', 1n);
    const stray = eventFds(1);
    expect(() => decodeRequest('frontend', split(feat, stray))).toThrow(/SET_FEATURES: carries 1 fds/);
    expect(stray[0]!.closed).toBe(true);
    // a memory table with fewer fds than regions
    const region = { guestAddress: 0n, size: 4096n, userAddress: 0n, mmapOffset: 0n };
    const table = encodeRequest(FrontendRequest.SET_MEM_TABLE, 'memoryTable', { regions: [region, region] });
    const short = eventFds(1);
    expect(() => decodeRequest('frontend', split(table, short))).toThrow(/must carry 2/);
    expect(short[0]!.closed).toBe(true);
    // truncated by the kernel (more than the reader accepted)
    const trunc = eventFds(1);
    expect(() => decodeRequest('frontend', { ...split(kick, trunc), fdsTruncated: true })).toThrow(
      /more file descriptors/,
    );
    expect(trunc[0]!.closed).toBe(true);
  });

  it('closes the fd a REM_MEM_REG carries (spec compatibility) and accepts the message', () => {
    const region = { guestAddress: 0n, size: 4096n, userAddress: 0n, mmapOffset: 0n };
    const fds = eventFds(1);
    const n = fds[0]!.fd;
    const msg = decodeRequest(
      'frontend',
      split(encodeRequest(FrontendRequest.REM_MEM_REG, 'singleRegion', region), fds),
    );
    expect(msg.fds).toEqual([]);
    expect(fds[0]!.closed).toBe(true);
    expect(isOpen(n)).toBe(false);
  });

  it('rejects reserved bits in kick/call/err, empty and wrapping regions, too many regions, big configs', () => {
    const kick = encodeRequest(FrontendRequest.SET_VRING_KICK, 'u64', 0x200n);
    expect(() => decodeRequest('frontend', split(kick, eventFds(1)))).toThrow(/reserved bits/);
    const empty = { guestAddress: 0n, size: 0n, userAddress: 0n, mmapOffset: 0n };
    expect(() =>
      decodeRequest(
        'frontend',
        split(encodeRequest(FrontendRequest.ADD_MEM_REG, 'singleRegion', empty), eventFds(1)),
      ),
    ).toThrow(expect.objectContaining({ code: 'INVALID_MEMORY_REGION' }));
    const wrap = { guestAddress: (1n << 64n) - 4096n, size: 8192n, userAddress: 0n, mmapOffset: 0n };
    expect(() =>
      decodeRequest(
        'frontend',
        split(encodeRequest(FrontendRequest.ADD_MEM_REG, 'singleRegion', wrap), eventFds(1)),
      ),
    ).toThrow(/wraps/);
    const nine = Buffer.alloc(8 + 9 * 32);
    nine.writeUInt32LE(9, 0);
    const b = Buffer.concat([
      Buffer.from([5, 0, 0, 0, 1, 0, 0, 0, nine.length & 0xff, nine.length >> 8, 0, 0]),
      nine,
    ]);
    expect(() => decodeRequest('frontend', split(b))).toThrow(
      expect.objectContaining({ code: 'TOO_MANY_REGIONS' }),
    );
    const cfg = Buffer.alloc(12);
    cfg.writeUInt32LE(257, 4);
    expect(() => decodePayload('config', cfg)).toThrow(/exceeds 256/);
  });

  it('rejects a reply where a request is expected and a request where a reply is expected', () => {
    const reply = encodeReply(FrontendRequest.GET_FEATURES, 'u64', 5n);
    expect(() => decodeRequest('frontend', split(reply))).toThrow(
      expect.objectContaining({ code: 'UNEXPECTED_REPLY' }),
    );
    const req = encodeRequest(FrontendRequest.GET_FEATURES, 'u64', 5n);
    expect(() => decodeReply('frontend', FrontendRequest.GET_FEATURES, 'u64', split(req))).toThrow(
      /without the reply flag/,
    );
    const other = encodeReply(FrontendRequest.GET_PROTOCOL_FEATURES, 'u64', 5n);
    expect(() => decodeReply('frontend', FrontendRequest.GET_FEATURES, 'u64', split(other))).toThrow(
      /expected the reply to GET_FEATURES, got a reply to GET_PROTOCOL_FEATURES/,
    );
    const ok = decodeReply('frontend', FrontendRequest.GET_FEATURES, 'u64', split(reply));
    expect(ok.body).toBe(5n);
    expect(ok.isReply).toBe(true);
  });

  it('a zero-length GET_CONFIG reply is the back-end saying the read failed: REQUEST_FAILED', () => {
    const failed = encodeReply(FrontendRequest.GET_CONFIG, 'none', undefined);
    expect(failed.readUInt32LE(8)).toBe(0);
    expect(() => decodeReply('frontend', FrontendRequest.GET_CONFIG, 'config', split(failed))).toThrow(
      expect.objectContaining({ code: 'REQUEST_FAILED', message: expect.stringMatching(/zero-length/) }),
    );
    // a config header with no data is a successful read of 0 bytes; a short one is malformed
    const empty = encodeReply(FrontendRequest.GET_CONFIG, 'config', {
      offset: 4,
      size: 0,
      flags: 0,
      data: new Uint8Array(0),
    });
    expect(decodeReply('frontend', FrontendRequest.GET_CONFIG, 'config', split(empty)).body.size).toBe(0);
    const short = encodeReply(FrontendRequest.GET_CONFIG, 'opaque', new Uint8Array(4));
    expect(() => decodeReply('frontend', FrontendRequest.GET_CONFIG, 'config', split(short))).toThrow(
      expect.objectContaining({ code: 'INVALID_PAYLOAD_SIZE' }),
    );
  });

  it('sets NEED_REPLY only when asked', () => {
    const b = encodeRequest(FrontendRequest.SET_FEATURES, 'u64', 1n, { needReply: true });
    expect(b.readUInt32LE(4)).toBe(1 | VHOST_USER_NEED_REPLY_MASK);
    expect(encodeRequest(FrontendRequest.SET_FEATURES, 'u64', 1n).readUInt32LE(4)).toBe(1);
  });

  it('payload encoders reject values that do not fit', () => {
    expect(() => encodePayload('u64', -1n)).toThrow(VhostUserError);
    expect(() => encodePayload('u64', 1n << 64n)).toThrow(VhostUserError);
    expect(() => encodePayload('vringState', { index: -1, num: 0 })).toThrow(VhostUserError);
    expect(() => encodePayload('config', { offset: 0, size: 3, flags: 0, data: new Uint8Array(2) })).toThrow(
      VhostUserError,
    );
  });
});

describe('codec: bounded fuzz', () => {
  it('arbitrary bytes and fds never crash, never leak an fd, always give a typed error or a message', () => {
    const before = openFdCount();
    const deadline = Date.now() + 10_000;
    let messages = 0;
    let errors = 0;
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 0, max: 45 }), fc.integer({ min: 0, max: 0xffffffff })),
        fc.integer({ min: 0, max: 15 }),
        fc.uint8Array({ maxLength: 400 }),
        fc.integer({ min: 0, max: 9 }),
        fc.constantFrom<'frontend' | 'backend'>('frontend', 'backend'),
        (request, flags, payload, nfds, direction) => {
          if (Date.now() > deadline) return;
          const fds = eventFds(nfds);
          const bytes = Buffer.concat([
            Buffer.from(new Uint32Array([request, flags, payload.length]).buffer),
            payload,
          ]);
          try {
            const raw = split(bytes, fds);
            const msg = decodeRequest(direction, raw);
            messages++;
            for (const f of msg.fds) f.close();
            // fds the decoder did not hand over must be closed
            for (const f of fds) if (!msg.fds.includes(f)) expect(f.closed).toBe(true);
          } catch (err) {
            if (!(err instanceof VhostUserError)) throw err;
            errors++;
            for (const f of fds) if (!f.closed) f.close();
          }
        },
      ),
      { numRuns: 3000 },
    );
    expect(messages + errors).toBeGreaterThan(0);
    expect(errors).toBeGreaterThan(0);
    expect(openFdCount()).toBe(before);
  });
});
