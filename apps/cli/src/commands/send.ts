import type { CommandContext } from '../command.js';
import { runSource } from '../endpoint.js';
import { usageError } from '../errors.js';
import { FrameDecoder, LineDecoder } from '../frames.js';
import { openLink } from '../link.js';
import { linkOptions } from '../link-options.js';
import { formatRate, intOption, nowUs, throughput } from '../traffic.js';

export async function run(ctx: CommandContext): Promise<number> {
  const v = ctx.values;
  const options = linkOptions(v, 'frontend', ctx.signal);
  const generated = v.count !== undefined;
  if (!generated && v.size !== undefined) throw usageError('--size needs --count (generated traffic)');
  if (generated && v.binary === true)
    throw usageError('--binary frames come from stdin; it excludes --count');
  const count = intOption(v.count, 'count', 0, 1, 1e12);
  const size = intOption(v.size, 'size', 64, 8, 65_536);

  ctx.out.log(
    `vipc send: ${options.listen ? 'waiting for a peer on' : 'connecting to'} ${options.socket} as ${options.role}`,
  );
  const link = await openLink(options);
  ctx.out.log(`vipc send: link up (${options.ring} ring, ${options.mode} mode)`);
  const start = nowUs();
  let sent = 0;
  let bytes = 0;
  try {
    if (generated) {
      const c = await runSource(link, {
        count,
        size,
        signal: ctx.signal,
        onProgress: (c) => ctx.out.progress(`sent ${c.sent}/${count}`),
      });
      sent = c.sent;
      bytes = c.bytesSent;
    } else {
      const decoder =
        v.binary === true ? new FrameDecoder(link.maxMessageSize) : new LineDecoder(link.maxMessageSize);
      const send = async (messages: Buffer[]) => {
        for (const m of messages) {
          await link.send(m);
          sent++;
          bytes += m.length;
        }
      };
      for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
        if (ctx.signal.aborted) break;
        await send(decoder.push(chunk));
      }
      if (decoder instanceof LineDecoder) await send(decoder.end());
      else if (decoder.remainder > 0)
        ctx.out.warn(`input ended inside a frame (${decoder.remainder} bytes dropped)`);
    }
    // Every message must reach the peer before we hang up.
    await link.flush();
  } finally {
    ctx.out.clearProgress();
    await link.close();
  }
  const t = throughput(sent, bytes, (nowUs() - start) / 1e6);
  if (ctx.out.json) ctx.out.document({ ok: true, sent, bytes, ...t });
  else
    ctx.out.log(
      `vipc send: ${sent} messages, ${bytes} bytes (${formatRate(t.messagesPerSecond, t.megabytesPerSecond)})`,
    );
  return 0;
}
