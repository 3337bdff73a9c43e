import { type ChildProcess, spawn } from 'node:child_process';
import {
  type Dirent,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { type IdMap, type LxcConfig, parseConfig, renderConfig } from './config.js';
import {
  CONTAINER_NAME_PATTERN,
  CONTAINER_STATES,
  type ContainerState,
  DEFAULT_LXCPATH,
  type LogLevel,
} from './defs.js';
import { LxcError } from './errors.js';
import { buildRootfs, type RootfsOptions } from './rootfs.js';
import { type ExecResult, lxcTool, type RunOptions, run } from './run.js';

export interface LxcOptions {
  /** The directory holding the containers (lxc-* -P); default the system one, /var/lib/lxc. */
  lxcpath?: string;
  /** Where to look for the lxc-* tools (PATH syntax); default PATH plus the sbin directories. */
  toolPath?: string;
}

/** The settings every vipc container needs on hosts like ours (PEERS.md). */
export interface BaseConfigOptions {
  /** lxc.uts.name */
  utsname?: string;
  /** lxc.rootfs.path */
  rootfsPath?: string;
  /** Network: 'empty' (loopback only, the default) or 'none' (share the host's). */
  net?: 'empty' | 'none';
}

/**
 * A config that starts on a host without a bridge and without AppArmor:
 * loopback-only network, unconfined, /dev by LXC, proc/sys/cgroup auto-mounts
 * (the container sees its own cgroups at /sys/fs/cgroup),
 * and SIGTERM as the halt signal (what our init handles).
 */
export function baseConfig(options: BaseConfigOptions = {}): LxcConfig {
  const c: LxcConfig = {
    net: [{ type: options.net ?? 'empty' }],
    apparmorProfile: 'unconfined',
    autodev: true,
    // ':force': with cgroup namespaces LXC skips cgroup mounts otherwise, leaving /sys/fs/cgroup empty inside.
    mountAuto: ['proc:mixed', 'sys:ro', 'cgroup:mixed:force'],
    signals: { halt: 'SIGTERM' },
    tty: { max: 0 },
    ptyMax: 16,
    capDrop: ['sys_module', 'mac_admin', 'mac_override', 'sys_time'],
  };
  if (options.utsname) c.utsname = options.utsname;
  if (options.rootfsPath) c.rootfs = { path: options.rootfsPath };
  return c;
}

export interface CreateOptions {
  /**
   * `busybox`: lxc-create's busybox template. Absent: no template, the
   * package writes the config itself and (with `rootfs`) builds the rootfs.
   */
  template?: 'busybox' | (string & {});
  /** Arguments after `--` for the template. */
  templateArgs?: string[];
  /** The config (with a template: extra settings, the template adds its own). */
  config?: LxcConfig;
  /**
   * Build a rootfs at `<lxcpath>/<name>/rootfs` (destroyed with the
   * container); its node mounts and init are added to the config.
   * `true` means the defaults (busybox + host node via 'libs').
   */
  rootfs?: Omit<RootfsOptions, 'path'> | true;
  /** lxc-create timeout (default 120 s). */
  timeoutMs?: number;
}

export interface StartOptions {
  /** How long to wait for RUNNING (default 30 s). */
  timeoutMs?: number;
  /** Log priority of the start log (default DEBUG, so a failure can be explained). */
  logLevel?: LogLevel;
  /** Extra `-s KEY=VALUE` overrides for this start. */
  define?: Record<string, string>;
}

export interface AttachOptions extends Omit<RunOptions, 'env'> {
  /** The environment inside (the host's is never passed: --clear-env). PATH defaults to a standard one. */
  env?: Record<string, string>;
  /** Working directory inside (runs through /bin/sh; default /). */
  cwd?: string;
}

export interface StopOptions {
  /** Wait this long for a clean shutdown (halt signal), then kill (default 10 s). */
  timeoutMs?: number;
  /** Kill at once, no clean shutdown. */
  kill?: boolean;
}

export interface StopResult {
  /** It was running (or frozen) before. */
  wasRunning: boolean;
  /** It shut down on the halt signal, without a kill. */
  graceful: boolean;
}

export interface ContainerInfo {
  name: string;
  state: ContainerState;
  /** The init pid on the host, when running. */
  pid?: number;
  /** Memory use in bytes (cgroup), when running. */
  memoryBytes?: number;
  /** CPU time in nanoseconds, when running. */
  cpuNs?: number;
  ips: string[];
}

export interface ExecuteOptions extends AttachOptions {
  /** The config of the application container (written to a temp file; the container need not exist). */
  config?: LxcConfig;
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The host uid/gid that container id 0 maps to, from idmaps (undefined without idmaps). */
export function rootOwner(idmaps: readonly IdMap[] | undefined): { uid: number; gid: number } | undefined {
  if (!idmaps || idmaps.length === 0) return undefined;
  const find = (kind: 'u' | 'g') =>
    idmaps.find((m) => (m.type === kind || m.type === 'b') && m.nsid === 0 && m.range >= 1)?.hostid;
  const uid = find('u');
  const gid = find('g');
  if (uid === undefined || gid === undefined) {
    throw new LxcError('the idmaps map no host uid and gid to container id 0 (root)', 'INVALID_ARGUMENT');
  }
  return { uid, gid };
}

function checkName(name: string): void {
  if (typeof name !== 'string' || !CONTAINER_NAME_PATTERN.test(name)) {
    throw new LxcError(
      `container name "${name}" is not valid: 1-63 letters, digits, "_", "." or "-", starting with a letter or digit`,
      'INVALID_ARGUMENT',
    );
  }
}

function seconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}

function envArgs(env: Record<string, string> | undefined): string[] {
  const all: Record<string, string> = { PATH: DEFAULT_PATH, ...env };
  const args: string[] = [];
  for (const [k, v] of Object.entries(all)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
      throw new LxcError(`environment variable name "${k}" is not valid`, 'INVALID_ARGUMENT');
    args.push('--set-var', `${k}=${v}`);
  }
  return args;
}

function withCwd(argv: readonly string[], cwd: string | undefined): string[] {
  if (argv.length === 0) throw new LxcError('a command needs at least its program name', 'INVALID_ARGUMENT');
  if (cwd === undefined) return [...argv];
  return ['/bin/sh', '-c', 'cd "$0" && exec "$@"', cwd, ...argv];
}

/** Known causes of a failed start, recognised in LXC's log, with what to do. */
const START_DIAGNOSES: [RegExp, (m: RegExpExecArray) => string][] = [
  [
    /No such file or directory - Failed to mount "([^"]+)" onto/,
    (m) =>
      `the mount source "${m[1]}" does not exist on the host: create it, or add "optional" to its lxc.mount.entry`,
  ],
  [
    /to bridge "([^"]+)", bridge interface doesn't exist/,
    (m) => `the bridge "${m[1]}" does not exist: create it, or use lxc.net.0.type = empty (loopback only)`,
  ],
  [/Failed to exec "([^"]+)"/, (m) => `"${m[1]}" (lxc.init.cmd) cannot be executed inside the rootfs`],
  [/[Aa]pp[Aa]rmor/, () => 'set lxc.apparmor.profile = unconfined'],
  [/Permission denied/, () => 'run as root, or check the ownership of the rootfs against lxc.idmap'],
];

