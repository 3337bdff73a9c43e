import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type DpdkProcess,
  hugepagePools,
  hugetlbfsMounts,
  launchDpdk,
  mountHugetlbfs,
  removeLeftoverHugepageFiles,
  runtimeDir,
  setHugepageCount,
  uniqueFilePrefix,
  unmountHugetlbfs,
} from './index.js';
import { bundleSource, leftoversOf, rootAvailable, runPair, testpmdAvailable } from './test-peer.js';

// A non-root DPDK run: testpmd as "nobody" (uid 65534), started by the root test process.
const NOBODY = 65534;
const root = rootAvailable();
const have = testpmdAvailable();

// /tmp/dpdk is the EAL's base runtime dir for users without XDG_RUNTIME_DIR; remove it if we made it
const hadUserRuntimeBase = existsSync('/tmp/dpdk');
afterAll(() => {
  if (!hadUserRuntimeBase) {
    try {
      rmdirSync('/tmp/dpdk'); // only when empty: never touches another run's directories
    } catch {
      /* in use or gone */
    }
  }
});

let dir: string;
let procs: DpdkProcess[] = [];
let prefixes: string[] = [];
let mounts: string[] = [];
let added = 0;
// an environment without XDG_RUNTIME_DIR, as a plain non-root service has
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp' };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vipc-nonroot-'));
  chmodSync(dir, 0o777);
  procs = [];
  prefixes = [];
  mounts = [];
  added = 0;
});

afterEach(async () => {
  for (const p of [...procs].reverse()) await p.stop({ timeoutMs: 10_000 }).catch(() => p.kill('SIGKILL'));
  for (const m of mounts) {
    removeLeftoverHugepageFiles({ dirs: [m] });
    if (hugetlbfsMounts().some((x) => x.mountPoint === m)) unmountHugetlbfs(m);
  }
  if (added > 0) setHugepageCount(Math.max(0, hugepagePools().find((p) => p.sizeKb === 2048)!.total - added));
  const left = prefixes.flatMap((p) => leftoversOf(p, NOBODY));
  rmSync(dir, { recursive: true, force: true });
  expect(left).toEqual([]);
});

function fp(tag: string): string {
  const p = uniqueFilePrefix(tag);
  prefixes.push(p);
  return p;
}

describe.skipIf(!root || !have)('DPDK as a non-root user (testpmd as nobody)', () => {
  const base = { lcores: [0, 1], noPci: true, memoryChannels: 1, noTelemetry: true } as const;
  const asNobody = { uid: NOBODY, gid: NOBODY, env };

  it('--no-huge: a vhost/virtio-user pair runs as nobody, with its runtime dir under /tmp/dpdk', async () => {
    const sock = join(dir, 'nr.sock');
    const runtimeDirs: string[] = [];
    const { sent, received } = await runPair({
      socket: sock,
      prefixes: [fp('tnrb'), fp('tnrf')],
      track: (p) => {
        procs.push(p);
        runtimeDirs.push(p.runtimeDir);
        expect(statSync(p.runtimeDir).uid).toBe(NOBODY);
      },
      launch: asNobody,
      noMlockall: true,
    });
    expect(runtimeDirs).toEqual(prefixes.map((p) => join('/tmp/dpdk', p)));
    expect(received.forwardStats!.accumulated.rxPackets).toBeGreaterThan(0);
    expect(received.forwardStats!.accumulated.rxPackets).toBe(sent.accumulated.txPackets);
    expect(received.cleaned.runtimeDir).toBe(true);
    for (const d of runtimeDirs) expect(existsSync(d)).toBe(false);
  });

  it('hugepages through a user-owned hugetlbfs mount (--huge-dir, --single-file-segments)', async () => {
    const mnt = join(dir, 'hp');
    mounts.push(mnt);
    mountHugetlbfs(mnt, { pageSize: '2M', uid: NOBODY, gid: NOBODY, mode: 0o770 });
    const before = hugepagePools().find((p) => p.sizeKb === 2048)!.total;
    added = setHugepageCount(before + 64).current - before;
    expect(added).toBe(64);
    let sawFiles: string[] = [];
    const p = await launchDpdk({
      ...asNobody,
      eal: {
        ...base,
        memoryMb: 64,
        hugeDir: mnt,
        singleFileSegments: true,
        filePrefix: fp('tnrh'),
        vdevs: [{ driver: 'net_null' }],
      },
      testpmd: { nbCores: 1, forwardMode: 'rxonly', totalNumMbufs: 2048, statsPeriod: 1, noMlockall: true },
    });
    procs.push(p);
    sawFiles = readdirSync(mnt);
    expect(sawFiles.length).toBeGreaterThan(0);
    expect(sawFiles.every((f) => f.startsWith(`${p.filePrefix}map_`))).toBe(true);
    expect(statSync(join(mnt, sawFiles[0]!)).uid).toBe(NOBODY);
    const exit = await p.stop();
    expect(exit.code).toBe(0);
    expect(readdirSync(mnt)).toEqual([]);
    expect(existsSync(runtimeDir(p.filePrefix, NOBODY, env))).toBe(false);
  });
});

describe.skipIf(!root)('typed errors when not permitted', () => {
  let bundleDir: string;
  let bundle: string;
  beforeAll(() => {
    bundleDir = mkdtempSync(join(tmpdir(), 'vipc-bundle-'));
    bundle = bundleSource(bundleDir);
  });
  afterAll(() => rmSync(bundleDir, { recursive: true, force: true }));

  it('reserving pages and mounting hugetlbfs as nobody fail with NOT_PERMITTED', () => {
    mkdirSync(join(dir, 'm'));
    const script = `
      const m = await import(${JSON.stringify(bundle)});
      const codes = {};
      try { m.setHugepageCount(1); codes.reserve = 'ok'; } catch (e) { codes.reserve = e.code; codes.reserveMsg = e.message; }
      try { m.mountHugetlbfs(${JSON.stringify(join(dir, 'm'))}, { create: false }); codes.mount = 'ok'; } catch (e) { codes.mount = e.code; codes.mountMsg = e.message; }
      console.log(JSON.stringify(codes));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      uid: NOBODY,
      gid: NOBODY,
      env,
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    const codes = JSON.parse(r.stdout) as Record<string, string>;
    expect(codes.reserve).toBe('NOT_PERMITTED');
    expect(codes.reserveMsg).toMatch(/reserve 1 hugepages of 2048 kB: not permitted/);
    expect(codes.mount).toBe('NOT_PERMITTED');
    expect(codes.mountMsg).toMatch(/must be superuser/);
  });
});
