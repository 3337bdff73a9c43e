/** The transmit-frame view VirtioNetDevice hands to onFrame, over every buffer layout. */
import { MockDriver } from '@vipc/vring/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { frameView } from './net-device.js';

const HDR = 12;

function chainOf(driver: MockDriver, data: Uint8Array, segment?: number) {
  const device = driver.deviceQueue();
  expect(driver.send(data, segment === undefined ? {} : { segment })).toBeGreaterThanOrEqual(0);
  const chain = device.pop();
  if (chain === null) throw new Error('no chain');
  return chain;
}

function frameWithHeader(len: number, seed: number): Uint8Array {
  const d = new Uint8Array(HDR + len);
  for (let i = 0; i < d.length; i++) d[i] = (i * 31 + seed) & 0xff;
  return d;
}

describe('frameView', () => {
  for (const kind of ['split', 'packed'] as const) {
    it(`header and frame in one buffer: a view into guest memory, no copy (${kind})`, () => {
      const driver = new MockDriver({ kind, size: 16 });
      const data = frameWithHeader(64, 1);
      const f = frameView(chainOf(driver, data), HDR);
      expect(f).toEqual(data.subarray(HDR));
      expect(f.buffer).toBe(driver.mem.buffer);
    });

    it(`the header alone in the first buffer: a view of the second (${kind})`, () => {
      const driver = new MockDriver({ kind, size: 16 });
      const data = frameWithHeader(HDR, 2); // segments of HDR bytes: header, then frame
      const f = frameView(chainOf(driver, data, HDR), HDR);
      expect(f).toEqual(data.subarray(HDR));
      expect(f.buffer).toBe(driver.mem.buffer);
    });

    it(`any other layout is copied out whole, and an empty frame is empty (${kind})`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 2000 }),
          fc.integer({ min: 8, max: 600 }), // at most 252 buffers: fits the ring
          fc.integer({ min: 0, max: 255 }),
          (len, segment, seed) => {
            const driver = new MockDriver({ kind, size: 256 });
            const data = frameWithHeader(len, seed);
            expect(frameView(chainOf(driver, data, segment), HDR)).toEqual(data.subarray(HDR));
          },
        ),
        { numRuns: 300 },
      );
    });
  }
});
