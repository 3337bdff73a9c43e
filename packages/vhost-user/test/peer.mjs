// The other process of the cross-process tests: `node test/peer.mjs <socket> <mode> <count> <echoCount>`.
// It uses the built package, as a user's program would: a vipc front-end that
// sends <count> messages, then receives <echoCount> and checks their checksums.
import { connectChannel } from '../dist/index.js';

const [path, mode, countText, echoText] = process.argv.slice(2);
const count = Number(countText);
const echoCount = Number(echoText);

/** Deterministic message i: length 1..4000, bytes from a small PRNG seeded by i. */
export function message(i) {
  let x = (i * 2654435761) >>> 0 || 1;
  const len = 1 + (x % 4000);
  const m = new Uint8Array(len);
  for (let k = 0; k < len; k++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    m[k] = x & 0xff;
  }
  return m;
}

function checksum(m) {
  let h = 2166136261;
  for (const b of m) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h;
}

const client = await connectChannel(path, { mode, timeoutMs: 20_000 });
const batch = [];
for (let i = 0; i < count; i++) {
  batch.push(message(i));
  if (batch.length === 32) {
    await client.channel.sendBatch(batch.splice(0));
  }
}
if (batch.length) await client.channel.sendBatch(batch);
let ok = 0;
let bad = 0;
let i = 0;
for await (const m of client.channel) {
  if (checksum(m) === checksum(message(1_000_000 + i))) ok++;
  else bad++;
  if (++i === echoCount) break;
}
process.stdout.write(`${JSON.stringify({ sent: client.channel.stats.sent, ok, bad })}\n`);
await client.stop();
