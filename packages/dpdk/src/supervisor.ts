import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createWriteStream, lstatSync, rmSync, type WriteStream } from 'node:fs';
import { DEFAULT_LOG_TAIL_LINES, OUTPUT_PATTERNS, TESTPMD, TESTPMD_PROMPT } from './defs.js';
import { findExecutable, requireDpdk } from './discovery.js';
import { buildEalArgs, createdSocketPaths, type EalOptions, enabledLcores } from './eal-options.js';
import { DpdkError, fromSystemError } from './errors.js';
import { removeLeftoverHugepageFiles } from './hugepages.js';
import { assertFilePrefixFree, processesUsingPrefix, removeRuntimeDir, runtimeDir } from './runtime.js';
import { cleanLines, type ForwardStats, type PortStats, parseForwardStats, parsePortStats } from './stats.js';
import { buildTestpmdArgs, type TestpmdOptions } from './testpmd-options.js';

/** A condition the Supervisor waits for before a launch counts as ready. */
export type ReadyCondition =
  /** The process was spawned. */
  | 'spawn'
  /** Every vhost-user socket the app's devices create exists ("socket created"). */
  | 'socket-created'
  /** The vhost back-end reports "virtio is now ready for processing". */
  | 'link-up'
  /** testpmd started forwarding ("<mode> packet forwarding - ports=..."). */
  | 'forwarding'
  /** The interactive prompt "testpmd> " appeared. */
  | 'prompt'
  /** Any output line matching. */
  | RegExp;

export interface LaunchOptions {
  /** Application path or name (default: the discovered dpdk-testpmd). */
  app?: string;
  eal: EalOptions;
  /** testpmd options (when the app is testpmd). */
  testpmd?: TestpmdOptions;
  /** Application arguments after "--" for other apps (instead of `testpmd`). */
  appArgs?: readonly string[];
  /** Default: 'prompt' with -i; else 'socket-created' when a device creates a socket; else 'forwarding'. */
  readyWhen?: ReadyCondition | readonly ReadyCondition[];
  /** Default 60 s (start-up is slow on busy machines). */
  readyTimeoutMs?: number;
  /** Append every output line here (the log is kept after the process exits). */
  logFile?: string;
  /** Lines kept in memory for exit reports (default 200). */
  logTailLines?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Run as this user/group (needs root): for non-root runs. */
  uid?: number;
  gid?: number;
  /**
   * Run under `stdbuf -o0 -e0` so output arrives unbuffered and in order (testpmd's stdio is fully
   * buffered on a pipe, which reorders prompts and command output). Default true when stdbuf exists.
   */
  unbuffered?: boolean;
  /**
   * Send stderr into the same pipe as stdout (via `sh -c 'exec "$@" 2>&1'`), so EAL/PMD log lines and
   * testpmd's own output keep their true order (default true). With false, `line` events carry the
   * stream they came from.
   */
  mergeStderr?: boolean;
  /**
   * Kill the app when this Node process dies, even by a signal or a crash (`setpriv --pdeathsig KILL`,
   * util-linux). Default true when setpriv exists; a normal exit of Node kills children in any case.
   */
  killWithParent?: boolean;
  /** Listeners attached before the spawn, so that no event (launch-start included) can be missed. */
  listeners?: { [K in keyof DpdkProcessEvents]?: (...args: DpdkProcessEvents[K]) => void };
  /** Refuse to start when a live process uses the same --file-prefix (default true). */
  checkFilePrefix?: boolean;
  /** Remove the runtime directory, hugepage files and created sockets after exit (default true). */
  cleanup?: boolean;
}

/** What the exit event reports. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when stop() or kill() asked for it. */
  requested: boolean;
  /** The last output lines (the log tail). */
  lastLines: string[];
  /** The last "Forward statistics" block testpmd printed, if any. */
  forwardStats: ForwardStats | undefined;
  /** What cleanup removed. */
  cleaned: { runtimeDir: boolean; hugepageFiles: string[]; sockets: string[]; errors: string[] };
}

export interface DpdkProcessEvents {
  'launch-start': [{ pid: number; argv: string[]; filePrefix: string }];
  'socket-created': [{ path: string }];
  'link-up': [{ path: string }];
  'link-down': [{ path: string }];
  'forwarding-started': [{ mode: string; ports: number }];
  /** A complete "NIC statistics for port N" block (--stats-period output or `show port stats`). */
  'port-stats': [PortStats];
  prompt: [];
  ready: [{ conditions: string[] }];
  line: [{ text: string; stream: 'stdout' | 'stderr' }];
  output: [{ chunk: string; stream: 'stdout' | 'stderr' }];
  exit: [ExitInfo];
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of live) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

