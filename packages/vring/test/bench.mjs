// vring between two processes over one memfd (poll mode and eventfd mode):
// messages/s, GB/s and round-trip p50/p99 at 64 B, 1500 B and 64 KiB, plus a
// memcpy baseline from the same run. Not a test: `pnpm --filter @vipc/vring bench`.
// Uses the built package (dist). Figures swing with the host: compare within one run.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EventFd, Fd, memfdCreate, mmap } from '@vipc/shm';
import {
  GuestMemory,
  PackedDeviceQueue,
  PackedDriverQueue,
  packedLayout,
  SplitDeviceQueue,
  SplitDriverQueue,
  splitLayout,
} from '../dist/index.js';

const SECONDS = Number(process.env.VRING_BENCH_SECONDS ?? 2);
const BASE = 0x100000n;
const CTL = 64; // control words at the start: [0] phase, [1] stop

function layout(kind, size, msg) {
  const ring = kind === 'split' ? splitLayout(size) : packedLayout(size);
  const ringAt = 4096;
  const data = ringAt + Math.ceil(ring.totalBytes / 4096) * 4096;
  const slot = Math.ceil((msg + 64) / 64) * 64;
  return { ring, ringAt, data, slot, total: data + size * slot };
}

function queues(kind, size, buffer, l, role, eventIdx) {
  const memory = new GuestMemory([{ guestAddress: BASE, size: l.total, buffer }]);
  const b = BASE + BigInt(l.ringAt);
  const addresses =
    kind === 'split'
      ? { descTable: b, availRing: b + BigInt(l.ring.availRing), usedRing: b + BigInt(l.ring.usedRing) }
      : {
          descRing: b,
          driverEvent: b + BigInt(l.ring.driverEvent),
          deviceEvent: b + BigInt(l.ring.deviceEvent),
        };
  const opts = { memory, size, addresses, features: { eventIdx } };
  if (role === 'driver') return kind === 'split' ? new SplitDriverQueue(opts) : new PackedDriverQueue(opts);
  return kind === 'split' ? new SplitDeviceQueue(opts) : new PackedDeviceQueue(opts);
}

// ---- device process -------------------------------------------------------
async function device([mode, kind, sizeText, msgText]) {
  const size = Number(sizeText);
  const msg = Number(msgText);
  const map = mmap(new Fd(3));
  const kick = EventFd.from(new Fd(4));
  const call = EventFd.from(new Fd(5));
  const l = layout(kind, size, msg);
  const q = queues(kind, size, map.buffer, l, 'device', mode === 'event');
  const ctl = new Int32Array(map.buffer, 0, CTL / 4);
  const sink = new Uint8Array(msg);
  let reuse; // one DescriptorChain object refilled by every pop()
  Atomics.store(ctl, 0, 1); // ready
  if (mode === 'poll' || mode === 'rtt') {
    q.disableNotifications();
    while (Atomics.load(ctl, 1) === 0) {
      let n = 0;
      for (let c = q.pop(reuse); c !== null; c = q.pop(reuse)) {
        reuse = c;
        c.readInto(sink);
        q.addUsed(c.head, mode === 'rtt' ? c.write(sink) : 0);
        if (++n === 32) {
          q.publishUsed();
          n = 0;
        }
      }
      q.publishUsed();
    }
  } else {
    await new Promise((resolve) => {
      const run = () => {
        for (;;) {
          q.disableNotifications();
          let n = 0;
          for (let c = q.pop(reuse); c !== null; c = q.pop(reuse)) {
            reuse = c;
            c.readInto(sink);
            q.addUsed(c.head, 0);
            if (++n % 32 === 0 && q.publishUsed()) call.kick();
          }
          if (q.publishUsed()) call.kick();
          if (Atomics.load(ctl, 1) !== 0) return resolve();
          if (n === 0 && !q.enableNotifications()) return;
        }
      };
      kick.watch(run);
      run();
    });
  }
  kick.close();
  call.close();
  map.unmap();
  process.exit(0);
}

// ---- driver (this process) -------------------------------------------------
function startDevice(mode, kind, size, msg) {
  const l = layout(kind, size, msg);
  const memfd = memfdCreate(`vring-bench-${process.pid}`, { size: l.total });
  const map = mmap(memfd);
  const kick = EventFd.create();
  const call = EventFd.create();
  const child = spawn(
    process.execPath,
    [fileURLToPath(import.meta.url), 'device', mode, kind, String(size), String(msg)],
    { stdio: ['ignore', 'inherit', 'inherit', memfd.fd, kick.fd.fd, call.fd.fd] },
  );
  const ctl = new Int32Array(map.buffer, 0, CTL / 4);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return { l, map, memfd, kick, call, child, ctl, exited };
}