/** What to do about a failed start, from the log excerpt (undefined when the cause is not a known one). */
export function diagnoseStart(excerpt: string): string | undefined {
  for (const [pattern, fix] of START_DIAGNOSES) {
    const m = pattern.exec(excerpt);
    if (m) return fix(m);
  }
  return undefined;
}

/** Lines of an LXC log that explain a failure: the ERROR (and worse) lines, with a little context. */
export function logExcerpt(log: string, maxLines = 40): string {
  const lines = log.split('\n').filter((l) => l.trim() !== '');
  const bad = /\s(ERROR|CRIT|ALERT|FATAL)\s/;
  const keep = new Set<number>();
  lines.forEach((l, i) => {
    if (bad.test(l)) for (let j = Math.max(0, i - 2); j <= i; j++) keep.add(j);
  });
  const picked = [...keep].sort((a, b) => a - b).map((i) => lines[i] as string);
  const chosen = picked.length > 0 ? picked : lines.slice(-10);
  return chosen.slice(-maxLines).join('\n');
}

/** The LXC host side: an lxcpath and the containers in it. */
export class Lxc {
  readonly lxcpath: string;
  readonly toolPath: string | undefined;

  constructor(options: LxcOptions = {}) {
    this.lxcpath = resolve(options.lxcpath ?? DEFAULT_LXCPATH);
    this.toolPath = options.toolPath;
  }

