import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import {
  addSeals,
  Fd,
  fileSize,
  fstat,
  ftruncate,
  getSeals,
  hasSeals,
  memfdCreate,
  mmap,
  Seal,
  ShmError,
} from './index.js';

describe('memfdCreate', () => {
  it('creates an empty close-on-exec file that ftruncate sizes', () => {
    using fd = memfdCreate('vipc-test');
    expect(fileSize(fd)).toBe(0);
    ftruncate(fd, 1 << 20);
    expect(fileSize(fd)).toBe(1 << 20);
    expect(fstat(fd).isRegularFile).toBe(true);
    expect(fd.describe()).toMatch(/^\/memfd:vipc-test/);
    // FD_CLOEXEC is flag 1 in /proc/self/fdinfo's "flags" (octal 02000000 is O_CLOEXEC).
    const info = readFileSync(`/proc/self/fdinfo/${fd.fd}`, 'utf8');
    const flags = Number.parseInt(/flags:\s+(\d+)/.exec(info)![1]!, 8);
    expect(flags & 0o2000000).toBe(0o2000000);
  });

  it('sizes the file at creation', () => {
    using fd = memfdCreate('sized', { size: 12345 });
    expect(fileSize(fd)).toBe(12345);
  });

  it('rejects bad names and sizes with clear errors', () => {
    expect(() => memfdCreate('x'.repeat(300))).toThrow(/at most 249 bytes/);
    expect(() => memfdCreate('a\0b')).toThrow(ShmError);
    expect(() => memfdCreate('bad', { size: -1 })).toThrow(/non-negative safe integer/);
    expect(() => memfdCreate('bad', { size: 2 ** 60 })).toThrow(ShmError);
    expect(() => memfdCreate('bad', { hugetlb: true, hugePageSize: 3000 })).toThrow(/power of two/);
  });
});

describe('seals', () => {
  it('a sealed memfd refuses to shrink, and to grow when sealed so', () => {
    using fd = memfdCreate('sealed', { size: 8192 });
    expect(getSeals(fd)).toBe(0);
    addSeals(fd, Seal.SHRINK);
    expect(hasSeals(fd, Seal.SHRINK)).toBe(true);
    const err = (() => {
      try {
        ftruncate(fd, 4096);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ShmError);
    expect((err as ShmError).code).toBe('EPERM');
    expect((err as ShmError).syscall).toBe('ftruncate');
    expect(fileSize(fd)).toBe(8192);
    ftruncate(fd, 16384); // growing is still allowed
    addSeals(fd, Seal.GROW | Seal.SEAL);
    expect(() => ftruncate(fd, 32768)).toThrow(/EPERM/);
    expect(() => addSeals(fd, Seal.WRITE)).toThrow(/EPERM/);
    expect(getSeals(fd)).toBe(Seal.SHRINK | Seal.GROW | Seal.SEAL);
  });

  it('a write seal makes writable mappings impossible', () => {
    using fd = memfdCreate('ro', { size: 4096 });
    addSeals(fd, Seal.WRITE);
    expect(() => mmap(fd)).toThrow(ShmError);
    const ro = mmap(fd, { readOnly: true });
    expect(ro.buffer.byteLength).toBe(4096);
    ro.unmap();
  });

  it('a memfd made without sealing refuses seals', () => {
    using fd = memfdCreate('nosealing', { allowSealing: false, size: 4096 });
    expect(getSeals(fd) & Seal.SEAL).toBe(Seal.SEAL);
    expect(hasSeals(fd, Seal.SHRINK)).toBe(false);
    expect(() => addSeals(fd, Seal.SHRINK)).toThrow(/EPERM/);
  });

  it('rejects seal values outside the known flags', () => {
    using fd = memfdCreate('badseal');
    expect(() => addSeals(fd, 0x100)).toThrow(/Seal flags/);
  });
});

describe('Fd', () => {
  it('closes once, and refuses use after close', () => {
    const fd = memfdCreate('close-once');
    const n = fd.fd;
    fd.close();
    fd.close();
    expect(fd.closed).toBe(true);
    expect(() => fd.fd).toThrow(/closed/);
    expect(() => fileSize(n)).toThrow(/EBADF/);
  });

  it('release() hands the number over without closing it', () => {
    const fd = memfdCreate('release');
    const n = fd.release();
    using again = new Fd(n);
    expect(fileSize(again)).toBe(0);
  });

  it('rejects numbers that cannot be descriptors', () => {
    expect(() => new Fd(-1)).toThrow(ShmError);
    expect(() => new Fd(1.5)).toThrow(ShmError);
    expect(() => fileSize(-3)).toThrow(/not a file descriptor/);
    expect(() => fileSize(2 ** 40)).toThrow(/not a file descriptor/);
  });
});

// Huge pages: reserve a few for this test as root, then give them back.
const HUGE = '/sys/kernel/mm/hugepages/hugepages-2048kB';
let restoreHuge: number | undefined;
afterAll(() => {
  if (restoreHuge !== undefined) writeFileSync(`${HUGE}/nr_hugepages`, String(restoreHuge));
});

describe('hugetlb memfd', () => {
  it('backs a memfd with 2 MiB pages', () => {
    const free = Number(readFileSync(`${HUGE}/free_hugepages`, 'utf8'));
    if (free < 2) {
      if (process.getuid?.() !== 0) throw new Error('needs 2 free 2 MiB hugepages, or root to reserve them');
      const total = Number(readFileSync(`${HUGE}/nr_hugepages`, 'utf8'));
      restoreHuge = total;
      writeFileSync(`${HUGE}/nr_hugepages`, String(total + 2));
    }
    using fd = memfdCreate('huge', { hugetlb: true, hugePageSize: 2 * 1024 * 1024 });
    ftruncate(fd, 2 * 1024 * 1024);
    expect(fstat(fd).blockSize).toBe(2 * 1024 * 1024);
    using map = mmap(fd);
    const v = new Uint8Array(map.buffer);
    v[0] = 7;
    v[v.length - 1] = 9;
    expect(v[0] + v[v.length - 1]!).toBe(16);
    // hugetlbfs offsets must be huge-page aligned
    expect(() => mmap(fd, { offset: 4096, length: 4096 })).toThrow(/multiple of the page size 2097152/);
  });
});
