import { FORWARD_MODES, type ForwardMode } from './defs.js';
import { buildEalArgs, type EalOptions, enabledLcores, type OptionProblem } from './eal-options.js';
import { DpdkError } from './errors.js';

/** testpmd application options ("Testpmd Command-line Options"). */
export interface TestpmdOptions {
  /** `-i`: interactive prompt on stdin (drive it with TestpmdController). */
  interactive?: boolean;
  /** `-a`: start forwarding at once in interactive mode. */
  autoStart?: boolean;
  forwardMode?: ForwardMode;
  /** `--nb-cores`: forwarding cores (at most enabled lcores - 1; the main lcore does not forward). */
  nbCores?: number;
  nbPorts?: number;
  rxq?: number;
  txq?: number;
  rxd?: number;
  txd?: number;
  /** `--burst` (1..512). */
  burst?: number;
  /** `--txpkts`: segment lengths of txonly packets. */
  txpkts?: number | readonly number[];
  totalNumMbufs?: number;
  mbufSize?: number;
  /** `--stats-period` seconds (non-interactive only). */
  statsPeriod?: number;
  portTopology?: 'paired' | 'chained' | 'loop';
  /** `--no-mlockall`: skip mlockall(); needed for non-root runs with a small RLIMIT_MEMLOCK. */
  noMlockall?: boolean;
  /** `--txonly-multi-flow` */
  txonlyMultiFlow?: boolean;
  /** `--record-burst-stats` */
  recordBurstStats?: boolean;
  extra?: readonly string[];
}

/** Problems of a testpmd option set; `lcores` (if known) checks --nb-cores against the EAL core list. */
export function checkTestpmdOptions(o: TestpmdOptions, lcores?: readonly number[]): OptionProblem[] {
  const out: OptionProblem[] = [];
  const intIn = (name: string, v: number | undefined, min: number, max: number) => {
    if (v !== undefined && (!Number.isInteger(v) || v < min || v > max)) {
      out.push({
        code: 'INVALID_OPTION',
        options: [name],
        message: `${name}=${v}: must be an integer in ${min}..${max}`,
      });
    }
  };
  if (o.forwardMode !== undefined && !(FORWARD_MODES as readonly string[]).includes(o.forwardMode)) {
    out.push({
      code: 'INVALID_OPTION',
      options: ['--forward-mode'],
      message: `--forward-mode=${o.forwardMode}: not a testpmd forwarding mode (${FORWARD_MODES.join(', ')})`,
    });
  }
  intIn('--nb-cores', o.nbCores, 1, 1023);
  intIn('--nb-ports', o.nbPorts, 1, 1024);
  intIn('--rxq', o.rxq, 1, 1024);
  intIn('--txq', o.txq, 1, 1024);
  intIn('--rxd', o.rxd, 1, 65535);
  intIn('--txd', o.txd, 1, 65535);
  intIn('--burst', o.burst, 1, 512);
  intIn('--total-num-mbufs', o.totalNumMbufs, 1025, 1 << 30);
  intIn('--mbuf-size', o.mbufSize, 1, 65535);
  intIn('--stats-period', o.statsPeriod, 1, 86400);
  if (o.txpkts !== undefined) {
    const segs = typeof o.txpkts === 'number' ? [o.txpkts] : o.txpkts;
    if (segs.length === 0 || segs.length > 8) {
      out.push({
        code: 'INVALID_OPTION',
        options: ['--txpkts'],
        message: '--txpkts: give 1 to 8 segment lengths',
      });
    }
    for (const s of segs) intIn('--txpkts', s, 1, 65535);
    const total = segs.reduce((a, b) => a + b, 0);
    if (segs.length > 0 && total < 42) {
      out.push({
        code: 'INVALID_OPTION',
        options: ['--txpkts'],
        message: `--txpkts total ${total} is below 42 bytes (Ethernet + IPv4 + UDP headers that txonly writes)`,
      });
    }
  }
  if (o.portTopology !== undefined && !['paired', 'chained', 'loop'].includes(o.portTopology)) {
    out.push({
      code: 'INVALID_OPTION',
      options: ['--port-topology'],
      message: `--port-topology=${o.portTopology}: paired, chained or loop`,
    });
  }
  if (o.interactive && o.statsPeriod !== undefined) {
    out.push({
      code: 'CONFLICTING_OPTIONS',
      options: ['-i', '--stats-period'],
      message: '--stats-period only works without -i; in interactive mode ask "show port stats all"',
    });
  }
  if (o.autoStart && !o.interactive) {
    out.push({
      code: 'CONFLICTING_OPTIONS',
      options: ['-a', '-i'],
      message: '-a (auto-start) only has a meaning with -i',
    });
  }
  if (lcores !== undefined) {
    if (lcores.length < 2) {
      out.push({
        code: 'CONFLICTING_OPTIONS',
        options: ['-l', '--nb-cores'],
        message: `testpmd needs at least 2 lcores (one main, one forwarding); got ${lcores.length}. Use -l 0-1 or --lcores '0@0,1@0' to put both on one CPU`,
      });
    } else if (o.nbCores !== undefined && o.nbCores > lcores.length - 1) {
      out.push({
        code: 'CONFLICTING_OPTIONS',
        options: ['--nb-cores', '-l'],
        message: `--nb-cores=${o.nbCores} exceeds the ${lcores.length - 1} forwarding lcore(s) of the core list (the main lcore does not forward)`,
      });
    }
  }
  return out;
}

