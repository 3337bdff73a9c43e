// vipc demo end to end: a host back-end and a front-end in a real LXC container
// (or, with --process, a second process), over a real vhost-user link.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LXC, peerTest, vipc, vipcSpawn, waitFor } from './test-helpers.js';

const dir = mkdtempSync(join(tmpdir(), `vipc-demo-${process.pid}-`));
const lxcPath = join(dir, 'lxc');
const env = { VIPC_LXC_PATH: lxcPath };
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function socketDirs(): string[] {
  const base = process.getuid?.() === 0 ? '/run/vipc' : tmpdir();
  return existsSync(base) ? readdirSync(base).filter((d) => d.startsWith('demo-')) : [];
}

interface DemoDoc {
  ok: boolean;
  endpoint: string;
  sent: number;
  received: number;
  lost: number;
  corrupt: number;
  bytes: number;
  throughput: { messagesPerSecond: number; megabytesPerSecond: number; seconds: number };
  latency: { p50Us: number; p99Us: number; count: number };
  hostBackend: { received: number; echoed: number };
}

describe('vipc demo', () => {
  it('--process --json: a second process, every message echoed, one JSON document', () => {
    const before = socketDirs();
    const r = vipc(['demo', '--process', '--messages', '3000', '--size', '200', '--json'], { env });
    expect(r.stderr).toMatch(/--process: the front-end runs in a second process\n/);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as DemoDoc;
    expect(doc).toMatchObject({
      ok: true,
      endpoint: 'process',
      transport: 'vhost-user',
      sent: 3000,
      received: 3000,
      lost: 0,
      corrupt: 0,
      bytes: 3000 * 200,
      hostBackend: { received: 3000, echoed: 3000 },
    });
    expect(doc.latency.count).toBe(3000);
    expect(doc.latency.p99Us).toBeGreaterThanOrEqual(doc.latency.p50Us);
    expect(doc.throughput.messagesPerSecond).toBeGreaterThan(0);
    expect(socketDirs()).toEqual(before);
  });

  it('poll mode and packed rings work too (process)', () => {
    const r = vipc(
      ['demo', '--process', '--messages', '2000', '--mode', 'poll', '--ring', 'packed', '--json'],
      { env },
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      endpoint: 'process',
      mode: 'poll',
      ring: 'packed',
      received: 2000,
      lost: 0,
    });
  });

  it('human output: what ran where, counts, throughput and latency on stdout', () => {
    const r = vipc(['demo', '--process', '--messages', '500'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/front-end in process \d+, over vhost-user/);
    expect(r.stdout).toMatch(/500 messages of 64 bytes sent, 500 echoed back, 0 lost/);
    expect(r.stdout).toMatch(/throughput: .*msg\/s/);
    expect(r.stdout).toMatch(/round trip: p50 [\d.]+ µs, p99 [\d.]+ µs/);
    // Not a TTY here: no progress bar redraws on stderr.
    expect(r.stderr).not.toMatch(/\r/);
  });

  it('a message size the link cannot carry is reported with the limit', () => {
    const r = vipc(['demo', '--process', '--messages', '10', '--size', '65536'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--size 65536 is larger than this link carries \(\d+ bytes\)/);
  });

  const lxc = peerTest(LXC);
  lxc('--json in an LXC container: endpoint "container", lost 0, nothing left behind', async () => {
    const before = socketDirs();
    const r = vipc(['demo', '--container', '--messages', '5000', '--json'], { env });
    expect(r.stderr).toMatch(/starting LXC container/);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as DemoDoc & { container: string };
    expect(doc).toMatchObject({
      ok: true,
      endpoint: 'container',
      sent: 5000,
      received: 5000,
      lost: 0,
      corrupt: 0,
    });
    expect(doc.container).toMatch(/^vipc-demo-\d+$/);
    expect(existsSync(join(lxcPath, doc.container))).toBe(false);
    expect(socketDirs()).toEqual(before);
  });

  lxc('without --process or --container, as root with LXC, the demo picks the container', () => {
    const r = vipc(['demo', '--messages', '1000', '--json'], { env });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ endpoint: 'container', received: 1000, lost: 0 });
  });

  it('Ctrl-C stops it cleanly: the partial result, marked interrupted, exit 1, nothing left', async () => {
    const before = socketDirs();
    const d = vipcSpawn(['demo', '--process', '--messages', '100000000', '--json'], env);
    await waitFor('the link', () => /link up/.test(d.out.stderr) || undefined);
    d.child.kill('SIGINT');
    expect(await d.exit).toBe(1);
    const doc = JSON.parse(d.out.stdout);
    expect(doc).toMatchObject({ ok: false, interrupted: true, endpoint: 'process' });
    expect(doc.sent).toBeLessThan(100000000);
    expect(socketDirs()).toEqual(before);
  });

  lxc('a reader that goes away (EPIPE) does not stop the cleanup of the container', async () => {
    const d = vipcSpawn(['demo', '--container', '--messages', '3000', '--json'], env);
    d.child.stdout!.destroy();
    await d.exit;
    expect(readdirSync(lxcPath).filter((n) => n.startsWith('vipc-demo-'))).toEqual([]);
  });

  lxc('removes containers and socket directories that killed demos left behind', () => {
    // A pid that is certainly gone: a process that already exited.
    const dead = spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim();
    const stale = join(lxcPath, `vipc-demo-${dead}`);
    mkdirSync(stale, { recursive: true });
    const base = process.getuid?.() === 0 ? '/run/vipc' : tmpdir();
    const staleSock = join(base, `demo-${dead}-zzzzzz`);
    mkdirSync(staleSock, { recursive: true });
    const r = vipc(['demo', '--process', '--messages', '100'], { env });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`removed what earlier demos left behind: vipc-demo-${dead}`);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(staleSock)).toBe(false);
  });
});
