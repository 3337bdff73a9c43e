// vipc send / vipc recv: between two vipc processes, and against the real DPDK testpmd.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestpmdController } from '@vipc/dpdk';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder } from './frames.js';
import { listening, peerTest, TESTPMD, vipc, vipcSpawn, waitFor } from './test-helpers.js';

const dir = mkdtempSync(join(tmpdir(), `vipc-sr-${process.pid}-`));
let n = 0;
const sock = () => join(dir, `l${++n}.sock`);
const running: ReturnType<typeof vipcSpawn>[] = [];
const pmds: TestpmdController[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) r.child.kill('SIGKILL');
  for (const p of pmds.splice(0)) await p.quit().catch(() => {});
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function recv(args: string[]) {
  const r = vipcSpawn(['recv', ...args]);
  running.push(r);
  return r;
}

describe('vipc send -> vipc recv', () => {
  it('stdin lines become messages, and received messages become stdout lines', async () => {
    const s = sock();
    const r = recv(['--socket', s, '--listen', '--count', '3']);
    await listening(r, s);
    const snd = vipc(['send', '--socket', s, '--json'], {
      input: 'hello\nvhost-user world\r\nlast line without newline',
    });
    expect(snd.stderr).toMatch(/link up/);
    expect(JSON.parse(snd.stdout)).toMatchObject({ ok: true, sent: 3, bytes: 5 + 16 + 25 });
    expect(await r.exit).toBe(0);
    expect(r.out.stdout).toBe('hello\nvhost-user world\nlast line without newline\n');
  });

  it('--binary carries length-prefixed frames byte for byte', async () => {
    const s = sock();
    const frames = [
      new Uint8Array([0, 1, 2, 255]),
      new Uint8Array(1500).fill(10),
      new Uint8Array([13, 10, 0]),
    ];
    const r = recv(['--socket', s, '--listen', '--count', '3', '--binary']);
    r.child.stdout!.setEncoding('latin1');
    await listening(r, s);
    const snd = vipc(['send', '--socket', s, '--binary', '--json'], {
      input: Buffer.concat(frames.map((f) => encodeFrame(f))),
    });
    expect(snd.code, snd.stderr).toBe(0);
    expect(JSON.parse(snd.stdout)).toMatchObject({ sent: 3, bytes: 4 + 1500 + 3 });
    expect(await r.exit).toBe(0);
    const got = new FrameDecoder(65536).push(Buffer.from(r.out.stdout, 'latin1'));
    expect(got.map((g) => [...g])).toEqual(frames.map((f) => [...f]));
  });

  it('generated traffic with swapped roles: the back-end listens and sends, the front-end receives', async () => {
    const s = sock();
    const snd = vipcSpawn([
      'send',
      '--socket',
      s,
      '--role',
      'backend',
      '--listen',
      '--count',
      '2000',
      '--size',
      '256',
      '--json',
    ]);
    running.push(snd);
    await listening(snd, s);
    const r = vipc(['recv', '--socket', s, '--role', 'frontend', '--count', '2000', '--json'], {
      timeout: 60_000,
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, received: 2000, bytes: 2000 * 256 });
    expect(await snd.exit).toBe(0);
    expect(JSON.parse(snd.out.stdout)).toMatchObject({ ok: true, sent: 2000, bytes: 2000 * 256 });
  });

  it('a reader that stops reading slows the sender down; nothing is lost or reordered', async () => {
    const s = sock();
    const N = 30_000;
    const r = recv(['--socket', s, '--listen']);
    r.child.stdout!.pause(); // our pipe fills, then recv's inbox, then the ring
    await listening(r, s);
    const lines = Array.from({ length: N }, (_, i) => `line ${i} ${'x'.repeat(i % 50)}`);
    const snd = vipcSpawn(['send', '--socket', s, '--json']);
    running.push(snd);
    snd.child.stdin!.end(`${lines.join('\n')}\n`);
    await waitFor('the sender to be connected', () => /link up/.test(snd.out.stderr) || undefined);
    r.child.stdout!.resume();
    expect(await snd.exit).toBe(0);
    expect(JSON.parse(snd.out.stdout)).toMatchObject({ sent: N });
    expect(await r.exit).toBe(0);
    expect(r.out.stdout).toBe(`${lines.join('\n')}\n`);
  });

  it('recv without --count ends when the sender leaves, with what it got', async () => {
    const s = sock();
    const r = recv(['--socket', s, '--listen', '--json']);
    await listening(r, s);
    expect(vipc(['send', '--socket', s, '--count', '500', '--size', '64']).code).toBe(0);
    expect(await r.exit).toBe(0);
    expect(JSON.parse(r.out.stdout)).toMatchObject({ received: 500, bytes: 500 * 64 });
  });

  it('an endpoint with --reconnect outlives its peers and keeps counting', async () => {
    const s = sock();
    const status = join(dir, 'sink.status');
    const sink = vipcSpawn([
      'endpoint',
      '--socket',
      s,
      '--listen',
      '--action',
      'sink',
      '--reconnect',
      '--status-file',
      status,
    ]);
    running.push(sink);
    for (let i = 1; i <= 3; i++) {
      await listening(sink, s);
      expect(vipc(['send', '--socket', s, '--count', '300', '--timeout', '30']).code).toBe(0);
      await waitFor(`${300 * i} messages at the sink`, () => {
        try {
          return JSON.parse(readFileSync(status, 'utf8')).received === 300 * i;
        } catch {
          return false;
        }
      });
    }
    sink.child.kill('SIGTERM');
    expect(await sink.exit).toBe(0);
    expect(JSON.parse(readFileSync(status, 'utf8'))).toMatchObject({ state: 'done', received: 900 });
  });

  it('send to a socket nobody serves fails after --timeout with exit 1', () => {
    const r = vipc([
      'send',
      '--socket',
      join(dir, 'nobody.sock'),
      '--count',
      '1',
      '--timeout',
      '1',
      '--json',
    ]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false });
  });
});

