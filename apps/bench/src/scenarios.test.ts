import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HdrHistogram } from './hdr-histogram.js';
import { renderHtml } from './report-html.js';
import { formatMarkdown, formatTable } from './report-table.js';
import type { TrialResult } from './results.js';
import { runBench, runTrial } from './runner.js';
import { SCENARIOS } from './scenarios.js';
import { checkAvailability } from './vring-setup.js';

// Tiny phases: these tests check that every scenario runs and that its figures
// are sane, never how fast it is (the machine is shared and noisy).
const TINY = { warmupMs: 10, durationMs: 40, latencyWarmupMs: 5, latencyMs: 30 };
const workDir = mkdtempSync(path.join(os.tmpdir(), `vipc-bench-test-${process.pid}-`));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function expectSane(t: TrialResult): void {
  expect(t.messagesPerSecond).toBeGreaterThan(0);
  expect(Number.isFinite(t.messagesPerSecond)).toBe(true);
  expect(t.bytesPerSecond).toBeCloseTo(t.messagesPerSecond * t.size, 3);
  expect(t.cpuNsPerMessage).toBeGreaterThan(0);
  expect(t.cpuNsPerMessage).toBeCloseTo(t.cpuNsPerMessageSender + t.cpuNsPerMessageReceiver, 6);
  // Counts equal on both ends, in both phases.
  expect(t.counts.measuredSent).toBeGreaterThan(0);
  expect(t.counts.throughputReceived).toBe(t.counts.throughputSent);
  expect(t.counts.measuredReceived).toBe(t.counts.measuredSent);
  expect(t.counts.pingsReceived).toBe(t.counts.pingsSent);
  expect(t.counts.repliesReceived).toBe(t.counts.pingsSent);
  expect(t.counts.equal).toBe(true);
  const h = HdrHistogram.fromSnapshot(t.latency);
  expect(h.totalCount).toBeGreaterThan(0);
  const p50 = h.valueAtPercentile(50);
  const p99 = h.valueAtPercentile(99);
  const p999 = h.valueAtPercentile(99.9);
  expect(p50).toBeGreaterThan(0);
  expect(p50).toBeLessThanOrEqual(p99);
  expect(p99).toBeLessThanOrEqual(p999);
  expect(p999).toBeLessThanOrEqual(h.max);
}

function parentOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return -1;
  }
}

const runnable = SCENARIOS.filter((s) => s.endpointTransport !== undefined);

/** Processes whose command line mentions `text` (read-only look at /proc). */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'latin1').includes(text)) pids.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

describe('every endpoint scenario runs and gives sane figures', () => {
  for (const s of runnable) {
    const sizes = s.id === 'unix-socket' || s.id === 'vring-split-poll' ? [64, 1500, 65536] : [64, 1500];
    it(`${s.id}: ${sizes.join(', ')} B`, async (ctx) => {
      const reason = await checkAvailability(s);
      if (reason !== null) {
        // Workspace packages are built by the set-up; under CI nothing may skip.
        if (process.env.CI === 'true') throw new Error(`${s.id} is unavailable under CI: ${reason}`);
        console.warn(`${s.id} skipped: ${reason} (run \`npm run setup\` or build the package)`);
        ctx.skip();
      }
      for (const size of sizes) {
        const t = await runTrial(s, size, 1, TINY, workDir);
        expect(t.scenario).toBe(s.id);
        expect(t.size).toBe(size);
        expectSane(t);
      }
      // Nothing left behind: sockets, FIFOs, container directories, processes (endpoints, LXC monitors).
      expect(readdirSync(workDir)).toEqual([]);
      expect(processesMentioning(workDir)).toEqual([]);
    });
  }
});

