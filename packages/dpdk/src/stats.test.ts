import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DpdkError,
  latestPortStats,
  parseForwardStats,
  parsePortInfo,
  parsePortStats,
  parsePortSummary,
} from './index.js';

const fixture = (name: string) => readFileSync(new URL(`./__fixtures__/${name}`, import.meta.url), 'utf8');

describe('stats parsers on output captured from testpmd 22.11', () => {
  it('vhost rxonly: accumulated forward statistics', () => {
    const s = parseForwardStats(fixture('vhost-rxonly.txt'))!;
    expect(s.accumulated).toEqual({
      rxPackets: 142419744,
      rxDropped: 0,
      rxTotal: 142419744,
      txPackets: 0,
      txDropped: 0,
      txTotal: 0,
    });
    expect(s.ports).toEqual([{ port: 0, ...s.accumulated }]);
  });

  it('virtio-user txonly: sent exactly what the vhost side received, with drops counted', () => {
    const s = parseForwardStats(fixture('virtio-user-txonly.txt'))!;
    expect(s.accumulated.txPackets).toBe(142419744);
    expect(s.accumulated.txDropped).toBe(60611136);
    expect(s.accumulated.txTotal).toBe(203030880);
    expect(parseForwardStats(fixture('vhost-rxonly.txt'))!.accumulated.rxPackets).toBe(
      s.accumulated.txPackets,
    );
  });

  it('two ports (io forwarding after port attach): per-port blocks and the total', () => {
    const s = parseForwardStats(fixture('interactive-forwarding.txt'))!;
    expect(s.ports.map((p) => p.port)).toEqual([0, 1]);
    expect(s.ports[0]!.rxPackets + s.ports[1]!.rxPackets).toBe(s.accumulated.rxPackets);
    expect(s.ports[0]!.txPackets + s.ports[1]!.txPackets).toBe(s.accumulated.txPackets);
  });

  it('NIC statistics blocks (--stats-period output and show port stats)', () => {
    const all = parsePortStats(fixture('virtio-user-txonly.txt'));
    expect(all.length).toBeGreaterThan(3);
    const last = latestPortStats(fixture('virtio-user-txonly.txt')).get(0)!;
    expect(last).toMatchObject({
      port: 0,
      rxPackets: 0,
      txPackets: 133290432,
      txBytes: 8530587648,
      txPps: 21488009,
    });
    const one = parsePortStats(fixture('interactive-attach.txt'));
    expect(one).toEqual([
      {
        port: 1,
        rxPackets: 0,
        rxMissed: 0,
        rxBytes: 0,
        rxErrors: 0,
        rxNombuf: 0,
        txPackets: 0,
        txErrors: 0,
        txBytes: 0,
        rxPps: 0,
        rxBps: 0,
        txPps: 0,
        txBps: 0,
      },
    ]);
  });

  it('show port summary all, including a name wider than its column', () => {
    const text = fixture('interactive-forwarding.txt');
    const second = text.slice(text.indexOf('Number of available ports: 2'));
    expect(parsePortSummary(second)).toEqual([
      {
        port: 0,
        mac: '56:48:4F:53:54:00',
        name: 'net_vhost0',
        driver: 'net_vhost',
        status: 'up',
        link: '10 Gbps',
      },
      {
        port: 1,
        mac: expect.stringMatching(/^[0-9A-F:]{17}$/),
        name: 'net_virtio_user1',
        driver: 'net_virtio_user',
        status: 'up',
        link: 'Unknown',
      },
    ]);
  });

  it('show port info: link, driver, queues, MTU and every field', () => {
    const info = parsePortInfo(fixture('port-info.txt'))!;
    expect(info).toMatchObject({
      port: 1,
      mac: '0A:2A:9A:E0:DA:AB',
      deviceName: 'net_virtio_user1',
      driverName: 'net_virtio_user',
      linkUp: false,
      linkSpeed: 'None',
      mtu: 1500,
      rxQueues: 1,
      txQueues: 1,
    });
    expect(info.fields.Devargs).toBe('path=/tmp/vipc-capture/vhi.sock,queues=1');
    expect(parsePortInfo('Invalid port 9')).toBeUndefined();
  });

  it('no block -> undefined / []; a truncated block is ignored; a malformed counter is a PARSE_ERROR', () => {
    expect(parseForwardStats('Bye...\n')).toBeUndefined();
    expect(parsePortStats('')).toEqual([]);
    const acc = fixture('vhost-rxonly.txt');
    const cut = acc.slice(0, acc.indexOf('Accumulated forward statistics') + 80);
    expect(parseForwardStats(cut)).toBeUndefined();
    const bad = acc.replace('RX-packets: 142419744      RX-dropped', 'RX-packets: 1e9      RX-dropped');
    expect(() => parseForwardStats(bad)).toThrow(DpdkError);
    const huge = acc.replaceAll('142419744', '99999999999999999999');
    expect(() => parseForwardStats(huge)).toThrow(/exceeds 2\^53/);
    expect(() =>
      parsePortSummary(
        'Number of available ports: 2\nPort MAC Address       Name         Driver         Status   Link\n0    56:48:4F:53:54:00 a b up 1\n',
      ),
    ).toThrow(/1 row\(s\) but says 2/);
  });

  it('fuzz: arbitrary and mutated output never crashes the parsers with anything but DpdkError', () => {
    const base = fixture('interactive-forwarding.txt');
    const mutated = fc
      .tuple(fc.nat(base.length), fc.nat(200), fc.string({ maxLength: 40 }))
      .map(([at, del, ins]) => base.slice(0, at) + ins + base.slice(at + del));
    const deadline = Date.now() + 10_000;
    fc.assert(
      fc.property(fc.oneof(mutated, fc.string({ maxLength: 2000 })), (text) => {
        if (Date.now() > deadline) return;
        for (const f of [parseForwardStats, parsePortStats, parsePortSummary, parsePortInfo] as ((
          t: string,
        ) => unknown)[]) {
          try {
            f(text);
          } catch (e) {
            expect(e).toBeInstanceOf(DpdkError);
          }
        }
      }),
      { numRuns: 1500 },
    );
  });
});
