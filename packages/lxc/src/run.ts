import { spawn } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { LXC_PACKAGE } from './defs.js';
import { LxcError } from './errors.js';

/** What a finished command produced. */
export interface ExecResult {
  stdout: string;
  stderr: string;
  /** The exit status, or null when a signal ended the process. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunOptions {
  /** Text or bytes written to stdin (stdin is closed afterwards; empty when absent). */
  input?: string | Uint8Array;
  /** Kill (SIGKILL) after this many ms and reject with TIMEOUT. Default: no limit. */
  timeoutMs?: number;
  /** Environment of the host-side process (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Stop collecting output beyond this many bytes per stream (default 16 MiB). */
  maxOutputBytes?: number;
}

const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;

/** Finds an executable on PATH; undefined when absent. */
export function which(command: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

const SBIN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The absolute path of an lxc-* tool, or LXC_MISSING naming the Debian package.
 * `searchPath` (a PATH-style list) defaults to PATH plus the sbin directories.
 */
export function lxcTool(tool: string, searchPath?: string): string {
  const found = which(tool, searchPath ?? `${process.env.PATH ?? ''}${delimiter}${SBIN_PATH}`);
  if (!found) {
    throw new LxcError(
      `${tool} was not found on PATH: LXC is not installed (Debian package "${LXC_PACKAGE}")`,
      'LXC_MISSING',
      { fix: `apt-get install -y ${LXC_PACKAGE}` },
    );
  }
  return found;
}

/** Pids of the descendants of a process (children first found through /proc/<pid>/stat). */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/**
 * Signals a process and everything it started, by pid, the deepest first.
 * lxc-attach runs the command as its own child and forwards no signal, so
 * `child.kill()` on an attach ends lxc-attach only; this ends the command too.
 */
export function killProcessTree(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const p of [...descendants(pid).reverse(), pid]) {
    try {
      process.kill(p, signal);
    } catch {
      // already gone
    }
  }
}

/** Runs a command to completion, collecting stdout and stderr as UTF-8 text. */
export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<ExecResult> {
  const max = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    if (options.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        if (child.pid !== undefined) killProcessTree(child.pid);
        else child.kill('SIGKILL');
      }, options.timeoutMs);
    }
    child.stdout.on('data', (b: Buffer) => {
      if (outBytes < max) out.push(b);
      outBytes += b.length;
    });
    child.stderr.on('data', (b: Buffer) => {
      if (errBytes < max) err.push(b);
      errBytes += b.length;
    });
    child.stdin.on('error', () => {
      // the command did not read its input; its exit status says the rest
    });
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(
        new LxcError(
          `cannot run ${file}: ${e.message}`,
          'COMMAND_FAILED',
          { command: [file, ...args] },
          { cause: e },
        ),
      );
    });
    // After a timeout, do not wait for the pipes: something we could not see may still hold them.
    child.on('exit', () => {
      if (!timedOut) return;
      child.stdout.destroy();
      child.stderr.destroy();
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const result: ExecResult = {
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        exitCode: code,
        signal,
      };
      if (timedOut) {
        reject(
          new LxcError(
            `${[file, ...args].join(' ')} ran longer than ${options.timeoutMs} ms and was killed`,
            'TIMEOUT',
            {
              command: [file, ...args],
              stderr: result.stderr,
            },
          ),
        );
        return;
      }
      resolve(result);
    });
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
  });
}