describe('interop with DPDK testpmd', () => {
  const testpmd = peerTest(TESTPMD);
  const eal = { lcores: [0, 1], memoryChannels: 1, noPci: true, noHuge: true, memoryMb: 256 };

  testpmd('vipc recv receives exactly what testpmd net_virtio_user (txonly bursts) sent', async () => {
    const s = sock();
    const bursts = 4;
    const r = recv(['--socket', s, '--listen', '--count', String(bursts * 32), '--json']);
    await listening(r, s);
    const pmd = await TestpmdController.launch({
      eal: { ...eal, vdevs: [{ driver: 'net_virtio_user', path: s }] },
      testpmd: { nbCores: 1, totalNumMbufs: 16384, forwardMode: 'rxonly' },
    });
    pmds.push(pmd);
    await pmd.waitForLinkUp(0);
    await pmd.setTxpkts(64);
    await pmd.start({ txFirst: bursts }); // exactly `bursts` bursts of 32, then only receive
    expect(await r.exit).toBe(0);
    const fwd = await pmd.stop();
    expect(fwd.accumulated.txPackets).toBe(bursts * 32);
    expect(JSON.parse(r.out.stdout)).toMatchObject({
      ok: true,
      received: fwd.accumulated.txPackets,
      bytes: 64 * bursts * 32,
    });
  });

  testpmd('testpmd net_vhost (rxonly) counts exactly what vipc send sent', async () => {
    const s = sock();
    const pmd = await TestpmdController.launch({
      eal: { ...eal, vdevs: [{ driver: 'net_vhost', iface: s }] },
      testpmd: { nbCores: 1, totalNumMbufs: 16384, forwardMode: 'rxonly' },
    });
    pmds.push(pmd);
    await pmd.start();
    const count = 5000;
    const snd = vipc(['send', '--socket', s, '--count', String(count), '--size', '64', '--json']);
    expect(snd.stderr).toMatch(/link up/);
    expect(JSON.parse(snd.stdout)).toMatchObject({ ok: true, sent: count });
    const fwd = await pmd.stop();
    expect(fwd.accumulated.rxPackets).toBe(count);
    expect(fwd.accumulated.rxDropped).toBe(0);
  });

  testpmd('vipc dpdk testpmd --vhost counts what vipc send sent, and reports it at Ctrl-C', async () => {
    const s = sock();
    const pmd = vipcSpawn(['dpdk', 'testpmd', '--vhost', s, '--json']);
    running.push(pmd);
    await listening(pmd, s, 90_000);
    const snd = vipc(['send', '--socket', s, '--count', '3000', '--json']);
    expect(JSON.parse(snd.stdout)).toMatchObject({ ok: true, sent: 3000 });
    await waitFor('testpmd to log the link', () => /link-up/.test(pmd.out.stderr) || undefined);
    pmd.child.kill('SIGINT');
    expect(await pmd.exit).toBe(0);
    const doc = JSON.parse(pmd.out.stdout);
    expect(doc).toMatchObject({ ok: true, forwardStats: { accumulated: { rxPackets: 3000, rxDropped: 0 } } });
    expect(doc.cleaned.runtimeDir).toBe(true);
  });
});