/** Validate and turn testpmd options into its application argv (the part after "--"). */
export function buildTestpmdArgs(o: TestpmdOptions, lcores?: readonly number[]): string[] {
  const problems = checkTestpmdOptions(o, lcores);
  if (problems.length > 0) {
    throw new DpdkError(
      problems[0]!.code,
      `invalid testpmd options: ${problems.map((p) => p.message).join('; ')}`,
      {
        problems,
      },
    );
  }
  const a: string[] = [];
  if (o.interactive) a.push('-i');
  if (o.autoStart) a.push('-a');
  if (o.forwardMode !== undefined) a.push(`--forward-mode=${o.forwardMode}`);
  if (o.nbCores !== undefined) a.push(`--nb-cores=${o.nbCores}`);
  if (o.nbPorts !== undefined) a.push(`--nb-ports=${o.nbPorts}`);
  if (o.rxq !== undefined) a.push(`--rxq=${o.rxq}`);
  if (o.txq !== undefined) a.push(`--txq=${o.txq}`);
  if (o.rxd !== undefined) a.push(`--rxd=${o.rxd}`);
  if (o.txd !== undefined) a.push(`--txd=${o.txd}`);
  if (o.burst !== undefined) a.push(`--burst=${o.burst}`);
  if (o.txpkts !== undefined)
    a.push(`--txpkts=${typeof o.txpkts === 'number' ? o.txpkts : o.txpkts.join(',')}`);
  if (o.totalNumMbufs !== undefined) a.push(`--total-num-mbufs=${o.totalNumMbufs}`);
  if (o.mbufSize !== undefined) a.push(`--mbuf-size=${o.mbufSize}`);
  if (o.statsPeriod !== undefined) a.push(`--stats-period=${o.statsPeriod}`);
  if (o.portTopology !== undefined) a.push(`--port-topology=${o.portTopology}`);
  if (o.noMlockall) a.push('--no-mlockall');
  if (o.txonlyMultiFlow) a.push('--txonly-multi-flow');
  if (o.recordBurstStats) a.push('--record-burst-stats');
  a.push(...(o.extra ?? []));
  return a;
}

/** Full testpmd argv after the program name: EAL args, "--", testpmd args; checks --nb-cores against the lcores. */
export function buildTestpmdArgv(eal: EalOptions, testpmd: TestpmdOptions = {}): string[] {
  const ealArgs = buildEalArgs(eal);
  return [...ealArgs, '--', ...buildTestpmdArgs(testpmd, enabledLcores(eal))];
}
