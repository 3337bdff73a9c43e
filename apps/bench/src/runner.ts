import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { compareReports, evaluateTargets, fillRatios } from './analysis.js';
import { launchContainer } from './container-setup.js';
import {
  DEFAULT_SIZES,
  MAX_MESSAGE_SIZE,
  MIN_MESSAGE_SIZE,
  PHASE_GRACE_MS,
  QUICK_ROUNDS,
  QUICK_TIMING,
  READY_TIMEOUT_MS,
  STANDARD_ROUNDS,
  STANDARD_TIMING,
  type TrialTiming,
} from './defs.js';
import { BenchError } from './errors.js';
import { HdrHistogram } from './hdr-histogram.js';
import { EndpointHost } from './host.js';
import { describeMachine } from './machine.js';
import { measureMemcpy } from './memcpy.js';
import type { EndpointSpec, ReceiverReport, SenderReport } from './protocol.js';
import type { BenchReport, MemcpyResult, ScenarioResult, TrialCounts, TrialResult } from './results.js';
import { SCENARIOS, type Scenario } from './scenarios.js';
import { runTestpmdTrial } from './testpmd.js';
import { checkAvailability, type VringResources, vringResources } from './vring-setup.js';

export interface ProgressEvent {
  type: 'scenario-unavailable' | 'trial-start' | 'trial-done' | 'trial-failed' | 'memcpy-done';
  scenario?: string;
  size?: number;
  round?: number;
  rounds?: number;
  message: string;
}

export interface BenchOptions {
  /** The short suite (about a minute): one round, short phases. */
  quick?: boolean;
  /** Message sizes in bytes (default 64, 1500, 65536). */
  sizes?: number[];
  /** Scenario ids to run (default: all). Unknown ids are a usage error. */
  scenarios?: string[];
  /** Rounds: every scenario runs once per size per round, interleaved. */
  rounds?: number;
  /** Override phase durations. */
  timing?: Partial<TrialTiming>;
  /** Measure memcpy bandwidth (default true). */
  memcpy?: boolean;
  /** Spin before sleeping in the spin-then-sleep scenarios, µs (default 50). */
  spinUs?: number;
  /** A previous report (`--json` output) to compare against. */
  baseline?: { file: string; report: BenchReport };
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
}

interface Resolved {
  quick: boolean;
  sizes: number[];
  scenarios: Scenario[];
  rounds: number;
  timing: TrialTiming;
  memcpy: boolean;
}

export function resolveOptions(options: BenchOptions): Resolved {
  const quick = options.quick === true;
  const sizes = [...(options.sizes ?? DEFAULT_SIZES)];
  if (sizes.length === 0) throw new BenchError('USAGE', 'at least one message size is needed');
  for (const s of sizes) {
    if (!Number.isInteger(s) || s < MIN_MESSAGE_SIZE || s > MAX_MESSAGE_SIZE) {
      throw new BenchError(
        'USAGE',
        `message size ${s} is out of range: sizes are integers from ${MIN_MESSAGE_SIZE} to ${MAX_MESSAGE_SIZE} bytes`,
      );
    }
  }
  let scenarios: Scenario[] = [...SCENARIOS];
  if (options.scenarios !== undefined) {
    scenarios = options.scenarios.map((id) => {
      const s = SCENARIOS.find((x) => x.id === id);
      if (s === undefined) {
        throw new BenchError(
          'USAGE',
          `unknown scenario "${id}"; scenarios are: ${SCENARIOS.map((x) => x.id).join(', ')}`,
        );
      }
      return s;
    });
  }
  if (options.spinUs !== undefined) {
    const spinUs = options.spinUs;
    if (!Number.isInteger(spinUs) || spinUs < 0 || spinUs > 1_000_000) {
      throw new BenchError('USAGE', `spinUs must be an integer from 0 to 1000000 (got ${spinUs})`);
    }
    scenarios = scenarios.map((s) =>
      s.vring?.mode === 'spin'
        ? {
            ...s,
            vring: { ...s.vring, spinUs },
            description: s.description.replace(/spin \d+ µs/, `spin ${spinUs} µs`),
          }
        : s,
    );
  }
  const rounds = options.rounds ?? (quick ? QUICK_ROUNDS : STANDARD_ROUNDS);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100) {
    throw new BenchError('USAGE', `rounds must be an integer from 1 to 100 (got ${rounds})`);
  }
  const timing = { ...(quick ? QUICK_TIMING : STANDARD_TIMING), ...options.timing };
  for (const [k, v] of Object.entries(timing)) {
    if (!Number.isFinite(v) || v < 0 || v > 600_000 || (k === 'durationMs' && v <= 0)) {
      throw new BenchError('USAGE', `${k} must be from 0 to 600000 ms (got ${v})`);
    }
  }
  return { quick, sizes, scenarios, rounds, timing, memcpy: options.memcpy !== false };
}

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Per-trial resources that must be released whatever happens. */
class Cleanup {
  readonly #steps: (() => void | Promise<void>)[] = [];
  add(step: () => void | Promise<void>): void {
    this.#steps.push(step);
  }
  async run(): Promise<void> {
    for (const step of this.#steps.reverse()) {
      try {
        await step();
      } catch {
        // best effort: later steps must still run
      }
    }
    this.#steps.length = 0;
  }
}

