/** The testpmd command lines `vipc up` runs for DPDK endpoints (recipes of PEERS.md). */
import { existsSync } from 'node:fs';
import { CliError } from './errors.js';
import type { Role } from './topology.js';

export function testpmdPath(): string {
  for (const p of ['/usr/bin/dpdk-testpmd', '/usr/local/bin/dpdk-testpmd']) if (existsSync(p)) return p;
  throw new CliError('PEER_MISSING', 'dpdk-testpmd is not installed', 'apt-get install dpdk-dev');
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
}

export function testpmdArgs(p: TestpmdPlan): string[] {
  const vdev =
    p.role === 'backend'
      ? `net_vhost0,iface=${p.socket},queues=${p.queues}`
      : `net_virtio_user0,path=${p.socket},queues=${p.queues}${p.packed ? ',packed_vq=1' : ''}`;
  return [
    '-l',
    '0-1',
    '-n',
    '1',
    `--file-prefix=${p.filePrefix}`,
    '--no-pci',
    ...(p.hugeDir
      ? ['--huge-dir', p.hugeDir, '--single-file-segments', '-m', String(p.memoryMb)]
      : ['--no-huge', '-m', String(p.memoryMb)]),
    '--vdev',
    vdev,
    '--',
    '--nb-cores=1',
    `--forward-mode=${p.forwardMode}`,
    ...(p.txpkts ? [`--txpkts=${p.txpkts}`] : []),
    '--total-num-mbufs=16384',
    '--stats-period',
    '1',
  ];
}
