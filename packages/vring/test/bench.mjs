// vring between two processes over one memfd (poll mode and eventfd mode)
// side by side with a Node Unix-socket stream (one write per message, and
// coalesced writes) and a worker MessagePort, in one run: messages/s, GB/s and
// round-trip p50/p99 at 64 B, 1500 B and 64 KiB, single-core memcpy, and the
// issue's targets as ratios of this run. Not a test:
// `pnpm --filter @vipc/vring bench` (uses the built package, dist).
// VRING_BENCH_SECONDS (default 1) per throughput phase, VRING_BENCH_ROUNDS
// (default 3, medians reported), VRING_BENCH_KINDS (default
// split,packed,slots), VRING_BENCH_SIZES (default 64,1500,65536).
// Kinds: split and packed are SplitDriverQueue/PackedDriverQueue against the
// device queue of their layout, one addBuffer() per message; slots is
// SplitSlotDriver (one fixed slot per descriptor, IN_ORDER) against
// SplitDeviceQueue with IN_ORDER and batchUsed, addBytesBatch() per batch.
// Figures swing with the host: compare within one run.
import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { EventFd, Fd, memfdCreate, mmap } from '@vipc/shm';
import {
  GuestMemory,
  PackedDeviceQueue,
  PackedDriverQueue,
  SplitDeviceQueue,
  SplitDriverQueue,
  SplitSlotDriver,
} from '../dist/index.js';
import {
  percentiles,
  portRoundTrip,
  portThroughput,
  socketRoundTrip,
  socketThroughput,
} from './bench-baselines.mjs';
import { floorThroughput } from './bench-floor.mjs';
import { batchFor, layout } from './bench-geometry.mjs';

const SECONDS = Number(process.env.VRING_BENCH_SECONDS ?? 1);
const ROUNDS = Number(process.env.VRING_BENCH_ROUNDS ?? 3);
const BASE = 0x100000n;
const CTL = 64; // control words at the start: [0] phase, [1] stop