let trialCounter = 0;

/** Runs one scenario at one size: spawn both endpoints, throughput phase, latency phase, stop. */
export async function runTrial(
  scenario: Scenario,
  size: number,
  round: number,
  timing: TrialTiming,
  workDir: string,
  signal?: AbortSignal,
): Promise<TrialResult> {
  const n = ++trialCounter;
  if (scenario.endpoints === 'testpmd') return runTestpmdTrial(scenario, size, round, timing, workDir, n);
  const transport = scenario.endpointTransport;
  if (transport === undefined) {
    throw new BenchError('UNAVAILABLE', `${scenario.id} is not run by bench endpoints`);
  }
  const cleanup = new Cleanup();
  const kind = scenario.endpoints === 'workers' ? 'worker' : 'process';
  const inContainer = scenario.endpoints === 'host-container';
  const base: Omit<EndpointSpec, 'role'> = { transport, size };
  let portA: import('node:worker_threads').MessagePort | undefined;
  let portB: import('node:worker_threads').MessagePort | undefined;
  let memory: SharedArrayBuffer | undefined;
  let fds: number[] | undefined;
  try {
    switch (transport) {
      case 'unix-socket':
      case 'unix-socket-corked': {
        const p = path.join(workDir, `t${n}.sock`);
        base.path = p;
        cleanup.add(() => rmSync(p, { force: true }));
        break;
      }
      case 'pipe': {
        const ab = path.join(workDir, `t${n}-a2b.fifo`);
        const ba = path.join(workDir, `t${n}-b2a.fifo`);
        execFileSync('mkfifo', ['-m', '600', ab, ba]);
        cleanup.add(() => {
          rmSync(ab, { force: true });
          rmSync(ba, { force: true });
        });
        base.fifoAtoB = ab;
        base.fifoBtoA = ba;
        break;
      }
      case 'message-port': {
        const ch = new MessageChannel();
        portA = ch.port1;
        portB = ch.port2;
        break;
      }
      case 'vring': {
        if (scenario.vring === undefined)
          throw new BenchError('PROTOCOL', `${scenario.id} lacks vring options`);
        const res: VringResources = await vringResources(scenario.vring, size, kind);
        cleanup.add(() => res.close());
        base.vring = res.params;
        if (res.memory) memory = res.memory;
        if (res.fds) {
          fds = res.fds;
          base.fds = { memory: 4, kick: 5, call: 6 };
        }
        break;
      }
      case 'tcp':
        break;
    }

    const hostOptions = (label: string, port?: import('node:worker_threads').MessagePort) => {
      const o: ConstructorParameters<typeof EndpointHost>[0] = { kind, label };
      if (fds) o.fds = fds;
      if (memory) o.memory = memory;
      if (port) o.port = port;
      return o;
    };
    const b = new EndpointHost(hostOptions(`${scenario.id} receiver`, portB));
    cleanup.add(() => b.stop());
    b.send({ type: 'setup', spec: { ...base, role: 'b' } });
    const ready = await b.next('ready', READY_TIMEOUT_MS, signal);
    const aOptions = hostOptions(`${scenario.id} sender`, portA);
    if (inContainer) {
      // The sender (driver) runs inside a fresh container; the receiver on the host.
      const c = await launchContainer(workDir, n);
      cleanup.add(() => c.close());
      aOptions.kind = 'container';
      aOptions.container = c.launch;
    }
    const a = new EndpointHost(aOptions);
    cleanup.add(() => a.stop());
    const specA: EndpointSpec = { ...base, role: 'a' };
    if (ready.port !== undefined) specA.port = ready.port;
    a.send({ type: 'setup', spec: specA });
    await a.next('ready', READY_TIMEOUT_MS, signal);

    const phase = async (
      which: 'throughput' | 'latency',
      warmupMs: number,
      durationMs: number,
    ): Promise<[SenderReport, ReceiverReport]> => {
      a.send({ type: 'run', phase: which, warmupMs, durationMs });
      const limit = warmupMs + durationMs + PHASE_GRACE_MS;
      const [s, r] = await Promise.all([
        a.next('sender-report', limit, signal),
        b.next('receiver-report', limit, signal),
      ]);
      if (s.report.phase !== which || r.report.phase !== which) {
        throw new BenchError(
          'PROTOCOL',
          `expected ${which} reports, got ${s.report.phase} and ${r.report.phase}`,
        );
      }
      return [s.report, r.report];
    };
    const [ts, tr] = await phase('throughput', timing.warmupMs, timing.durationMs);
    const [ls, lr] = await phase('latency', timing.latencyWarmupMs, timing.latencyMs);
    return trialResult(scenario, size, round, ts, tr, ls, lr);
  } finally {
    await cleanup.run();
  }
}

