/**
 * A vhost-user back-end program following the spec's "Backend program
 * conventions": --socket-path or --fd, --print-capabilities (JSON on stdout),
 * ends cleanly on SIGTERM, never daemonises. The device is virtio-net; it
 * counts frames, or reflects them with --echo.
 */
import { parseArgs } from 'node:util';
import { Fd, UnixSocket } from '@vipc/shm';
import { VhostUserBackend } from './backend.js';
import { Connection, type VhostUserListener } from './connection.js';
import { VirtioNetDevice } from './net-device.js';

export const USAGE = `usage: vipc-vhost-user-net (--socket-path=PATH | --fd=N) [--mode=event|poll] [--queues=N] [--echo]
       vipc-vhost-user-net --print-capabilities`;

export interface ProgramIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

/** Runs the program; resolves with the exit code (0 after SIGTERM or a served --fd connection). */
export async function runBackendProgram(
  argv: string[],
  io: ProgramIo = { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) },
): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(argv);
  } catch (err) {
    io.stderr(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const v = args.values;
  if (v['print-capabilities']) {
    io.stdout(`${JSON.stringify({ type: 'net', features: [] })}\n`);
    return 0;
  }
  if ((v['socket-path'] === undefined) === (v.fd === undefined)) {
    io.stderr(`exactly one of --socket-path and --fd is required\n${USAGE}\n`);
    return 2;
  }
  const mode = v.mode ?? 'event';
  const pairs = Number(v.queues ?? '1');
  if ((mode !== 'event' && mode !== 'poll') || !Number.isInteger(pairs) || pairs < 1 || pairs > 128) {
    io.stderr(`bad --mode or --queues\n${USAGE}\n`);
    return 2;
  }
  const device = new VirtioNetDevice({ queuePairs: pairs });
  const backend = new VhostUserBackend({ device, mode, log: (l) => io.stderr(`${l}\n`) });
  if (v.echo) {
    // Reflect each frame on the same pair. Frames that arrive before the receive
    // queue runs, or while it has no buffers, wait (up to 4096 per pair).
    const pending: Uint8Array[][] = Array.from({ length: pairs }, () => []);
    let drops = 0;
    const flush = (pair: number): void => {
      const q = pending[pair]!;
      if (q.length === 0 || !device.linkUp(pair)) return;
      const n = device.sendBatch(q);
      q.splice(0, n);
    };
    device.onFrame = (frame, pair) => {
      const q = pending[pair]!;
      if (q.length >= 4096) {
        drops++;
        return;
      }
      q.push(frame.slice());
      flush(pair);
    };
    device.on('writable', (pair: number) => flush(pair));
    backend.on('queue-start', (q: { index: number }) => {
      if ((q.index & 1) === 0) flush(q.index >> 1);
    });
    backend.on('disconnect', () => {
      if (drops > 0) io.stderr(`echo: ${drops} frames dropped (no receive buffers for too long)\n`);
      drops = 0;
      for (const q of pending) q.length = 0;
    });
  }
  backend.on('connect', () => io.stderr('front-end connected\n'));
  backend.on('disconnect', (why: string) =>
    io.stderr(`front-end gone (${why}); received ${device.stats.received}, sent ${device.stats.sent}\n`),
  );
  let listener: VhostUserListener | undefined;
  let done!: (code: number) => void;
  const finished = new Promise<number>((resolve) => {
    done = resolve;
  });
  const onTerm = (): void => {
    backend.close();
    listener?.close();
    done(0);
  };
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onTerm);
  try {
    if (v['socket-path'] !== undefined) {
      listener = backend.listen(v['socket-path']);
      io.stderr(`listening on ${v['socket-path']}\n`);
    } else {
      const n = Number(v.fd);
      let socket: UnixSocket;
      try {
        socket = new UnixSocket(new Fd(n));
      } catch (err) {
        io.stderr(`--fd=${v.fd}: ${(err as Error).message}\n`);
        return 1;
      }
      void backend.serve(new Connection(socket, { role: 'backend' })).then(() => done(0));
    }
    return await finished;
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onTerm);
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      'socket-path': { type: 'string' },
      fd: { type: 'string' },
      'print-capabilities': { type: 'boolean' },
      mode: { type: 'string' },
      queues: { type: 'string' },
      echo: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
}
