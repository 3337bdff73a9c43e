import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  connect,
  EventFd,
  type Fd,
  fileSize,
  memfdCreate,
  openFdCount,
  ShmError,
  socketPair,
  UnixServer,
  type UnixSocket,
} from './index.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vipc-sock-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function nextConnection(server: UnixServer): Promise<UnixSocket> {
  return new Promise((resolve) => server.once('connection', resolve));
}

describe('UnixServer and connect', () => {
  it('accepts a connection and carries bytes both ways', async () => {
    const path = join(dir, 'a.sock');
    using server = UnixServer.listen(path, { mode: 0o600 });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const accepted = nextConnection(server);
    using client = await connect(path);
    using peer = await accepted;
    client.write(Buffer.from('ping'));
    const got = await peer.readExact(4);
    expect(got.data.toString()).toBe('ping');
    peer.write(Buffer.from('pong!'));
    expect((await client.readExact(5)).data.toString()).toBe('pong!');
    const creds = peer.peerCredentials();
    expect(creds).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
  });

  it('removes its socket file on close, and only its own', async () => {
    const path = join(dir, 'b.sock');
    const server = UnixServer.listen(path);
    server.close();
    expect(existsSync(path)).toBe(false);
  });

  it('refuses a live socket path, removes a stale one, never removes other files', () => {
    const path = join(dir, 'c.sock');
    const live = UnixServer.listen(path);
    expect(() => UnixServer.listen(path, { removeStale: true })).toThrow(/EADDRINUSE/);
    live.close();
    // a stale socket: bound, then its owner went away without unlinking it
    const stale = UnixServer.listen(path);
    stale.fd.close();
    expect(existsSync(path)).toBe(true);
    const fresh = UnixServer.listen(path, { removeStale: true });
    fresh.close();
    stale.close();
    const file = join(dir, 'data.txt');
    writeFileSync(file, 'precious');
    expect(() => UnixServer.listen(file, { removeStale: true })).toThrow(/EADDRINUSE/);
    expect(existsSync(file)).toBe(true);
  });

  it('connect waits for a socket that appears later, and times out clearly', async () => {
    const path = join(dir, 'late.sock');
    let server: UnixServer | undefined;
    const t = setTimeout(() => {
      server = UnixServer.listen(path);
    }, 100);
    const sock = await connect(path, { timeoutMs: 5000 });
    sock.close();
    clearTimeout(t);
    server?.close();
    await expect(connect(join(dir, 'never.sock'), { timeoutMs: 100 })).rejects.toMatchObject({
      code: 'ENOENT',
    });
  });

  it('rejects socket paths that do not fit sun_path', () => {
    expect(() => UnixServer.listen(join(dir, 'x'.repeat(120)))).toThrow(/1 to 107 bytes/);
  });
});