function isSocket(path: string): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}

/** Lines that explain a failure (EAL errors, causes), which usage text printed after them would bury. */
export function errorLines(lines: readonly string[]): string[] {
  return lines.filter(
    (l) =>
      /^(EAL|testpmd|VHOST_CONFIG|virtio_user\w*|[\w-]+: unrecognized option|\s*Cause:)|error|invalid|cannot|fail/i.test(
        l,
      ) && !/^\s{2}-/.test(l),
  );
}

function explain(lines: readonly string[]): string {
  const errs = errorLines(lines).filter((l) => /error|invalid|cannot|fail|unrecognized|cause/i.test(l));
  const tail = lines.slice(-10);
  return [...errs.slice(-10).filter((l) => !tail.includes(l)), ...tail].join('\n');
}

let prefixCounter = 0;
/** A file prefix unique to this process and call: vipc<pid>_<n>. */
export function uniqueFilePrefix(tag = 'vipc'): string {
  prefixCounter++;
  return `${tag}${process.pid}_${prefixCounter}`;
}

function condName(c: ReadyCondition): string {
  return typeof c === 'string' ? c : `/${c.source}/`;
}

/**
 * A supervised DPDK application. Create with `spawnDpdk` (returns at once) or `launchDpdk` (waits for
 * readiness). Output is parsed into typed events; a crash becomes an `exit` event with the log tail.
 */
export class DpdkProcess extends EventEmitter<DpdkProcessEvents> {
  readonly argv: string[];
  readonly app: string;
  readonly filePrefix: string;
  readonly eal: EalOptions;
  readonly interactive: boolean;
  readonly logFile: string | undefined;
  readonly pid: number;
  /** Sockets the devices create (removed on cleanup). */
  readonly sockets: string[];
  state: 'running' | 'stopping' | 'exited' = 'running';
  exitInfo: ExitInfo | undefined;
  readonly socketsCreated = new Set<string>();
  readonly linksUp = new Set<string>();
  forwarding = false;
  promptSeen = false;
  /** Resolves with the exit info once the process has exited and cleanup is done. */
  readonly exited: Promise<ExitInfo>;

  private readonly child: ChildProcess;
  private readonly tail: string[] = [];
  private readonly tailMax: number;
  private readonly partial = { stdout: '', stderr: '' };
  private readonly log: WriteStream | undefined;
  private readonly cleanupEnabled: boolean;
  private readonly uid: number;
  private readonly env: NodeJS.ProcessEnv;
  private requested = false;
  private lastStatsText: string[] = [];
  private statsCapture: string[] | undefined;
  private nicCapture: string[] | undefined;
  /** The latest NIC statistics of each port seen in the output. */
  readonly portStats = new Map<number, PortStats>();