  /** The absolute path of an lxc-* tool; LXC_MISSING (naming the Debian package) when absent. */
  toolFile(tool: string): string {
    return lxcTool(tool, this.toolPath);
  }

  /** True when the lxc-* tools are installed. */
  static available(toolPath?: string): boolean {
    try {
      lxcTool('lxc-start', toolPath);
      return true;
    } catch {
      return false;
    }
  }

  /** A handle on a container by name (it need not exist). */
  container(name: string): Container {
    checkName(name);
    return new Container(this, name);
  }

  /** Is there a container of that name in this lxcpath? */
  exists(name: string): boolean {
    checkName(name);
    return existsSync(join(this.lxcpath, name, 'config'));
  }

  /** Runs an lxc-* tool with `-P lxcpath` (internal, but usable for anything not wrapped). */
  async tool(tool: string, args: readonly string[], options: RunOptions = {}): Promise<ExecResult> {
    return run(this.toolFile(tool), ['-P', this.lxcpath, ...args], options);
  }

  /**
   * Creates a container. With `template`, through lxc-create; without, by
   * writing `<lxcpath>/<name>/config` (and building the rootfs when asked).
   * Fails with NAME_CLASH when the name is taken; on any failure nothing of the
   * new container is left behind.
   */
  async create(name: string, options: CreateOptions = {}): Promise<Container> {
    checkName(name);
    const dir = join(this.lxcpath, name);
    if (existsSync(dir)) {
      throw new LxcError(`a container named "${name}" already exists in ${this.lxcpath}`, 'NAME_CLASH', {
        container: name,
        fix: 'choose another name, or destroy the existing container first',
      });
    }
    this.toolFile('lxc-start'); // LXC_MISSING before anything is written
    mkdirSync(this.lxcpath, { recursive: true });
    const container = new Container(this, name);
    if (options.template !== undefined) {
      if (options.rootfs !== undefined)
        throw new LxcError('give either a template or a rootfs to build, not both', 'INVALID_ARGUMENT');
      const extra = join(this.lxcpath, `.${name}.create-${process.pid}.conf`);
      const args = ['-n', name, '-t', options.template];
      if (options.config) {
        writeFileSync(extra, renderConfig(options.config));
        args.push('-f', extra);
      }
      if (options.templateArgs?.length) args.push('--', ...options.templateArgs);
      try {
        const r = await this.tool('lxc-create', args, { timeoutMs: options.timeoutMs ?? 120_000 });
        if (r.exitCode !== 0) {
          if (/already exists/i.test(r.stderr)) {
            throw new LxcError(
              `a container named "${name}" already exists in ${this.lxcpath}`,
              'NAME_CLASH',
              {
                container: name,
                stderr: r.stderr,
              },
            );
          }
          throw new LxcError(
            `lxc-create of "${name}" failed: ${r.stderr.trim() || `exit ${r.exitCode}`}`,
            'CREATE_FAILED',
            {
              container: name,
              command: ['lxc-create', ...args],
              exitCode: r.exitCode,
              stderr: r.stderr,
            },
          );
        }
      } catch (e) {
        if (!(e instanceof LxcError && e.code === 'NAME_CLASH'))
          rmSync(dir, { recursive: true, force: true });
        throw e;
      } finally {
        rmSync(extra, { force: true });
      }
      return container;
    }
    try {
      mkdirSync(dir, { mode: 0o755 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new LxcError(`a container named "${name}" already exists in ${this.lxcpath}`, 'NAME_CLASH', {
          container: name,
        });
      }
      throw e;
    }
    try {
      const config: LxcConfig = { ...(options.config ?? baseConfig()) };
      config.utsname ??= name;
      if (options.rootfs !== undefined) {
        const rootfsOptions: Omit<RootfsOptions, 'path'> =
          options.rootfs === true ? {} : { ...options.rootfs };
        // Unprivileged: the files belong to the host ids the container's root maps to.
        const owner = rootOwner(config.idmaps);
        if (owner && !rootfsOptions.owner) rootfsOptions.owner = owner;
        const rootfs = buildRootfs({ ...rootfsOptions, path: join(dir, 'rootfs') });
        config.rootfs = { ...config.rootfs, path: `dir:${rootfs.path}` };
        config.mounts = [...(config.mounts ?? []), ...rootfs.mounts];
        config.init = { ...config.init, cmd: config.init?.cmd ?? rootfs.init };
      }
      if (!config.rootfs?.path) {
        throw new LxcError(
          'the config has no rootfs path: give config.rootfs.path, a template, or rootfs',
          'INVALID_ARGUMENT',
        );
      }
      writeFileSync(join(dir, 'config'), renderConfig(config));
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    return container;
  }

  /**
   * create() then start(); when the start fails the new container is
   * destroyed again, so a failed launch leaves nothing behind.
   */
  async launch(name: string, options: CreateOptions & { start?: StartOptions } = {}): Promise<Container> {
    const { start, ...createOptions } = options;
    const container = await this.create(name, createOptions);
    try {
      await container.start(start);
    } catch (e) {
      await container.destroy({ force: true }).catch(() => undefined);
      throw e;
    }
    return container;
  }

  /** Names of the containers in this lxcpath (lxc-ls). */
  async list(): Promise<string[]> {
    if (!existsSync(this.lxcpath)) return [];
    const r = await this.tool('lxc-ls', ['-1'], { timeoutMs: 30_000 });
    if (r.exitCode !== 0) {
      throw new LxcError(`lxc-ls failed: ${r.stderr.trim()}`, 'COMMAND_FAILED', {
        exitCode: r.exitCode,
        stderr: r.stderr,
      });
    }
    return r.stdout
      .split(/\s+/)
      .map((s) => s.trim())
      .filter((s) => s !== '');
  }

  /** State, pid and memory of every container in this lxcpath. */
  async listInfo(): Promise<ContainerInfo[]> {
    // Containers made by other tools may have names we would not give; skip those.
    const names = (await this.list()).filter((n) => CONTAINER_NAME_PATTERN.test(n));
    return Promise.all(names.map((n) => this.container(n).info()));
  }

  /**
   * Runs one command as an application container (lxc-execute): LXC's own
   * init runs it as PID 1's child, the environment is cleared, and the exit
   * code is the command's. With `config`, the container need not exist.
   */
  async execute(name: string, argv: readonly string[], options: ExecuteOptions = {}): Promise<ExecResult> {
    checkName(name);
    const args = ['-n', name];
    let tmp: string | undefined;
    if (options.config) {
      mkdirSync(this.lxcpath, { recursive: true });
      tmp = join(this.lxcpath, `.${name}.execute-${process.pid}-${Date.now()}.conf`);
      writeFileSync(tmp, renderConfig(options.config));
      args.push('-f', tmp);
    } else if (!this.exists(name)) {
      throw new LxcError(
        `no container named "${name}" in ${this.lxcpath} (and no config given)`,
        'NOT_FOUND',
        { container: name },
      );
    }
    for (const [k, v] of Object.entries({ PATH: DEFAULT_PATH, ...options.env })) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
        throw new LxcError(`environment variable name "${k}" is not valid`, 'INVALID_ARGUMENT');
      args.push('-s', `lxc.environment=${k}=${v}`);
    }
    args.push('--', ...withCwd(argv, options.cwd));
    try {
      return await this.tool('lxc-execute', args, options);
    } finally {
      if (tmp) rmSync(tmp, { force: true });
    }
  }
}

/** One container in an lxcpath; the methods run the lxc-* tools. */
export class Container {
  readonly lxc: Lxc;
  readonly name: string;

