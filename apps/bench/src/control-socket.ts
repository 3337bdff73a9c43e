/**
 * The control channel of an endpoint that runs where neither fork() IPC nor
 * worker messages reach (inside an LXC container): length-prefixed JSON frames
 * over an AF_UNIX stream socket of @vipc/shm, which can also carry the
 * descriptors (memfd, eventfds) the endpoint needs, with the frame they go with.
 */
import { BenchError } from './errors.js';

/** Largest control frame accepted (the peer is not trusted with our memory). */
export const MAX_CONTROL_FRAME = 1 << 20;

export interface FdLike {
  fd: number;
  release(): number;
  close(): void;
}

export interface ControlSocketLike {
  write(data: Uint8Array, fds?: readonly (FdLike | number)[]): boolean;
  readExact(length: number, options?: { maxFds?: number }): Promise<{ data: Uint8Array; fds: FdLike[] }>;
  close(): void;
}

export function encodeFrame(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  if (body.length > MAX_CONTROL_FRAME)
    throw new BenchError('PROTOCOL', `control frame of ${body.length} bytes`);
  const head = Buffer.alloc(4);
  head.writeUInt32LE(body.length, 0);
  return Buffer.concat([head, body]);
}

/** Sends one frame; `fds` travel with its first byte. */
export function writeFrame(
  sock: ControlSocketLike,
  message: unknown,
  fds: readonly (FdLike | number)[] = [],
): void {
  sock.write(encodeFrame(message), fds);
}

/** Reads frames until the socket closes or fails; each frame's descriptors (at most `maxFds`) come along. */
export async function readFrames(
  sock: ControlSocketLike,
  onFrame: (message: unknown, fds: FdLike[]) => void,
  maxFds = 4,
): Promise<void> {
  for (;;) {
    const head = await sock.readExact(4, { maxFds });
    const len = Buffer.from(head.data.buffer, head.data.byteOffset, 4).readUInt32LE(0);
    if (len > MAX_CONTROL_FRAME) {
      for (const f of head.fds) f.close();
      throw new BenchError(
        'PROTOCOL',
        `control frame of ${len} bytes announced (limit ${MAX_CONTROL_FRAME})`,
      );
    }
    const body = await sock.readExact(len, { maxFds: 0 });
    let message: unknown;
    try {
      message = JSON.parse(Buffer.from(body.data).toString('utf8'));
    } catch {
      for (const f of head.fds) f.close();
      throw new BenchError('PROTOCOL', 'control frame is not JSON');
    }
    onFrame(message, head.fds);
  }
}