function trialResult(
  scenario: Scenario,
  size: number,
  round: number,
  ts: SenderReport,
  tr: ReceiverReport,
  ls: SenderReport,
  lr: ReceiverReport,
): TrialResult {
  const counts: TrialCounts = {
    throughputSent: ts.sent,
    throughputReceived: tr.received,
    measuredSent: ts.measured,
    measuredReceived: tr.measured,
    pingsSent: ls.sent,
    pingsReceived: lr.received,
    repliesReceived: ls.replies ?? 0,
    equal:
      ts.sent === tr.received &&
      ts.measured === tr.measured &&
      ls.sent === lr.received &&
      ls.sent === (ls.replies ?? -1) &&
      ls.measured === lr.measured,
  };
  // Delivered rate: measured messages over the time from the first measured
  // send to the receiver seeing END (CLOCK_MONOTONIC is shared by all processes).
  const elapsedNs = Math.max(1, tr.lastNs - ts.startNs);
  const mps = (tr.measured / elapsedNs) * 1e9;
  const perMsg = (ns: number) => (tr.measured > 0 ? ns / tr.measured : 0);
  if (ls.histogram === undefined) throw new BenchError('PROTOCOL', 'latency report without a histogram');
  const extra: Record<string, number> = {};
  for (const [k, v] of Object.entries(ts.extra ?? {})) extra[`sender.${k}`] = v;
  for (const [k, v] of Object.entries(tr.extra ?? {})) extra[`receiver.${k}`] = v;
  for (const [k, v] of Object.entries(ls.extra ?? {})) extra[`latencySender.${k}`] = v;
  for (const [k, v] of Object.entries(lr.extra ?? {})) extra[`latencyReceiver.${k}`] = v;
  return {
    scenario: scenario.id,
    size,
    round,
    messagesPerSecond: mps,
    bytesPerSecond: mps * size,
    cpuNsPerMessage: perMsg(ts.cpuNs + tr.cpuNs),
    cpuNsPerMessageSender: perMsg(ts.cpuNs),
    cpuNsPerMessageReceiver: perMsg(tr.cpuNs),
    cpuScope: ts.cpuScope,
    latency: ls.histogram,
    counts,
    extra,
  };
}

function emptyCounts(): TrialCounts {
  return {
    throughputSent: 0,
    throughputReceived: 0,
    measuredSent: 0,
    measuredReceived: 0,
    pingsSent: 0,
    pingsReceived: 0,
    repliesReceived: 0,
    equal: true,
  };
}