  /** @internal use Lxc.container or Lxc.create */
  constructor(lxc: Lxc, name: string) {
    this.lxc = lxc;
    this.name = name;
  }

  /** `<lxcpath>/<name>` */
  get dir(): string {
    return join(this.lxc.lxcpath, this.name);
  }

  get configPath(): string {
    return join(this.dir, 'config');
  }

  /** The log of the last start (DEBUG by default). */
  get logPath(): string {
    return join(this.dir, 'start.log');
  }

  exists(): boolean {
    return existsSync(this.configPath);
  }

  /** `await using box = await lxc.launch(...)`: destroyed (killed if running) at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.exists()) await this.destroy({ force: true });
  }

  private requireExists(): void {
    if (!this.exists()) {
      throw new LxcError(`no container named "${this.name}" in ${this.lxc.lxcpath}`, 'NOT_FOUND', {
        container: this.name,
      });
    }
  }

  /** The container's config, parsed (keeps the file's layout for writeConfig). */
  readConfig(): LxcConfig {
    this.requireExists();
    return parseConfig(readFileSync(this.configPath, 'utf8'));
  }

  writeConfig(config: LxcConfig): void {
    this.requireExists();
    writeFileSync(this.configPath, renderConfig(config));
  }

  private failure(
    what: string,
    args: readonly string[],
    r: ExecResult,
    code: 'COMMAND_FAILED' | 'NOT_RUNNING' = 'COMMAND_FAILED',
  ): LxcError {
    return new LxcError(`${what} "${this.name}" failed: ${r.stderr.trim() || `exit ${r.exitCode}`}`, code, {
      container: this.name,
      command: args,
      exitCode: r.exitCode,
      stderr: r.stderr,
    });
  }