  /** Use spawnDpdk(). */
  constructor(opts: LaunchOptions) {
    super();
    this.eal = { ...opts.eal, filePrefix: opts.eal.filePrefix ?? uniqueFilePrefix() };
    this.filePrefix = this.eal.filePrefix!;
    const ealArgs = buildEalArgs(this.eal);
    let appArgs: string[];
    if (opts.testpmd !== undefined) appArgs = buildTestpmdArgs(opts.testpmd, enabledLcores(this.eal));
    else appArgs = [...(opts.appArgs ?? [])];
    this.interactive =
      opts.testpmd?.interactive === true || appArgs.includes('-i') || appArgs.includes('--interactive');
    const app = opts.app === undefined ? requireDpdk().testpmd : findExecutable(opts.app);
    if (app === undefined) {
      throw new DpdkError(
        'NOT_INSTALLED',
        `${opts.app}: not found or not executable. DPDK apps come with the Debian package dpdk-dev (apt-get install -y dpdk-dev)`,
        { app: opts.app },
      );
    }
    this.app = app;
    this.argv = [...ealArgs, '--', ...appArgs];
    this.sockets = createdSocketPaths(this.eal);
    this.cleanupEnabled = opts.cleanup !== false;
    this.uid = opts.uid ?? process.getuid?.() ?? 0;
    this.env = opts.env ?? process.env;
    if (opts.checkFilePrefix !== false) assertFilePrefixFree(this.filePrefix);
    this.tailMax = opts.logTailLines ?? DEFAULT_LOG_TAIL_LINES;
    this.logFile = opts.logFile;
    this.log = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
    const stdbuf = opts.unbuffered === false ? undefined : findExecutable('stdbuf');
    let cmd: string = stdbuf ?? app;
    let args: string[] = stdbuf ? ['-o0', '-e0', app, ...this.argv] : [...this.argv];
    const setpriv = opts.killWithParent === false ? undefined : findExecutable('setpriv');
    if (setpriv) {
      args = ['--pdeathsig', 'KILL', '--', cmd, ...args];
      cmd = setpriv;
    }
    const sh = opts.mergeStderr === false ? undefined : findExecutable('sh');
    // exec keeps the pid: sh -> stdbuf -> the app; arguments stay positional, nothing is re-parsed
    if (sh) {
      args = ['-c', 'exec "$@" 2>&1', 'sh', cmd, ...args];
      cmd = sh;
    }
    for (const [name, fn] of Object.entries(opts.listeners ?? {})) {
      if (typeof fn === 'function') this.on(name as keyof DpdkProcessEvents, fn as (...a: unknown[]) => void);
    }
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        uid: opts.uid,
        gid: opts.gid,
      });
    } catch (e) {
      this.log?.end();
      throw fromSystemError(e, `spawn ${app}`);
    }
    this.child = child;
    if (child.pid === undefined) {
      // spawn failed synchronously (e.g. EAGAIN); the 'error' event follows
      this.pid = -1;
    } else {
      this.pid = child.pid;
      live.add(child);
      installExitHook();
    }
    child.stdin?.on('error', () => {
      /* the app closed stdin (it exited) */
    });
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (c: string) => this.onData(c, 'stdout'));
    child.stderr?.on('data', (c: string) => this.onData(c, 'stderr'));
    let spawnError: Error | undefined;
    child.on('error', (e) => {
      spawnError = e;
    });
    this.exited = new Promise<ExitInfo>((resolve) => {
      child.on('close', (code, signal) => {
        live.delete(child);
        if (spawnError) this.pushLine(`[vipc] spawn failed: ${spawnError.message}`, 'stderr');
        resolve(this.finish(code, signal));
      });
    });
    this.exited.catch(() => {});
    queueMicrotask(() =>
      this.emit('launch-start', {
        pid: this.pid,
        argv: [this.app, ...this.argv],
        filePrefix: this.filePrefix,
      }),
    );
  }

  /** The runtime directory the EAL of this process uses. */
  get runtimeDir(): string {
    return runtimeDir(this.filePrefix, this.uid, this.env);
  }

  /** The last output lines (up to logTailLines). */
  get lastLines(): string[] {
    return [...this.tail];
  }

  /** Write to the app's stdin (the interactive prompt). */
  write(text: string): void {
    if (this.state === 'exited' || !this.child.stdin || this.child.stdin.destroyed) {
      throw new DpdkError('CLOSED', `${TESTPMD} (pid ${this.pid}) has exited; cannot write to it`);
    }
    this.child.stdin.write(text);
  }

  /** Send a signal; marks the exit as requested. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.state === 'exited') return;
    this.requested = true;
    try {
      this.child.kill(signal);
    } catch {
      /* gone */
    }
  }

  /**
   * Stop gracefully: "quit" on the prompt (interactive) or SIGINT, then SIGKILL after `timeoutMs`.
   * Resolves after exit and cleanup.
   */
  async stop(opts: { timeoutMs?: number } = {}): Promise<ExitInfo> {
    if (this.state === 'exited') return this.exitInfo!;
    this.requested = true;
    this.state = 'stopping';
    const timeoutMs = opts.timeoutMs ?? 15_000;
    if (this.interactive && this.child.stdin && !this.child.stdin.destroyed) {
      this.child.stdin.write('quit\n');
    } else {
      this.kill('SIGINT');
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.pushLine(`[vipc] no exit ${timeoutMs} ms after the stop request; sending SIGKILL`, 'stderr');
      this.kill('SIGKILL');
    }
    return this.exited;
  }

  /** Has a condition been met already? */
  isMet(c: ReadyCondition): boolean {
    switch (c) {
      case 'spawn':
        return this.pid > 0;
      case 'socket-created':
        // the vhost library logs "socket created" before bind(): also require the file
        return this.sockets.length > 0
          ? this.sockets.every((s) => isSocket(s))
          : [...this.socketsCreated].some((s) => isSocket(s));
      case 'link-up':
        return this.linksUp.size > 0;
      case 'forwarding':
        return this.forwarding;
      case 'prompt':
        return this.promptSeen;
      default:
        return this.tail.some((l) => c.test(l));
    }
  }

  /**
   * Wait until every condition holds. Rejects with TIMEOUT after `timeoutMs`, or EXITED (with the log
   * tail in `details.lastLines`) when the process exits first.
   */
  waitFor(conditions: ReadyCondition | readonly ReadyCondition[], timeoutMs = 60_000): Promise<void> {
    const list: readonly ReadyCondition[] = Array.isArray(conditions)
      ? conditions
      : [conditions as ReadyCondition];
    const regexHit = new Set<RegExp>();
    const met = () =>
      list.every((c) => (c instanceof RegExp ? regexHit.has(c) || this.isMet(c) : this.isMet(c)));
    if (met()) return Promise.resolve();
    const names = list.map(condName);
    return new Promise<void>((resolve, reject) => {
      const onLine = ({ text }: { text: string }) => {
        for (const c of list) if (c instanceof RegExp && c.test(text)) regexHit.add(c);
        check();
      };
      const check = () => {
        if (met()) {
          done();
          resolve();
        }
      };
      const onExit = (info: ExitInfo) => {
        done();
        reject(
          new DpdkError(
            'EXITED',
            `${this.describe()} exited (${info.signal ?? `code ${info.code}`}) before ${names.join(' + ')}; output:\n${explain(info.lastLines)}`,
            { code: info.code, signal: info.signal, lastLines: info.lastLines },
          ),
        );
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new DpdkError(
            'TIMEOUT',
            `${this.describe()}: no ${names.filter((_, i) => !this.isMet(list[i]!)).join(' + ')} within ${timeoutMs} ms; output:\n${explain(this.tail)}`,
            { lastLines: this.lastLines, timeoutMs },
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        if (poll) clearInterval(poll);
        this.off('line', onLine);
        this.off('prompt', check);
        this.off('exit', onExit);
      };
      // files appear without a log line of their own: poll while waiting for sockets
      const poll = list.includes('socket-created') ? setInterval(check, 50) : undefined;
      this.on('line', onLine);
      this.on('prompt', check);
      this.on('exit', onExit);
      if (this.state === 'exited') onExit(this.exitInfo!);
    });
  }

  private describe(): string {
    return `${this.app.split('/').pop()} (pid ${this.pid}, prefix ${this.filePrefix})`;
  }

  private onData(chunk: string, stream: 'stdout' | 'stderr'): void {
    this.emit('output', { chunk, stream });
    let buf = this.partial[stream] + chunk;
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      this.pushLine(buf.slice(0, nl), stream);
      buf = buf.slice(nl + 1);
      nl = buf.indexOf('\n');
    }
    if (buf.length > 65536) {
      this.pushLine(buf, stream);
      buf = '';
    }
    this.partial[stream] = buf;
    if (stream === 'stdout' && buf.endsWith(TESTPMD_PROMPT)) this.sawPrompt();
  }

  private sawPrompt(): void {
    if (!this.promptSeen) {
      this.promptSeen = true;
    }
    this.emit('prompt');
  }

  private pushLine(raw: string, stream: 'stdout' | 'stderr'): void {
    for (const text of cleanLines(raw)) {
      this.tail.push(text);
      if (this.tail.length > this.tailMax) this.tail.shift();
      this.log?.write(`${text}\n`);
      this.scan(text);
      this.emit('line', { text, stream });
    }
  }

  private scan(text: string): void {
    const line = text.startsWith(TESTPMD_PROMPT) ? text.slice(TESTPMD_PROMPT.length) : text;
    if (text.startsWith(TESTPMD_PROMPT)) this.promptSeen = true;
    // Forward statistics blocks, kept whole for the exit report
    if (this.statsCapture !== undefined) {
      this.statsCapture.push(line);
      if (/^\s*\+{20,}\s*$/.test(line)) {
        this.lastStatsText = this.statsCapture;
        this.statsCapture = undefined;
      } else if (this.statsCapture.length > 400) this.statsCapture = undefined;
    } else if (/Forward statistics for port|Accumulated forward statistics/.test(line)) {
      this.statsCapture = [line];
    }
    // NIC statistics blocks: emitted as 'port-stats' (throughput for benchmarks, counters for tests)
    if (this.nicCapture !== undefined) {
      this.nicCapture.push(line);
      if (/^\s*#{20,}\s*$/.test(line)) {
        const block = this.nicCapture;
        this.nicCapture = undefined;
        try {
          for (const st of parsePortStats(block.join('\n'))) {
            this.portStats.set(st.port, st);
            this.emit('port-stats', st);
          }
        } catch {
          /* a malformed block is only logged */
        }
      } else if (this.nicCapture.length > 40) this.nicCapture = undefined;
    } else if (/#{5,} NIC statistics for port \d+/.test(line)) {
      this.nicCapture = [line];
    }
    let m = OUTPUT_PATTERNS.socketCreated.exec(line);
    if (m?.groups) {
      this.socketsCreated.add(m.groups.path!);
      this.emit('socket-created', { path: m.groups.path! });
      return;
    }
    m = OUTPUT_PATTERNS.virtioReady.exec(line);
    if (m?.groups) {
      this.linksUp.add(m.groups.path!);
      this.emit('link-up', { path: m.groups.path! });
      return;
    }
    m = OUTPUT_PATTERNS.peerClosed.exec(line);
    if (m?.groups) {
      this.linksUp.delete(m.groups.path!);
      this.emit('link-down', { path: m.groups.path! });
      return;
    }
    m = OUTPUT_PATTERNS.forwardingStarted.exec(line);
    if (m?.groups) {
      this.forwarding = true;
      this.emit('forwarding-started', { mode: m.groups.mode!, ports: Number(m.groups.ports) });
      return;
    }
    if (/^Telling cores to stop/.test(line)) this.forwarding = false;
  }

  private cleanup(): ExitInfo['cleaned'] {
    const cleaned: ExitInfo['cleaned'] = { runtimeDir: false, hugepageFiles: [], sockets: [], errors: [] };
    if (!this.cleanupEnabled) return cleaned;
    try {
      // Another process (a secondary, or a rogue duplicate) may still use the prefix.
      if (processesUsingPrefix(this.filePrefix).length === 0)
        cleaned.runtimeDir = removeRuntimeDir(this.filePrefix, this.uid, this.env);
    } catch (e) {
      cleaned.errors.push((e as Error).message);
    }
    if (!this.eal.noHuge) {
      try {
        const dirs = this.eal.hugeDir ? [this.eal.hugeDir] : undefined;
        cleaned.hugepageFiles = removeLeftoverHugepageFiles({ prefix: this.filePrefix, dirs }).map(
          (f) => f.path,
        );
      } catch (e) {
        cleaned.errors.push((e as Error).message);
      }
    }
    for (const s of this.sockets) {
      try {
        if (lstatSync(s).isSocket()) {
          rmSync(s, { force: true });
          cleaned.sockets.push(s);
        }
      } catch {
        /* not there */
      }
    }
    return cleaned;
  }

  private finish(code: number | null, signal: NodeJS.Signals | null): ExitInfo {
    for (const s of ['stdout', 'stderr'] as const) {
      if (this.partial[s] !== '') this.pushLine(this.partial[s], s);
      this.partial[s] = '';
    }
    this.state = 'exited';
    const cleaned = this.cleanup();
    let forwardStats: ForwardStats | undefined;
    try {
      forwardStats = this.lastStatsText.length ? parseForwardStats(this.lastStatsText.join('\n')) : undefined;
    } catch {
      forwardStats = undefined;
    }
    const info: ExitInfo = {
      code,
      signal,
      requested: this.requested,
      lastLines: this.lastLines,
      forwardStats,
      cleaned,
    };
    this.exitInfo = info;
    this.log?.end();
    this.emit('exit', info);
    return info;
  }
}

