import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandContext } from '../command.js';
import { type ContainerHandle, containerSupport, removeStaleDemos, startContainer } from '../container.js';
import { type Counters, runEcho } from '../endpoint.js';
import { CliError, usageError } from '../errors.js';
import { type MessageLink, openLink } from '../link.js';
import { type EndpointEvent, readEvents } from '../ndjson.js';
import { choiceOption, formatRate, intOption, progressBar } from '../traffic.js';
import { binPath, workspaceRoot } from '../workspace.js';

interface FrontEnd {
  child: ChildProcess;
  container?: ContainerHandle;
}

function demoBase(): string {
  return process.getuid?.() === 0 ? '/run/vipc' : tmpdir();
}

function demoDir(): string {
  const base = demoBase();
  mkdirSync(base, { recursive: true, mode: 0o755 });
  return mkdtempSync(join(base, `demo-${process.pid}-`));
}

export async function run(ctx: CommandContext): Promise<number> {
  const v = ctx.values;
  const messages = intOption(v.messages, 'messages', 20_000, 1, 100_000_000);
  const size = intOption(v.size, 'size', 64, 8, 65_536);
  const mode = choiceOption(v.mode, 'mode', ['poll', 'event'] as const, 'event');
  const ring = choiceOption(v.ring, 'ring', ['split', 'packed'] as const, 'split');
  if (v.process === true && v.container === true)
    throw usageError('--process and --container exclude each other');
  const queueSize = 256;
  const window = 64;

  // Where the front-end runs: a real LXC container when we can, otherwise a second process.
  const support =
    v.process === true ? { ok: false as const, reason: '--process was given' } : await containerSupport();
  if (!support.ok && v.container === true)
    throw new CliError(
      'PEER_MISSING',
      `cannot run the front-end in a container: ${support.reason}`,
      support.fix,
    );
  const endpoint: 'container' | 'process' = support.ok ? 'container' : 'process';
  const stale = await removeStaleDemos(demoBase());
  if (stale.length > 0) ctx.out.log(`vipc demo: removed what earlier demos left behind: ${stale.join(', ')}`);
  if (v.process === true) ctx.out.log('vipc demo: --process: the front-end runs in a second process');
  else if (!support.ok)
    ctx.out.log(
      `vipc demo: no LXC container (${support.reason}); the front-end runs in a second process instead`,
    );

  const dir = demoDir();
  const socket = join(dir, 'demo.sock');
  const instance = `vipc-demo-${process.pid}`;
  let front: FrontEnd | undefined;
  let link: MessageLink | undefined;
  const linkAbort = new AbortController();
  const onAbort = () => linkAbort.abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    // 1. The host back-end listens first (it owns the socket), then the front-end connects.
    const linkOpts = {
      socket,
      mode,
      ring,
      queues: 1,
      queueSize,
      timeoutMs: 60_000,
      signal: linkAbort.signal,
    };
    const backend = openLink({ ...linkOpts, role: 'backend', listen: true });
    backend.catch(() => {});
    const argv = [
      binPath(),
      'endpoint',
      '--json',
      '--socket',
      socket,
      '--role',
      'frontend',
      '--action',
      'ping',
      '--count',
      String(messages),
      '--size',
      String(size),
      '--window',
      String(window),
      '--mode',
      mode,
      '--ring',
      ring,
      '--queue-size',
      String(queueSize),
      '--timeout',
      '60',
    ];
    if (endpoint === 'container') {
      ctx.out.log(`vipc demo: starting LXC container ${instance} (node rootfs, socket dir bind-mounted)...`);
      const container = await startContainer({
        name: instance,
        binds: [
          { source: dir, target: dir, readOnly: false },
          { source: workspaceRoot(), target: workspaceRoot(), readOnly: true },
        ],
      });
      front = { container, child: container.exec([process.execPath, ...argv], { VIPC_INSTANCE: instance }) };
    } else {
      front = {
        child: spawn(process.execPath, argv, {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, VIPC_INSTANCE: instance },
        }),
      };
    }
    const child = front.child;
    const childErr: string[] = [];
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      childErr.push(d);
      if (process.env.VIPC_DEBUG) process.stderr.write(d);
    });
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.once('error', () => resolve(-1));
    });
    let done: EndpointEvent | undefined;
    let last = { received: 0, seconds: 0, bytes: 0 };
    let frontError: string | undefined;
    const events = readEvents(child.stdout!, (e) => {
      if (e.event === 'link-up') ctx.out.log(`vipc demo: link up (${ring} ring, ${mode} mode)`);
      else if (e.event === 'traffic-progress') {
        // Live: the rate over the last interval, and the mean round trip in it.
        const received = Number(e.received);
        const secs = Number(e.seconds);
        const bytes = Number(e.bytesReceived);
        const dt = secs - last.seconds || 1e-9;
        const rate = formatRate(Math.round((received - last.received) / dt), (bytes - last.bytes) / dt / 1e6);
        last = { received, seconds: secs, bytes };
        const rtt = typeof e.recentRttUs === 'number' ? `, round trip ${e.recentRttUs} µs` : '';
        ctx.out.progress(`${progressBar(received, messages)} ${received}/${messages} echoed, ${rate}${rtt}`);
      } else if (e.event === 'traffic-done') done = e;
      else if (e.event === 'link-error' || e.event === 'endpoint-error') frontError = String(e.message);
      else if (e.ok === false) frontError = String((e.error as { message?: string })?.message ?? 'failed');
    });

    // 2. Wait for the link (or for the front-end to die trying).
    const first = await Promise.race([
      backend.then(
        (l) => ({ link: l }),
        (err: Error) => ({ error: err }),
      ),
      exited.then((code) => ({ exit: code })),
    ]);
    if ('error' in first) {
      // The front-end usually knows better why (it printed its error): give it a moment to say so.
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode !== null) await events;
      throw new CliError(
        'FAILED',
        frontError ? `the front-end ${endpoint}: ${frontError}` : first.error.message,
      );
    }
    if (!('link' in first)) {
      await events;
      throw new CliError(
        'FAILED',
        `the front-end ${endpoint} exited (code ${first.exit}) before the link came up: ${
          frontError ?? (childErr.join('').trim().split('\n').pop() || 'no message')
        }`,
      );
    }
    link = first.link;
    const echo = runEcho(link, { signal: linkAbort.signal }).catch((err: Error): Counters => {
      frontError ??= `host back-end: ${err.message}`;
      return { sent: 0, received: 0, bytesSent: 0, bytesReceived: 0, corrupt: 0 };
    });

    // 3. The front-end reports when all echoes are back (or counts the missing ones as lost).
    const code = await exited;
    await events;
    ctx.out.clearProgress();
    await link.close();
    const host = await echo;
    if (!done) {
      throw new CliError(
        'FAILED',
        `the front-end ${endpoint} ended (code ${code}) without a result: ${
          frontError ?? (childErr.join('').trim().split('\n').pop() || 'no message')
        }`,
      );
    }
    const r = done as unknown as {
      sent: number;
      received: number;
      lost: number;
      corrupt: number;
      bytesSent: number;
      bytesReceived: number;
      seconds: number;
      messagesPerSecond: number;
      megabytesPerSecond: number;
      latency: { p50Us: number; p99Us: number; maxUs: number; meanUs: number } | null;
    };
    const interrupted = ctx.signal.aborted;
    const ok = !interrupted && r.lost === 0 && r.corrupt === 0 && r.sent === messages;
    const doc = {
      ok,
      ...(interrupted ? { interrupted: true } : {}),
      endpoint,
      ...(endpoint === 'container'
        ? { container: instance }
        : { fallbackReason: support.ok ? undefined : support.reason }),
      transport: 'vhost-user',
      ring,
      mode,
      messages,
      size,
      window,
      sent: r.sent,
      received: r.received,
      lost: r.lost,
      corrupt: r.corrupt,
      bytes: r.bytesReceived,
      throughput: {
        seconds: r.seconds,
        messagesPerSecond: r.messagesPerSecond,
        megabytesPerSecond: r.megabytesPerSecond,
      },
      latency: r.latency,
      hostBackend: { received: host.received, echoed: host.sent },
    };
    if (ctx.out.json) ctx.out.document(doc);
    else {
      const where = endpoint === 'container' ? `LXC container ${instance}` : `process ${child.pid}`;
      ctx.out.print(
        `vipc demo: host back-end <-> front-end in ${where}, over vhost-user (${ring} ring, ${mode} mode)`,
      );
      ctx.out.print(
        `  ${r.sent} messages of ${size} bytes sent, ${r.received} echoed back, ${r.lost} ${
          interrupted ? 'in flight when interrupted' : 'lost'
        }${r.corrupt ? `, ${r.corrupt} corrupt` : ''}`,
      );
      ctx.out.print(
        `  throughput: ${formatRate(r.messagesPerSecond, r.megabytesPerSecond)} (${r.seconds} s, ${window} in flight)`,
      );
      if (r.latency)
        ctx.out.print(
          `  round trip: p50 ${r.latency.p50Us} µs, p99 ${r.latency.p99Us} µs, max ${r.latency.maxUs} µs`,
        );
    }
    return ok ? 0 : 1;
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    linkAbort.abort();
    await link?.close().catch(() => {});
    if (front && front.child.exitCode === null && front.child.signalCode === null)
      front.child.kill('SIGKILL');
    await front?.container
      ?.destroy()
      .catch((err: Error) => ctx.out.warn(`container cleanup: ${err.message}`));
    rmSync(dir, { recursive: true, force: true });
  }
}
