/**
 * Test helper: runs the real dpdk-testpmd (Debian package dpdk-dev) with the
 * command lines of the project's PEERS notes, collects its output, and stops
 * it with SIGINT, then SIGKILL. Removes its runtime directory afterwards.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';

export const TESTPMD = '/usr/bin/dpdk-testpmd';

/** Whether testpmd is installed; under CI=true a missing testpmd fails the test instead. */
export function testpmdAvailable(): boolean {
  if (existsSync(TESTPMD)) return true;
  if (process.env.CI === 'true') {
    throw new Error(
      'dpdk-testpmd is missing: install the Debian package dpdk-dev (CI must not skip interop tests)',
    );
  }
  console.warn('skipping DPDK interop tests: install the Debian package dpdk-dev for /usr/bin/dpdk-testpmd');
  return false;
}

export interface TestpmdOptions {
  prefix: string;
  vdev: string;
  forwardMode: 'txonly' | 'rxonly' | 'io' | 'macswap';
  mainLcore?: number;
  txpkts?: number;
  extraApp?: string[];
}

export class Testpmd {
  readonly proc: ChildProcess;
  readonly prefix: string;
  output = '';
  #exit: Promise<number | null>;
  #waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];

  constructor(options: TestpmdOptions) {
    this.prefix = options.prefix;
    const args = [
      '-l',
      '0-1',
      '--main-lcore',
      String(options.mainLcore ?? 0),
      '-n',
      '1',
      `--file-prefix=${options.prefix}`,
      '--no-pci',
      '--no-huge',
      '-m',
      '256',
      '--vdev',
      options.vdev,
      '--',
      '--nb-cores=1',
      `--forward-mode=${options.forwardMode}`,
      '--total-num-mbufs=16384',
      '--stats-period',
      '1',
      ...(options.txpkts !== undefined ? [`--txpkts=${options.txpkts}`] : []),
      ...(options.extraApp ?? []),
    ];
    this.proc = spawn(TESTPMD, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const onData = (d: Buffer): void => {
      this.output += d.toString();
      // keep memory bounded: the periodic stats repeat forever
      if (this.output.length > 2_000_000) this.output = this.output.slice(-1_000_000);
      for (const w of [...this.#waiters]) {
        const m = this.output.match(w.re);
        if (m) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    };
    this.proc.stdout!.on('data', onData);
    this.proc.stderr!.on('data', onData);
    this.#exit = new Promise((resolve) => {
      this.proc.on('exit', (code) => resolve(code));
      this.proc.on('error', () => resolve(-1));
    });
  }

  get exited(): boolean {
    return this.proc.exitCode !== null || this.proc.signalCode !== null;
  }

  /** Resolves when the output matches `re`; rejects on exit or timeout. */
  waitFor(re: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    const m = this.output.match(re);
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`testpmd: no ${re} within ${timeoutMs} ms; output:\n${this.output.slice(-3000)}`));
      }, timeoutMs);
      const w = {
        re,
        resolve: (x: RegExpMatchArray) => {
          clearTimeout(timer);
          resolve(x);
        },
      };
      this.#waiters.push(w);
      this.#exit.then(() => {
        const i = this.#waiters.indexOf(w);
        if (i >= 0) {
          this.#waiters.splice(i, 1);
          clearTimeout(timer);
          reject(new Error(`testpmd exited before ${re}; output:\n${this.output.slice(-3000)}`));
        }
      });
    });
  }

  /** SIGINT, then SIGKILL after `graceMs`; resolves with the full output. Removes the runtime dir. */
  async stop(graceMs = 20_000): Promise<string> {
    if (!this.exited) {
      this.proc.kill('SIGINT');
      const killer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
      await this.#exit;
      clearTimeout(killer);
    }
    for (const dir of [`/var/run/dpdk/${this.prefix}`, `/tmp/dpdk/${this.prefix}`]) {
      rmSync(dir, { recursive: true, force: true });
    }
    return this.output;
  }
}

/** Totals of the "Accumulated forward statistics for all ports" block. */
export function accumulatedTotals(output: string): { rx: number; tx: number } {
  const i = output.lastIndexOf('Accumulated forward statistics for all ports');
  if (i < 0) throw new Error(`no accumulated statistics in testpmd output:\n${output.slice(-3000)}`);
  const block = output.slice(i);
  const rx = block.match(/RX-packets:\s*(\d+)/);
  const tx = block.match(/TX-packets:\s*(\d+)/);
  if (!rx || !tx) throw new Error(`cannot parse testpmd totals:\n${block.slice(0, 2000)}`);
  return { rx: Number(rx[1]), tx: Number(tx[1]) };
}