async function waitReady(ctl) {
  const until = Date.now() + 30_000;
  while (Atomics.load(ctl, 0) === 0) {
    if (Date.now() > until) throw new Error('device process did not start');
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function finish(d) {
  Atomics.store(d.ctl, 1, 1);
  d.kick.kick();
  await d.exited;
  d.kick.close();
  d.call.close();
  d.map.unmap();
  d.memfd.close();
}

async function throughputPoll(kind, size, msg) {
  const d = startDevice('poll', kind, size, msg);
  await waitReady(d.ctl);
  const q = queues(kind, size, d.map.buffer, d.l, 'driver', false);
  q.disableCallbacks();
  const bytes = new Uint8Array(d.map.buffer);
  const payload = new Uint8Array(msg).fill(0x5a);
  const bufs = [{ addr: 0, len: msg }];
  const slots = d.l.slot;
  let done = 0;
  let slot = 0;
  const end = Date.now() + SECONDS * 1000;
  const t0 = process.hrtime.bigint();
  while ((done & 1023) !== 0 || Date.now() < end) {
    let added = 0;
    while (added < 32 && q.freeCount() > 0) {
      const off = d.l.data + slot * slots;
      bytes.set(payload, off); // copy-in, as a real sender would
      bufs[0].addr = Number(BASE) + off;
      q.add(bufs);
      slot = slot + 1 === size ? 0 : slot + 1;
      added++;
    }
    if (added) q.publish();
    while (q.popUsedHead() >= 0) done++;
  }
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  await finish(d);
  return { rate: done / dt, gbps: (done * msg) / dt / 1e9 };
}

async function roundTrip(kind, msg, samples = 20000) {
  const size = 64;
  const d = startDevice('rtt', kind, size, msg);
  await waitReady(d.ctl);
  const q = queues(kind, size, d.map.buffer, d.l, 'driver', false);
  q.disableCallbacks();
  const bytes = new Uint8Array(d.map.buffer);
  const payload = new Uint8Array(msg).fill(1);
  const off = d.l.data;
  const addr = Number(BASE) + off;
  const bufs = [
    { addr, len: msg },
    { addr: addr + msg, len: msg, writable: true },
  ];
  const times = new Float64Array(samples);
  for (let i = -2000; i < samples; i++) {
    const t = process.hrtime.bigint();
    bytes.set(payload, off);
    q.add(bufs);
    q.publish();
    while (q.popUsedHead() < 0) {}
    if (i >= 0) times[i] = Number(process.hrtime.bigint() - t) / 1000;
  }
  await finish(d);
  times.sort();
  return { p50: times[samples >> 1], p99: times[Math.floor(samples * 0.99)] };
}

async function throughputEvent(kind, size, msg) {
  const d = startDevice('event', kind, size, msg);
  await waitReady(d.ctl);
  const q = queues(kind, size, d.map.buffer, d.l, 'driver', true);
  const bytes = new Uint8Array(d.map.buffer);
  const payload = new Uint8Array(msg).fill(0x5a);
  const bufs = [{ addr: 0, len: msg }];
  let done = 0;
  let slot = 0;
  let kicks = 0;
  const end = Date.now() + SECONDS * 1000;
  const t0 = process.hrtime.bigint();
  await new Promise((resolve) => {
    const run = () => {
      for (;;) {
        q.disableCallbacks();
        while (q.popUsedHead() >= 0) done++;
        if (Date.now() > end && q.inFlight() === 0) return resolve();
        let added = 0;
        while (added < 32 && q.freeCount() > 0 && Date.now() <= end) {
          const off = d.l.data + slot * d.l.slot;
          bytes.set(payload, off);
          bufs[0].addr = Number(BASE) + off;
          q.add(bufs);
          slot = slot + 1 === size ? 0 : slot + 1;
          added++;
        }
        if (added && q.publish()) {
          d.kick.kick();
          kicks++;
        }
        if (added === 0 && !q.enableCallbacks()) return;
      }
    };
    d.call.watch(run);
    run();
  });
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  d.call.close();
  await finish(d).catch(() => {});
  return { rate: done / dt, gbps: (done * msg) / dt / 1e9, kicksPerMessage: kicks / done };
}

function memcpyBaseline(block = 65536) {
  const src = new Uint8Array(new ArrayBuffer(block * 16)).fill(3);
  const dst = new Uint8Array(new ArrayBuffer(block * 16));
  let n = 0;
  const end = Date.now() + 1000;
  const t0 = process.hrtime.bigint();
  while (Date.now() < end) {
    for (let i = 0; i < 16; i++) dst.set(src.subarray(i * block, (i + 1) * block), ((i + 7) & 15) * block);
    n += 16;
  }
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  return (n * block) / dt / 1e9;
}

async function main() {
  const kinds = (process.env.VRING_BENCH_KINDS ?? 'split,packed').split(',');
  const fmt = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : `${(x / 1e3).toFixed(0)} k`);
  console.log(`memcpy 64 KiB blocks (ArrayBuffer, 1 MiB working set): ${memcpyBaseline().toFixed(1)} GB/s`);
  for (const kind of kinds) {
    for (const [msg, size] of [
      [64, 256],
      [1500, 256],
      [65536, 64],
    ]) {
      const p = await throughputPoll(kind, size, msg);
      const e = await throughputEvent(kind, size, msg);
      const r = await roundTrip(kind, msg, msg > 4096 ? 5000 : 20000);
      const row = `${kind} ${msg} B: poll ${fmt(p.rate)} msgs/s (${p.gbps.toFixed(2)} GB/s), event ${fmt(e.rate)} msgs/s (${e.kicksPerMessage.toFixed(3)} kicks/msg), round trip p50 ${r.p50.toFixed(1)} µs p99 ${r.p99.toFixed(1)} µs`;
      console.log(row);
    }
  }
}

if (process.argv[2] === 'device') await device(process.argv.slice(3));
else await main();