describe('DPDK scenarios against the real testpmd', () => {
  for (const id of ['testpmd-testpmd', 'vipc-testpmd']) {
    it(`${id}: 64, 1500 B, exact counts, nothing left running`, async (ctx) => {
      const s = SCENARIOS.find((x) => x.id === id)!;
      const reason = await checkAvailability(s);
      if (reason !== null) {
        if (process.env.CI === 'true') throw new Error(`${id} is unavailable under CI: ${reason}`);
        console.warn(`${id} skipped: ${reason} (Debian: apt-get install dpdk-dev)`);
        ctx.skip();
      }
      for (const size of [64, 1500]) {
        const t = await runTrial(s, size, 1, { ...TINY, durationMs: 1000 }, workDir);
        expect(t.messagesPerSecond).toBeGreaterThan(0);
        expect(t.cpuNsPerMessage).toBeGreaterThan(0);
        expect(t.counts.throughputSent).toBeGreaterThan(0);
        // The sender stopped while connected; the receiver counted every packet it sent.
        expect(t.counts.throughputReceived).toBe(t.counts.throughputSent);
        expect(t.counts.equal).toBe(true);
        expect(t.counts.measuredReceived).toBeGreaterThan(0);
        expect(t.counts.measuredReceived).toBeLessThanOrEqual(t.counts.throughputSent);
        const h = HdrHistogram.fromSnapshot(t.latency);
        if (id === 'testpmd-testpmd') {
          // testpmd cannot time a round trip: none are recorded (the report says why).
          expect(h.totalCount).toBe(0);
          expect(t.counts.pingsSent).toBe(0);
          expect(s.noRoundTrips).toMatch(/latencystats/);
        } else {
          // One frame at a time through testpmd macswap and back: every probe came back, and
          // testpmd's own counters agree (it received and returned exactly what was sent).
          expect(t.counts.pingsSent).toBeGreaterThan(0);
          expect(t.counts.pingsReceived).toBe(t.counts.pingsSent);
          expect(t.counts.repliesReceived).toBe(t.counts.pingsSent);
          expect(t.extra.roundTripTestpmdTx).toBe(t.counts.pingsSent);
          expect(h.totalCount).toBe(t.extra.roundTripsMeasured);
          expect(h.totalCount).toBeGreaterThan(0);
          expect(h.totalCount).toBeLessThanOrEqual(t.counts.pingsSent);
          const p50 = h.valueAtPercentile(50);
          expect(p50).toBeGreaterThan(0);
          expect(p50).toBeLessThanOrEqual(h.valueAtPercentile(99));
          expect(h.valueAtPercentile(99)).toBeLessThanOrEqual(h.valueAtPercentile(99.9));
          expect(h.valueAtPercentile(99.9)).toBeLessThanOrEqual(h.max);
        }
      }
      expect(readdirSync(workDir)).toEqual([]);
      expect(processesMentioning(workDir)).toEqual([]);
    });
  }
});

describe('DPDK scenarios in the report', () => {
  it('vipc-testpmd has round-trip percentiles; testpmd-testpmd says why it has none', async (ctx) => {
    for (const id of ['testpmd-testpmd', 'vipc-testpmd']) {
      const reason = await checkAvailability(SCENARIOS.find((x) => x.id === id)!);
      if (reason !== null) {
        if (process.env.CI === 'true') throw new Error(`${id} is unavailable under CI: ${reason}`);
        console.warn(`${id} skipped: ${reason} (Debian: apt-get install dpdk-dev)`);
        ctx.skip();
      }
    }
    const report = await runBench({
      sizes: [64],
      scenarios: ['testpmd-testpmd', 'vipc-testpmd'],
      rounds: 1,
      timing: TINY,
      memcpy: false,
    });
    const [anchor, vipc] = report.scenarios;
    expect(anchor!.id).toBe('testpmd-testpmd');
    expect(anchor!.status).toBe('ok');
    expect(anchor!.roundTrips).toBe(0);
    expect(anchor!.roundTripsUnavailable).toMatch(/testpmd cannot time a round trip/);
    expect(vipc!.id).toBe('vipc-testpmd');
    expect(vipc!.status).toBe('ok');
    expect(vipc!.roundTripsUnavailable).toBeUndefined();
    expect(vipc!.roundTrips).toBeGreaterThan(0);
    expect(vipc!.p50Us).toBeGreaterThan(0);
    expect(vipc!.p50Us).toBeLessThanOrEqual(vipc!.p99Us);
    expect(vipc!.p99Us).toBeLessThanOrEqual(vipc!.p999Us);
    expect(vipc!.p999Us).toBeLessThanOrEqual(vipc!.maxUs);
    expect(vipc!.counts.equal).toBe(true);
    expect(vipc!.counts.repliesReceived).toBe(vipc!.counts.pingsSent);
    // The table, the Markdown and the HTML give the reason instead of a bare "-".
    const note = `testpmd-testpmd (64 B): no round trips: ${anchor!.roundTripsUnavailable}`;
    const table = formatTable(report);
    expect(table).toContain(note);
    const row = table.split('\n').find((l) => l.startsWith('vipc-testpmd'))!;
    const cells = row.split(/\s{2,}/); // scenario, size, msg/s, GB/s, p50, p99, p99.9, ...
    expect(
      cells
        .slice(4, 7)
        .map(Number)
        .every((x) => x > 0),
    ).toBe(true);
    expect(formatMarkdown(report)).toContain(`- ${note}`);
    expect(renderHtml(report)).toContain(`<li>${note}</li>`);
  });
});

