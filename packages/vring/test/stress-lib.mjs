// Shared by the stress tests' workers and processes. It uses the BUILT package
// (dist), exactly as a user's program would.
import {
  GuestMemory,
  PackedDeviceQueue,
  PackedDriverQueue,
  packedLayout,
  SplitDeviceQueue,
  SplitDriverQueue,
  SplitSlotDriver,
  splitLayout,
} from '../dist/index.js';

export const BASE = 0x40000000n;
const SLOT = 128; // 64 bytes out, 8 bytes in
const CTL_SENT = 0; // u32 index in the control words: total the driver sent (0xffffffff while sending)
const CTL_WORDS = 16;

// Kinds: split and packed (SplitDriverQueue / PackedDriverQueue, a chain of a
// message and a reply buffer, the device echoes), and slots (SplitSlotDriver
// against SplitDeviceQueue with IN_ORDER and batchUsed through serve(): one
// message per chain, checked by the device, no reply).

/** Byte layout of the shared area: ring, data slots, control words. */
export function stressLayout(kind, size) {
  const ring = kind === 'packed' ? packedLayout(size) : splitLayout(size);
  const ringBytes = Math.ceil(ring.totalBytes / 4096) * 4096;
  // split and packed: each chain takes two descriptors; slots: one slot per descriptor
  const slots = kind === 'slots' ? size : size >> 1;
  const data = ringBytes;
  const ctl = data + slots * SLOT;
  return { ring, slots, data, ctl, totalBytes: Math.ceil((ctl + 4 * CTL_WORDS) / 4096) * 4096 };
}

/** Prepares a zeroed shared area before either side starts (the device must not see "0 sent"). */
export function initStressArea(buffer, kind, size) {
  const l = stressLayout(kind, size);
  Atomics.store(new Uint32Array(buffer, l.ctl, CTL_WORDS), CTL_SENT, 0xffffffff);
}

function addresses(kind, ring) {
  return kind !== 'packed'
    ? {
        descTable: BASE + BigInt(ring.descTable),
        availRing: BASE + BigInt(ring.availRing),
        usedRing: BASE + BigInt(ring.usedRing),
      }
    : {
        descRing: BASE + BigInt(ring.descRing),
        driverEvent: BASE + BigInt(ring.driverEvent),
        deviceEvent: BASE + BigInt(ring.deviceEvent),
      };
}

export function fnv1a(bytes, start, end) {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

function messageLength(seq) {
  return 16 + ((Math.imul(seq, 0x9e3779b1) >>> 0) % 49); // 16..64 bytes
}

/** The driver side: sends `total` messages (or until `deadline`), checks every reply. */
export class StressDriver {
  constructor({ kind, size, buffer, total, deadline, kick, batch = 32 }) {
    const l = stressLayout(kind, size);
    this.l = l;
    this.memory = new GuestMemory([{ guestAddress: BASE, size: l.totalBytes, buffer }]);
    const opts = {
      memory: this.memory,
      size,
      addresses: addresses(kind, l.ring),
      features: { eventIdx: true, inOrder: kind === 'slots' },
    };
    this.slots = kind === 'slots';
    this.q = this.slots
      ? new SplitSlotDriver({ ...opts, slots: BASE + BigInt(l.data), slotSize: SLOT })
      : kind === 'split'
        ? new SplitDriverQueue(opts)
        : new PackedDriverQueue(opts);
    this.ids = new Uint16Array(size);
    this.lens = new Uint32Array(size);
    this.bytes = new Uint8Array(buffer, 0, l.totalBytes);
    this.view = new DataView(buffer, 0, l.totalBytes);
    this.ctl = new Uint32Array(buffer, l.ctl, CTL_WORDS);
    this.total = total;
    this.deadline = deadline;
    this.kick = kick;
    this.batch = batch;
    this.sent = 0;
    this.received = 0;
    this.kicks = 0;
    this.stopped = false;
    this.errors = [];
  }

  #addOne() {
    const seq = this.sent;
    const len = messageLength(seq);
    // slots: the slot is the chain's ring position (IN_ORDER), taken first, then filled
    const id = this.slots ? this.q.add(len) : seq % this.l.slots;
    if (id < 0) throw new Error('add failed although freeCount() said there was room');
    const off = this.l.data + id * SLOT;
    const b = this.bytes;
    this.view.setUint32(off, seq, true);
    this.view.setUint32(off + 4, len, true);
    for (let i = 8; i < len - 4; i++) b[off + i] = (seq * 31 + i) & 0xff;
    this.view.setUint32(off + len - 4, fnv1a(b, off, off + len - 4), true);
    if (this.slots) {
      this.sent++;
      return;
    }
    const addr = Number(BASE) + off;
    const head = this.q.add(
      [
        { addr, len },
        { addr: addr + 64, len: 8, writable: true },
      ],
      seq,
    );
    if (head < 0) throw new Error('add failed although freeCount() said there was room');
    this.sent++;
  }

  #check(u) {
    const seq = this.received;
    if (u.token !== seq) throw new Error(`reply out of order: got ${u.token}, expected ${seq}`);
    if (u.len !== 8) throw new Error(`reply ${seq}: used length ${u.len}, expected 8`);
    const off = this.l.data + (seq % this.l.slots) * SLOT + 64;
    const gotSeq = this.view.getUint32(off, true);
    const gotSum = this.view.getUint32(off + 4, true);
    const o = this.l.data + (seq % this.l.slots) * SLOT;
    const want = ~fnv1a(this.bytes, o, o + messageLength(seq) - 4) >>> 0;
    if (gotSeq !== seq || gotSum !== want)
      throw new Error(`reply ${seq}: bad content (seq ${gotSeq}, sum ${gotSum})`);
    this.received++;
  }

  /** 'busy' (call again), 'sleep' (wait for a used-buffer notification), 'done'. */
  step() {
    let progress = false;
    const q = this.q;
    q.disableCallbacks();
    if (this.slots) {
      for (let n = q.popUsed(this.ids, this.lens); n > 0; n = q.popUsed(this.ids, this.lens)) {
        for (let i = 0; i < n; i++) {
          const seq = this.received;
          if (this.ids[i] !== seq % this.l.slots || this.lens[i] !== 0)
            throw new Error(
              `slot ${seq}: got id ${this.ids[i]} len ${this.lens[i]} (out of order, or a length)`,
            );
          this.received++;
        }
        progress = true;
      }
    } else {
      for (let u = q.popUsed(); u !== null; u = q.popUsed()) {
        this.#check(u);
        progress = true;
      }
    }
    if (
      !this.stopped &&
      (this.sent === this.total || (this.sent % 1024 === 0 && Date.now() > this.deadline))
    ) {
      this.stopped = true;
      Atomics.store(this.ctl, CTL_SENT, this.sent);
      this.kick(); // wake the device so that it sees the end (a spurious kick is allowed)
      this.kicks++;
    }
    let added = 0;
    const need = this.slots ? 1 : 2;
    while (!this.stopped && added < this.batch && q.freeCount() >= need && this.sent < this.total) {
      this.#addOne();
      added++;
      if (this.sent % 1024 === 0) break; // let the deadline check run
    }
    if (added > 0) {
      progress = true;
      if (q.publish()) {
        this.kick();
        this.kicks++;
      }
    }
    if (this.stopped && this.received === this.sent) return 'done';
    if (progress) return 'busy';
    return q.enableCallbacks() ? 'busy' : 'sleep';
  }
}

