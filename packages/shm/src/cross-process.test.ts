// Real-kernel tests between two processes: the peer is test/peer.mjs, run by
// node on the built package.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventFd, memfdCreate, mmap, openFdCount, ShmError, UnixServer, type UnixSocket } from './index.js';

const peerScript = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'peer.mjs');

let dir: string;
let server: UnixServer;
let child: ChildProcess | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vipc-xproc-'));
});
afterEach(() => {
  child?.kill('SIGKILL');
  child = undefined;
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

function startPeer(scenario: string, ...args: string[]): Promise<UnixSocket> {
  const path = join(dir, 'peer.sock');
  server = UnixServer.listen(path);
  const conn = new Promise<UnixSocket>((resolve) => server.once('connection', resolve));
  child = spawn(process.execPath, [peerScript, scenario, path, ...args], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return conn;
}

function exited(p: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (p.exitCode !== null || p.signalCode !== null)
    return Promise.resolve({ code: p.exitCode, signal: p.signalCode });
  return new Promise((resolve) => p.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('two processes', () => {
  it('share a memfd passed over SCM_RIGHTS and see each other’s writes', async () => {
    const sock = await startPeer('memfd');
    using memfd = memfdCreate('shared', { size: 4096 });
    using map = mmap(memfd);
    const words = new Uint32Array(map.buffer);
    words[0] = 21;
    sock.write(Buffer.from('m'), [memfd]);
    await sock.readExact(1);
    expect(words[1]).toBe(42);
    sock.write(Buffer.from('q'));
    expect(await exited(child!)).toEqual({ code: 0, signal: null });
    sock.close();
  });

  it('an eventfd kick from one process wakes the other’s watcher', async () => {
    const sock = await startPeer('kick', '7');
    using efd = EventFd.create();
    const woke = new Promise<number>((resolve) => {
      efd.watch((count) => resolve(count));
    });
    sock.write(Buffer.from('e'), [efd.fd]);
    expect(await woke).toBe(7);
    sock.write(Buffer.from('q'));
    expect(await exited(child!)).toEqual({ code: 0, signal: null });
    sock.close();
  });

  it('10,000 send/receive cycles carrying fds leave both fd counts unchanged', async () => {
    const cycles = 10_000;
    const sock = await startPeer('echo-fds', String(cycles));
    const before = openFdCount();
    using memfd = memfdCreate('cycled', { size: 4096 });
    const counter = Buffer.alloc(4);
    for (let i = 0; i < cycles; i++) {
      counter.writeUInt32LE(i);
      sock.write(counter, [memfd]);
      const back = await sock.readExact(4, { maxFds: 1 });
      expect(back.data.readUInt32LE(0)).toBe(i);
      expect(back.fds).toHaveLength(1);
      back.fds[0]!.close();
    }
    memfd.close();
    expect(openFdCount()).toBe(before);
    // The peer reports its own count before and after the cycles.
    const chunks: Buffer[] = [];
    for (;;) {
      const c = await sock.readExact(1);
      chunks.push(c.data);
      if (c.data[0] === 0x7d) break; // '}'
    }
    const report = JSON.parse(Buffer.concat(chunks).toString()) as { before: number; after: number };
    expect(report.after).toBe(report.before);
    sock.write(Buffer.from('q'));
    expect(await exited(child!)).toEqual({ code: 0, signal: null });
    sock.close();
  });

  it('peer credentials name the process at the other end', async () => {
    const sock = await startPeer('creds');
    const len = (await sock.readExact(4)).data.readUInt32LE(0);
    const reported = JSON.parse((await sock.readExact(len)).data.toString());
    expect(sock.peerCredentials()).toEqual(reported);
    expect(reported.pid).toBe(child!.pid);
    sock.write(Buffer.from('q'));
    await exited(child!);
    sock.close();
  });

  it('a peer that dies mid-message gives an error, not a crash', async () => {
    const sock = await startPeer('die-mid-message');
    const header = await sock.readExact(4);
    const size = header.data.readUInt32LE(0);
    const err = await sock.readExact(size).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShmError);
    expect((err as ShmError).code).toMatch(/PEER_CLOSED|ECONNRESET/);
    expect(await exited(child!)).toEqual({ code: null, signal: 'SIGKILL' });
    // this process carries on: the socket is usable for nothing, but nothing broke
    expect(sock.ended || sock.closed).toBe(true);
    sock.close();
  });
});