describe('file descriptor passing', () => {
  it('passes 32 fds in one message; they work on the other side', async () => {
    const [a, b] = socketPair();
    const fds = Array.from({ length: 32 }, (_, i) => memfdCreate(`fd${i}`, { size: (i + 1) * 4096 }));
    a.write(Buffer.from([1, 2, 3]), fds);
    const got = await b.readExact(3, { maxFds: 64 });
    expect(got.fds).toHaveLength(32);
    expect(got.fdsTruncated).toBe(false);
    got.fds.forEach((fd, i) => {
      expect(fileSize(fd)).toBe((i + 1) * 4096);
      expect(fd.fd).not.toBe(fds[i]!.fd);
    });
    for (const f of [...fds, ...got.fds]) f.close();
    a.close();
    b.close();
  });

  it('closes fds that arrive unasked-for, and reports the truncation', async () => {
    const [a, b] = socketPair();
    const before = openFdCount();
    const efd = EventFd.create();
    a.write(Buffer.from('x'), [efd.fd, efd.fd, efd.fd]);
    const none = await b.readExact(1);
    expect(none.fds).toHaveLength(0);
    expect(none.fdsTruncated).toBe(true);
    a.write(Buffer.from('y'), [efd.fd, efd.fd, efd.fd]);
    const one = await b.readExact(1, { maxFds: 1 });
    expect(one.fds).toHaveLength(1);
    expect(one.fdsTruncated).toBe(true);
    one.fds[0]!.close();
    efd.close();
    expect(openFdCount()).toBe(before);
    a.close();
    b.close();
  });

  it('keeps queued fds alive until sent, even if the caller closes its own', async () => {
    const [a, b] = socketPair();
    // fill the socket buffer so the next write must queue
    const big = Buffer.alloc(4 * 1024 * 1024, 7);
    expect(a.write(big)).toBe(false);
    const memfd = memfdCreate('queued', { size: 8192 });
    a.write(Buffer.from('!'), [memfd]);
    memfd.close();
    const bulk = await b.readExact(big.length);
    expect(bulk.data.equals(big)).toBe(true);
    const tail = await b.readExact(1, { maxFds: 1 });
    expect(tail.data.toString()).toBe('!');
    expect(fileSize(tail.fds[0]!)).toBe(8192);
    tail.fds[0]!.close();
    a.close();
    b.close();
  });

  it('refuses more fds than SCM_RIGHTS can carry, and fds without data', () => {
    const [a, b] = socketPair();
    const efd = EventFd.create();
    expect(() => a.write(Buffer.from('x'), new Array<Fd>(254).fill(efd.fd))).toThrow(/at most 253/);
    expect(() => a.write(Buffer.alloc(0), [efd.fd])).toThrow(/at least one byte/);
    efd.close();
    a.close();
    b.close();
  });
});

describe('stream behaviour', () => {
  it('flowing mode delivers every byte in order', async () => {
    const [a, b] = socketPair();
    const total = 3 * 1024 * 1024;
    const src = Buffer.alloc(total);
    for (let i = 0; i < total; i++) src[i] = (i * 31) & 0xff;
    const chunks: Buffer[] = [];
    const done = new Promise<void>((resolve) => {
      let n = 0;
      b.on('data', (d: Buffer) => {
        chunks.push(Buffer.from(d));
        n += d.length;
        if (n === total) resolve();
      });
    });
    for (let off = 0; off < total; off += 100_000) a.write(src.subarray(off, Math.min(total, off + 100_000)));
    await done;
    expect(Buffer.concat(chunks).equals(src)).toBe(true);
    a.close();
    b.close();
  });

  it('pull mode: read() returns null, then readable fires', async () => {
    const [a, b] = socketPair();
    expect(b.read()).toBeNull();
    const readable = new Promise((r) => b.once('readable', r));
    a.write(Buffer.from('hello'));
    await readable;
    const chunk = b.read();
    expect(chunk?.data.toString()).toBe('hello');
    a.close();
    b.close();
  });

  it('end of stream mid-message rejects the read with PEER_CLOSED and emits end', async () => {
    const [a, b] = socketPair();
    const ended = new Promise((r) => b.once('end', r));
    const pending = b.readExact(12);
    a.write(Buffer.from('abcdef'));
    a.end();
    await expect(pending).rejects.toMatchObject({ code: 'PEER_CLOSED', message: /after 6 of 12 bytes/ });
    await ended;
    expect(b.ended).toBe(true);
    await expect(b.readExact(1)).rejects.toBeInstanceOf(ShmError);
    a.close();
    b.close();
  });

  it('a write to a closed peer becomes an error event, not a crash', async () => {
    const [a, b] = socketPair();
    b.close();
    const error = new Promise<Error>((r) => a.once('error', r));
    a.write(Buffer.from('into the void'));
    expect((await error).message).toMatch(/EPIPE|ECONNRESET/);
    expect(a.closed).toBe(true);
  });

  it('without an error listener a dead peer just closes the socket', async () => {
    const [a, b] = socketPair();
    b.close();
    const closed = new Promise((r) => a.once('close', r));
    a.write(Buffer.from('x'));
    await closed;
    expect(a.closed).toBe(true);
  });

  it('close() rejects pending reads with CLOSED', async () => {
    const [a, b] = socketPair();
    const pending = b.readExact(4);
    b.close();
    await expect(pending).rejects.toMatchObject({ code: 'CLOSED' });
    a.close();
  });
});
