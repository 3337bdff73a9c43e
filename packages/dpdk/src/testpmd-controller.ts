import { FORWARD_MODES, type ForwardMode, TESTPMD_PROMPT } from './defs.js';
import { formatVdev, type Vdev } from './eal-options.js';
import { DpdkError } from './errors.js';
import {
  cleanLines,
  type ForwardStats,
  type PortInfo,
  type PortStats,
  type PortSummaryEntry,
  parseForwardStats,
  parsePortInfo,
  parsePortStats,
  parsePortSummary,
} from './stats.js';
import { type DpdkProcess, type ExitInfo, type LaunchOptions, launchDpdk } from './supervisor.js';

/** Longest command line testpmd's cmdline library accepts (RDLINE_BUF_SIZE 512, minus margin). */
const MAX_COMMAND = 500;
/** Replies that mean testpmd's parser refused the command ("Testpmd Runtime Functions"). */
const PARSER_ERRORS = /^(Bad arguments|Command not found|Ambiguous command)\s*$/m;
const MARKER = '#vipc-sync-';

export interface CommandOptions {
  /** Default 30 s: the first replies after start-up and port attach can be slow on busy machines. */
  timeoutMs?: number;
}

/**
 * Drives testpmd's interactive prompt (-i) over stdin. Each command is followed by a comment line
 * ("#vipc-sync-N", which testpmd's cmdline ignores); its echo marks the end of the reply, so replies are
 * delimited exactly even when a command prints no prompt of its own or asynchronous port events
 * interleave. Commands run one at a time, in call order.
 */
export class TestpmdController {
  readonly process: DpdkProcess;
  private seq = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private buffer = '';
  private closed = false;

  constructor(proc: DpdkProcess) {
    if (!proc.interactive) {
      throw new DpdkError(
        'INVALID_OPTION',
        'TestpmdController needs testpmd started with -i (testpmd: { interactive: true })',
      );
    }
    this.process = proc;
    proc.on('output', ({ chunk }) => {
      this.buffer += chunk;
      if (this.buffer.length > 4 << 20) this.buffer = this.buffer.slice(-(1 << 20));
    });
    proc.once('exit', () => {
      this.closed = true;
    });
  }

  /** Launch testpmd in interactive mode and wait for its first prompt. */
  static async launch(opts: LaunchOptions): Promise<TestpmdController> {
    const p = await launchDpdk({
      ...opts,
      testpmd: { ...opts.testpmd, interactive: true },
      readyWhen: opts.readyWhen ?? 'prompt',
    });
    return new TestpmdController(p);
  }

  /**
   * Run one command and return its reply (the lines between its echo and the next prompt). Rejects with
   * COMMAND_FAILED when testpmd's parser refuses it, TIMEOUT, or EXITED/CLOSED when testpmd is gone.
   */
  command(cmd: string, opts: CommandOptions = {}): Promise<string> {
    const run = this.queue.then(
      () => this.run(cmd, opts),
      () => this.run(cmd, opts),
    );
    this.queue = run.catch(() => {});
    return run;
  }

