/**
 * The benchmark's testpmd (src/bench.ts only; the tests use @vipc/dpdk's
 * supervisor through test-support/testpmd.ts, and the benchmark has not been
 * moved to it yet): runs the real dpdk-testpmd (Debian package
 * dpdk-dev) with the command lines of the project's PEERS notes, collects its
 * output, and stops it with SIGINT, then SIGKILL. Removes its runtime
 * directory afterwards.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';

export const TESTPMD = '/usr/bin/dpdk-testpmd';

export interface TestpmdOptions {
  prefix: string;
  vdev: string;
  forwardMode: 'txonly' | 'rxonly' | 'io' | 'macswap';
  mainLcore?: number;
  txpkts?: number;
  extraApp?: string[];
  /**
   * Guest memory: 'no-huge' (default: `--no-huge -m 256`, a memfd) or DPDK's
   * dynamic memory mode in a hugetlbfs mount (`--huge-dir DIR
   * --single-file-segments`, no -m: the heap grows on demand, and virtio-user
   * re-sends SET_MEM_TABLE each time).
   */
  hugeDir?: string;
  /** Interactive prompt (`-i`) driven through stdin with command(); forwarding starts with `start`. */
  interactive?: boolean;
  /** Total mbufs (default 16384). */
  mbufs?: number;
  /** EAL lcore list (default `0-1`). */
  lcores?: string;
}

export class Testpmd {
  readonly proc: ChildProcess;
  readonly prefix: string;
  output = '';
  #exit: Promise<number | null>;
  #waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];

  constructor(options: TestpmdOptions) {
    this.prefix = options.prefix;
    const memory =
      options.hugeDir !== undefined
        ? ['--huge-dir', options.hugeDir, '--single-file-segments']
        : ['--no-huge', '-m', '256'];
    const args = [
      '-l',
      options.lcores ?? '0-1',
      '--main-lcore',
      String(options.mainLcore ?? 0),
      '-n',
      '1',
      `--file-prefix=${options.prefix}`,
      '--no-pci',
      ...memory,
      '--vdev',
      options.vdev,
      '--',
      ...(options.interactive ? ['-i'] : []),
      '--nb-cores=1',
      `--forward-mode=${options.forwardMode}`,
      `--total-num-mbufs=${options.mbufs ?? 16384}`,
      ...(options.interactive ? [] : ['--stats-period', '1']),
      ...(options.txpkts !== undefined ? [`--txpkts=${options.txpkts}`] : []),
      ...(options.extraApp ?? []),
    ];
    // Interactive: stdout is a pipe, so testpmd's printf output would sit in stdio's buffer
    // while the prompt (written directly) arrives; coreutils' stdbuf (it execs testpmd,
    // same pid) makes it line-buffered so each command's output precedes the next prompt.
    this.proc = options.interactive
      ? spawn('stdbuf', ['-oL', TESTPMD, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn(TESTPMD, args, { stdio: ['ignore', 'pipe', 'pipe'] });
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

  /**
   * Interactive mode: types `line` at the prompt and resolves with what
   * testpmd printed until its next prompt.
   */
  async command(line: string, timeoutMs = 60_000): Promise<string> {
    if (this.proc.stdin === null) throw new Error('testpmd was not started interactive');
    const from = this.output.length;
    this.proc.stdin.write(`${line}\n`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.output.indexOf('testpmd> ', from);
      if (i >= 0) return this.output.slice(from, i);
      if (this.exited) throw new Error(`testpmd exited during "${line}":\n${this.output.slice(-3000)}`);
      if (Date.now() > deadline) {
        throw new Error(
          `testpmd: no prompt after "${line}" within ${timeoutMs} ms:\n${this.output.slice(-3000)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
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

  /**
   * `quit` at the prompt (interactive) or SIGINT, then SIGKILL after `graceMs`;
   * resolves with the full output. Removes the runtime dir.
   */
  async stop(graceMs = 20_000): Promise<string> {
    if (!this.exited) {
      const stdin = this.proc.stdin;
      if (stdin?.writable) {
        stdin.on('error', () => {});
        stdin.end('quit\n');
      } else this.proc.kill('SIGINT');
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
