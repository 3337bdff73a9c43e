import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandContext } from '../command.js';
import { type ContainerHandle, startContainer } from '../container.js';
import { CliError } from '../errors.js';
import { type HugepagePlan, planHugepages, reserveHugepages } from '../hugepages.js';
import { isSameProcess, Journal, processStartTime, type Resource, type State, StateStore } from '../state.js';
import { teardown } from '../teardown.js';
import { testpmdArgs, testpmdPath } from '../testpmd.js';
import { type Link, loadTopology, type Topology, type VipcEndpoint } from '../topology.js';
import { intOption } from '../traffic.js';
import { until } from '../until.js';
import { binPath, workspaceRoot } from '../workspace.js';

/** What the endpoint process of a topology endpoint runs. */
function endpointArgv(link: Link, ep: VipcEndpoint, statusFile: string, verify: boolean): string[] {
  return [
    binPath(),
    'endpoint',
    '--socket',
    link.socket,
    '--role',
    ep.role,
    ...(ep.role === 'backend' ? ['--listen'] : []),
    '--action',
    ep.action,
    '--count',
    '0',
    '--mode',
    link.mode,
    '--ring',
    link.ring,
    '--queues',
    String(link.queues),
    '--queue-size',
    String(link.queueSize),
    '--status-file',
    statusFile,
    '--timeout',
    '86400',
    '--reconnect',
    ...(verify ? ['--verify'] : []),
  ];
}

export function readStatus(file: string | undefined): Record<string, unknown> | undefined {
  if (!file) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Spawns a process that outlives `vipc up` (own session, output to a log file). */
function spawnDetached(
  argv: string[],
  log: string,
  tag: string,
): { pid: number; startTime: string | undefined } {
  const fd = openSync(log, 'a', 0o600);
  try {
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, VIPC_INSTANCE: tag },
    });
    if (child.pid === undefined) throw new CliError('FAILED', `cannot start ${argv[0]}`);
    child.unref();
    return { pid: child.pid, startTime: processStartTime(child.pid) };
  } finally {
    closeSync(fd);
  }
}

