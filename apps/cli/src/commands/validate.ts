import type { CommandContext } from '../command.js';
import { loadTopology } from '../topology.js';

export async function run(ctx: CommandContext): Promise<number> {
  const file = ctx.positionals[0]!;
  const topology = loadTopology(file);
  if (ctx.out.json) {
    ctx.out.document({ ok: true, file, topology });
    return 0;
  }
  ctx.out.print(`${file}: valid topology '${topology.name}'`);
  for (const l of topology.links) {
    ctx.out.print(
      `  link ${l.name}: ${l.socket} (${l.ring} ring, ${l.queues} queue pair(s) of ${l.queueSize}, ${l.mode} mode)`,
    );
  }
  for (const e of topology.endpoints)
    ctx.out.print(`  host ${e.endpoint.kind} ${e.endpoint.role} '${e.name}' on ${e.endpoint.link}`);
  for (const c of topology.containers)
    ctx.out.print(
      `  container '${c.name}' (${c.rootfs} rootfs): vipc ${c.endpoint.role} on ${c.endpoint.link}`,
    );
  if (topology.hugepages)
    ctx.out.print(
      `  hugepages: ${topology.hugepages.count} x ${topology.hugepages.pageSize} at ${topology.hugepages.mount}`,
    );
  return 0;
}
