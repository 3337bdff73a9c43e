import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DpdkError,
  type DpdkProcess,
  type ExitInfo,
  findHugepageFiles,
  hugepagePools,
  hugetlbfsMounts,
  launchDpdk,
  mountHugetlbfs,
  parsePageSizeKb,
  removeLeftoverHugepageFiles,
  removeRuntimeDir,
  setHugepageCount,
  uniqueFilePrefix,
  unmountHugetlbfs,
} from './index.js';
import { leftoversOf, rootAvailable, runPair, testpmdAvailable } from './test-peer.js';

const root = rootAvailable();
const have = testpmdAvailable();

const pool2m = () => hugepagePools().find((p) => p.sizeKb === 2048)!;

let dir: string;
let mounts: string[] = [];
let added = 0;
let procs: DpdkProcess[] = [];
let prefixes: string[] = [];

/** Add pages to the 2 MiB pool for this test only; afterEach gives exactly these back. */
function reserve(n: number): number {
  const before = pool2m().total;
  const r = setHugepageCount(before + n);
  added += r.current - before;
  return r.current - before;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vipc-huge-'));
  mounts = [];
  added = 0;
  procs = [];
  prefixes = [];
});

afterEach(async () => {
  for (const p of procs) await p.stop({ timeoutMs: 10_000 }).catch(() => p.kill('SIGKILL'));
  for (const m of mounts) {
    removeLeftoverHugepageFiles({ dirs: [m] });
    if (hugetlbfsMounts().some((x) => x.mountPoint === m)) unmountHugetlbfs(m);
  }
  for (const p of prefixes) removeRuntimeDir(p);
  if (added > 0) setHugepageCount(Math.max(0, pool2m().total - added));
  const left = prefixes.flatMap((p) => leftoversOf(p));
  rmSync(dir, { recursive: true, force: true });
  expect(left).toEqual([]);
  expect(mounts.filter((m) => hugetlbfsMounts().some((x) => x.mountPoint === m))).toEqual([]);
});

describe('hugepage pools (sysfs)', () => {
  it('lists every page size with totals, free pages and NUMA nodes', () => {
    const pools = hugepagePools();
    expect(pools.map((p) => p.sizeKb)).toContain(2048);
    for (const p of pools) {
      expect(p.free).toBeLessThanOrEqual(p.total + p.surplus);
      expect(p.nodes.length).toBeGreaterThan(0);
      expect(p.nodes.reduce((a, n) => a + n.total, 0)).toBe(p.total);
    }
  });

  it('parses page sizes and rejects bad counts and sizes', () => {
    expect(parsePageSizeKb('2M')).toBe(2048);
    expect(parsePageSizeKb('1G')).toBe(1048576);
    expect(parsePageSizeKb('2048k')).toBe(2048);
    expect(() => parsePageSizeKb('huge')).toThrow(DpdkError);
    expect(() => setHugepageCount(-1)).toThrow(/must be an integer/);
    expect(() => setHugepageCount(1, { sizeKb: 3 })).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    expect(() => setHugepageCount(1, { node: 999 })).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
  });
});

describe.skipIf(!root)('reserving and mounting (root)', () => {
  it('reserves 2 MiB pages and gives them back', () => {
    const before = pool2m();
    const got = reserve(16);
    expect(got).toBeGreaterThan(0);
    const after = pool2m();
    // totals only: other suites may take free pages meanwhile
    expect(after.total).toBe(before.total + got);
    expect(after.nodes.reduce((a, n) => a + n.total, 0)).toBe(after.total);
  });

  it('mounts a user-owned hugetlbfs (uid, gid, mode, page size) and unmounts it', () => {
    const mnt = join(dir, 'mnt');
    mounts.push(mnt);
    const m = mountHugetlbfs(mnt, { pageSize: '2M', uid: 65534, gid: 65534, mode: 0o770 });
    expect(m).toMatchObject({ mountPoint: mnt, pageSizeKb: 2048, uid: 65534, gid: 65534, mode: 0o770 });
    const st = statSync(mnt);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([65534, 65534, 0o770]);
    unmountHugetlbfs(mnt);
    expect(hugetlbfsMounts().some((x) => x.mountPoint === mnt)).toBe(false);
    expect(() => unmountHugetlbfs(mnt)).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    expect(() => mountHugetlbfs('relative/dir')).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    expect(() => mountHugetlbfs(mnt, { mode: 0o70000 })).toThrow(/not a permission mode/);
  });
});