/** The device side: checks order and checksums, replies with (seq, ~checksum). */
export class StressDevice {
  constructor({ kind, size, buffer, call, batch = 32 }) {
    const l = stressLayout(kind, size);
    this.l = l;
    this.memory = new GuestMemory([{ guestAddress: BASE, size: l.totalBytes, buffer }]);
    const opts = {
      memory: this.memory,
      size,
      addresses: addresses(kind, l.ring),
      features: { eventIdx: true, inOrder: kind === 'slots' },
    };
    this.slots = kind === 'slots';
    this.q =
      kind === 'packed'
        ? new PackedDeviceQueue(opts)
        : new SplitDeviceQueue({ ...opts, batchUsed: this.slots });
    // slots: serve()'s visit, checks the message (serve() records it used)
    this.visit = (c) => {
      this.#verify(c);
      this.processed++;
      return 0;
    };
    this.ctl = new Uint32Array(buffer, l.ctl, CTL_WORDS);
    this.call = call;
    this.batch = batch;
    this.processed = 0;
    this.calls = 0;
    this.scratch = new Uint8Array(64);
    this.scratchView = new DataView(this.scratch.buffer);
    this.reply = new Uint8Array(8);
    this.replyView = new DataView(this.reply.buffer);
  }

  /** Checks message `processed` (sequence, length, checksum); returns its checksum. */
  #verify(c) {
    const seq = this.processed;
    const m = c.read(this.scratch);
    const v = this.scratchView;
    const len = m.length;
    if (len < 16 || v.getUint32(0, true) !== seq)
      throw new Error(`message ${seq}: got seq ${v.getUint32(0, true)} (lost, duplicated or reordered)`);
    if (v.getUint32(4, true) !== len || c.readableLength !== len)
      throw new Error(`message ${seq}: length ${len} vs header ${v.getUint32(4, true)}`);
    const sum = fnv1a(m, 0, len - 4);
    if (v.getUint32(len - 4, true) !== sum) throw new Error(`message ${seq}: checksum mismatch`);
    return sum;
  }

  #handle(c) {
    const seq = this.processed;
    const sum = this.#verify(c);
    this.replyView.setUint32(0, seq, true);
    this.replyView.setUint32(4, ~sum >>> 0, true);
    const n = c.write(this.reply);
    this.q.addUsed(c.head, n);
    this.processed++;
  }

  step() {
    const q = this.q;
    let n = 0;
    q.disableNotifications();
    if (this.slots) {
      for (let k = q.serve(this.batch, this.visit); k > 0; k = q.serve(this.batch, this.visit)) {
        n += k;
        if (q.publishUsed()) {
          this.call();
          this.calls++;
        }
      }
    }
    for (let c = this.slots ? null : q.pop(this.reuse); c !== null; c = q.pop(this.reuse)) {
      this.reuse = c; // the next pop() refills this object instead of allocating
      this.#handle(c);
      if (++n % this.batch === 0 && q.publishUsed()) {
        this.call();
        this.calls++;
      }
    }
    if (q.publishUsed()) {
      this.call();
      this.calls++;
    }
    if (this.processed === Atomics.load(this.ctl, CTL_SENT)) return 'done';
    if (n > 0) return 'busy';
    const waiting = q.enableNotifications();
    // VRING_STRESS_SABOTAGE=1 ignores the re-check (the classic lost-wakeup bug), to show the test catches it
    return waiting && process.env.VRING_STRESS_SABOTAGE !== '1' ? 'busy' : 'sleep';
  }

  hasWork() {
    return this.q.hasAvailable() || this.processed === Atomics.load(this.ctl, CTL_SENT);
  }
}
