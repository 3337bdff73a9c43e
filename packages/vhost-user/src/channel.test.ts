/** The message API between two processes: counts and checksums, both modes, back-pressure. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { anyPeer } from './connection.js';
import { type ChannelServer, connectChannel, listenChannel } from './endpoint.js';
import { pollUntil } from './test-support/until.js';

const peer = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'peer.mjs');

function message(i: number): Uint8Array {
  let x = (i * 2654435761) >>> 0 || 1;
  const len = 1 + (x % 4000);
  const m = new Uint8Array(len);
  for (let k = 0; k < len; k++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    m[k] = x & 0xff;
  }
  return m;
}

function checksum(m: Uint8Array): number {
  let h = 2166136261;
  for (const b of m) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h;
}

const until = (cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> =>
  pollUntil(cond, what, timeoutMs, 5);

let dir: string;
let server: ChannelServer | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), `vipc-vhu-ch-${process.pid}-`));
});
afterEach(() => {
  server?.close();
  server = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('MessageChannel between two processes', () => {
  for (const mode of ['event', 'poll'] as const) {
    it(`carries every message in order with intact contents (${mode} mode)`, async () => {
      const path = join(dir, `ch-${mode}.sock`);
      server = listenChannel(path, { mode });
      const count = 5000;
      const echo = 2000;
      const child = spawn(process.execPath, [peer, path, mode, String(count), String(echo)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      try {
        await server.ready(30_000);
        let i = 0;
        let bad = 0;
        for await (const m of server.channel) {
          if (checksum(m) !== checksum(message(i))) bad++;
          if (++i === count) break;
        }
        expect(bad).toBe(0);
        expect(server.channel.stats.received).toBe(count);
        const replies = Array.from({ length: echo }, (_, k) => message(1_000_000 + k));
        await server.channel.sendBatch(replies);
        expect(await exited).toBe(0);
        expect(JSON.parse(out)).toEqual({ sent: count, ok: echo, bad: 0 });
        expect(server.channel.stats.duplicates).toBe(0);
        expect(server.channel.stats.invalid).toBe(0);
      } finally {
        child.kill('SIGKILL');
      }
    });
  }

  it('a slow receiver back-pressures the sender instead of losing or buffering without bound', async () => {
    const path = join(dir, 'bp.sock');
    server = listenChannel(path, { highWaterMark: 64, policy: anyPeer });
    const client = await connectChannel(path, { policy: anyPeer, queueSize: 64 });
    try {
      await server.ready();
      const total = 2000;
      let done = false;
      const sending = client.channel
        .sendBatch(Array.from({ length: total }, (_, k) => message(k)))
        .then(() => {
          done = true;
        });
      // nobody reads yet: the receiver stops at its high-water mark, the ring fills, the sender blocks
      await until(() => server!.channel.stats.received >= 64, 'the high-water mark');
      await until(() => client.driver.tx.ring.freeCount() < 2, 'the transmit ring to fill');
      expect(done).toBe(false);
      expect(server.channel.stats.received).toBe(64);
      let i = 0;
      for await (const m of server.channel) {
        expect(checksum(m)).toBe(checksum(message(i)));
        if (++i === total) break;
      }
      await sending;
      expect(client.channel.stats.sent).toBe(total);
    } finally {
      client.close();
    }
  });
});
