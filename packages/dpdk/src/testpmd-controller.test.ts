import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DpdkError, TestpmdController, uniqueFilePrefix } from './index.js';
import { leftoversOf, testpmdAvailable } from './test-peer.js';

const have = testpmdAvailable();
let dir: string;
let ctl: TestpmdController | undefined;
let prefixes: string[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vipc-ctl-'));
  prefixes = [];
  ctl = undefined;
});

afterEach(async () => {
  if (ctl) await ctl.process.stop({ timeoutMs: 10_000 }).catch(() => ctl?.process.kill('SIGKILL'));
  const left = prefixes.flatMap((p) => leftoversOf(p));
  rmSync(dir, { recursive: true, force: true });
  expect(left).toEqual([]);
});

function fp(): string {
  const p = uniqueFilePrefix('tctl');
  prefixes.push(p);
  return p;
}

const base = {
  lcores: [0, 1],
  mainLcore: 1,
  noPci: true,
  noHuge: true,
  memoryMb: 256,
  memoryChannels: 1,
  noTelemetry: true,
};

describe.skipIf(!have)('TestpmdController on the real testpmd prompt', () => {
  it('attaches virtio-user to its own vhost port at run time, forwards, and reads parsed stats', async () => {
    const sock = join(dir, 'loop.sock');
    ctl = await TestpmdController.launch({
      eal: { ...base, filePrefix: fp(), vdevs: [{ driver: 'net_vhost', iface: sock, queues: 1 }] },
      testpmd: { nbCores: 1, totalNumMbufs: 16384 },
    });
    const before = await ctl.portSummary();
    expect(before.map((r) => [r.port, r.name, r.status])).toEqual([[0, 'net_vhost0', 'down']]);

    // both vdevs on one command line fail (the socket does not exist yet): attach the second one here
    const port = await ctl.portAttach({ driver: 'net_virtio_user', id: 1, path: sock, queues: 1 });
    expect(port).toBe(1);
    await ctl.portStart(port);
    const up = await ctl.waitForLinkUp(0);
    expect(up.driver).toBe('net_vhost');
    expect(await ctl.portInfo(1)).toMatchObject({
      port: 1,
      deviceName: 'net_virtio_user1',
      driverName: 'net_virtio_user',
      linkUp: true,
    });
    expect((await ctl.portSummary()).find((r) => r.port === 1)).toMatchObject({
      name: 'net_virtio_user1',
      driver: 'net_virtio_user',
    });

    await ctl.setTxpkts(64);
    await ctl.start({ txFirst: true });
    // wait (by polling the real counters) until packets have crossed in both directions
    let stats = await ctl.portStats();
    const deadline = Date.now() + 60_000;
    while (
      !(stats.find((s) => s.port === 0)?.rxPackets && stats.find((s) => s.port === 1)?.rxPackets) &&
      Date.now() < deadline
    ) {
      stats = await ctl.portStats();
    }
    expect(stats.map((s) => s.port)).toEqual([0, 1]);
    expect(stats[0]!.rxPackets).toBeGreaterThan(0);
    expect(stats[1]!.txPackets).toBeGreaterThan(0);

    const fwd = await ctl.stop();
    expect(fwd.ports.map((p) => p.port)).toEqual([0, 1]);
    expect(fwd.accumulated.rxPackets).toBeGreaterThan(0);
    expect(fwd.accumulated.rxPackets).toBe(fwd.ports[0]!.rxPackets + fwd.ports[1]!.rxPackets);

    await ctl.portStop(port);
    await ctl.portClose(port);
    expect((await ctl.portSummary()).map((r) => r.port)).toEqual([0]);

    const exit = await ctl.quit();
    expect(exit.code).toBe(0);
    expect(exit.requested).toBe(true);
    expect(exit.cleaned.runtimeDir).toBe(true);
    await expect(ctl.command('show port summary all')).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('reports refused commands, bad devargs and bad arguments as typed errors, then keeps working', async () => {
    ctl = await TestpmdController.launch({
      eal: { ...base, filePrefix: fp() },
      testpmd: { nbCores: 1, totalNumMbufs: 4096 },
    });
    await expect(ctl.command('bogus command')).rejects.toMatchObject({
      code: 'COMMAND_FAILED',
      message: /Command not found/,
    });
    await expect(ctl.command('show port summary')).rejects.toMatchObject({
      code: 'COMMAND_FAILED',
      message: /Bad arguments/,
    });
    await expect(ctl.portAttach('net_nonexistent0')).rejects.toMatchObject({ code: 'COMMAND_FAILED' });
    await expect(ctl.portStart(7)).rejects.toMatchObject({ code: 'COMMAND_FAILED' });
    await expect(ctl.portInfo(7)).rejects.toMatchObject({ code: 'COMMAND_FAILED' });
    await expect(ctl.command('show\nport')).rejects.toBeInstanceOf(DpdkError);
    await expect(ctl.setTxpkts(0)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(ctl.stop()).rejects.toMatchObject({ code: 'COMMAND_FAILED', message: /not started/ });
    // the session is still in sync after the failures
    expect(await ctl.portSummary()).toEqual([]);
    expect(await ctl.command('show config fwd')).toMatch(/packet forwarding/);
  });
});