  private run(cmd: string, opts: CommandOptions): Promise<string> {
    if (/[\r\n]/.test(cmd) || cmd.trim() === '' || cmd.length > MAX_COMMAND || cmd.trim().startsWith('#')) {
      return Promise.reject(
        new DpdkError(
          'INVALID_OPTION',
          `testpmd command ${JSON.stringify(cmd.slice(0, 80))}: one non-empty line of at most ${MAX_COMMAND} characters`,
        ),
      );
    }
    if (this.closed || this.process.state === 'exited') {
      return Promise.reject(
        new DpdkError('CLOSED', `testpmd (pid ${this.process.pid}) has exited; cannot run "${cmd}"`),
      );
    }
    const n = ++this.seq;
    const marker = `${MARKER}${n}`;
    // the whole echo line: "#vipc-sync-1" must not match the echo of "#vipc-sync-12"
    const markerRe = new RegExp(`${marker}\\r?\\n`);
    const timeoutMs = opts.timeoutMs ?? 30_000;
    this.buffer = '';
    return new Promise<string>((resolve, reject) => {
      const onOutput = () => {
        const hit = markerRe.exec(this.buffer);
        if (!hit) return; // wait for the whole echo line
        const at = hit.index;
        const lineEnd = at + hit[0].length - 1;
        done();
        const reply = this.extract(this.buffer.slice(0, at), cmd);
        this.buffer = this.buffer.slice(lineEnd + 1);
        if (PARSER_ERRORS.test(reply)) {
          reject(
            new DpdkError('COMMAND_FAILED', `testpmd refused "${cmd}": ${reply.trim()}`, {
              command: cmd,
              reply,
            }),
          );
        } else resolve(reply);
      };
      const onExit = (info: ExitInfo) => {
        done();
        reject(
          new DpdkError('EXITED', `testpmd exited (${info.signal ?? `code ${info.code}`}) during "${cmd}"`, {
            command: cmd,
            lastLines: info.lastLines,
          }),
        );
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new DpdkError(
            'TIMEOUT',
            `testpmd did not answer "${cmd}" within ${timeoutMs} ms; last output:\n${this.process.lastLines.slice(-10).join('\n')}`,
            {
              command: cmd,
              lastLines: this.process.lastLines,
            },
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.process.off('output', onOutput);
        this.process.off('exit', onExit);
      };
      this.process.on('output', onOutput);
      this.process.on('exit', onExit);
      try {
        this.process.write(`${cmd}\n${marker}\n`);
      } catch (e) {
        done();
        reject(e);
      }
    });
  }

  /** The reply text: what follows the echo of `cmd`, without prompts. */
  private extract(text: string, cmd: string): string {
    const lines = cleanLines(text);
    let start = lines.findIndex(
      (l) => l.replace(TESTPMD_PROMPT, '').trimEnd() === cmd.trimEnd() || l.endsWith(cmd.trimEnd()),
    );
    if (start < 0) start = -1;
    const body = lines.slice(start + 1);
    while (
      body.length > 0 &&
      (body.at(-1) === '' || body.at(-1) === TESTPMD_PROMPT.trimEnd() || body.at(-1) === TESTPMD_PROMPT)
    )
      body.pop();
    const last = body.at(-1);
    if (last?.startsWith(TESTPMD_PROMPT)) body[body.length - 1] = last.slice(TESTPMD_PROMPT.length);
    return body.map((l) => (l.startsWith(TESTPMD_PROMPT) ? l.slice(TESTPMD_PROMPT.length) : l)).join('\n');
  }

  /** `port attach <devargs>`: hot-plug a device; returns the new port id. */
  async portAttach(device: string | Vdev, opts?: CommandOptions): Promise<number> {
    const devargs = typeof device === 'string' ? device : formatVdev(device);
    if (/\s/.test(devargs))
      throw new DpdkError('INVALID_OPTION', `port attach "${devargs}": devargs cannot contain whitespace`);
    const reply = await this.command(`port attach ${devargs}`, { timeoutMs: 60_000, ...opts });
    const m = /Port (\d+) is attached/.exec(reply);
    if (!m)
      throw new DpdkError('COMMAND_FAILED', `port attach ${devargs} failed:\n${reply.trim()}`, { reply });
    return Number(m[1]);
  }

  private async portCommand(
    verb: 'start' | 'stop' | 'close' | 'reset',
    port: number | 'all',
    opts?: CommandOptions,
  ) {
    checkPort(port);
    const reply = await this.command(`port ${verb} ${port}`, { timeoutMs: 60_000, ...opts });
    if (
      /Invalid port|Fail|failed|Error/i.test(reply) &&
      !/Error during enabling promiscuous mode/.test(reply)
    ) {
      throw new DpdkError('COMMAND_FAILED', `port ${verb} ${port} failed:\n${reply.trim()}`, { reply });
    }
    return reply;
  }

  portStart(port: number | 'all', opts?: CommandOptions): Promise<string> {
    return this.portCommand('start', port, opts);
  }
  portStop(port: number | 'all', opts?: CommandOptions): Promise<string> {
    return this.portCommand('stop', port, opts);
  }
  /** `port close`: in DPDK 22.11 closing also releases a hot-plugged port. */
  portClose(port: number | 'all', opts?: CommandOptions): Promise<string> {
    return this.portCommand('close', port, opts);
  }

  /** `port detach <id>` (the port must be stopped; closed ports are already gone in 22.11). */
  async portDetach(port: number, opts?: CommandOptions): Promise<string> {
    checkPort(port);
    const reply = await this.command(`port detach ${port}`, { timeoutMs: 60_000, ...opts });
    if (/Invalid port|Fail|failed/i.test(reply))
      throw new DpdkError('COMMAND_FAILED', `port detach ${port} failed: ${reply.trim()}`, { reply });
    return reply;
  }

  /** `set fwd <mode>` */
  async setForwardMode(mode: ForwardMode): Promise<void> {
    if (!(FORWARD_MODES as readonly string[]).includes(mode))
      throw new DpdkError('INVALID_OPTION', `set fwd ${mode}: not a forwarding mode`);
    const reply = await this.command(`set fwd ${mode}`);
    if (/Invalid|not supported/i.test(reply))
      throw new DpdkError('COMMAND_FAILED', `set fwd ${mode}: ${reply.trim()}`, { reply });
  }

  /** `set txpkts <len>[,<len>...]`: segment lengths of txonly packets. */
  async setTxpkts(lengths: number | readonly number[]): Promise<void> {
    const segs = typeof lengths === 'number' ? [lengths] : [...lengths];
    if (
      segs.length === 0 ||
      segs.length > 8 ||
      segs.some((s) => !Number.isInteger(s) || s < 1 || s > 65535)
    ) {
      throw new DpdkError('INVALID_OPTION', `set txpkts ${segs.join(',')}: 1 to 8 lengths in 1..65535`);
    }
    const reply = await this.command(`set txpkts ${segs.join(',')}`);
    if (/[Ii]nvalid|must|cannot|error/.test(reply))
      throw new DpdkError('COMMAND_FAILED', `set txpkts: ${reply.trim()}`, { reply });
  }

  /** `start`, or `start tx_first [n]` to prime loops with bursts first. */
  async start(opts: { txFirst?: boolean | number } = {}): Promise<string> {
    let cmd = 'start';
    if (opts.txFirst !== undefined && opts.txFirst !== false) {
      cmd = 'start tx_first';
      if (typeof opts.txFirst === 'number') {
        if (!Number.isInteger(opts.txFirst) || opts.txFirst < 1 || opts.txFirst > 1024) {
          throw new DpdkError('INVALID_OPTION', `start tx_first ${opts.txFirst}: a burst count in 1..1024`);
        }
        cmd += ` ${opts.txFirst}`;
      }
    }
    const reply = await this.command(cmd);
    if (/Packet forwarding already started/.test(reply))
      throw new DpdkError('COMMAND_FAILED', 'forwarding is already started', { reply });
    if (!/packet forwarding - ports=/.test(reply))
      throw new DpdkError('COMMAND_FAILED', `${cmd} failed:\n${reply.trim()}`, { reply });
    return reply;
  }

  /** `stop`: stops forwarding and returns the forward statistics it prints. */
  async stop(): Promise<ForwardStats> {
    const reply = await this.command('stop');
    if (/Packet forwarding not started/.test(reply))
      throw new DpdkError('COMMAND_FAILED', 'forwarding is not started', { reply });
    const stats = parseForwardStats(reply);
    if (!stats)
      throw new DpdkError('PARSE_ERROR', `stop printed no forward statistics:\n${reply.trim()}`, { reply });
    return stats;
  }

  /** `show port stats all` (or one port), parsed. */
  async portStats(port: number | 'all' = 'all'): Promise<PortStats[]> {
    checkPort(port);
    return parsePortStats(await this.command(`show port stats ${port}`));
  }

  /** `clear port stats all` */
  async clearPortStats(port: number | 'all' = 'all'): Promise<void> {
    checkPort(port);
    await this.command(`clear port stats ${port}`);
  }

  /** `show port info <id>`, parsed (link status, driver, queues, MTU, every field). */
  async portInfo(port: number): Promise<PortInfo> {
    checkPort(port);
    const reply = await this.command(`show port info ${port}`);
    const info = parsePortInfo(reply);
    if (!info) throw new DpdkError('COMMAND_FAILED', `show port info ${port}: ${reply.trim()}`, { reply });
    return info;
  }

  /** `show port summary all`, parsed. */
  async portSummary(): Promise<PortSummaryEntry[]> {
    return parsePortSummary(await this.command('show port summary all'));
  }

  /**
   * Poll `show port summary all` until a port reports link "up"; resolves with its row. Uses a short
   * interval between polls (not a sleep in tests: it ends as soon as the condition holds).
   */
  async waitForLinkUp(port: number, timeoutMs = 60_000): Promise<PortSummaryEntry> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const row = (await this.portSummary()).find((r) => r.port === port);
      if (row?.status === 'up') return row;
      if (Date.now() > deadline) {
        throw new DpdkError(
          'TIMEOUT',
          `port ${port} link not up within ${timeoutMs} ms (status ${row?.status ?? 'absent'})`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** `quit`, then wait for the exit (SIGKILL after `timeoutMs`). */
  async quit(timeoutMs = 15_000): Promise<ExitInfo> {
    await this.queue;
    return this.process.stop({ timeoutMs });
  }
}

function checkPort(port: number | 'all'): void {
  if (port !== 'all' && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw new DpdkError('INVALID_OPTION', `port ${port}: a port id in 0..65535 or "all"`);
  }
}
