import { describe, expect, it } from 'vitest';
import { evaluateTargets, fillRatios } from './analysis.js';
import { renderHtml } from './report-html.js';
import { formatMarkdown } from './report-table.js';
import type { BenchReport, ScenarioResult } from './results.js';

// Synthetic figures: evaluateTargets() is arithmetic over a finished report,
// so it is checked against hand-computed ratios, with no run behind them.
function scenario(id: string, size: number, messagesPerSecond: number, p50Us = 0): ScenarioResult {
  return {
    id,
    transport: id,
    label: id,
    group: id.startsWith('vring') ? 'vipc' : id.startsWith('testpmd') ? 'anchor' : 'baseline',
    endpoints: 'two processes',
    description: id,
    size,
    status: 'ok',
    messagesPerSecond,
    gigabytesPerSecond: (messagesPerSecond * size) / 1e9,
    p50Us,
    p99Us: p50Us,
    p999Us: p50Us,
    maxUs: p50Us,
    meanUs: p50Us,
    roundTrips: p50Us > 0 ? 1000 : 0,
    cpuNsPerMessage: 1,
    cpuNsPerMessageSender: 1,
    cpuNsPerMessageReceiver: 1,
    roundsMessagesPerSecond: [messagesPerSecond],
    counts: {
      throughputSent: 1,
      throughputReceived: 1,
      measuredSent: 1,
      measuredReceived: 1,
      pingsSent: 0,
      pingsReceived: 0,
      repliesReceived: 0,
      equal: true,
    },
    extra: {},
    ratios: {},
    p50Ratios: {},
  };
}

function report(scenarios: ScenarioResult[]): BenchReport {
  return {
    schema: 'vipc-bench/1',
    date: '2026-12-01T00:00:00.000Z',
    durationMs: 1,
    machine: {
      cpuModel: 'test cpu',
      cpus: 2,
      memoryGiB: 1,
      kernel: 'k',
      node: 'v20',
      v8: 'v8',
      platform: 'linux',
      arch: 'x64',
      loadAverage: [0, 0, 0],
    },
    options: {
      quick: true,
      sizes: [64, 1500, 65536],
      rounds: 1,
      warmupMs: 0,
      durationMs: 0,
      latencyWarmupMs: 0,
      latencyMs: 0,
      order: 'interleaved',
    },
    memcpy: { hotGBps: 20, workingSetGBps: 20, streamingGBps: 20, referenceGBps: 20, rounds: [20] },
    scenarios,
    targets: [],
  };
}

describe('evaluateTargets', () => {
  const base = [
    scenario('unix-socket', 64, 1_000_000, 60),
    scenario('vring-split-poll', 64, 14_000_000, 1),
    scenario('vring-slots-poll', 64, 16_000_000, 1),
    scenario('vring-split-event', 64, 15_000_000),
    scenario('unix-socket', 1500, 700_000),
    scenario('vring-split-poll', 1500, 11_200_000),
    scenario('vring-split-poll', 65536, 100_000),
  ];

  it('computes each ratio and its mark from the figures', () => {
    const t = new Map(evaluateTargets(report(base)).map((x) => [x.id, x]));
    expect(t.get('poll-64')).toMatchObject({ value: 16, pass: false });
    expect(t.get('round-trip-p50-64')!.value).toBeCloseTo(1 / 60, 12);
    expect(t.get('round-trip-p50-64')!.pass).toBe(true);
    expect(t.get('poll-1500')).toMatchObject({ value: 16, pass: true });
    expect(t.get('poll-64k-memcpy')!.value).toBeCloseTo((100_000 * 65536) / 1e9 / 20, 12);
    expect(t.get('event-64')).toMatchObject({ value: 15, pass: true });
    expect(t.get('backend-vs-testpmd')).toMatchObject({ value: null, pass: null });
    expect(t.get('backend-vs-testpmd')!.reason).toMatch(/vipc-testpmd at 64 B was not run/);
  });

  it('takes the best of the poll-mode layouts that ran, and names it', () => {
    const t = new Map(evaluateTargets(report(base)).map((x) => [x.id, x]));
    // 64 B: SplitSlotDriver's 16 M beats the split driver's 14 M; 1500 B: only split ran
    expect(t.get('poll-64')).toMatchObject({ scenario: 'vring-slots-poll', value: 16 });
    expect(t.get('poll-1500')).toMatchObject({ scenario: 'vring-split-poll', value: 16 });
    // a round trip: the lower p50 wins (split 1 us against slots 2 us)
    const rtt = evaluateTargets(
      report([
        ...base.filter((x) => x.id !== 'vring-slots-poll'),
        scenario('vring-slots-poll', 64, 16_000_000, 2),
      ]),
    );
    expect(rtt.find((x) => x.id === 'round-trip-p50-64')).toMatchObject({ scenario: 'vring-split-poll' });
    // a layout that did not run does not count: the other one's figure is taken
    const without = evaluateTargets(
      report([
        ...base.filter((x) => x.id !== 'vring-slots-poll'),
        { ...scenario('vring-slots-poll', 64, 0), status: 'unavailable' },
      ]),
    );
    expect(without.find((x) => x.id === 'poll-64')).toMatchObject({
      scenario: 'vring-split-poll',
      value: 14,
      pass: false,
    });
  });

  it('reports the C anchor beside the poll-mode targets only when it ran at that size', () => {
    const without = evaluateTargets(report(base));
    expect(without.every((x) => x.reference === undefined)).toBe(true);
    const withAnchor = evaluateTargets(
      report([
        ...base,
        scenario('testpmd-testpmd', 64, 25_000_000),
        scenario('testpmd-testpmd', 1500, 6_300_000),
      ]),
    );
    const t = new Map(withAnchor.map((x) => [x.id, x]));
    expect(t.get('poll-64')!.reference).toEqual({ scenario: 'testpmd-testpmd', value: 25 });
    expect(t.get('poll-1500')!.reference).toEqual({ scenario: 'testpmd-testpmd', value: 9 });
    // the anchor is a reference, never the measured value or the mark
    expect(t.get('poll-64')).toMatchObject({ value: 16, pass: false });
    expect(t.get('event-64')!.reference).toBeUndefined();
    const unavailable = evaluateTargets(
      report([...base, { ...scenario('testpmd-testpmd', 64, 0), status: 'unavailable' }]),
    );
    expect(unavailable.find((x) => x.id === 'poll-64')!.reference).toBeUndefined();
  });

  it('the Markdown and the HTML show the reference beside the target', () => {
    const r = report([...base, scenario('testpmd-testpmd', 64, 25_000_000)]);
    fillRatios(r.scenarios);
    r.targets = evaluateTargets(r);
    expect(formatMarkdown(r)).toContain(
      '16.0x on vring-slots-poll (target >= 40.0x) FAIL; testpmd-testpmd: 25.0x',
    );
    expect(renderHtml(r)).toContain(
      '16.0x on vring-slots-poll (target &#62;= 40.0x); testpmd-testpmd: 25.0x',
    );
  });
});
