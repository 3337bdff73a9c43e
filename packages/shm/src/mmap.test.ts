import { ftruncateSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { Fd, memfdCreate, mmap, pageSize, ShmError } from './index.js';

describe('mmap', () => {
  it('two mappings of one memfd see each other’s writes', () => {
    using fd = memfdCreate('twice', { size: 65536 });
    using a = mmap(fd);
    using b = mmap(fd, { offset: pageSize(), length: 2 * pageSize() });
    const va = new Uint32Array(a.buffer);
    const vb = new Uint32Array(b.buffer);
    va[pageSize() / 4] = 0xdeadbeef;
    expect(vb[0]).toBe(0xdeadbeef);
    vb[1] = 42;
    expect(va[pageSize() / 4 + 1]).toBe(42);
    expect(a.buffer).toBeInstanceOf(ArrayBuffer);
    expect(a.shared).toBe(false);
  });

  it('unmap() detaches the buffer so no view can reach freed memory', () => {
    using fd = memfdCreate('detach', { size: 4096 });
    const map = mmap(fd);
    const view = new Uint8Array(map.buffer);
    view[0] = 1;
    const buffer = map.buffer;
    map.unmap();
    expect(buffer.byteLength).toBe(0);
    expect(view.length).toBe(0);
    expect(view[0]).toBeUndefined();
    expect(() => map.buffer).toThrow(/unmapped/);
    map.unmap(); // twice is harmless
  });

  it('refuses ranges past the end of the file (they would raise SIGBUS)', () => {
    using fd = memfdCreate('short', { size: 4096 });
    expect(() => mmap(fd, { length: 8192 })).toThrow(/only 4096 bytes/);
    expect(() => mmap(fd, { offset: 4096, length: 1 })).toThrow(ShmError);
    expect(() => mmap(fd, { offset: 100, length: 100 })).toThrow(/multiple of the page size/);
    expect(() => mmap(fd, { length: 0 })).toThrow(/positive/);
    expect(() => mmap(fd, { length: -5 })).toThrow(/positive/);
    using empty = memfdCreate('empty');
    expect(() => mmap(empty)).toThrow(/positive/);
  });

  it('maps an ordinary file, e.g. one on /dev/shm or tmpfs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vipc-mmap-'));
    try {
      const n = openSync(join(dir, 'region'), 'w+');
      ftruncateSync(n, 8192);
      using fd = new Fd(n);
      using map = mmap(fd);
      new Uint8Array(map.buffer).fill(3);
      expect(new Uint8Array(map.buffer)[8191]).toBe(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports a closed descriptor as EBADF, never crashing', () => {
    const fd = memfdCreate('closed', { size: 4096 });
    const n = fd.fd;
    fd.close();
    expect(() => mmap(n, { length: 4096 })).toThrow(/EBADF/);
  });
});

describe('mmap shared: true', () => {
  it('returns a SharedArrayBuffer that worker_threads share, with Atomics across threads', async () => {
    using fd = memfdCreate('sab', { size: 4096 });
    const map = mmap(fd, { shared: true });
    expect(map.buffer).toBeInstanceOf(SharedArrayBuffer);
    const words = new Int32Array(map.buffer);
    const worker = new Worker(
      `const { workerData } = require('node:worker_threads');
       const w = new Int32Array(workerData);
       w[1] = 1234;
       Atomics.store(w, 0, 1);
       Atomics.notify(w, 0);`,
      { eval: true, workerData: map.buffer },
    );
    const exit = new Promise((resolve) => worker.on('exit', resolve));
    const woke = Atomics.waitAsync(words, 0, 0, 10_000);
    await woke.value;
    expect(Atomics.load(words, 0)).toBe(1);
    expect(words[1]).toBe(1234);
    expect(await exit).toBe(0);
    // Another mapping of the same memfd sees the worker's write: it is the real file.
    using plain = mmap(fd);
    expect(new Int32Array(plain.buffer)[1]).toBe(1234);
    map.unmap();
    expect(map.unmapped).toBe(true);
  });
});