  /** The current state (lxc-info -s). */
  async state(): Promise<ContainerState> {
    return (await this.info()).state;
  }

  /** State, init pid, memory and CPU use (lxc-info). */
  async info(): Promise<ContainerInfo> {
    this.requireExists();
    const args = ['-n', this.name, '-H'];
    const r = await this.lxc.tool('lxc-info', args, { timeoutMs: 30_000 });
    if (r.exitCode !== 0) {
      if (/doesn't exist|does not exist/.test(r.stderr)) {
        throw new LxcError(`no container named "${this.name}" in ${this.lxc.lxcpath}`, 'NOT_FOUND', {
          container: this.name,
        });
      }
      throw this.failure('lxc-info', args, r);
    }
    return parseInfo(this.name, r.stdout);
  }

  /**
   * Starts the container (daemonized) with a DEBUG log at `logPath`, then waits
   * for RUNNING. START_FAILED carries the excerpt of the log that explains the
   * failure; STATE_TIMEOUT when RUNNING never comes. In both cases the
   * container is stopped again (nothing keeps running).
   */
  async start(options: StartOptions = {}): Promise<void> {
    this.requireExists();
    const timeoutMs = options.timeoutMs ?? 30_000;
    writeFileSync(this.logPath, '');
    const args = ['-n', this.name, '-d', '-l', options.logLevel ?? 'DEBUG', '-o', this.logPath];
    for (const [k, v] of Object.entries(options.define ?? {})) args.push('-s', `${k}=${v}`);
    const startedAt = Date.now();
    const readLog = (): string => (existsSync(this.logPath) ? readFileSync(this.logPath, 'utf8') : '');
    const timedOut = async (): Promise<LxcError> => {
      // A start stuck in a hook keeps the monitor busy: lxc-stop and lxc-info would hang on it.
      this.killMonitor();
      await this.forceStop();
      return new LxcError(
        `container "${this.name}" did not reach RUNNING within ${timeoutMs} ms`,
        'STATE_TIMEOUT',
        {
          container: this.name,
          command: args,
          logExcerpt: logExcerpt(readLog()),
        },
      );
    };
    let r: ExecResult;
    try {
      // lxc-start -d returns once the container runs (or failed): hooks and mounts happen before.
      r = await this.lxc.tool('lxc-start', args, { timeoutMs });
    } catch (e) {
      if (e instanceof LxcError && e.code === 'TIMEOUT') throw await timedOut();
      await this.forceStop();
      throw e;
    }
    if (r.exitCode !== 0) {
      await this.forceStop();
      const excerpt = logExcerpt(readLog());
      throw new LxcError(
        `lxc-start of "${this.name}" failed (exit ${r.exitCode}):\n${excerpt || r.stderr.trim()}`,
        'START_FAILED',
        {
          container: this.name,
          command: args,
          exitCode: r.exitCode,
          stderr: r.stderr,
          logExcerpt: excerpt,
          fix: diagnoseStart(excerpt),
        },
      );
    }
    let state: ContainerState;
    try {
      state = await this.state();
      if (state !== 'RUNNING' && state !== 'STOPPED') {
        await this.wait(['RUNNING', 'STOPPED'], Math.max(1000, timeoutMs - (Date.now() - startedAt)));
        state = await this.state();
      }
    } catch (e) {
      if (e instanceof LxcError && (e.code === 'STATE_TIMEOUT' || e.code === 'TIMEOUT'))
        throw await timedOut();
      await this.forceStop();
      throw e;
    }
    if (state !== 'RUNNING') {
      // It ran and stopped again: its init exited (or crashed) at once.
      await this.forceStop();
      const excerpt = logExcerpt(readLog());
      throw new LxcError(
        `container "${this.name}" stopped right after it started (${state}): its init exited\n${excerpt}`,
        'START_FAILED',
        { container: this.name, command: args, exitCode: 0, logExcerpt: excerpt },
      );
    }
  }