describe.skipIf(!root || !have)('hugepage files of DPDK processes (root, real testpmd)', () => {
  async function start(mnt: string, cleanup: boolean): Promise<DpdkProcess> {
    const filePrefix = uniqueFilePrefix('thp');
    prefixes.push(filePrefix);
    const p = await launchDpdk({
      eal: {
        lcores: [0, 1],
        noPci: true,
        memoryMb: 64,
        hugeDir: mnt,
        filePrefix,
        vdevs: [{ driver: 'net_null' }],
      },
      testpmd: { nbCores: 1, forwardMode: 'rxonly', totalNumMbufs: 2048, statsPeriod: 1 },
      cleanup,
    });
    procs.push(p);
    return p;
  }

  it('a live process holds its map files; after a SIGKILL they are leftovers and get removed', async () => {
    const mnt = join(dir, 'hp');
    mounts.push(mnt);
    mountHugetlbfs(mnt, { pageSize: '2M' });
    expect(reserve(64)).toBe(64);
    const p = await start(mnt, false);
    const held = findHugepageFiles({ dirs: [mnt] });
    expect(held.length).toBeGreaterThan(0);
    for (const f of held) {
      expect(f.prefix).toBe(p.filePrefix);
      expect(f.heldBy).toContain(p.pid);
    }
    expect(removeLeftoverHugepageFiles({ dirs: [mnt] })).toEqual([]); // in use: untouched
    const exit = new Promise<ExitInfo>((r) => p.once('exit', r));
    process.kill(p.pid, 'SIGKILL');
    expect((await exit).cleaned.hugepageFiles).toEqual([]); // cleanup: false
    const left = findHugepageFiles({ dirs: [mnt], prefix: p.filePrefix });
    expect(left.map((f) => f.path).sort()).toEqual(held.map((f) => f.path).sort());
    expect(left.every((f) => f.heldBy.length === 0)).toBe(true);
    const freeBefore = pool2m().free;
    const removed = removeLeftoverHugepageFiles({ dirs: [mnt], prefix: p.filePrefix });
    expect(removed.length).toBe(held.length);
    expect(readdirSync(mnt)).toEqual([]);
    expect(pool2m().free).toBeGreaterThan(freeBefore); // the pages came back
  });

  it('the Supervisor removes the hugepage files of a crashed app', async () => {
    const mnt = join(dir, 'hp2');
    mounts.push(mnt);
    mountHugetlbfs(mnt, { pageSize: '2M' });
    expect(reserve(64)).toBe(64);
    const p = await start(mnt, true);
    const files = findHugepageFiles({ dirs: [mnt] }).map((f) => f.path);
    expect(files.length).toBeGreaterThan(0);
    const exit = new Promise<ExitInfo>((r) => p.once('exit', r));
    process.kill(p.pid, 'SIGKILL');
    const info = await exit;
    expect(info.cleaned.hugepageFiles.sort()).toEqual(files.sort());
    expect(info.cleaned.runtimeDir).toBe(true);
    expect(readdirSync(mnt)).toEqual([]);
  });

  it('a vhost/virtio-user pair on hugepages with --single-file-segments (the working recipe) has exact counts', async () => {
    const mnt = join(dir, 'hp3');
    mounts.push(mnt);
    mountHugetlbfs(mnt, { pageSize: '2M' });
    expect(reserve(160)).toBe(160);
    const sock = join(dir, 'huge.sock');
    const { sent, received } = await runPair({
      socket: sock,
      prefixes: [uniqueFilePrefix('thpb'), uniqueFilePrefix('thpf')].map((p) => {
        prefixes.push(p);
        return p;
      }) as [string, string],
      track: (p) => procs.push(p),
      eal: {
        noPci: true,
        memoryMb: 128,
        memoryChannels: 1,
        hugeDir: mnt,
        singleFileSegments: true,
        noTelemetry: true,
      },
    });
    expect(received.forwardStats!.accumulated.rxPackets).toBeGreaterThan(0);
    expect(received.forwardStats!.accumulated.rxPackets).toBe(sent.accumulated.txPackets);
    expect(received.cleaned.runtimeDir).toBe(true);
    expect(readdirSync(mnt)).toEqual([]); // the Supervisor removed both apps' segment files
  });
});
