import type { BackendQueue, VirtioDevice } from '../device.js';

/**
 * A device for the inflight tests: takes every chain made available, in
 * order, and completes only the first `completeFirst`; the rest stay inflight
 * (as when a back-end dies in the middle of its work).
 */
export class InOrderDevice implements VirtioDevice {
  readonly type = 'test';
  readonly features = 0n;
  readonly queueCount = 1;
  /** Heads (split) or buffer ids (packed) in the order they were taken. */
  popped: number[] = [];
  completeFirst: number;
  constructor(completeFirst: number) {
    this.completeFirst = completeFirst;
  }
  process(q: BackendQueue): undefined {
    for (;;) {
      const c = q.pop();
      if (c === null) break;
      this.popped.push(c.head);
      if (this.popped.length <= this.completeFirst) q.addUsed(c.head, 0);
    }
    q.flush();
    return undefined;
  }
}
