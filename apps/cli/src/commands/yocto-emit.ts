import { resolve } from 'node:path';
import type { CommandContext } from '../command.js';
import { CliError, usageError } from '../errors.js';
import { loadTopology } from '../topology.js';

async function loadYocto(): Promise<typeof import('@vipc/yocto')> {
  try {
    return await import('@vipc/yocto');
  } catch (err) {
    throw new CliError(
      'PEER_MISSING',
      `@vipc/yocto is not available: ${(err as Error).message.split('\n')[0]}`,
      'pnpm --filter @vipc/yocto build',
    );
  }
}

export async function run(ctx: CommandContext): Promise<number> {
  const v = ctx.values;
  const yocto = await loadYocto();
  const release = typeof v.release === 'string' ? v.release : undefined;
  if (release === undefined) throw usageError(`--release is required (one of: ${yocto.RELEASES.join(', ')})`);
  if (!(yocto.RELEASES as readonly string[]).includes(release))
    throw usageError(`--release must be one of: ${yocto.RELEASES.join(', ')} (got '${release}')`);
  const dryRun = v['dry-run'] === true;
  try {
    return emit(ctx, yocto, release as (typeof yocto.RELEASES)[number], dryRun);
  } catch (err) {
    if (err instanceof yocto.YoctoError) throw new CliError('FAILED', err.message);
    throw err;
  }
}

function emit(
  ctx: CommandContext,
  yocto: typeof import('@vipc/yocto'),
  release: (typeof yocto.RELEASES)[number],
  dryRun: boolean,
): number {
  const v = ctx.values;
  if (typeof v.out !== 'string' && !dryRun) throw usageError('--out DIR is required (or --dry-run)');
  const file = ctx.positionals[0];
  const topology = file ? yocto.fromCliTopology(loadTopology(file)) : yocto.DEFAULT_TOPOLOGY;
  const options = { release, ...(typeof v.layer === 'string' ? { layerName: v.layer } : {}) };
  if (dryRun) {
    const entries = yocto.dryRun(topology, options);
    if (ctx.out.json) ctx.out.document({ ok: true, release, topology: file ?? 'default', files: entries });
    else for (const e of entries) ctx.out.print(`${e.path}  ${e.purpose}`);
    return 0;
  }
  const out = resolve(String(v.out));
  ctx.out.log(`vipc yocto: emitting the ${release} layer for ${file ?? 'the default topology'} into ${out}`);
  const r = yocto.emitLayer(out, topology, options, { prune: v.prune === true });
  if (ctx.out.json)
    ctx.out.document({
      ok: true,
      release,
      dir: r.dir,
      files: r.files.map((f) => f.path),
      removed: r.removed,
    });
  else {
    ctx.out.print(
      `vipc yocto: wrote ${r.files.length} files to ${r.dir}${r.removed.length ? ` (removed ${r.removed.length} stale)` : ''}`,
    );
    ctx.out.print(`  add it to a build: bitbake-layers add-layer ${r.dir}`);
  }
  return 0;
}
