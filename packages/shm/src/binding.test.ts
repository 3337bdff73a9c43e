import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { raw } from './binding.js';
import { memfdCreate, ShmError } from './index.js';

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('raw binding: bad arguments throw, nothing crashes', () => {
  it('rejects wrong types and ranges', () => {
    expect(() => raw.memfdCreate(42 as unknown as string, 0)).toThrow(TypeError);
    expect(() => raw.ftruncate(-1, 0)).toThrow(RangeError);
    expect(() => raw.ftruncate('3' as unknown as number, 0)).toThrow(TypeError);
    expect(() => raw.ftruncate(3, 2 ** 60)).toThrow(RangeError);
    expect(() => raw.ftruncate(3, Number.NaN)).toThrow(RangeError);
    expect(() => raw.mmap(3, 0, 0, false)).toThrow(RangeError);
    expect(() => raw.munmap(new ArrayBuffer(8))).toThrow(/not a mapping/);
    expect(() => raw.socketSend(3, {} as unknown as Uint8Array, 0, 1, [])).toThrow(TypeError);
    expect(() => raw.socketSend(3, new Uint8Array(4), 2, 8, [])).toThrow(/outside the buffer/);
    expect(() => raw.socketRecv(3, new Uint8Array(4), 0, 4, 300)).toThrow(RangeError);
    expect(() => raw.watcherStart({}, 1)).toThrow(/not a watcher/);
    expect(() => raw.eventfdWrite(3, 0)).toThrow(RangeError);
    expect(() => raw.socketConnect('')).toThrow(/1 to 107 bytes/);
    expect(() => raw.socketConnect('a\0b')).toThrow(/NUL/);
  });

  it('system-call failures are ShmErrors with errno, code and syscall', () => {
    const fd = memfdCreate('gone');
    const n = fd.fd;
    fd.close();
    const err = (() => {
      try {
        raw.fstat(n);
      } catch (e) {
        return e as ShmError;
      }
      throw new Error('fstat of a closed fd succeeded');
    })();
    expect(err).toBeInstanceOf(ShmError);
    expect(err.code).toBe('EBADF');
    expect(err.errno).toBe(9);
    expect(err.syscall).toBe('fstat');
    expect(err.message).toMatch(/fstat failed: Bad file descriptor \(EBADF\)/);
  });

  it('a double munmap through the raw binding is refused, not a double free', () => {
    using fd = memfdCreate('double', { size: 4096 });
    const ab = raw.mmap(fd.fd, 4096, 0, false);
    raw.munmap(ab);
    expect(() => raw.munmap(ab)).toThrow(/already unmapped/);
  });
});

describe('loader', () => {
  it('says exactly how to build the addon when it is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vipc-noaddon-'));
    try {
      cpSync(join(packageRoot, 'dist'), join(dir, 'dist'), { recursive: true });
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
      const r = spawnSync(
        process.execPath,
        ['-e', `import(${JSON.stringify(join(dir, 'dist', 'index.js'))})`],
        {
          encoding: 'utf8',
        },
      );
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/native addon is not built/);
      expect(r.stderr).toMatch(/pnpm --filter @vipc\/shm run build:native/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