  /** Waits (lxc-wait) until the container is in one of the states; STATE_TIMEOUT otherwise. */
  async wait(states: ContainerState | ContainerState[], timeoutMs = 30_000): Promise<void> {
    const list = Array.isArray(states) ? states : [states];
    for (const s of list) {
      if (!CONTAINER_STATES.includes(s))
        throw new LxcError(`"${s}" is not a container state`, 'INVALID_ARGUMENT');
    }
    const args = ['-n', this.name, '-s', list.join('|'), '-t', seconds(timeoutMs)];
    const r = await this.lxc.tool('lxc-wait', args, { timeoutMs: timeoutMs + 10_000 });
    if (r.exitCode !== 0) {
      throw new LxcError(
        `container "${this.name}" did not reach ${list.join(' or ')} within ${timeoutMs} ms`,
        'STATE_TIMEOUT',
        {
          container: this.name,
          stderr: r.stderr,
        },
      );
    }
    // lxc-wait returns at once when the state is already reached; a starting container can still stop.
    if (list.length === 1 && list[0] === 'RUNNING') {
      const now = await this.state();
      if (!list.includes(now)) {
        throw new LxcError(`container "${this.name}" is ${now}, not ${list.join(' or ')}`, 'STATE_TIMEOUT', {
          container: this.name,
        });
      }
    }
  }

