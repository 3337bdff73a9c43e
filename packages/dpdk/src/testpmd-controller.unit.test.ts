import { EventEmitter } from 'node:events';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DpdkError, type DpdkProcess, type ExitInfo, TestpmdController } from './index.js';

/**
 * A stand-in for a testpmd process that answers like the real prompt does (echo "cmd\r\n", the
 * reply, "testpmd> "), delivering its output in the chunks a test chooses, with asynchronous port
 * events interleaved. Only for exercising reply delimiting under every chunking; the real prompt is
 * covered by testpmd-controller.test.ts.
 */
class FakeTestpmd extends EventEmitter {
  interactive = true;
  state: 'running' | 'exited' = 'running';
  pid = 4242;
  lastLines: string[] = [];
  pending = '';
  constructor(
    private readonly replies: Record<string, string>,
    private readonly cut: (text: string) => string[],
    private readonly noise: string,
  ) {
    super();
  }
  write(text: string): void {
    if (this.state === 'exited') throw new DpdkError('CLOSED', 'gone');
    this.pending += text;
    let nl = this.pending.indexOf('\n');
    let out = '';
    while (nl >= 0) {
      const line = this.pending.slice(0, nl);
      this.pending = this.pending.slice(nl + 1);
      out += `${line}\r\n`;
      if (!line.startsWith('#')) out += `${this.noise}${this.replies[line] ?? 'Command not found\n'}`;
      out += 'testpmd> ';
      nl = this.pending.indexOf('\n');
    }
    const chunks = this.cut(out);
    queueMicrotask(() => {
      for (const c of chunks) this.emit('output', { chunk: c, stream: 'stdout' });
    });
  }
  exit(): void {
    this.state = 'exited';
    this.emit('exit', {
      code: 0,
      signal: null,
      requested: false,
      lastLines: [],
      forwardStats: undefined,
      cleaned: {},
    } as unknown as ExitInfo);
  }
  async stop(): Promise<ExitInfo> {
    this.exit();
    return {} as ExitInfo;
  }
}

const REPLIES: Record<string, string> = {
  'show port summary all':
    'Number of available ports: 1\nPort MAC Address       Name         Driver         Status   Link\n0    56:48:4F:53:54:00 net_vhost0   net_vhost      up       10 Gbps\n',
  'port attach net_virtio_user1,path=/s':
    'Attaching a new port...\nPort 1 is attached. Now total ports is 2\nDone\n',
  'show port stats 0':
    '\n  ######################## NIC statistics for port 0  ########################\n  RX-packets: 12   RX-missed: 0   RX-bytes:  768\n  RX-errors: 0\n  RX-nombuf:  0\n  TX-packets: 3   TX-errors: 0   TX-bytes:  192\n\n  Throughput (since last show)\n  Rx-pps: 1  Rx-bps: 2\n  Tx-pps: 3  Tx-bps: 4\n  ############################################################################\n',
  'set txpkts 64': '',
};

function cutter(points: number[]): (t: string) => string[] {
  return (t) => {
    const cuts = [...new Set(points.map((p) => p % (t.length + 1)))].sort((a, b) => a - b);
    const out: string[] = [];
    let last = 0;
    for (const c of cuts) {
      out.push(t.slice(last, c));
      last = c;
    }
    out.push(t.slice(last));
    return out.filter((c) => c !== '');
  };
}

describe('TestpmdController reply delimiting (any chunking, interleaved events)', () => {
  it('property: replies are exact however the output is split', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat(2000), { maxLength: 30 }),
        fc.constantFrom('', '\nPort 0: link state change event\n', '\nPort 0: queue state event\n'),
        async (points, noise) => {
          const fake = new FakeTestpmd(REPLIES, cutter(points), noise);
          const ctl = new TestpmdController(fake as unknown as DpdkProcess);
          const [summary, port, stats] = await Promise.all([
            ctl.portSummary(),
            ctl.portAttach('net_virtio_user1,path=/s'),
            ctl.portStats(0),
            ctl.setTxpkts(64),
          ]);
          expect(summary).toEqual([
            {
              port: 0,
              mac: '56:48:4F:53:54:00',
              name: 'net_vhost0',
              driver: 'net_vhost',
              status: 'up',
              link: '10 Gbps',
            },
          ]);
          expect(port).toBe(1);
          expect(stats).toMatchObject([{ port: 0, rxPackets: 12, txPackets: 3, rxBytes: 768, txBps: 4 }]);
          await expect(ctl.command('frobnicate')).rejects.toMatchObject({ code: 'COMMAND_FAILED' });
        },
      ),
      { numRuns: 150 },
    );
  });

  it('a reply that never comes is a TIMEOUT; an exit mid-command is EXITED; afterwards CLOSED', async () => {
    const silent = new FakeTestpmd({}, () => [], '');
    const ctl = new TestpmdController(silent as unknown as DpdkProcess);
    await expect(ctl.command('show port summary all', { timeoutMs: 50 })).rejects.toMatchObject({
      code: 'TIMEOUT',
    });
    const pending = ctl.command('show port summary all');
    await new Promise((r) => setImmediate(r)); // let the queued command be written
    silent.exit();
    await expect(pending).rejects.toMatchObject({ code: 'EXITED' });
    await expect(ctl.command('show port summary all')).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('refuses multi-line, empty, comment and over-long commands before writing anything', async () => {
    const fake = new FakeTestpmd(REPLIES, (t) => [t], '');
    const ctl = new TestpmdController(fake as unknown as DpdkProcess);
    for (const bad of ['a\nb', '', '   ', '#x', 'x'.repeat(600)]) {
      await expect(ctl.command(bad)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    }
    expect(fake.pending).toBe('');
    await expect(ctl.portStart(-1)).rejects.toThrow(/port -1/);
    await expect(ctl.start({ txFirst: 0 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    expect(() => new TestpmdController({ interactive: false } as unknown as DpdkProcess)).toThrow(
      /needs testpmd started with -i/,
    );
  });
});
