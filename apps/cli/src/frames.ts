/**
 * stdin/stdout framing of `vipc send` / `vipc recv`: text lines, or with
 * --binary length-prefixed frames (a u32 big-endian length, then that many bytes).
 */
import { CliError } from './errors.js';

export const FRAME_HEADER_BYTES = 4;

export function encodeFrame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + message.length);
  out.writeUInt32BE(message.length, 0);
  out.set(message, FRAME_HEADER_BYTES);
  return out;
}

/** Splits a byte stream into frames; rejects frames larger than `maxSize` (hostile or wrong input). */
export class FrameDecoder {
  #pending: Buffer = Buffer.alloc(0);
  constructor(readonly maxSize: number) {}

  push(chunk: Buffer): Buffer[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const frames: Buffer[] = [];
    let at = 0;
    while (this.#pending.length - at >= FRAME_HEADER_BYTES) {
      const len = this.#pending.readUInt32BE(at);
      if (len > this.maxSize)
        throw new CliError(
          'FAILED',
          `input frame of ${len} bytes is larger than the link carries (${this.maxSize})`,
        );
      if (this.#pending.length - at - FRAME_HEADER_BYTES < len) break;
      frames.push(this.#pending.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + len));
      at += FRAME_HEADER_BYTES + len;
    }
    this.#pending = this.#pending.subarray(at);
    return frames;
  }

  /** Bytes of an incomplete frame left at end of input. */
  get remainder(): number {
    return this.#pending.length;
  }
}

/** Splits text input into lines (without their '\n' or '\r\n'). */
export class LineDecoder {
  #pending: Buffer = Buffer.alloc(0);
  constructor(readonly maxSize: number) {}

  push(chunk: Buffer): Buffer[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const lines: Buffer[] = [];
    let at = 0;
    for (let nl = this.#pending.indexOf(10, at); nl >= 0; nl = this.#pending.indexOf(10, at)) {
      const end = nl > at && this.#pending[nl - 1] === 13 ? nl - 1 : nl;
      lines.push(this.#check(this.#pending.subarray(at, end)));
      at = nl + 1;
    }
    this.#pending = this.#pending.subarray(at);
    if (this.#pending.length > this.maxSize) this.#check(this.#pending);
    return lines;
  }

  /** The last line when input does not end with a newline. */
  end(): Buffer[] {
    const rest = this.#pending;
    this.#pending = Buffer.alloc(0);
    return rest.length > 0 ? [this.#check(rest)] : [];
  }

  #check(line: Buffer): Buffer {
    if (line.length > this.maxSize)
      throw new CliError(
        'FAILED',
        `input line of ${line.length}+ bytes is longer than the link carries (${this.maxSize})`,
      );
    return line;
  }
}
