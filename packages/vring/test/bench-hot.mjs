// Single-thread micro benchmark of the hot paths (not a test):
// `pnpm --filter @vipc/vring bench:hot` (uses the built package, dist).
//
// For split and packed queues at 64 B, 1500 B and 64 KiB it measures, in ns per
// message, with batches of 32 (one publish per batch):
//   driver: copy the payload in (set) + add() ... publish(), then popUsedHead() for the batch
//   device: pop(reuse) + readInto() + addUsed() ... publishUsed()
// Both sides run in this thread over a plain ArrayBuffer; the two parts are
// timed separately (the other side's work of the same batch is not counted).
// The machine is shared and noisy: every figure is the minimum (and the median)
// of VRING_HOT_REPEATS (default 9) runs of VRING_HOT_BATCHES batches.
// `VRING_HOT_API=classic` times the plain public calls (add([{...}]), pop(),
// read(), popUsed() objects) instead of the allocation-free forms;
// `VRING_HOT_API=onecall` times the one-call paths: addBuffer(), serve() with
// the first byte read in place (no copy-out), popUsedBatch().
import {
  GuestMemory,
  PackedDeviceQueue,
  PackedDriverQueue,
  packedLayout,
  SplitDeviceQueue,
  SplitDriverQueue,
  splitLayout,
} from '../dist/index.js';

const REPEATS = Number(process.env.VRING_HOT_REPEATS ?? 9);
const BATCH = 32;
const API = process.env.VRING_HOT_API ?? 'fast';
const ONLY = process.env.VRING_HOT_ONLY; // e.g. "split" or "packed-64"

function setup(kind, msg) {
  const size = msg >= 65536 ? 64 : 256;
  const slots = size;
  const ring = kind === 'split' ? splitLayout(size) : packedLayout(size);
  const data = Math.ceil(ring.totalBytes / 4096) * 4096;
  const total = data + slots * msg;
  const buffer = new ArrayBuffer(total);
  const memory = GuestMemory.fromBuffer(buffer, 0n);
  const addresses =
    kind === 'split'
      ? { descTable: ring.descTable, availRing: ring.availRing, usedRing: ring.usedRing }
      : { descRing: ring.descRing, driverEvent: ring.driverEvent, deviceEvent: ring.deviceEvent };
  const opts = { memory, size, addresses, features: { eventIdx: true } };
  const driver = kind === 'split' ? new SplitDriverQueue(opts) : new PackedDriverQueue(opts);
  const device = kind === 'split' ? new SplitDeviceQueue(opts) : new PackedDeviceQueue(opts);
  return { driver, device, bytes: new Uint8Array(buffer), data, size };
}

function run(kind, msg, batches) {
  const { driver, device, bytes, data, size } = setup(kind, msg);
  const batch = Math.min(BATCH, size);
  const src = new Uint8Array(msg).fill(7);
  const sink = new Uint8Array(msg);
  const buf = { addr: 0, len: msg };
  const bufs = [buf];
  let reuse;
  const tokens = new Array(64).fill(0);
  const visit = (c) => {
    check = (check + c.segmentBytes(0)[c.segmentOffset(0)]) & 0xffff; // a small integer: no heap number per call
    return 0;
  };
  let drvNs = 0n;
  let devNs = 0n;
  let slot = 0;
  let check = 0;
  for (let b = 0; b < batches; b++) {
    // driver: add a batch and publish it
    let t = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) {
      const off = data + slot * msg;
      bytes.set(src, off);
      if (API === 'classic') {
        driver.add([{ addr: off, len: msg }], slot);
      } else if (API === 'onecall') {
        driver.addBuffer(off, msg, slot);
      } else {
        buf.addr = off;
        driver.add(bufs, slot);
      }
      slot = (slot + 1) % size;
    }
    driver.publish();
    drvNs += process.hrtime.bigint() - t;
    // device: pop, copy out, addUsed, publishUsed
    t = process.hrtime.bigint();
    if (API === 'onecall') {
      while (device.serve(64, visit) > 0) {}
    } else if (API === 'classic') {
      for (let c = device.pop(); c !== null; c = device.pop()) {
        const r = c.read(sink);
        check += r[0];
        device.addUsed(c.head, 0);
      }
    } else {
      for (let c = device.pop(reuse); c !== null; c = device.pop(reuse)) {
        reuse = c;
        c.readInto(sink);
        check += sink[0];
        device.addUsed(c.head, 0);
      }
    }
    device.publishUsed();
    devNs += process.hrtime.bigint() - t;
    // driver: reclaim the batch
    t = process.hrtime.bigint();
    if (API === 'onecall') {
      for (let n = driver.popUsedBatch(tokens); n > 0; n = driver.popUsedBatch(tokens))
        for (let i = 0; i < n; i++) check += tokens[i];
    } else if (API === 'classic' || typeof driver.popUsedHead !== 'function') {
      for (let u = driver.popUsed(); u !== null; u = driver.popUsed()) check += u.token;
    } else {
      for (let h = driver.popUsedHead(); h >= 0; h = driver.popUsedHead()) check += driver.usedToken;
    }
    drvNs += process.hrtime.bigint() - t;
  }
  if (check === 0) throw new Error('nothing moved');
  const n = batches * batch;
  return { drv: Number(drvNs) / n, dev: Number(devNs) / n };
}

const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const fmt = (x) => x.toFixed(1).padStart(7);

console.log(`api=${API}, batch ${BATCH}, ${REPEATS} repeats; ns/message: min (median)`);
console.log('queue   message   driver add+publish+popUsed   device pop+read+addUsed+publishUsed');
for (const kind of ['split', 'packed']) {
  for (const msg of [64, 1500, 65536]) {
    if (ONLY && !`${kind}-${msg}`.startsWith(ONLY)) continue;
    const batches = msg >= 65536 ? 400 : 4000;
    run(kind, msg, batches); // warm-up (JIT)
    const drv = [];
    const dev = [];
    for (let r = 0; r < REPEATS; r++) {
      const x = run(kind, msg, batches);
      drv.push(x.drv);
      dev.push(x.dev);
    }
    console.log(
      `${kind.padEnd(7)} ${String(msg).padStart(6)} B  ${fmt(Math.min(...drv))} (${fmt(median(drv))})          ${fmt(Math.min(...dev))} (${fmt(median(dev))})`,
    );
  }
}