function baseResult(s: Scenario, size: number): ScenarioResult {
  const r: ScenarioResult = {
    id: s.id,
    transport: s.transport,
    label: s.label,
    group: s.group,
    endpoints: s.endpoints,
    description: s.description,
    size,
    status: 'ok',
    messagesPerSecond: 0,
    gigabytesPerSecond: 0,
    p50Us: 0,
    p99Us: 0,
    p999Us: 0,
    maxUs: 0,
    meanUs: 0,
    roundTrips: 0,
    cpuNsPerMessage: 0,
    cpuNsPerMessageSender: 0,
    cpuNsPerMessageReceiver: 0,
    roundsMessagesPerSecond: [],
    counts: emptyCounts(),
    extra: {},
    ratios: {},
    p50Ratios: {},
  };
  if (s.vring) {
    r.mode = s.vring.mode;
    r.layout = s.vring.layout;
    if (s.vring.mode === 'spin') r.spinUs = s.vring.spinUs;
  }
  return r;
}

/** Folds the rounds of one scenario at one size into its result. */
export function aggregate(s: Scenario, size: number, trials: TrialResult[]): ScenarioResult {
  const r = baseResult(s, size);
  if (trials.length === 0) return r;
  const hist = new HdrHistogram();
  for (const t of trials) hist.add(HdrHistogram.fromSnapshot(t.latency));
  r.roundsMessagesPerSecond = trials.map((t) => t.messagesPerSecond);
  r.messagesPerSecond = median(r.roundsMessagesPerSecond);
  r.gigabytesPerSecond = (r.messagesPerSecond * size) / 1e9;
  r.p50Us = hist.valueAtPercentile(50) / 1000;
  r.p99Us = hist.valueAtPercentile(99) / 1000;
  r.p999Us = hist.valueAtPercentile(99.9) / 1000;
  r.maxUs = hist.max / 1000;
  r.meanUs = hist.mean / 1000;
  r.roundTrips = hist.totalCount;
  if (s.noRoundTrips !== undefined && r.roundTrips === 0) r.roundTripsUnavailable = s.noRoundTrips;
  r.cpuNsPerMessage = median(trials.map((t) => t.cpuNsPerMessage));
  r.cpuNsPerMessageSender = median(trials.map((t) => t.cpuNsPerMessageSender));
  r.cpuNsPerMessageReceiver = median(trials.map((t) => t.cpuNsPerMessageReceiver));
  r.cpuScope = trials[0]!.cpuScope;
  const c = emptyCounts();
  for (const t of trials) {
    c.throughputSent += t.counts.throughputSent;
    c.throughputReceived += t.counts.throughputReceived;
    c.measuredSent += t.counts.measuredSent;
    c.measuredReceived += t.counts.measuredReceived;
    c.pingsSent += t.counts.pingsSent;
    c.pingsReceived += t.counts.pingsReceived;
    c.repliesReceived += t.counts.repliesReceived;
    c.equal &&= t.counts.equal;
    for (const [k, v] of Object.entries(t.extra)) r.extra[k] = (r.extra[k] ?? 0) + v;
  }
  r.counts = c;
  if (!c.equal) {
    r.status = 'failed';
    r.reason =
      `counts differ between the ends: sent ${c.throughputSent}, received ${c.throughputReceived}; ` +
      `pings ${c.pingsSent}, received ${c.pingsReceived}, replies ${c.repliesReceived}`;
  }
  return r;
}

/**
 * Runs the suite: every available scenario at every size, interleaved within
 * each round (round 1: all sizes x all scenarios, then round 2, ...), so that
 * slow drifts of a noisy machine hit every scenario alike. Never throws for a
 * failing scenario: it is reported with status `failed` and the reason.
 */