describe('runBench', () => {
  it('runs scenarios side by side and reports the unavailable ones with a reason, not silently', async () => {
    const report = await runBench({
      sizes: [65536],
      scenarios: ['unix-socket', 'pipe', 'testpmd-testpmd'],
      rounds: 2,
      timing: TINY,
      memcpy: true,
    });
    expect(report.schema).toBe('vipc-bench/1');
    expect(report.options.rounds).toBe(2);
    const byId = new Map(report.scenarios.map((r) => [r.id, r]));
    for (const id of ['unix-socket', 'pipe']) {
      const r = byId.get(id)!;
      expect(r.status).toBe('ok');
      expect(r.roundsMessagesPerSecond).toHaveLength(2);
      expect(r.messagesPerSecond).toBeGreaterThan(0);
      expect(r.p50Us).toBeGreaterThan(0);
      expect(r.p50Us).toBeLessThanOrEqual(r.p99Us);
      expect(r.p99Us).toBeLessThanOrEqual(r.p999Us);
      expect(r.counts.equal).toBe(true);
      expect(r.transport).toBeTypeOf('string');
    }
    expect(byId.get('pipe')!.ratios['unix-socket']).toBeCloseTo(
      byId.get('pipe')!.messagesPerSecond / byId.get('unix-socket')!.messagesPerSecond,
      9,
    );
    // testpmd cannot send 64 KiB packets: reported with the reason, not dropped.
    const t = byId.get('testpmd-testpmd')!;
    expect(t.status).toBe('unavailable');
    expect(t.reason).toMatch(/mbuf/);
    expect(report.memcpy!.referenceGBps).toBeGreaterThan(0);
    expect(report.memcpy!.hotGBps).toBeGreaterThan(0);
    // Targets are reported, never asserted: the vring ones are n/a here (not run).
    expect(report.targets.map((t) => t.id)).toEqual([
      'poll-64',
      'round-trip-p50-64',
      'poll-1500',
      'poll-64k-memcpy',
      'event-64',
      'backend-vs-testpmd',
    ]);
    for (const t of report.targets) {
      expect(t.pass).toBeNull();
      expect(t.reason).toBeTruthy();
    }
  });

  it('stops on abort with ABORTED and leaves no endpoint running', async () => {
    const controller = new AbortController();
    const started = runBench({
      sizes: [64],
      scenarios: ['vring-split-poll', 'unix-socket'],
      rounds: 50,
      timing: TINY,
      memcpy: false,
      signal: controller.signal,
      onProgress: (e) => {
        if (e.type === 'trial-done') controller.abort();
      },
    });
    await expect(started).rejects.toMatchObject({ code: 'ABORTED' });
    // The run's own work directory is gone, and with it every endpoint that named it.
    const ours = readdirSync(os.tmpdir()).filter((d) => d.startsWith(`vipc-bench-${process.pid}-`));
    expect(ours).toEqual([]);
    expect(processesMentioning('dist/endpoint.js').filter((pid) => parentOf(pid) === process.pid)).toEqual(
      [],
    );
  });

  it('spinUs sets the spin of the spin-then-sleep scenarios (and the report says so)', async () => {
    const report = await runBench({
      sizes: [64],
      scenarios: ['vring-split-spin'],
      rounds: 1,
      timing: TINY,
      memcpy: false,
      spinUs: 200,
    });
    const [r] = report.scenarios;
    expect(r!.status).toBe('ok');
    expect(r!.spinUs).toBe(200);
    expect(r!.description).toContain('spin 200 µs');
    expect(r!.counts.equal).toBe(true);
  });

  it('refuses bad options with usage errors', async () => {
    await expect(runBench({ spinUs: -1 })).rejects.toMatchObject({ code: 'USAGE' });
    await expect(runBench({ sizes: [4] })).rejects.toMatchObject({ code: 'USAGE' });
    await expect(runBench({ sizes: [] })).rejects.toMatchObject({ code: 'USAGE' });
    await expect(runBench({ scenarios: ['nope'] })).rejects.toMatchObject({ code: 'USAGE' });
    await expect(runBench({ rounds: 0 })).rejects.toMatchObject({ code: 'USAGE' });
    await expect(runBench({ timing: { durationMs: -1 } })).rejects.toMatchObject({ code: 'USAGE' });
  });
});
