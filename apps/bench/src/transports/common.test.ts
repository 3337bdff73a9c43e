import { describe, expect, it } from 'vitest';
import { nowNs } from '../cpu.js';
import { PhaseClock } from '../endpoint-api.js';
import { HdrHistogram } from '../hdr-histogram.js';
import { latencyReport, RoundTrips, throughputReport } from './common.js';

// A phase that starts measuring at the first tick and cannot end within a test.
const WARMUP_MS = 0;
const LONG_MS = 3_600_000;

describe('sender reports', () => {
  it('throughput: the clock figures, the counts and extra, nothing else', () => {
    const clock = new PhaseClock(WARMUP_MS, LONG_MS);
    expect(clock.tick()).toBe(1);
    const r = throughputReport(clock, 7, 5, { drains: 2 });
    expect(Object.keys(r)).toEqual([
      'phase',
      'sent',
      'measured',
      'startNs',
      'endNs',
      'cpuNs',
      'cpuScope',
      'extra',
    ]);
    expect(r).toMatchObject({ phase: 'throughput', sent: 7, measured: 5, extra: { drains: 2 } });
    expect(r.startNs).toBe(clock.startNs);
    expect(r.endNs).toBe(clock.endNs);
    expect(r.cpuNs).toBe(clock.cpuEnd - clock.cpuStart);
  });

  it('latency: replies and the histogram; extra only when given', () => {
    const clock = new PhaseClock(WARMUP_MS, LONG_MS);
    clock.tick();
    const h = new HdrHistogram();
    h.record(1000);
    const bare = latencyReport(clock, 3, 2, 3, h);
    expect('extra' in bare).toBe(false);
    expect(bare).toMatchObject({ phase: 'latency', sent: 3, measured: 2, replies: 3 });
    expect(HdrHistogram.fromSnapshot(bare.histogram!).totalCount).toBe(1);
    const withExtra = latencyReport(clock, 3, 2, 3, h, { kicks: 4 });
    expect(withExtra.extra).toEqual({ kicks: 4 });
  });
});

describe('RoundTrips', () => {
  it('counts every round trip and records each measured reply once', () => {
    const rt = new RoundTrips(WARMUP_MS, LONG_MS);
    for (let i = 0; i < 10; i++) {
      expect(rt.begin()).toBe(1);
      rt.replied(nowNs());
    }
    const r = rt.report();
    expect(r).toMatchObject({ phase: 'latency', sent: 10, measured: 10, replies: 10 });
    expect(HdrHistogram.fromSnapshot(r.histogram!).totalCount).toBe(10);
    expect('extra' in r).toBe(false);
  });

  it('warm-up round trips are sent but neither measured nor recorded', () => {
    const rt = new RoundTrips(LONG_MS, LONG_MS);
    for (let i = 0; i < 5; i++) {
      expect(rt.begin()).toBe(0);
      rt.replied(nowNs());
    }
    const r = rt.report();
    expect(r).toMatchObject({ sent: 5, measured: 0, replies: 5 });
    expect(HdrHistogram.fromSnapshot(r.histogram!).totalCount).toBe(0);
  });
});
