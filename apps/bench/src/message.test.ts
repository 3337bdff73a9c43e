import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ControlSocketLike, encodeFrame, MAX_CONTROL_FRAME, readFrames } from './control-socket.js';
import { MessageKind } from './defs.js';
import { BenchError } from './errors.js';
import { makeMessage, ReceiverTally, StreamFramer } from './message.js';
import type { ReceiverReport } from './protocol.js';

describe('StreamFramer + ReceiverTally', () => {
  it('property: any chunking of a valid stream gives the same counts and one report per END', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 8, max: 300 }),
        fc.array(fc.constantFrom(MessageKind.WARM, MessageKind.MEASURE), { maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 20 }),
        (size, kinds, cuts) => {
          const stream = Buffer.concat([
            ...kinds.map((k) => makeMessage(size, k)),
            makeMessage(size, MessageKind.END, 'throughput'),
          ]);
          const reports: ReceiverReport[] = [];
          const tally = new ReceiverTally(size, (r) => reports.push(r));
          const framer = new StreamFramer(size, (kind, phase) => tally.message(kind, phase));
          let off = 0;
          let i = 0;
          while (off < stream.length) {
            const n = cuts[i++ % cuts.length]!;
            framer.push(stream.subarray(off, off + n));
            off += n;
          }
          expect(framer.partial).toBe(0);
          expect(reports).toHaveLength(1);
          expect(reports[0]!.phase).toBe('throughput');
          expect(reports[0]!.received).toBe(kinds.length);
          expect(reports[0]!.measured).toBe(kinds.filter((k) => k === MessageKind.MEASURE).length);
          expect(reports[0]!.bytes).toBe(kinds.length * size);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('bounded fuzz: random bytes only ever give PROTOCOL errors', () => {
    fc.assert(
      fc.property(fc.integer({ min: 8, max: 64 }), fc.uint8Array({ maxLength: 2000 }), (size, bytes) => {
        const tally = new ReceiverTally(size, () => {});
        const framer = new StreamFramer(size, (kind, phase) => tally.message(kind, phase));
        try {
          framer.push(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(BenchError);
          expect((err as BenchError).code).toBe('PROTOCOL');
        }
      }),
      { numRuns: 500, interruptAfterTimeLimit: 5000 },
    );
  });

  it('rejects unknown kinds and END of an unknown phase', () => {
    const tally = new ReceiverTally(8, () => {});
    expect(() => tally.message(0, 0)).toThrow(/unknown kind byte 0/);
    expect(() => tally.message(MessageKind.END, 9)).toThrow(/unknown phase 9/);
    expect(() => tally.messages(77, 3)).toThrow(/unknown kind byte 77/);
  });
});

/** A socket that replays a byte string, in arbitrary pieces, then reports closure. */
function replay(bytes: Uint8Array): ControlSocketLike {
  let off = 0;
  return {
    write: () => true,
    close: () => {},
    readExact: async (n) => {
      if (off + n > bytes.length) throw new Error('closed');
      const data = bytes.subarray(off, off + n);
      off += n;
      return { data, fds: [] };
    },
  };
}

describe('control socket frames', () => {
  it('round-trips messages', async () => {
    const msgs = [
      { type: 'ready' },
      { type: 'run', phase: 'latency', warmupMs: 1, durationMs: 2 },
      { a: 'é'.repeat(100) },
    ];
    const got: unknown[] = [];
    await expect(
      readFrames(replay(Buffer.concat(msgs.map(encodeFrame))), (m) => got.push(m)),
    ).rejects.toThrow('closed');
    expect(got).toEqual(msgs);
  });

  it('refuses oversized and non-JSON frames', async () => {
    const big = Buffer.alloc(4);
    big.writeUInt32LE(MAX_CONTROL_FRAME + 1, 0);
    await expect(readFrames(replay(big), () => {})).rejects.toMatchObject({ code: 'PROTOCOL' });
    const junk = Buffer.concat([Buffer.from([3, 0, 0, 0]), Buffer.from('{x}')]);
    await expect(readFrames(replay(junk), () => {})).rejects.toMatchObject({ code: 'PROTOCOL' });
  });

  it('bounded fuzz: random bytes end in a PROTOCOL error or the end of input, never anything else', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        const err = await readFrames(replay(bytes), () => {}).then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(Error);
        if (!(err instanceof BenchError)) expect((err as Error).message).toBe('closed');
        else expect(err.code).toBe('PROTOCOL');
      }),
      { numRuns: 300, interruptAfterTimeLimit: 5000 },
    );
  });
});