/** Start a DPDK app under supervision; returns at once (listen for events, or call waitFor). */
export function spawnDpdk(opts: LaunchOptions): DpdkProcess {
  return new DpdkProcess(opts);
}

function defaultReady(opts: LaunchOptions): ReadyCondition[] {
  if (opts.testpmd?.interactive) return ['prompt'];
  if (createdSocketPaths(opts.eal).length > 0) return ['socket-created'];
  return opts.testpmd !== undefined ? ['forwarding'] : ['spawn'];
}

/**
 * Start a DPDK app and wait until it is ready (see LaunchOptions.readyWhen). On failure the process is
 * killed, cleaned up, and the error (EXITED or TIMEOUT) carries its last output lines.
 */
export async function launchDpdk(opts: LaunchOptions): Promise<DpdkProcess> {
  const p = spawnDpdk(opts);
  const conds =
    opts.readyWhen === undefined
      ? defaultReady(opts)
      : Array.isArray(opts.readyWhen)
        ? opts.readyWhen
        : [opts.readyWhen as ReadyCondition];
  try {
    await p.waitFor(conds, opts.readyTimeoutMs ?? 60_000);
  } catch (e) {
    p.kill('SIGKILL');
    await p.exited;
    throw e;
  }
  p.emit('ready', { conditions: conds.map(condName) });
  return p;
}
