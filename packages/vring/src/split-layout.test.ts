import { describe, expect, it } from 'vitest';
import { VringError } from './errors.js';
import { packedLayout } from './packed-layout.js';
import { splitLayout } from './split-layout.js';

// Offsets worked out by hand from 2.7 (desc 16*N; avail 6+2*N; used 6+8*N, 4-aligned)
// and from the legacy formula of 2.7.2 (used ring at ALIGN(16*N + 2*(3+N), 4096)).
describe('splitLayout', () => {
  it.each([
    // size, availRing, usedRing, totalBytes
    [1, 16, 24, 24 + 14],
    [2, 32, 44, 44 + 22],
    [4, 64, 80, 80 + 38],
    [8, 128, 152, 152 + 70],
    [256, 4096, 4096 + 518 + 2, 4616 + 2054],
    [1024, 16384, 16384 + 2054 + 2, 18440 + 8198],
    [32768, 524288, 524288 + 65542 + 2, 589832 + 262150],
  ])('size %i: avail at %i, used at %i, %i bytes', (size, avail, used, total) => {
    expect(splitLayout(size)).toEqual({
      size,
      descTable: 0,
      availRing: avail,
      usedRing: used,
      totalBytes: total,
    });
  });

  it.each([
    [128, 2048, 4096, 4096 + 6 + 1024],
    [256, 4096, 8192, 8192 + 6 + 2048],
    [1024, 16384, 20480, 20480 + 6 + 8192],
  ])('legacy align 4096, size %i: avail at %i, used at %i, %i bytes', (size, avail, used, total) => {
    expect(splitLayout(size, { align: 4096 })).toEqual({
      size,
      descTable: 0,
      availRing: avail,
      usedRing: used,
      totalBytes: total,
    });
  });

  it('the used ring is always 4-aligned and the parts never overlap', () => {
    for (let size = 1; size <= 32768; size *= 2) {
      const l = splitLayout(size);
      expect(l.usedRing % 4).toBe(0);
      expect(l.availRing).toBe(16 * size);
      expect(l.usedRing).toBeGreaterThanOrEqual(l.availRing + 6 + 2 * size);
    }
  });

  it.each([0, 3, 100, 65536, 32769, -1, 1.5, Number.NaN])('refuses size %s', (size) => {
    expect(() => splitLayout(size)).toThrow(VringError);
    try {
      splitLayout(size);
    } catch (e) {
      expect((e as VringError).code).toBe('INVALID_QUEUE_SIZE');
    }
  });
});

describe('packedLayout', () => {
  it.each([
    [1, 16, 20, 24],
    [3, 48, 52, 56],
    [256, 4096, 4100, 4104],
    [1000, 16000, 16004, 16008],
    [32768, 524288, 524292, 524296],
  ])('size %i: driver event at %i, device event at %i, %i bytes', (size, drv, dev, total) => {
    expect(packedLayout(size)).toEqual({
      size,
      descRing: 0,
      driverEvent: drv,
      deviceEvent: dev,
      totalBytes: total,
    });
  });

  it.each([0, 32769, 2.5])('refuses size %s', (size) => {
    expect(() => packedLayout(size)).toThrow(/packed queue size/);
  });
});
