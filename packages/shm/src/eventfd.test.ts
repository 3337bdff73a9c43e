import { describe, expect, it } from 'vitest';
import { EventFd, isEventFd, memfdCreate, ShmError } from './index.js';

describe('EventFd', () => {
  it('kick adds to the counter and drain reads and resets it', () => {
    using efd = EventFd.create();
    expect(efd.drain()).toBe(0);
    efd.kick();
    efd.kick(5);
    expect(efd.drain()).toBe(6);
    expect(efd.drain()).toBe(0);
  });

  it('semaphore mode drains one at a time', () => {
    using efd = EventFd.create({ semaphore: true, initialValue: 2 });
    expect(efd.drain()).toBe(1);
    expect(efd.drain()).toBe(1);
    expect(efd.drain()).toBe(0);
  });

  it('watch() calls back on the loop with the drained count, and stops on close', async () => {
    using efd = EventFd.create();
    const counts: number[] = [];
    let wake!: () => void;
    let woke = new Promise<void>((r) => {
      wake = r;
    });
    const watcher = efd.watch((count) => {
      counts.push(count);
      wake();
    });
    efd.kick(3);
    await woke;
    expect(counts).toEqual([3]);
    expect(efd.drain()).toBe(0); // the watcher drained it
    woke = new Promise<void>((r) => {
      wake = r;
    });
    efd.kick();
    await woke;
    expect(counts).toEqual([3, 1]);
    watcher.close();
    efd.kick();
    await new Promise((r) => setTimeout(r, 50));
    expect(counts).toEqual([3, 1]);
    expect(efd.drain()).toBe(1);
  });

  it('allows one watch at a time', () => {
    using efd = EventFd.create();
    const w = efd.watch(() => {});
    expect(() => efd.watch(() => {})).toThrow(/already watched/);
    w.close();
    efd.watch(() => {}).close();
  });

  it('adopts only real eventfds', () => {
    const memfd = memfdCreate('not-an-eventfd');
    expect(isEventFd(memfd)).toBe(false);
    expect(() => EventFd.from(memfd)).toThrow(/not an eventfd/);
    expect(memfd.closed).toBe(false); // refused: still the caller's
    memfd.close();
    const a = EventFd.create();
    const b = EventFd.from(a.fd.dup());
    a.kick(2);
    expect(b.drain()).toBe(2);
    a.close();
    b.close();
  });

  it('rejects bad values and use after close', () => {
    const efd = EventFd.create();
    expect(() => efd.kick(0)).toThrow(RangeError);
    expect(() => efd.kick(-1)).toThrow(RangeError);
    expect(() => EventFd.create({ initialValue: -1 })).toThrow(ShmError);
    efd.close();
    expect(() => efd.kick()).toThrow(/closed/);
  });
});
