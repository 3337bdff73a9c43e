// vipc up / status / down against real DPDK testpmd processes, and after a crash of vipc up.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect } from 'vitest';
import { findTagged } from './state.js';
import { stopProcess } from './teardown.js';
import { LXC, peerTest, TESTPMD, vipc, vipcSpawn, waitFor } from './test-helpers.js';

const dir = mkdtempSync(join(tmpdir(), `vipc-up-${process.pid}-`));
const stateDir = join(dir, 'state');
const socketDir = join(dir, 'sock');
const lxcPath = join(dir, 'lxc');
const env = { VIPC_STATE_DIR: stateDir, VIPC_LXC_PATH: lxcPath };
const name = `up-${process.pid}`;
const tags = [`vipc-${name}-pmd-rx`, `vipc-${name}-pmd-tx`, `vipc-${name}-sink`, `vipc-${name}-guest`];

afterEach(async () => {
  vipc(['down', '--all'], { env });
  // Safety net: nothing of ours may survive a failed test.
  for (const tag of tags)
    for (const pid of findTagged(tag)) await stopProcess(pid, undefined, 'SIGKILL', 100);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function topology(file: string, withFrontend: boolean): string {
  writeFileSync(
    file,
    `version: 1
name: ${name}
socketDir: ${socketDir}
links:
  - name: l0
endpoints:
  - name: pmd-rx
    kind: dpdk
    link: l0
    role: backend
    forwardMode: rxonly
${
  withFrontend
    ? `  - name: pmd-tx
    kind: dpdk
    link: l0
    role: frontend
    forwardMode: txonly
`
    : ''
}`,
  );
  return file;
}

function nothingLeft() {
  expect(tags.flatMap(findTagged)).toEqual([]);
  expect(existsSync(join(lxcPath, `${name}-guest`))).toBe(false);
  expect(existsSync(socketDir)).toBe(false);
  expect(existsSync(join(stateDir, `${name}.json`))).toBe(false);
  expect(existsSync(join(stateDir, name))).toBe(false);
  for (const tag of tags) expect(existsSync(`/var/run/dpdk/${tag}`)).toBe(false);
  if (existsSync('/dev/hugepages'))
    expect(readdirSync('/dev/hugepages').filter((f) => f.startsWith(`vipc-${name}`))).toEqual([]);
}

describe('vipc up / status / down', () => {
  const testpmd = peerTest(TESTPMD);

  testpmd('brings two testpmds up on one link, reports them, and leaves nothing behind', async () => {
    const file = topology(join(dir, 'pair.yaml'), true);
    const up = vipc(['up', file, '--json', '--timeout', '90'], { env });
    expect(up.stderr).toMatch(/link-up: link=l0/);
    expect(up.code).toBe(0);
    const doc = JSON.parse(up.stdout);
    expect(doc).toMatchObject({
      ok: true,
      name,
      links: [{ name: 'l0', socket: join(socketDir, 'l0.sock') }],
    });
    expect(doc.resources.filter((r: { kind: string }) => r.kind === 'process')).toHaveLength(2);
    expect(tags.flatMap(findTagged)).toHaveLength(2);

    // testpmd's own counters (its --stats-period output) show the link carrying packets.
    await waitFor('packets counted by the receiving testpmd', () => {
      const t = JSON.parse(vipc(['status', '--json'], { env }).stdout).topologies[0];
      return (t.resources.find((r: { name?: string }) => r.name === 'pmd-rx')?.port?.rxPackets ?? 0) > 0;
    });
    const st = vipc(['status', '--json'], { env });
    expect(st.code).toBe(0);
    const s = JSON.parse(st.stdout);
    expect(s.topologies).toHaveLength(1);
    expect(s.topologies[0]).toMatchObject({ name, phase: 'up', health: 'up' });
    expect(s.topologies[0].resources.filter((r: { alive?: boolean }) => r.alive === true)).toHaveLength(2);

    // Up twice is refused.
    const again = vipc(['up', file], { env });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already up/);

    const down = vipc(['down', name, '--json'], { env });
    expect(down.code).toBe(0);
    expect(JSON.parse(down.stdout)).toMatchObject({ ok: true, topologies: [{ name, removed: true }] });
    nothingLeft();
    expect(vipc(['status', name], { env }).code).toBe(1);
  });

  testpmd('a vipc sink back-end counts what a testpmd txonly front-end sends', async () => {
    const file = join(dir, 'mixed.yaml');
    writeFileSync(
      file,
      `version: 1
name: ${name}
socketDir: ${socketDir}
links:
  - name: l0
endpoints:
  - name: sink
    link: l0
    role: backend
    action: sink
  - name: pmd-tx
    kind: dpdk
    link: l0
    role: frontend
    forwardMode: txonly
`,
    );
    const up = vipc(['up', file, '--timeout', '90'], { env });
    expect(up.code, up.stderr).toBe(0);
    const sink = await waitFor('packets at the sink', () => {
      const st = JSON.parse(vipc(['status', '--json'], { env }).stdout);
      const s = st.topologies[0].resources.find((r: { name?: string }) => r.name === 'sink');
      return (s?.counters?.received ?? 0) > 1000 ? s : undefined;
    });
    expect(sink).toMatchObject({ alive: true, link: 'up', counters: { corrupt: 0 } });
    expect(sink.counters.bytesReceived).toBe(sink.counters.received * 64);
    expect(vipc(['down'], { env }).code).toBe(0);
    nothingLeft();
  });

  testpmd('down cleans up after vipc up was killed with SIGKILL half-way', async () => {
    // Only a back-end: the link never comes up, so vipc up is still waiting when we kill it.
    const file = topology(join(dir, 'half.yaml'), false);
    const up = vipcSpawn(['up', file, '--timeout', '600'], env);
    try {
      const stateFile = join(stateDir, `${name}.json`);
      await waitFor('testpmd to be recorded', () => {
        try {
          const st = JSON.parse(readFileSync(stateFile, 'utf8'));
          return st.resources.some(
            (r: { kind: string; status: string }) => r.kind === 'process' && r.status === 'ready',
          );
        } catch {
          return false;
        }
      });
      await waitFor('the socket', () => existsSync(join(socketDir, 'l0.sock')));
      up.child.kill('SIGKILL');
      expect(await up.exit).toBe(null);
    } finally {
      up.child.kill('SIGKILL');
    }
    expect(findTagged(tags[0]!)).toHaveLength(1);
    const st = JSON.parse(vipc(['status', '--json'], { env }).stdout);
    expect(st.topologies[0]).toMatchObject({
      name,
      phase: 'starting',
      health: 'crashed',
      owner: { alive: false },
    });
    expect(vipc(['status'], { env }).stdout).toMatch(/crashed/);

    const down = vipc(['down'], { env });
    expect(down.code).toBe(0);
    expect(down.stderr).toMatch(/process pmd-rx \(pid \d+\): removed/);
    nothingLeft();
  });
});

function containerTopology(file: string, withBackend: boolean): string {
  writeFileSync(
    file,
    `version: 1
name: ${name}
socketDir: ${socketDir}
links:
  - name: l0
    queueSize: 64
${
  withBackend
    ? `endpoints:
  - name: sink
    link: l0
    role: backend
    action: sink
`
    : ''
}containers:
  - name: guest
    endpoint:
      link: l0
      role: frontend
      action: source
`,
  );
  return file;
}

describe('vipc up / status / down with vipc endpoints in a container', () => {
  const lxc = peerTest(LXC);

  lxc('a host sink and a container source: the link carries traffic, and down removes it all', async () => {
    const file = containerTopology(join(dir, 'ct.yaml'), true);
    const up = vipc(['up', file, '--json', '--timeout', '90'], { env });
    expect(up.stderr).toMatch(/container-start: container=/);
    expect(up.code).toBe(0);
    const doc = JSON.parse(up.stdout);
    expect(doc.resources.map((r: { kind: string }) => r.kind)).toEqual(
      expect.arrayContaining(['container', 'process', 'socket', 'dir']),
    );
    expect(existsSync(join(lxcPath, `${name}-guest`))).toBe(true);
    // The host sink counts what the container sends.
    await waitFor('traffic on the link', () => {
      const st = JSON.parse(vipc(['status', '--json'], { env }).stdout);
      const sink = st.topologies[0].resources.find((r: { name?: string }) => r.name === 'sink');
      return sink?.link === 'up' && (sink.counters?.received ?? 0) > 100 ? st : undefined;
    });
    const st = JSON.parse(vipc(['status', '--json'], { env }).stdout);
    expect(st.topologies[0]).toMatchObject({ health: 'up' });
    // The sink checks every generated message of the vipc source: none corrupt.
    expect(
      st.topologies[0].resources.find((r: { name?: string }) => r.name === 'sink').counters.corrupt,
    ).toBe(0);
    expect(st.topologies[0].resources.find((r: { kind: string }) => r.kind === 'container')).toMatchObject({
      state: 'running',
    });
    const down = vipc(['down', name], { env });
    expect(down.stderr).toMatch(/container .*-guest: removed/);
    expect(down.code).toBe(0);
    nothingLeft();
  });

  lxc(
    'after SIGKILL of vipc up while its container waits for a link, down removes the container too',
    async () => {
      const file = containerTopology(join(dir, 'ct-half.yaml'), false);
      const up = vipcSpawn(['up', file, '--timeout', '600'], env);
      try {
        const stateFile = join(stateDir, `${name}.json`);
        await waitFor('the container endpoint to be recorded', () => {
          try {
            const st = JSON.parse(readFileSync(stateFile, 'utf8'));
            return st.resources.some(
              (r: { kind: string; status: string; role?: string }) =>
                r.kind === 'process' && r.role === 'endpoint' && r.status === 'ready',
            );
          } catch {
            return false;
          }
        });
        up.child.kill('SIGKILL');
        await up.exit;
      } finally {
        up.child.kill('SIGKILL');
      }
      expect(existsSync(join(lxcPath, `${name}-guest`))).toBe(true);
      expect(JSON.parse(vipc(['status', '--json'], { env }).stdout).topologies[0].health).toBe('crashed');
      const down = vipc(['down'], { env });
      expect(down.code).toBe(0);
      nothingLeft();
    },
  );
});

describe('vipc up with hugepages', () => {
  const testpmd = peerTest({ ...TESTPMD, available: TESTPMD.available && process.getuid?.() === 0 });
  const sysfs = '/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages';

  testpmd('reserves pages and mounts hugetlbfs for a hugepage testpmd, and down gives both back', () => {
    const mount = join(dir, 'huge');
    const before = Number(readFileSync(sysfs, 'utf8'));
    const file = join(dir, 'huge.yaml');
    writeFileSync(
      file,
      `version: 1
name: ${name}
socketDir: ${socketDir}
hugepages:
  pageSize: 2M
  count: ${Math.max(before, 48)}
  mount: ${mount}
links:
  - name: l0
endpoints:
  - name: pmd-rx
    kind: dpdk
    link: l0
    role: backend
    forwardMode: rxonly
    memoryMb: 64
    useHugepages: true
  - name: pmd-tx
    kind: dpdk
    link: l0
    role: frontend
    forwardMode: txonly
`,
    );
    const up = vipc(['up', file, '--json', '--timeout', '90'], { env });
    expect(up.code, up.stderr).toBe(0);
    expect(up.stderr).toMatch(/link-up: link=l0/);
    const kinds = JSON.parse(up.stdout).resources.map((r: { kind: string }) => r.kind);
    expect(kinds).toEqual(expect.arrayContaining(['mount', 'hugepage-files', 'dpdk-runtime']));
    if (before < 48) expect(kinds).toContain('hugepages');
    expect(readFileSync('/proc/mounts', 'utf8')).toContain(` ${mount} hugetlbfs `);
    expect(readdirSync(mount).some((f) => f.startsWith(tags[0]!))).toBe(true);

    const down = vipc(['down'], { env });
    expect(down.code, down.stderr).toBe(0);
    expect(down.stderr).toMatch(new RegExp(`mount ${mount}: removed`));
    // The pool is shared with other processes (and other tests): down gives back what up added.
    if (before < 48) expect(down.stderr).toMatch(/hugepage reservation .*: removed/);
    expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(` ${mount} `);
    expect(existsSync(mount)).toBe(false);
    nothingLeft();
  });
});