  /**
   * Runs a command inside the running container (lxc-attach --clear-env) and
   * collects stdout, stderr and the exit code. NOT_RUNNING if it is not running.
   * With `timeoutMs`, the command (inside too) is killed and TIMEOUT thrown.
   * Output pipes close when every process holding them exits: a command that
   * leaves a background process should redirect that process's output.
   */
  async attach(argv: readonly string[], options: AttachOptions = {}): Promise<ExecResult> {
    this.requireExists();
    const args = [
      '-n',
      this.name,
      '--clear-env',
      ...envArgs(options.env),
      '--',
      ...withCwd(argv, options.cwd),
    ];
    const { env: _env, cwd: _cwd, ...runOptions } = options;
    const r = await this.lxc.tool('lxc-attach', args, runOptions);
    if (r.exitCode !== 0 && /lxc-attach: .*(Failed to get init pid|is not running)/i.test(r.stderr)) {
      throw this.failure('lxc-attach to', args, r, 'NOT_RUNNING');
    }
    return r;
  }

  /**
   * Starts a long-running command inside (lxc-attach --clear-env) and returns
   * the host-side child process (stdio pipes). lxc-attach forwards no signal:
   * end the command with `killProcessTree(child.pid, 'SIGTERM')` (or by
   * stopping the container), not with `child.kill()` alone.
   */
  spawn(argv: readonly string[], options: Pick<AttachOptions, 'env' | 'cwd'> = {}): ChildProcess {
    this.requireExists();
    const args = [
      '-P',
      this.lxc.lxcpath,
      '-n',
      this.name,
      '--clear-env',
      ...envArgs(options.env),
      '--',
      ...withCwd(argv, options.cwd),
    ];
    return spawn(this.lxc.toolFile('lxc-attach'), args, { stdio: ['pipe', 'pipe', 'pipe'] });
  }

  /**
   * Stops the container: the halt signal, up to `timeoutMs` for a clean
   * shutdown, then a kill (or a kill at once with `kill: true`).
   */
  async stop(options: StopOptions = {}): Promise<StopResult> {
    this.requireExists();
    const state = await this.state();
    if (state === 'STOPPED') return { wasRunning: false, graceful: true };
    if (state === 'FROZEN' || state === 'FREEZING') await this.unfreeze();
    if (!options.kill) {
      const timeoutMs = options.timeoutMs ?? 10_000;
      const args = ['-n', this.name, '--nokill', '-t', seconds(timeoutMs)];
      const r = await this.lxc.tool('lxc-stop', args, { timeoutMs: timeoutMs + 30_000 });
      if (r.exitCode === 0 && (await this.state()) === 'STOPPED') return { wasRunning: true, graceful: true };
    }
    await this.kill();
    return { wasRunning: true, graceful: false };
  }

  /** Kills every process of the container at once (lxc-stop -k). */
  async kill(): Promise<void> {
    const args = ['-n', this.name, '-k'];
    const r = await this.lxc.tool('lxc-stop', args, { timeoutMs: 60_000 });
    if (r.exitCode !== 0 && (await this.state()) !== 'STOPPED') throw this.failure('lxc-stop -k of', args, r);
    await this.wait('STOPPED', 30_000);
  }

  /**
   * Pids of this container's LXC monitor ("[lxc monitor] <lxcpath> <name>"),
   * the daemon lxc-start leaves behind, which runs the hooks and owns init.
   */
  monitorPids(): number[] {
    const title = `[lxc monitor] ${this.lxc.lxcpath} ${this.name}`;
    const pids: number[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let cmdline: string;
      try {
        cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      } catch {
        continue; // gone meanwhile
      }
      if (cmdline.replace(/[\0\s]+$/, '') === title) pids.push(Number(entry));
    }
    return pids;
  }

