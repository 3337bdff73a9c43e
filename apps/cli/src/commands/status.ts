import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import type { CommandContext } from '../command.js';
import { isSameProcess, type Resource, StateStore } from '../state.js';
import { readStatus } from './up.js';

function containerState(name: string, lxcPath: string): string {
  try {
    const out = execFileSync('lxc-info', [...(lxcPath ? ['-P', lxcPath] : []), '-n', name, '-s'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 10_000,
    });
    return /State:\s*(\S+)/.exec(out)?.[1]?.toLowerCase() ?? 'unknown';
  } catch {
    return 'absent';
  }
}

/** The last port statistics testpmd printed (--stats-period) in its log: the tail is enough. */
function testpmdStats(
  dpdk: typeof import('@vipc/dpdk') | undefined,
  log: string | undefined,
): Record<string, number> | undefined {
  if (!dpdk || !log) return undefined;
  let fd: number | undefined;
  try {
    fd = openSync(log, 'r');
    const size = fstatSync(fd).size;
    const len = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    const s = dpdk.latestPortStats(buf.toString('utf8')).get(0);
    return s ? { rxPackets: s.rxPackets, txPackets: s.txPackets, rxPps: s.rxPps, txPps: s.txPps } : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function inspect(r: Resource, dpdk: typeof import('@vipc/dpdk') | undefined): Record<string, unknown> {
  switch (r.kind) {
    case 'process': {
      const alive = isSameProcess(r.pid, r.startTime);
      if (r.role === 'dpdk') {
        const stats = testpmdStats(dpdk, r.log);
        return { ...r, alive, ...(stats ? { port: stats } : {}) };
      }
      const s = readStatus(r.statusFile);
      return {
        ...r,
        alive,
        ...(s
          ? {
              link: s.state,
              counters: {
                sent: s.sent,
                received: s.received,
                bytesSent: s.bytesSent,
                bytesReceived: s.bytesReceived,
                corrupt: s.corrupt,
              },
            }
          : {}),
      };
    }
    case 'container':
      return { ...r, state: containerState(r.name, r.lxcPath) };
    case 'mount':
    case 'hugepages':
    case 'hugepage-files':
    case 'dpdk-runtime':
      return { ...r };
    default:
      return { ...r, exists: existsSync(r.path) };
  }
}

export async function run(ctx: CommandContext): Promise<number> {
  const store = new StateStore(
    typeof ctx.values['state-dir'] === 'string' ? ctx.values['state-dir'] : undefined,
  );
  const name = ctx.positionals[0];
  const states = name ? [store.read(name)].filter((s) => s !== undefined) : store.list();
  if (name && states.length === 0) {
    if (ctx.out.json) ctx.out.document({ ok: false, topologies: [] });
    ctx.out.log(`vipc status: no topology '${name}' is up`);
    return 1;
  }
  const dpdk = states.some((s) => s.resources.some((r) => r.kind === 'process' && r.role === 'dpdk'))
    ? await import('@vipc/dpdk').catch(() => undefined)
    : undefined;
  const topologies = states.map((s) => {
    const resources = s.resources.map((r) => inspect(r, dpdk));
    const ownerAlive = isSameProcess(s.owner.pid, s.owner.startTime);
    const broken = resources.filter(
      (r) => (r.kind === 'process' && !r.alive) || (r.kind === 'container' && r.state !== 'running'),
    );
    const health =
      s.phase === 'up' ? (broken.length === 0 ? 'up' : 'degraded') : ownerAlive ? 'starting' : 'crashed';
    return {
      name: s.name,
      file: s.file,
      phase: s.phase,
      health,
      startedAt: s.startedAt,
      owner: { ...s.owner, alive: ownerAlive },
      resources,
    };
  });
  if (ctx.out.json) {
    ctx.out.document({ ok: topologies.every((t) => t.health === 'up'), topologies });
  } else if (topologies.length === 0) ctx.out.print('no topology is up');
  else {
    for (const t of topologies) {
      ctx.out.print(
        `${t.name} (${t.file}): ${t.health}${t.health === 'crashed' ? ' (vipc up died while starting; run vipc down)' : ''}`,
      );
      for (const r of t.resources) {
        const what =
          r.kind === 'process'
            ? `${r.role} ${r.name} pid ${r.pid ?? '?'}: ${r.alive ? 'running' : 'gone'}${r.port ? `, port 0 rx ${(r.port as { rxPackets: number }).rxPackets} tx ${(r.port as { txPackets: number }).txPackets} packets` : ''}${r.link ? `, link ${r.link}` : ''}${r.counters && (r.counters as { received?: number }).received !== undefined ? `, sent ${(r.counters as { sent: number }).sent}, received ${(r.counters as { received: number }).received}` : ''}`
            : r.kind === 'container'
              ? `container ${r.name}: ${r.state}`
              : r.kind === 'dir' || r.kind === 'socket'
                ? `${r.kind} ${r.path}${r.exists ? '' : ' (missing)'}`
                : r.kind === 'mount'
                  ? `hugetlbfs mount ${r.target}`
                  : r.kind === 'hugepages'
                    ? `hugepages ${r.sysfs}: ${Number(r.reserved) - Number(r.previous)} reserved by this topology`
                    : r.kind === 'dpdk-runtime'
                      ? `DPDK runtime directory of ${r.prefix}`
                      : `hugepage files ${r.dir}/${r.prefix}*`;
        ctx.out.print(`  ${what}`);
      }
    }
  }
  return topologies.every((t) => t.health === 'up') ? 0 : 1;
}
