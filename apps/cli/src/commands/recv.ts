import type { CommandContext } from '../command.js';
import { runSink } from '../endpoint.js';
import { encodeFrame } from '../frames.js';
import { openLink } from '../link.js';
import { linkOptions } from '../link-options.js';
import { formatRate, intOption, nowUs, throughput } from '../traffic.js';

const NEWLINE = Buffer.from('\n');

export async function run(ctx: CommandContext): Promise<number> {
  const v = ctx.values;
  const options = linkOptions(v, 'backend', ctx.signal);
  const count = intOption(v.count, 'count', 0, 0, 1e12);
  const binary = v.binary === true;
  const print = !ctx.out.json;

  ctx.out.log(
    `vipc recv: ${options.listen ? 'waiting for a peer on' : 'connecting to'} ${options.socket} as ${options.role}`,
  );
  const link = await openLink(options);
  ctx.out.log(`vipc recv: link up (${options.ring} ring, ${options.mode} mode)`);
  const start = nowUs();
  // Back-pressure: a slow reader of our stdout slows the link down, nothing piles up.
  const write = (data: Uint8Array): Promise<void> | undefined =>
    process.stdout.write(data) ? undefined : new Promise((r) => process.stdout.once('drain', r));
  let c: Awaited<ReturnType<typeof runSink>>;
  try {
    c = await runSink(link, {
      count,
      signal: ctx.signal,
      onProgress: (k) => ctx.out.progress(`received ${k.received}${count ? `/${count}` : ''}`),
      onMessage: print ? (m) => write(binary ? encodeFrame(m) : Buffer.concat([m, NEWLINE])) : undefined,
    });
  } finally {
    ctx.out.clearProgress();
    await link.close();
  }
  const t = throughput(c.received, c.bytesReceived, (nowUs() - start) / 1e6);
  if (ctx.out.json) ctx.out.document({ ok: true, received: c.received, bytes: c.bytesReceived, ...t });
  else
    ctx.out.log(
      `vipc recv: ${c.received} messages, ${c.bytesReceived} bytes (${formatRate(t.messagesPerSecond, t.megabytesPerSecond)})`,
    );
  return 0;
}