  /** Kills the monitor and its process group (its hooks), by pid. */
  private killMonitor(): void {
    for (const pid of this.monitorPids()) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const pgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
        process.kill(pgid === pid ? -pid : pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /** Best effort stop used on failure paths; never throws. */
  private async forceStop(): Promise<void> {
    try {
      await this.lxc.tool('lxc-stop', ['-n', this.name, '-k'], { timeoutMs: 20_000 });
    } catch {
      // the container may never have run
    }
    this.removeCgroups();
  }

  /**
   * Removes the (empty) cgroups LXC made for this container, which a failed
   * start leaves behind (`lxc.monitor.<name>`, `lxc.payload.<name>` in every
   * hierarchy). rmdir only: a cgroup that still has processes stays.
   */
  removeCgroups(): void {
    const mine = new Set([`lxc.monitor.${this.name}`, `lxc.payload.${this.name}`]);
    for (const root of cgroupRoots()) {
      for (const dir of mine) removeCgroupTree(join(root, dir));
    }
  }

  /** Freezes every process (cgroup freezer, lxc-freeze). */
  async freeze(): Promise<void> {
    this.requireExists();
    const args = ['-n', this.name];
    const r = await this.lxc.tool('lxc-freeze', args, { timeoutMs: 60_000 });
    if (r.exitCode !== 0) {
      const state = await this.state();
      throw this.failure('lxc-freeze of', args, r, state === 'STOPPED' ? 'NOT_RUNNING' : 'COMMAND_FAILED');
    }
    await this.wait('FROZEN', 30_000);
  }

  async unfreeze(): Promise<void> {
    this.requireExists();
    const args = ['-n', this.name];
    const r = await this.lxc.tool('lxc-unfreeze', args, { timeoutMs: 60_000 });
    if (r.exitCode !== 0) throw this.failure('lxc-unfreeze of', args, r);
    await this.wait('RUNNING', 30_000);
  }

  /**
   * Destroys the container and its rootfs (lxc-destroy). A running container
   * is killed first with `force` (the default); without it lxc-destroy refuses
   * and COMMAND_FAILED says so. A rootfs outside the container directory is
   * left alone (only the container directory goes).
   */
  async destroy(options: { force?: boolean } = {}): Promise<void> {
    this.requireExists();
    const force = options.force ?? true;
    let external = false;
    try {
      const path = this.readConfig().rootfs?.path;
      const plain = path?.replace(/^dir:/, '');
      external = plain !== undefined && !resolve(plain).startsWith(`${this.dir}/`);
    } catch {
      // an unparsable config: let lxc-destroy deal with it
    }
    if (force && (await this.state()) !== 'STOPPED') await this.kill();
    this.removeCgroups();
    if (external) {
      rmSync(this.dir, { recursive: true, force: true });
      return;
    }
    const args = ['-n', this.name];
    const r = await this.lxc.tool('lxc-destroy', args, { timeoutMs: 120_000 });
    if (r.exitCode !== 0) throw this.failure('lxc-destroy of', args, r);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Mount points of the cgroup (v1) and cgroup2 hierarchies of this host. */
export function cgroupRoots(): string[] {
  let mountinfo: string;
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const roots: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype === 'cgroup' || fstype === 'cgroup2') roots.push(line.slice(0, sep).split(' ')[4] ?? '');
  }
  return roots.filter((r) => r !== '');
}

function removeCgroupTree(dir: string): void {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return; // not there
  }
  for (const e of entries) if (e.isDirectory()) removeCgroupTree(join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch {
    // busy (processes inside) or already gone
  }
}

/** Parses `lxc-info -H` output. */
export function parseInfo(name: string, text: string): ContainerInfo {
  const info: ContainerInfo = { name, state: 'STOPPED', ips: [] };
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z ]+):\s*(.*)$/.exec(line.trim());
    if (!m) continue;
    const key = (m[1] as string).toLowerCase();
    const value = (m[2] as string).trim();
    if (key === 'state') {
      if (!(CONTAINER_STATES as readonly string[]).includes(value)) {
        throw new LxcError(`lxc-info reported an unknown state "${value}"`, 'COMMAND_FAILED', {
          container: name,
        });
      }
      info.state = value as ContainerState;
    } else if (key === 'pid' && /^\d+$/.test(value)) info.pid = Number(value);
    else if (key === 'memory use' && /^\d+$/.test(value)) info.memoryBytes = Number(value);
    else if (key === 'cpu use' && /^\d+$/.test(value)) info.cpuNs = Number(value);
    else if (key === 'ip') info.ips.push(value);
  }
  return info;
}
