import { type DpdkProcess, launchDpdk, parsePortStats, uniqueFilePrefix } from '@vipc/dpdk';
import type { CommandContext } from '../command.js';
import { CliError, usageError } from '../errors.js';
import { testpmdOptions } from '../testpmd.js';
import { choiceOption, intOption } from '../traffic.js';

export async function run(ctx: CommandContext): Promise<number> {
  const v = ctx.values;
  const vhost = typeof v.vhost === 'string' ? v.vhost : undefined;
  const virtio = typeof v['virtio-user'] === 'string' ? v['virtio-user'] : undefined;
  if ((vhost === undefined) === (virtio === undefined))
    throw usageError(
      'give exactly one of --vhost PATH (testpmd is the back-end) or --virtio-user PATH (the front-end)',
    );
  const forwardMode = choiceOption(
    v['forward-mode'],
    'forward-mode',
    ['rxonly', 'txonly', 'io', 'macswap'] as const,
    vhost ? 'rxonly' : 'txonly',
  );
  const duration = intOption(v.duration, 'duration', 0, 0, 86_400);
  const plan = {
    role: vhost ? ('backend' as const) : ('frontend' as const),
    socket: (vhost ?? virtio)!,
    queues: intOption(v.queues, 'queues', 1, 1, 128),
    packed: v.packed === true,
    forwardMode,
    memoryMb: intOption(v.memory, 'memory', 256, 64, 65_536),
    hugeDir: typeof v['huge-dir'] === 'string' ? v['huge-dir'] : undefined,
    filePrefix: uniqueFilePrefix('vipc-testpmd'),
    ...(v.txpkts !== undefined ? { txpkts: intOption(v.txpkts, 'txpkts', 64, 42, 9000) } : {}),
  };
  if (plan.packed && vhost)
    throw usageError('--packed is negotiated by the front-end: use it with --virtio-user');
  const o = testpmdOptions(plan);
  ctx.out.log(
    `vipc dpdk: starting testpmd (${plan.role === 'backend' ? 'net_vhost' : 'net_virtio_user'} on ${plan.socket}, ${forwardMode})`,
  );
  let p: DpdkProcess;
  try {
    p = await launchDpdk({
      eal: o.eal,
      testpmd: o.testpmd,
      readyWhen: plan.role === 'backend' ? 'socket-created' : 'forwarding',
      ...(typeof v.log === 'string' ? { logFile: v.log } : {}),
    });
  } catch (err) {
    throw new CliError('FAILED', `testpmd did not start: ${(err as Error).message}`);
  }
  const event = (name: string, data: Record<string, unknown>) => {
    if (ctx.out.json && v.events === true)
      process.stdout.write(`${JSON.stringify({ event: name, ...data })}\n`);
    else
      ctx.out.log(
        `${name}: ${Object.entries(data)
          .map(([k, x]) => `${k}=${x}`)
          .join(' ')}`,
      );
  };
  event('launch-start', { pid: p.pid, filePrefix: plan.filePrefix });
  p.on('link-up', ({ path }) => event('link-up', { socket: path }));
  p.on('link-down', ({ path }) => event('link-down', { socket: path }));
  // --stats-period output: a live line on a TTY.
  let block: string[] = [];
  p.on('line', ({ text }) => {
    if (/NIC statistics for port/.test(text)) block = [];
    block.push(text);
    if (/#{20,}/.test(text) && block.length > 3) {
      const stats = parsePortStats(block.join('\n'));
      const s = stats[0];
      if (s)
        ctx.out.progress(`port 0: rx ${s.rxPackets} (${s.rxPps} pps), tx ${s.txPackets} (${s.txPps} pps)`);
    }
  });
  await new Promise<void>((resolve) => {
    const t = duration > 0 ? setTimeout(resolve, duration * 1000) : undefined;
    ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    p.once('exit', () => {
      if (t) clearTimeout(t);
      resolve();
    });
  });
  const exit = await p.stop();
  ctx.out.clearProgress();
  const totals = exit.forwardStats?.accumulated;
  const ok = exit.requested || exit.code === 0;
  if (ctx.out.json)
    ctx.out.document({
      ok,
      code: exit.code,
      signal: exit.signal,
      forwardStats: exit.forwardStats ?? null,
      cleaned: exit.cleaned,
    });
  else {
    if (totals)
      ctx.out.print(
        `testpmd: RX-packets ${totals.rxPackets}, TX-packets ${totals.txPackets}, RX-dropped ${totals.rxDropped}, TX-dropped ${totals.txDropped}`,
      );
    if (!ok)
      ctx.out.print(
        `testpmd exited unexpectedly (code ${exit.code}):\n${exit.lastLines.slice(-10).join('\n')}`,
      );
  }
  return ok ? 0 : 1;
}