export async function run(ctx: CommandContext): Promise<number> {
  const file = ctx.positionals[0]!;
  const topology = loadTopology(file);
  const timeoutMs = intOption(ctx.values.timeout, 'timeout', 60, 1, 3600) * 1000;
  const store = new StateStore(
    typeof ctx.values['state-dir'] === 'string' ? ctx.values['state-dir'] : undefined,
  );
  const existing = store.read(topology.name);
  if (existing) {
    const live = isSameProcess(existing.owner.pid, existing.owner.startTime);
    throw new CliError(
      'STATE',
      `topology '${topology.name}' is already ${existing.phase === 'up' ? 'up' : live ? 'being brought up' : `recorded (phase ${existing.phase}, its vipc up is gone)`}`,
      `vipc down ${topology.name}${store.dir === process.env.VIPC_STATE_DIR ? '' : ''}`,
    );
  }
  const hugepagePlan = topology.hugepages ? planHugepages(topology.hugepages) : undefined;
  const runDir = join(store.dir, topology.name);
  const state: State = {
    version: 1,
    name: topology.name,
    file,
    owner: { pid: process.pid, startTime: processStartTime(process.pid) },
    phase: 'starting',
    startedAt: new Date().toISOString(),
    runDir,
    resources: [],
  };
  const journal = new Journal(store, state);
  const event = (name: string, data: Record<string, unknown>) =>
    ctx.out.log(
      `vipc up: ${name}: ${Object.entries(data)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    );
  try {
    await bringUp(ctx, topology, journal, runDir, hugepagePlan, timeoutMs, event);
  } catch (err) {
    journal.phase('failed', (err as Error).message);
    ctx.out.log(`vipc up: ${(err as Error).message}; tearing down what was started`);
    const steps = await teardown(state);
    if (steps.every((s) => s.result !== 'failed')) store.remove(topology.name);
    throw err;
  }
  journal.phase('up');
  const summary = {
    ok: true,
    name: topology.name,
    stateFile: store.path(topology.name),
    links: topology.links.map((l) => ({ name: l.name, socket: l.socket })),
    resources: state.resources,
  };
  if (ctx.out.json) ctx.out.document(summary);
  else {
    ctx.out.print(`vipc up: topology '${topology.name}' is up (${state.resources.length} resources)`);
    for (const l of topology.links) ctx.out.print(`  link ${l.name}: ${l.socket}`);
    ctx.out.print(`  state: ${store.path(topology.name)}; stop with: vipc down ${topology.name}`);
  }
  return 0;
}

async function bringUp(
  ctx: CommandContext,
  t: Topology,
  journal: Journal,
  runDir: string,
  hugepagePlan: HugepagePlan | undefined,
  timeoutMs: number,
  event: (name: string, data: Record<string, unknown>) => void,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  await journal.step({ kind: 'dir', path: runDir, status: 'pending' }, (r) => {
    mkdirSync(r.path, { recursive: true, mode: 0o700 });
  });
  if (!existsSync(t.socketDir)) {
    await journal.step({ kind: 'dir', path: t.socketDir, status: 'pending' }, (r) => {
      mkdirSync(r.path, { recursive: true, mode: 0o755 });
    });
  }
  for (const l of t.links) {
    if (existsSync(l.socket))
      throw new CliError(
        'STATE',
        `socket ${l.socket} exists already (another topology, or a stale one?)`,
        `rm ${l.socket}`,
      );
    journal.state.resources.push({ kind: 'socket', path: l.socket, status: 'ready' });
  }
  journal.save();
  if (hugepagePlan) await reserveHugepages(hugepagePlan, journal);

  const linkOf = (name: string) => t.links.find((l) => l.name === name)!;
  const waitFor: { what: string; check: () => 'ok' | 'wait' | string }[] = [];
  const containers: ContainerHandle[] = [];
  // Back-ends first: they create the sockets the front-ends connect to.
  const order = (role: string) => (role === 'backend' ? 0 : 1);
  const items = [
    ...t.endpoints.map((e) => ({ owner: e.name, ep: e.endpoint, container: undefined })),
    ...t.containers.map((c) => ({ owner: c.name, ep: c.endpoint, container: c })),
  ].sort((a, b) => order(a.ep.role) - order(b.ep.role));

  for (const item of items) {
    const link = linkOf(item.ep.link);
    const tag = `vipc-${t.name}-${item.owner}`;
    const log = join(runDir, `${item.owner}.log`);
    const statusFile = join(runDir, `${item.owner}.status`);
    if (item.ep.kind === 'dpdk') {
      const ep = item.ep;
      // testpmd's stdout is fully buffered on a file: unbuffered (stdbuf execs testpmd, so the
      // pid and argv stay testpmd's), its readiness line and stats reach the log at once.
      const stdbuf = ['/usr/bin/stdbuf', '/bin/stdbuf'].find((p) => existsSync(p));
      const argv = [
        ...(stdbuf ? [stdbuf, '-o0', '-e0'] : []),
        testpmdPath(),
        ...testpmdArgs({
          role: ep.role,
          socket: link.socket,
          queues: link.queues,
          packed: link.ring === 'packed',
          forwardMode: ep.forwardMode,
          memoryMb: ep.memoryMb,
          hugeDir: ep.useHugepages ? t.hugepages!.mount : undefined,
          filePrefix: tag,
        }),
      ];
      journal.state.resources.push({ kind: 'dpdk-runtime', prefix: tag, status: 'ready' });
      if (ep.useHugepages)
        journal.state.resources.push({
          kind: 'hugepage-files',
          dir: t.hugepages!.mount,
          prefix: tag,
          status: 'ready',
        });
      await journal.step(
        { kind: 'process', name: item.owner, role: 'dpdk', tag, log, status: 'pending' } as Resource & {
          kind: 'process';
        },
        (r) => {
          Object.assign(r, spawnDetached(argv, log, tag));
        },
      );
      event('launch-start', { endpoint: item.owner, app: 'testpmd', socket: link.socket });
      waitFor.push({
        what: `testpmd '${item.owner}'`,
        check: () => {
          const r = journal.state.resources.find((x) => x.kind === 'process' && x.name === item.owner) as
            | (Resource & { kind: 'process' })
            | undefined;
          if (!isSameProcess(r?.pid, r?.startTime)) return `testpmd '${item.owner}' exited: ${lastLine(log)}`;
          // The vhost side (net_vhost) says so when a front-end finished negotiating: the link is up.
          if (ep.role === 'backend' && !logHas(log, 'virtio is now ready for processing')) return 'wait';
          return 'ok';
        },
      });
      if (ep.role === 'backend')
        await waitUntil(() => existsSync(link.socket), deadline, `socket ${link.socket}`, waitFor.at(-1));
      continue;
    }
    // A sink checks the pattern only when its peer is a vipc source (DPDK frames are not ours).
    const peer = items.find((x) => x !== item && x.ep.link === item.ep.link);
    const verify = item.ep.action === 'sink' && peer?.ep.kind === 'vipc' && peer.ep.action === 'source';
    const argv = [process.execPath, ...endpointArgv(link, item.ep, statusFile, verify)];
    if (item.container) {
      const c = item.container;
      const lxcName = `${t.name}-${c.name}`;
      let handle: ContainerHandle | undefined;
      await journal.step(
        { kind: 'container', name: lxcName, lxcPath: '', statusFile, status: 'pending' },
        async (r) => {
          handle = await startContainer({
            name: lxcName,
            binds: [
              { source: t.socketDir, target: t.socketDir, readOnly: false },
              { source: runDir, target: runDir, readOnly: false },
              { source: workspaceRoot(), target: workspaceRoot(), readOnly: true },
              ...c.mounts,
            ],
            memoryLimitMb: c.memoryLimitMb,
            rootfs: c.rootfs,
            onCreated: (lxcPath) => {
              r.lxcPath = lxcPath;
              journal.save();
            },
          });
          r.lxcPath = handle.lxcPath;
        },
      );
      containers.push(handle!);
      event('container-start', { container: lxcName });
      await journal.step(
        {
          kind: 'process',
          name: `${c.name}-endpoint`,
          role: 'endpoint',
          tag,
          log,
          statusFile,
          status: 'pending',
        } as Resource & {
          kind: 'process';
        },
        (r) => {
          Object.assign(r, handle!.spawnDetached(argv, log, { VIPC_INSTANCE: tag }));
        },
      );
    } else {
      await journal.step(
        {
          kind: 'process',
          name: item.owner,
          role: 'endpoint',
          tag,
          log,
          statusFile,
          status: 'pending',
        } as Resource & {
          kind: 'process';
        },
        (r) => {
          Object.assign(r, spawnDetached(argv, log, tag));
        },
      );
    }
    event('endpoint-start', {
      endpoint: item.owner,
      role: item.ep.role,
      action: item.ep.action,
      socket: link.socket,
    });
    waitFor.push({
      what: `endpoint '${item.owner}'`,
      check: () => {
        const s = readStatus(statusFile);
        if (s?.state === 'up' || s?.state === 'done') return 'ok';
        if (s?.state === 'error') return `endpoint '${item.owner}': ${s.error}`;
        const r = journal.state.resources.find((x) => x.kind === 'process' && x.statusFile === statusFile) as
          | (Resource & { kind: 'process' })
          | undefined;
        if (r?.pid && !isSameProcess(r.pid, r.startTime))
          return `endpoint '${item.owner}' exited: ${lastLine(log)}`;
        return 'wait';
      },
    });
    if (item.ep.role === 'backend')
      await waitUntil(() => existsSync(link.socket), deadline, `socket ${link.socket}`, waitFor.at(-1));
  }

  // Every endpoint's link must come up.
  let pending: string[] = [];
  await until(
    () => {
      pending = [];
      for (const w of waitFor) {
        const r = w.check();
        if (r === 'wait') pending.push(w.what);
        else if (r !== 'ok') throw new CliError('FAILED', r);
      }
      return pending.length === 0;
    },
    () =>
      new CliError(
        'FAILED',
        `timed out waiting for ${pending.join(', ')} to come up`,
        'see the logs in the run directory',
      ),
    { deadline, intervalMs: 100, onWait: () => ctx.out.progress(`waiting for ${pending.join(', ')}...`) },
  );
  ctx.out.clearProgress();
  for (const l of t.links) event('link-up', { link: l.name, socket: l.socket });
}

function logHas(file: string, text: string): boolean {
  try {
    return readFileSync(file, 'utf8').includes(text);
  } catch {
    return false;
  }
}

function lastLine(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').pop() ?? '';
  } catch {
    return '(no log)';
  }
}

/** Waits for `cond`; fails at once with what `failure` reports when it is neither 'wait' nor 'ok'. */
function waitUntil(
  cond: () => boolean,
  deadline: number,
  what: string,
  failure?: { check: () => string },
): Promise<void> {
  return until(
    () => {
      if (cond()) return true;
      const f = failure?.check();
      if (f && f !== 'wait' && f !== 'ok') throw new CliError('FAILED', f);
      return false;
    },
    what,
    { deadline, intervalMs: 50 },
  );
}
