/** The testpmd command lines `vipc up` and `vipc dpdk testpmd` run, built and checked by @vipc/dpdk. */
import { buildTestpmdArgv, type EalOptions, findExecutable, type TestpmdOptions } from '@vipc/dpdk';
import { CliError } from './errors.js';
import type { Role } from './topology.js';

export function testpmdPath(): string {
  const p = findExecutable('dpdk-testpmd');
  if (!p) throw new CliError('PEER_MISSING', 'dpdk-testpmd is not installed', 'apt-get install dpdk-dev');
  return p;
}

export interface TestpmdPlan {
  /** backend = net_vhost (creates the socket); frontend = net_virtio_user (connects). */
  role: Role;
  socket: string;
  queues: number;
  packed: boolean;
  forwardMode: 'rxonly' | 'txonly' | 'io' | 'macswap';
  memoryMb: number;
  /** hugetlbfs mount to use; undefined: --no-huge (memfd-backed memory). */
  hugeDir: string | undefined;
  filePrefix: string;
  txpkts?: number;
  interactive?: boolean;
}

export function testpmdOptions(p: TestpmdPlan): { eal: EalOptions; testpmd: TestpmdOptions } {
  return {
    eal: {
      lcores: [0, 1],
      memoryChannels: 1,
      filePrefix: p.filePrefix,
      noPci: true,
      memoryMb: p.memoryMb,
      ...(p.hugeDir ? { hugeDir: p.hugeDir, singleFileSegments: true } : { noHuge: true }),
      vdevs: [
        p.role === 'backend'
          ? { driver: 'net_vhost', iface: p.socket, queues: p.queues }
          : {
              driver: 'net_virtio_user',
              path: p.socket,
              queues: p.queues,
              ...(p.packed ? { packedVq: true } : {}),
            },
      ],
    },
    testpmd: {
      nbCores: 1,
      forwardMode: p.forwardMode,
      totalNumMbufs: 16384,
      ...(p.txpkts ? { txpkts: p.txpkts } : {}),
      ...(p.interactive ? { interactive: true } : { statsPeriod: 1 }),
    },
  };
}

export function testpmdArgs(p: TestpmdPlan): string[] {
  const o = testpmdOptions(p);
  return buildTestpmdArgv(o.eal, o.testpmd);
}
