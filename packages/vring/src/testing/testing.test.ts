import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../guest-memory.js';
import { SplitDriverQueue } from '../split-driver-queue.js';
import { splitLayout } from '../split-layout.js';
import { MockDevice, MockDriver } from './index.js';

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('./testing: MockDriver and MockDevice', () => {
  for (const kind of ['split', 'packed'] as const) {
    it(`${kind}: a request/response round trip, segmented and indirect`, () => {
      const driver = new MockDriver({ kind, size: 16, features: { indirect: true, eventIdx: true } });
      const device = MockDevice.for(driver);
      expect(driver.send('hello', { writable: 16, token: 1 })).toBeGreaterThanOrEqual(0);
      expect(driver.send('segmented request', { writable: 32, segment: 4, token: 2 })).toBeGreaterThanOrEqual(
        0,
      );
      expect(driver.send('indirect', { writable: 8, indirect: true, token: 3 })).toBeGreaterThanOrEqual(0);
      const seen: string[] = [];
      expect(
        device.process((chain, request) => {
          seen.push(`${text(request)}/${chain.readable.length}`);
          return new TextEncoder().encode(text(request).toUpperCase());
        }),
      ).toBe(3);
      expect(seen).toEqual(['hello/1', 'segmented request/5', 'indirect/1']);
      const used = driver.collect();
      expect(used.map((u) => [u.token, text(u.data)])).toEqual([
        [1, 'HELLO'],
        [2, 'SEGMENTED REQUEST'],
        [3, 'INDIRECT'],
      ]);
      expect(driver.pending).toBe(0);
      expect(driver.kicks).toBeGreaterThan(0);
      expect(device.notifications).toBeGreaterThan(0);
    });
  }

  it('send returns -1 when the ring is full, and works again after collect()', () => {
    const driver = new MockDriver({ size: 2 });
    const device = MockDevice.for(driver);
    expect(driver.send('a')).toBe(0);
    expect(driver.send('b')).toBe(1);
    expect(driver.send('c')).toBe(-1);
    expect(device.echo()).toBe(2);
    expect(driver.collect().map((u) => u.len)).toEqual([0, 0]); // no writable space: nothing written
    expect(driver.send('c')).toBeGreaterThanOrEqual(0);
  });

  it('a MockDevice serves a ring set up by the driver under test', () => {
    const size = 16;
    const l = splitLayout(size);
    const memory = GuestMemory.fromBuffer(new ArrayBuffer(65536));
    const addresses = { descTable: 0n, availRing: BigInt(l.availRing), usedRing: BigInt(l.usedRing) };
    const mine = new SplitDriverQueue({ memory, size, addresses });
    memory.slice(8192, 3).set([1, 2, 3]);
    mine.add(
      [
        { addr: 8192, len: 3 },
        { addr: 9000, len: 3, writable: true },
      ],
      'x',
    );
    mine.publish();
    const device = new MockDevice({ memory, size, addresses });
    expect(device.process((_, req) => req.map((b) => b * 10))).toBe(1);
    expect(mine.popUsed()).toEqual({ head: 0, len: 3, token: 'x' });
    expect(Array.from(memory.slice(9000, 3))).toEqual([10, 20, 30]);
  });

  it('a MockDriver feeds the device queue under test', () => {
    const driver = new MockDriver({ kind: 'packed', size: 4 });
    const dq = driver.deviceQueue();
    driver.send('ping', { writable: 4 });
    const c = dq.pop()!;
    expect(text(c.read())).toBe('ping');
    dq.addUsed(c.head, c.write(new TextEncoder().encode('pong')));
    dq.publishUsed();
    expect(text(driver.collect()[0]!.data)).toBe('pong');
  });
});