function queues(kind, size, buffer, l, role, eventIdx) {
  const memory = new GuestMemory([{ guestAddress: BASE, size: l.total, buffer }]);
  const b = BASE + BigInt(l.ringAt);
  const addresses =
    kind !== 'packed'
      ? { descTable: b, availRing: b + BigInt(l.ring.availRing), usedRing: b + BigInt(l.ring.usedRing) }
      : {
          descRing: b,
          driverEvent: b + BigInt(l.ring.driverEvent),
          deviceEvent: b + BigInt(l.ring.deviceEvent),
        };
  const opts = { memory, size, addresses, features: { eventIdx } };
  if (kind === 'slots') {
    const features = { eventIdx, inOrder: true };
    if (role === 'driver')
      return new SplitSlotDriver({ ...opts, features, slots: BASE + BigInt(l.data), slotSize: l.slot });
    return new SplitDeviceQueue({ ...opts, features, batchUsed: true });
  }
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
  Atomics.store(ctl, 0, 1); // ready
  // The device reads each message's first byte in place (zero copy); a round
  // trip copies the request out and back into the writable buffer. (`check`
  // stays a small integer: a closure variable that grew past 2^31 would be a
  // heap number, one allocation per message.)
  let check = 0;
  const visit =
    mode === 'rtt'
      ? (c) => {
          c.readInto(sink);
          return c.write(sink);
        }
      : (c) => {
          check = (check + c.segmentBytes(0)[c.segmentOffset(0)]) & 0xffff;
          return 0;
        };
  if (mode === 'poll' || mode === 'rtt') {
    q.disableNotifications();
    while (Atomics.load(ctl, 1) === 0) {
      for (let k = 0; k < 256; k++) if (q.serve(128, visit) > 0) q.publishUsed();
    }
  } else {
    await new Promise((resolve) => {
      const run = () => {
        for (;;) {
          q.disableNotifications();
          let n = 0;
          for (let k = q.serve(128, visit); k > 0; k = q.serve(128, visit)) {
            n += k;
            if (q.publishUsed()) call.kick();
          }
          if (Atomics.load(ctl, 1) !== 0) return resolve();
          if (n === 0 && !q.enableNotifications()) return;
        }
      };
      kick.watch(run);
      run();
    });
  }
  if (check < 0) throw new Error('unreachable');
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
  const base = Number(BASE) + d.l.data;
  const slotBytes = d.l.slot;
  const tokens = new Array(size).fill(0); // a whole ring of used elements per call
  const batch = batchFor(msg);
  let done = 0;
  let slot = 0;
  const end = Date.now() + SECONDS * 1000;
  const t0 = process.hrtime.bigint();
  while ((done & 1023) !== 0 || Date.now() < end) {
    let added = 0;
    while (added < batch && q.freeCount() > 0) {
      const off = slot * slotBytes;
      bytes.set(payload, d.l.data + off); // copy-in, as a real sender would
      q.addBuffer(base + off, msg, slot);
      slot = slot + 1 === size ? 0 : slot + 1;
      added++;
    }
    if (added) q.publish();
    done += q.popUsedBatch(tokens);
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
  return percentiles(times);
}

async function throughputEvent(kind, size, msg) {
  const d = startDevice('event', kind, size, msg);
  await waitReady(d.ctl);
  const q = queues(kind, size, d.map.buffer, d.l, 'driver', true);
  const bytes = new Uint8Array(d.map.buffer);
  const payload = new Uint8Array(msg).fill(0x5a);
  const base = Number(BASE) + d.l.data;
  const tokens = new Array(size).fill(0); // a whole ring of used elements per call
  const batch = batchFor(msg);
  let done = 0;
  let slot = 0;
  let kicks = 0;
  const end = Date.now() + SECONDS * 1000;
  const t0 = process.hrtime.bigint();
  await new Promise((resolve) => {
    const run = () => {
      for (;;) {
        q.disableCallbacks();
        for (let n = q.popUsedBatch(tokens); n > 0; n = q.popUsedBatch(tokens)) done += n;
        const over = Date.now() > end;
        if (over && q.inFlight() === 0) return resolve();
        let added = 0;
        while (added < batch && q.freeCount() > 0 && !over) {
          const off = slot * d.l.slot;
          bytes.set(payload, d.l.data + off);
          q.addBuffer(base + off, msg, slot);
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

// The slots kind has loops of its own (SplitSlotDriver's calls): one loop
// serving three queue classes goes megamorphic in V8 and runs every kind
// several times slower.
async function throughputPollSlots(size, msg) {
  const d = startDevice('poll', 'slots', size, msg);
  await waitReady(d.ctl);
  const q = queues('slots', size, d.map.buffer, d.l, 'driver', false);
  q.disableCallbacks();
  // the same copy-in as the other kinds, one call per batch; slot ids are not needed back
  const messages = new Array(batchFor(msg)).fill(new Uint8Array(msg).fill(0x5a));
  let done = 0;
  const end = Date.now() + SECONDS * 1000;
  const t0 = process.hrtime.bigint();
  while ((done & 1023) !== 0 || Date.now() < end) {
    if (q.addBytesBatch(messages) > 0) q.publish();
    done += q.popUsed();
  }
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  await finish(d);
  return { rate: done / dt, gbps: (done * msg) / dt / 1e9 };
}

async function throughputEventSlots(size, msg) {
  const d = startDevice('event', 'slots', size, msg);
  await waitReady(d.ctl);
  const q = queues('slots', size, d.map.buffer, d.l, 'driver', true);
  const messages = new Array(batchFor(msg)).fill(new Uint8Array(msg).fill(0x5a));
  let done = 0;
  let kicks = 0;
  const end = Date.now() + SECONDS * 1000;
  const t0 = process.hrtime.bigint();
  await new Promise((resolve) => {
    const run = () => {
      for (;;) {
        q.disableCallbacks();
        for (let n = q.popUsed(); n > 0; n = q.popUsed()) done += n;
        const over = Date.now() > end;
        if (over && q.inFlight() === 0) return resolve();
        const added = over ? 0 : q.addBytesBatch(messages);
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

// Each vring measurement runs its driver in a process of its own (which
// starts its device process): in one long-lived process the general driver's
// loops sometimes came out several times slower after the 64 KiB phases had
// run (V8 recompiled them for what it had seen), and one measurement's
// compiled code is no other's business.
const MEASURES = {
  poll: (kind, size, msg) =>
    kind === 'slots' ? throughputPollSlots(size, msg) : throughputPoll(kind, size, msg),
  event: (kind, size, msg) =>
    kind === 'slots' ? throughputEventSlots(size, msg) : throughputEvent(kind, size, msg),
  rtt: (kind, _size, msg, samples) => roundTrip(kind, msg, samples),
};

function measure(what, kind, size, msg, samples = 0) {
  const child = spawn(
    process.execPath,
    [fileURLToPath(import.meta.url), 'measure', what, kind, String(size), String(msg), String(samples)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (b) => {
    out += b;
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      if (code === 0) resolve(JSON.parse(out));
      else reject(new Error(`vring ${kind} ${what} ${msg} B: the measuring process exited with ${code}`));
    });
  });
}

async function measureHere([what, kind, size, msg, samples]) {
  const r = await MEASURES[what](kind, Number(size), Number(msg), Number(samples));
  process.stdout.write(JSON.stringify(r));
  process.exit(0);
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

// the reference row of bench-floor.mjs: the same ring bytes, nothing checked
const FLOOR = 'unchecked ring (floor)';
const fmtRate = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : `${(x / 1e3).toFixed(0)} k`);
const fmtRatio = (x) => (x >= 10 ? x.toFixed(1) : x.toFixed(2));

async function main() {
  const kinds = (process.env.VRING_BENCH_KINDS ?? 'split,packed,slots').split(',');
  const sizes = (process.env.VRING_BENCH_SIZES ?? '64,1500,65536').split(',').map(Number);
  // How many messages may be in flight, by size: 2048 up to 256 B (a 256 KiB
  // data area; 30 % above 256 descriptors at 64 B, the sender runs further
  // ahead of the receiver), 256 for 1500 B (a deeper ring's data area falls out
  // of cache), 64 slots of 64 KiB (they stay in cache); event mode 1024 up to
  // 2 KiB: a sleeping end takes tens of µs to wake, a deeper ring means fewer
  // sleeps per message
  const ringSize = (msg, mode) =>
    msg >= 65536 ? 64 : msg <= 256 ? 2048 : mode === 'event' && msg <= 2048 ? 1024 : 256;
  const samples = (msg) => (msg > 4096 ? 5000 : 20000);
  console.log(
    `${cpus()[0]?.model ?? 'cpu'}, ${cpus().length} CPUs, Node ${process.version}, load ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}; ${SECONDS} s per throughput phase`,
  );
  const memcpy = memcpyBaseline();
  console.log(`memcpy, one core, 64 KiB blocks (1 MiB working set): ${memcpy.toFixed(1)} GB/s`);
  // Every round runs every transport at every size, interleaved; the figures
  // are the medians over the rounds (the host's placement of the two vCPUs
  // swings busy-poll figures up to 2x from one trial to the next).
  const runs = new Map();
  const record = (name, msg, t, r) => {
    const key = `${name}\u0000${msg}`;
    if (!runs.has(key)) runs.set(key, { name, msg, trials: [] });
    runs.get(key).trials.push({ ...t, ...r });
    const rt = r ? `, round trip p50 ${r.p50.toFixed(1)} µs` : '';
    console.log(`  ${name} ${msg} B: ${fmtRate(t.rate)} msgs/s${rt}`);
  };
  for (let round = 1; round <= ROUNDS; round++) {
    console.log(`round ${round}/${ROUNDS}`);
    for (const msg of sizes) {
      record(
        'unix socket',
        msg,
        await socketThroughput(msg, SECONDS, false),
        await socketRoundTrip(msg, samples(msg)),
      );
      record('unix socket, corked', msg, await socketThroughput(msg, SECONDS, true));
      record('MessagePort', msg, await portThroughput(msg, SECONDS), await portRoundTrip(msg, samples(msg)));
      for (const kind of kinds) {
        // (a slot chain is one buffer: no request and reply in one chain, no round trip)
        record(
          `vring ${kind} poll`,
          msg,
          await measure('poll', kind, ringSize(msg, 'poll'), msg),
          kind === 'slots' ? undefined : await measure('rtt', kind, 64, msg, samples(msg)),
        );
        record(`vring ${kind} event`, msg, await measure('event', kind, ringSize(msg, 'event'), msg));
      }
      record(FLOOR, msg, await floorThroughput(ringSize(msg, 'poll'), msg, SECONDS));
    }
  }
  const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const rows = [...runs.values()].map(({ name, msg, trials }) => {
    const out = { name, msg, rate: med(trials.map((t) => t.rate)), gbps: med(trials.map((t) => t.gbps)) };
    if (trials[0].p50 !== undefined) {
      out.p50 = med(trials.map((t) => t.p50));
      out.p99 = med(trials.map((t) => t.p99));
    }
    return out;
  });
  console.log(`\nmedians over ${ROUNDS} round(s):`);
  for (const r of rows) {
    const rt =
      r.p50 !== undefined ? `, round trip p50 ${r.p50.toFixed(1)} µs p99 ${r.p99.toFixed(1)} µs` : '';
    console.log(
      `${r.name.padEnd(22)} ${String(r.msg).padStart(6)} B: ${fmtRate(r.rate).padStart(8)} msgs/s, ${r.gbps.toFixed(2)} GB/s${rt}`,
    );
  }
  const get = (name, msg) => rows.find((r) => r.name === name && r.msg === msg);
  const best = (mode, msg) =>
    kinds
      .map((k) => get(`vring ${k} ${mode}`, msg))
      .filter(Boolean)
      .sort((a, b) => b.rate - a.rate)[0];
  const targets = [];
  const target = (what, value, goal, higher, text, floor) =>
    targets.push(
      `${what.padEnd(58)} ${text.padStart(10)}  (target ${higher ? '>=' : '<='} ${goal}) ${value ? 'PASS' : 'FAIL'}${floor === undefined ? '' : `; the unchecked floor: ${fmtRatio(floor)}x`}`,
    );
  const floorVs = (base, msg) => {
    const f = get(FLOOR, msg);
    return f && base ? f.rate / base.rate : undefined;
  };
  const uds64 = get('unix socket', 64);
  const poll64 = best('poll', 64);
  if (uds64 && poll64) {
    const x = poll64.rate / uds64.rate;
    target(
      '64 B poll mode, msgs/s vs the Unix socket',
      x >= 40,
      '40x',
      true,
      `${fmtRatio(x)}x`,
      floorVs(uds64, 64),
    );
    const rt = Math.min(...kinds.map((k) => get(`vring ${k} poll`, 64)?.p50 ?? Infinity));
    const f = uds64.p50 / rt;
    target('64 B round-trip p50 vs the Unix socket', f >= 20, '1/20', false, `1/${fmtRatio(f)}`);
  }
  const uds1500 = get('unix socket', 1500);
  const poll1500 = best('poll', 1500);
  if (uds1500 && poll1500) {
    const x = poll1500.rate / uds1500.rate;
    target(
      '1500 B poll mode, msgs/s vs the Unix socket',
      x >= 15,
      '15x',
      true,
      `${fmtRatio(x)}x`,
      floorVs(uds1500, 1500),
    );
  }
  const poll64k = best('poll', 65536);
  if (poll64k) {
    const f = poll64k.gbps / memcpy;
    target('64 KiB poll mode, GB/s vs single-core memcpy', f >= 0.5, '50%', true, `${(f * 100).toFixed(0)}%`);
  }
  const event64 = best('event', 64);
  if (uds64 && event64) {
    const x = event64.rate / uds64.rate;
    target('64 B event mode, msgs/s vs the Unix socket', x >= 10, '10x', true, `${fmtRatio(x)}x`);
  }
  console.log(
    '\ntargets (ratios of this run; the best vring layout of each mode; the floor is bench-floor.mjs, the same ring bytes with nothing checked):',
  );
  for (const t of targets) console.log(`  ${t}`);
}

if (process.argv[2] === 'device') await device(process.argv.slice(3));
else if (process.argv[2] === 'measure') await measureHere(process.argv.slice(3));
else await main();
