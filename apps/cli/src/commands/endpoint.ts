import { renameSync, writeFileSync } from 'node:fs';
import type { CommandContext } from '../command.js';
import { type Counters, type PingResult, runEcho, runPing, runSink, runSource } from '../endpoint.js';
import { usageError } from '../errors.js';
import { openLink } from '../link.js';
import { linkOptions } from '../link-options.js';
import { choiceOption, intOption } from '../traffic.js';

/** A status file others (vipc status, the demo) read: replaced atomically. */
function statusWriter(path: string | undefined) {
  return (status: Record<string, unknown>) => {
    if (!path) return;
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ pid: process.pid, at: new Date().toISOString(), ...status })}\n`);
    renameSync(tmp, path);
  };
}

export async function run(ctx: CommandContext): Promise<number> {
  try {
    return await runEndpoint(ctx);
  } catch (err) {
    // One NDJSON line a parent (demo, up) can read; main() still prints the usual error.
    const e = err as Error & { code?: string };
    if (ctx.out.json)
      process.stdout.write(
        `${JSON.stringify({ event: 'endpoint-error', code: e.code, message: e.message })}\n`,
      );
    throw err;
  }
}

async function runEndpoint(ctx: CommandContext): Promise<number> {
  const v = ctx.values;
  const action = choiceOption(v.action, 'action', ['echo', 'sink', 'source', 'ping'] as const, 'echo');
  const defaultRole = action === 'echo' || action === 'sink' ? 'backend' : 'frontend';
  const link = linkOptions(v, defaultRole, ctx.signal);
  const count = intOption(v.count, 'count', action === 'ping' ? 10_000 : 0, 0, 1e9);
  const size = intOption(v.size, 'size', 64, 8, 65_536);
  const window = intOption(v.window, 'window', Math.max(1, Math.min(64, link.queueSize / 2)), 1, 32_768);
  const status = statusWriter(typeof v['status-file'] === 'string' ? v['status-file'] : undefined);
  // NDJSON events on stdout with --json: this command runs long.
  const event = (name: string, data: Record<string, unknown> = {}) => {
    if (ctx.out.json) process.stdout.write(`${JSON.stringify({ event: name, ...data })}\n`);
  };

  // With --reconnect (what `vipc up` uses) the endpoint outlives its peer: when the
  // link goes down it opens it again, and its counters keep adding up.
  const reconnect = v.reconnect === true;
  const totals: Counters = { sent: 0, received: 0, bytesSent: 0, bytesReceived: 0, corrupt: 0 };
  const add = (c: Readonly<Counters>): Counters => ({
    sent: totals.sent + c.sent,
    received: totals.received + c.received,
    bytesSent: totals.bytesSent + c.bytesSent,
    bytesReceived: totals.bytesReceived + c.bytesReceived,
    corrupt: totals.corrupt + c.corrupt,
  });
  let result: Counters | PingResult | undefined;
  for (let session = 0; ; session++) {
    try {
      result = await runSession(ctx, { action, link, count, size, window, status, event, add });
      Object.assign(totals, add(result));
    } catch (err) {
      // Stopped (SIGTERM from vipc down) while waiting for a peer: a normal end for a daemon.
      if (reconnect && ctx.signal.aborted && session > 0) break;
      if (!reconnect || ctx.signal.aborted || session === 0) throw err;
      ctx.out.log(`vipc endpoint: ${(err as Error).message}`);
    }
    if (!reconnect || ctx.signal.aborted) break;
    status({ state: 'connecting', action, socket: link.socket, role: link.role, ...totals });
    event('link-down', { socket: link.socket });
    ctx.out.log(`vipc endpoint: the link went down; waiting for the peer again`);
  }
  if (reconnect) result = { ...result!, ...totals };
  status({ state: 'done', action, ...result! });
  event('traffic-done', { action, ...result! });
  if (!ctx.out.json) ctx.out.print(JSON.stringify(result));
  return 0;
}

interface SessionPlan {
  action: 'echo' | 'sink' | 'source' | 'ping';
  link: ReturnType<typeof linkOptions>;
  count: number;
  size: number;
  window: number;
  status: (s: Record<string, unknown>) => void;
  event: (name: string, data?: Record<string, unknown>) => void;
  add: (c: Readonly<Counters>) => Counters;
}

/** One link session: open, run the action until done or the link goes down, close. */
async function runSession(ctx: CommandContext, p: SessionPlan): Promise<Counters | PingResult> {
  const { action, link, count, size, window, status, event, add } = p;
  const v = ctx.values;
  const base = add({ sent: 0, received: 0, bytesSent: 0, bytesReceived: 0, corrupt: 0 });
  status({ state: 'connecting', action, socket: link.socket, role: link.role, ...base });
  event('link-connecting', { socket: link.socket, role: link.role, listen: link.listen });
  let l: Awaited<ReturnType<typeof openLink>>;
  try {
    l = await openLink(link);
  } catch (err) {
    status({ state: 'error', action, error: (err as Error).message, ...base });
    event('link-error', { message: (err as Error).message });
    throw err;
  }
  if ((action === 'source' || action === 'ping') && size > l.maxMessageSize) {
    await l.close();
    throw usageError(`--size ${size} is larger than this link carries (${l.maxMessageSize} bytes)`);
  }
  status({ state: 'up', action, socket: link.socket, role: link.role, ...base });
  event('link-up', { socket: link.socket, role: link.role, mode: link.mode, ring: link.ring });
  ctx.out.log(`vipc endpoint: ${link.role} ${action} on ${link.socket}: link up`);

  const onProgress = (c: Readonly<Counters>, elapsedS: number, recentRttUs?: number) => {
    status({ state: 'up', action, ...add(c) });
    event('traffic-progress', {
      ...c,
      seconds: Math.round(elapsedS * 1000) / 1000,
      ...(recentRttUs !== undefined ? { recentRttUs: Math.round(recentRttUs) } : {}),
    });
  };
  let result: Counters | PingResult;
  try {
    const common = { onProgress, progressMs: 250, signal: ctx.signal };
    if (action === 'echo') result = await runEcho(l, common);
    else if (action === 'sink') result = await runSink(l, { ...common, count, verify: v.verify === true });
    else if (action === 'source') result = await runSource(l, { ...common, count, size });
    else
      result = await runPing(l, {
        ...common,
        count,
        size,
        window,
        idleMs: intOption(v.idle, 'idle', 5, 1, 3600) * 1000,
      });
    if (action === 'source') await l.flush();
  } finally {
    await l.close().catch(() => {});
  }
  return result;
}
