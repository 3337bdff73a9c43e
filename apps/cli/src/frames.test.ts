import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CliError } from './errors.js';
import { encodeFrame, FrameDecoder, LineDecoder } from './frames.js';
import { checkMessage, makeMessage } from './traffic.js';

/** Splits `data` at the given cut points (property tests feed arbitrary chunkings). */
function chunks(data: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, data.length]) {
    out.push(data.subarray(prev, c));
    prev = c;
  }
  return out;
}

describe('FrameDecoder', () => {
  it('gives back exactly the frames encoded, however the stream is cut', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (frames, cuts) => {
          const d = new FrameDecoder(300);
          const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));
          const got = chunks(stream, cuts).flatMap((c) => d.push(c));
          expect(got.map((g) => [...g])).toEqual(frames.map((f) => [...f]));
          expect(d.remainder).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses a frame larger than the link carries, and keeps a partial frame pending', () => {
    const d = new FrameDecoder(16);
    expect(() => d.push(encodeFrame(new Uint8Array(17)))).toThrow(CliError);
    const e = new FrameDecoder(16);
    expect(e.push(encodeFrame(new Uint8Array(10)).subarray(0, 7))).toEqual([]);
    expect(e.remainder).toBe(7);
  });

  it('survives arbitrary garbage: frames or a typed error, never anything else (bounded fuzz)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
        const d = new FrameDecoder(1500);
        try {
          for (const f of d.push(Buffer.from(bytes))) expect(f.length).toBeLessThanOrEqual(1500);
        } catch (err) {
          expect(err).toBeInstanceOf(CliError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('LineDecoder', () => {
  it('splits lines (LF or CRLF), however the input is cut', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ maxLength: 40 }).filter((s) => !/[\r\n]/.test(s)),
          { maxLength: 20 },
        ),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 10 }),
        (lines, crlf, cuts) => {
          const d = new LineDecoder(1000);
          const text = Buffer.from(lines.map((l) => `${l}${crlf ? '\r\n' : '\n'}`).join(''));
          const got = [...chunks(text, cuts).flatMap((c) => d.push(c)), ...d.end()];
          expect(got.map((g) => g.toString())).toEqual(lines);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps a last line without newline, and refuses lines longer than the link carries', () => {
    const d = new LineDecoder(8);
    expect(d.push(Buffer.from('ab\ncd'))).toEqual([Buffer.from('ab')]);
    expect(d.end()).toEqual([Buffer.from('cd')]);
    expect(() => new LineDecoder(8).push(Buffer.from('123456789'))).toThrow(/longer than the link carries/);
  });
});

describe('generated messages', () => {
  it('check back to their sequence number, and any flipped byte is detected', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 2 ** 32 - 1 }),
        fc.integer({ min: 9, max: 512 }),
        fc.nat(),
        (seq, size, at) => {
          const m = makeMessage(seq, size);
          expect(checkMessage(m, size)).toBe(seq);
          const bad = Uint8Array.from(m);
          bad[at % size]! ^= 0x01;
          expect(checkMessage(bad, size)).toBeUndefined();
          expect(checkMessage(m, size + 1)).toBeUndefined();
        },
      ),
      { numRuns: 300 },
    );
  });

  it('the header is magic then sequence number, little-endian, also when a buffer is refilled', () => {
    const m = makeMessage(0x01020304, 12);
    expect([...m.subarray(0, 8)]).toEqual([0x76, 0x69, 0x70, 0x63, 0x04, 0x03, 0x02, 0x01]);
    // a short message carries a prefix of the header
    expect([...makeMessage(0x01020304, 6)]).toEqual([0x76, 0x69, 0x70, 0x63, 0x04, 0x03]);
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 2 ** 32 - 1 }), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 8, max: 300 }),
        (seqs, size) => {
          const scratch = new Uint8Array(size);
          for (const seq of seqs) {
            const m = makeMessage(seq, size, scratch);
            expect(m).toBe(scratch);
            expect(Buffer.from(m).equals(Buffer.from(makeMessage(seq, size)))).toBe(true);
            expect(checkMessage(m, size)).toBe(seq);
          }
        },
      ),
      { numRuns: 100 },
    );
    // a buffer of another size is not reused
    const other = new Uint8Array(5);
    expect(makeMessage(1, 16, other)).not.toBe(other);
  });
});
