/**
 * Hugepages for a topology: reserve pages (remembering the previous count, so
 * `down` restores it) and mount hugetlbfs where the topology wants it.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { CliError } from './errors.js';
import type { Journal } from './state.js';
import type { Hugepages } from './topology.js';

const run = promisify(execFile);

export interface HugepagePlan {
  sysfs: string;
  count: number;
  mount: string;
  pageSize: Hugepages['pageSize'];
}

const KB = { '2M': 2048, '1G': 1048576 } as const;

export function planHugepages(h: Hugepages): HugepagePlan {
  const sysfs = `/sys/kernel/mm/hugepages/hugepages-${KB[h.pageSize]}kB/nr_hugepages`;
  if (!existsSync(sysfs))
    throw new CliError(
      'PEER_MISSING',
      `this kernel has no ${h.pageSize} hugepages (${sysfs} is missing)`,
      'enable CONFIG_HUGETLBFS, or drop the hugepages section',
    );
  return { sysfs, count: h.count, mount: h.mount, pageSize: h.pageSize };
}

export function hugetlbfsMounts(): { target: string; options: string }[] {
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n');
  return mounts
    .map((l) => l.split(' '))
    .filter((f) => f[2] === 'hugetlbfs')
    .map((f) => ({ target: f[1]!, options: f[3] ?? '' }));
}

export async function reserveHugepages(plan: HugepagePlan, journal: Journal): Promise<void> {
  const current = Number(readFileSync(plan.sysfs, 'utf8').trim());
  if (current < plan.count) {
    if (process.getuid?.() !== 0)
      throw new CliError(
        'FAILED',
        `${plan.count} hugepages are needed, ${current} are reserved`,
        `echo ${plan.count} > ${plan.sysfs}   (as root)`,
      );
    await journal.step(
      { kind: 'hugepages', sysfs: plan.sysfs, previous: current, reserved: plan.count, status: 'pending' },
      () => {
        writeFileSync(plan.sysfs, String(plan.count));
        const now = Number(readFileSync(plan.sysfs, 'utf8').trim());
        if (now < plan.count)
          throw new CliError(
            'FAILED',
            `the kernel reserved only ${now} of ${plan.count} hugepages (memory is fragmented or short)`,
          );
      },
    );
  }
  if (!hugetlbfsMounts().some((m) => m.target === plan.mount)) {
    if (!existsSync(plan.mount))
      await journal.step({ kind: 'dir', path: plan.mount, status: 'pending' }, (r) => {
        mkdirSync(r.path, { recursive: true });
      });
    await journal.step({ kind: 'mount', target: plan.mount, status: 'pending' }, async () => {
      await run('mount', ['-t', 'hugetlbfs', '-o', `pagesize=${plan.pageSize}`, 'nodev', plan.mount]);
    });
  }
}
