import {
  findHugepageFiles,
  hugepagePools,
  hugetlbfsMounts,
  mountHugetlbfs,
  parsePageSizeKb,
  removeLeftoverHugepageFiles,
  setHugepageCount,
  unmountHugetlbfs,
} from '@vipc/dpdk';
import type { CommandContext } from '../command.js';
import { CliError, usageError } from '../errors.js';
import { intOption } from '../traffic.js';

export async function run(ctx: CommandContext): Promise<number> {
  const v = ctx.values;
  const sizeText = typeof v.size === 'string' ? v.size : '2M';
  let sizeKb: number;
  try {
    sizeKb = parsePageSizeKb(sizeText);
  } catch (err) {
    throw usageError(`--size: ${(err as Error).message}`);
  }
  const actions: string[] = [];
  try {
    if (v.reserve !== undefined) {
      const n = intOption(v.reserve, 'reserve', 0, 0, 1_000_000);
      const r = setHugepageCount(n, { sizeKb });
      actions.push(`reserved ${r.current} pages of ${sizeText} (was ${r.previous})`);
      if (r.current < n)
        ctx.out.warn(`the kernel reserved only ${r.current} of ${n} pages (memory is short or fragmented)`);
    }
    if (typeof v.mount === 'string') {
      const m = mountHugetlbfs(v.mount, { pageSize: sizeText });
      actions.push(`mounted hugetlbfs (${m.pageSizeKb} kB pages) on ${m.mountPoint}`);
    }
    if (typeof v.unmount === 'string') {
      unmountHugetlbfs(v.unmount);
      actions.push(`unmounted ${v.unmount}`);
    }
    if (v.clean === true) {
      const removed = removeLeftoverHugepageFiles();
      actions.push(
        `removed ${removed.length} leftover hugepage file(s)${removed.length ? `: ${removed.map((f) => f.path).join(', ')}` : ''}`,
      );
    }
  } catch (err) {
    const e = err as Error & { code?: string };
    throw new CliError('FAILED', e.message, e.code === 'NOT_PERMITTED' ? 'run as root' : undefined);
  }
  const pools = hugepagePools();
  const mounts = hugetlbfsMounts();
  const files = findHugepageFiles();
  if (ctx.out.json) {
    ctx.out.document({ ok: true, actions, pools, mounts, files });
    return 0;
  }
  for (const a of actions) ctx.out.log(`vipc dpdk hugepages: ${a}`);
  for (const p of pools) ctx.out.print(`${p.sizeKb} kB pages: ${p.total} reserved, ${p.free} free`);
  if (pools.length === 0) ctx.out.print('no hugepage sizes (kernel without CONFIG_HUGETLBFS)');
  for (const m of mounts) ctx.out.print(`hugetlbfs on ${m.mountPoint} (${m.pageSizeKb} kB pages)`);
  if (mounts.length === 0) ctx.out.print('no hugetlbfs mount (vipc dpdk hugepages --mount /dev/hugepages)');
  for (const f of files)
    ctx.out.print(
      `  ${f.path}: ${f.bytes} bytes, ${f.heldBy.length ? `held by ${f.heldBy.join(',')}` : 'leftover (vipc dpdk hugepages --clean)'}`,
    );
  return 0;
}
