// The floor of `pnpm --filter @vipc/vring bench`: what any JavaScript ring
// costs on this machine before it checks anything. The same split-ring bytes
// as the vring run (descriptor table, avail and used rings at the spec's
// offsets, the same ring size, data slots, batch and payload copy), but
// written and read with no validation, no free list, no tokens, no
// notification logic and no memory translation: a sender that copies each
// message into its slot, writes a descriptor and an avail entry and publishes
// avail.idx once per batch; a receiver that reads each message's first byte in
// place and writes a used element. Not a transport anyone should use: it
// trusts the peer completely. It tells how much of the vring's cost is its
// checks and bookkeeping, and how much is moving the bytes between two cores.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Fd, memfdCreate, mmap } from '@vipc/shm';
import { batchFor, layout } from './bench-geometry.mjs';

const SELF = fileURLToPath(import.meta.url);
const CTL = 64; // [0] ready, [1] stop

function views(buffer, l, size) {
  const at = l.ringAt;
  return {
    ctl: new Int32Array(buffer, 0, CTL / 4),
    desc: new Uint32Array(buffer, at + l.ring.descTable, 4 * size),
    avail: new Uint16Array(buffer, at + l.ring.availRing, 2 + size),
    used16: new Uint16Array(buffer, at + l.ring.usedRing, 2),
    used32: new Uint32Array(buffer, at + l.ring.usedRing, 1 + 2 * size),
    bytes: new Uint8Array(buffer),
  };
}

// `node bench-floor.mjs receiver <ring size> <msg>`, the memfd on fd 3
function receiver([sizeText, msgText]) {
  const size = Number(sizeText);
  const l = layout('split', size, Number(msgText));
  const map = mmap(new Fd(3));
  const { ctl, desc, avail, used16, used32, bytes } = views(map.buffer, l, size);
  const mask = size - 1;
  Atomics.store(ctl, 0, 1);
  let last = 0;
  let check = 0;
  while (Atomics.load(ctl, 1) === 0) {
    const idx = Atomics.load(avail, 1);
    if (idx === last) continue;
    for (let n = (idx - last) & 0xffff; n > 0; n--) {
      const slot = last & mask;
      const head = avail[2 + slot];
      check += bytes[desc[head << 2]]; // the address is the offset in the mapping: no translation
      used32[1 + 2 * slot] = head;
      used32[2 + 2 * slot] = 0;
      last = (last + 1) & 0xffff;
    }
    Atomics.store(used16, 1, last);
  }
  map.unmap();
  process.exit(check < 0 ? 1 : 0);
}

/** Messages/s through the unchecked ring between two processes; `size` descriptors, batches as the vring run. */
export async function floorThroughput(size, msg, seconds) {
  const l = layout('split', size, msg);
  const memfd = memfdCreate(`vring-floor-${process.pid}`, { size: l.total });
  const map = mmap(memfd);
  const child = spawn(process.execPath, [SELF, 'receiver', String(size), String(msg)], {
    stdio: ['ignore', 'inherit', 'inherit', memfd.fd],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const { ctl, desc, avail, used16, bytes } = views(map.buffer, l, size);
    const until = Date.now() + 30_000;
    while (Atomics.load(ctl, 0) === 0) {
      if (Date.now() > until) throw new Error('floor receiver did not start');
      await new Promise((r) => setTimeout(r, 5));
    }
    const payload = new Uint8Array(msg).fill(0x5a);
    const batch = batchFor(msg);
    const mask = size - 1;
    let next = 0;
    let lastUsed = 0;
    let inFlight = 0;
    let slot = 0;
    let done = 0;
    const end = Date.now() + seconds * 1000;
    const t0 = process.hrtime.bigint();
    while ((done & 1023) !== 0 || Date.now() < end) {
      let added = 0;
      while (added < batch && inFlight < size) {
        const off = l.data + slot * l.slot;
        bytes.set(payload, off);
        const w = slot << 2;
        desc[w] = off;
        desc[w + 1] = 0;
        desc[w + 2] = msg;
        desc[w + 3] = 0;
        avail[2 + (next & mask)] = slot;
        next = (next + 1) & 0xffff;
        slot = slot + 1 === size ? 0 : slot + 1;
        inFlight++;
        added++;
      }
      if (added) Atomics.store(avail, 1, next);
      const n = (Atomics.load(used16, 1) - lastUsed) & 0xffff;
      lastUsed = (lastUsed + n) & 0xffff;
      inFlight -= n;
      done += n;
    }
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    return { rate: done / dt, gbps: (done * msg) / dt / 1e9 };
  } finally {
    Atomics.store(new Int32Array(map.buffer, 0, CTL / 4), 1, 1);
    await exited;
    map.unmap();
    memfd.close();
  }
}

if (process.argv[1] === SELF && process.argv[2] === 'receiver') receiver(process.argv.slice(3));