export async function runBench(options: BenchOptions = {}): Promise<BenchReport> {
  const o = resolveOptions(options);
  const started = Date.now();
  const progress = options.onProgress ?? (() => {});
  const machine = describeMachine();
  const availability = new Map<string, string | null>();
  for (const s of o.scenarios) {
    const reason = await checkAvailability(s);
    availability.set(s.id, reason);
    if (reason !== null) {
      progress({ type: 'scenario-unavailable', scenario: s.id, message: `${s.id}: unavailable: ${reason}` });
    }
  }
  const runnable = o.scenarios.filter((s) => availability.get(s.id) === null);
  const trials = new Map<string, TrialResult[]>();
  const failures = new Map<string, string>();
  const memcpyRounds: { hot: number; ws: number; stream: number }[] = [];
  const workDir = mkdtempSync(path.join(os.tmpdir(), `vipc-bench-${process.pid}-`));
  try {
    for (let round = 1; round <= o.rounds; round++) {
      if (o.memcpy) {
        const m = measureMemcpy(o.quick ? 40 : 120);
        memcpyRounds.push({ hot: m.hotGBps, ws: m.workingSetGBps, stream: m.streamingGBps });
        progress({
          type: 'memcpy-done',
          round,
          rounds: o.rounds,
          message: `memcpy 64 KiB blocks: hot ${m.hotGBps.toFixed(1)} GB/s, 16 MiB ${m.workingSetGBps.toFixed(1)} GB/s`,
        });
      }
      for (const size of o.sizes) {
        for (const s of runnable) {
          const key = `${s.id}@${size}`;
          if (failures.has(key)) continue;
          if (s.maxSize && size > s.maxSize.bytes) continue;
          if (options.signal?.aborted) throw new BenchError('ABORTED', 'the benchmark was aborted');
          progress({
            type: 'trial-start',
            scenario: s.id,
            size,
            round,
            rounds: o.rounds,
            message: `round ${round}/${o.rounds} ${s.id} ${size} B`,
          });
          try {
            const t = await runTrial(s, size, round, o.timing, workDir, options.signal);
            const list = trials.get(key) ?? [];
            list.push(t);
            trials.set(key, list);
            progress({
              type: 'trial-done',
              scenario: s.id,
              size,
              round,
              rounds: o.rounds,
              message: `round ${round}/${o.rounds} ${s.id} ${size} B: ${Math.round(t.messagesPerSecond)} msg/s`,
            });
          } catch (err) {
            if (err instanceof BenchError && err.code === 'ABORTED') throw err;
            const msg = err instanceof Error ? err.message : String(err);
            failures.set(key, msg);
            progress({
              type: 'trial-failed',
              scenario: s.id,
              size,
              round,
              message: `${s.id} ${size} B failed: ${msg}`,
            });
          }
        }
      }
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }

  const results: ScenarioResult[] = [];
  for (const s of o.scenarios) {
    for (const size of o.sizes) {
      const key = `${s.id}@${size}`;
      const reason = availability.get(s.id);
      if (reason !== null && reason !== undefined) {
        results.push({ ...baseResult(s, size), status: 'unavailable', reason });
        continue;
      }
      if (s.maxSize && size > s.maxSize.bytes) {
        results.push({ ...baseResult(s, size), status: 'unavailable', reason: s.maxSize.reason });
        continue;
      }
      const failure = failures.get(key);
      if (failure !== undefined) {
        results.push({ ...aggregate(s, size, trials.get(key) ?? []), status: 'failed', reason: failure });
        continue;
      }
      results.push(aggregate(s, size, trials.get(key) ?? []));
    }
  }
  fillRatios(results);
  let memcpy: MemcpyResult | null = null;
  if (memcpyRounds.length > 0) {
    const ws = median(memcpyRounds.map((m) => m.ws));
    memcpy = {
      hotGBps: median(memcpyRounds.map((m) => m.hot)),
      workingSetGBps: ws,
      streamingGBps: median(memcpyRounds.map((m) => m.stream)),
      referenceGBps: ws,
      rounds: memcpyRounds.map((m) => m.ws),
    };
  }
  const report: BenchReport = {
    schema: 'vipc-bench/1',
    date: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    machine,
    options: {
      quick: o.quick,
      sizes: o.sizes,
      rounds: o.rounds,
      ...o.timing,
      order: 'interleaved',
    },
    memcpy,
    scenarios: results,
    targets: [],
  };
  report.targets = evaluateTargets(report);
  if (options.baseline)
    report.comparison = compareReports(report, options.baseline.report, options.baseline.file);
  return report;
}
