import { containerAvailability } from './container-setup.js';
import type { VringParams } from './protocol.js';
import type { Scenario } from './scenarios.js';
import { loadVring, queueAddresses } from './vring-api.js';

const PAGE = 4096;
const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

/** Ring and data-area geometry for one message size (see PERFORMANCE.md: what mattered). */
export function vringGeometry(
  size: number,
  mode: VringParams['mode'] = 'poll',
  layout: VringParams['layout'] = 'split',
): Pick<VringParams, 'queueSize' | 'slots' | 'slotBytes' | 'batch' | 'batchBytes'> {
  if (layout === 'slots') {
    // One slot per descriptor. 2048 up to 256 B (the sender runs further ahead
    // of the receiver), as @vipc/vring's bench found; each slot cache-line
    // aligned with 64 bytes of headroom, so a 64 B message has 128 bytes and
    // the slot being filled never shares a 128-byte pair of lines with the one
    // being read. Batches of up to 256 (the receiver serves as many per call),
    // a few per cent above 128 at 64 B side by side, and at most half the ring.
    const slots = size <= 256 ? 2048 : mode !== 'poll' && size <= 2048 ? 1024 : size <= 2048 ? 256 : 64;
    return {
      queueSize: slots,
      slots,
      slotBytes: alignUp(size + 64, 64),
      batch: Math.min(256, slots >> 1),
      batchBytes: 256 * 1024,
    };
  }
  // >= 256 descriptors for small messages; a sleeping end takes tens of µs to
  // wake, so event and spin modes get a deeper ring for small messages (fewer
  // sleeps per message), as a socket has a deep kernel buffer.
  const deep = mode !== 'poll' && size <= 2048;
  const queueSize = deep ? 1024 : 256;
  // A data area that stays in cache for large messages: 64 slots of 64 KiB beat 1024.
  const slots = deep ? 1024 : size <= 2048 ? 256 : size <= 16384 ? 128 : 64;
  // Batches capped in count and in bytes: large messages lose when only counted.
  // Slots start on cache lines (a 1500 B slot would share a line with the next one).
  // Batches of up to 128 chains (half the poll-mode ring: the sender fills one
  // half while the receiver drains the other), capped at 256 KiB: measured
  // 20-25 % above batches of 32 at 64 B and 1500 B, in poll and event mode.
  return { queueSize, slots, slotBytes: alignUp(size, 64), batch: 128, batchBytes: 256 * 1024 };
}

export interface VringResources {
  params: VringParams;
  /** Workers: the shared memory. */
  memory?: SharedArrayBuffer;
  /** Processes: memfd, kick eventfd, call eventfd (inherited as fd 4, 5, 6). */
  fds?: number[];
  close(): void;
}

export async function vringResources(
  options: Pick<VringParams, 'layout' | 'mode' | 'spinUs'>,
  size: number,
  kind: 'process' | 'worker',
): Promise<VringResources> {
  const vr = await loadVring(options.layout);
  const g = vringGeometry(size, options.mode, options.layout);
  const q = queueAddresses(vr, options.layout, g.queueSize, 0);
  const dataOffset = alignUp(q.totalBytes, PAGE);
  const memoryBytes = alignUp(dataOffset + g.slots * g.slotBytes, PAGE);
  const params: VringParams = {
    ...options,
    ...g,
    addresses: q.addresses,
    eventIdx: options.mode !== 'poll',
    dataOffset,
    memoryBytes,
  };
  if (kind === 'worker') {
    if (options.mode === 'poll')
      return { params, memory: new SharedArrayBuffer(memoryBytes), close: () => {} };
    // Threads wake each other with Atomics on two words past the guest memory (no eventfd).
    params.doorbells = memoryBytes;
    return { params, memory: new SharedArrayBuffer(memoryBytes + 64), close: () => {} };
  }
  const shm = await import('@vipc/shm');
  const memfd = shm.memfdCreate(`vipc-bench-${process.pid}`, { size: memoryBytes });
  const kick = shm.EventFd.create();
  const call = shm.EventFd.create();
  return {
    params,
    fds: [memfd.fd, kick.fd.fd, call.fd.fd],
    close: () => {
      memfd.close();
      kick.close();
      call.close();
    },
  };
}

async function tryImport(name: string): Promise<Record<string, unknown> | string> {
  try {
    return (await import(name)) as Record<string, unknown>;
  } catch (err) {
    return `${name} cannot be loaded (${(err as Error).message.split('\n')[0]}); build it with \`pnpm --filter ${name} build\``;
  }
}

/** null when the scenario can run here, else the reason it cannot. */
export async function checkAvailability(s: Scenario): Promise<string | null> {
  switch (s.needs) {
    case undefined:
      return null;
    case 'vring': {
      try {
        await loadVring(s.vring?.layout ?? 'split');
      } catch (err) {
        return (err as Error).message;
      }
      if (s.endpoints === 'processes') {
        const shm = await tryImport('@vipc/shm');
        if (typeof shm === 'string') return shm;
      }
      return null;
    }
    case 'lxc': {
      try {
        await loadVring('split');
      } catch (err) {
        return (err as Error).message;
      }
      return containerAvailability();
    }
    case 'dpdk':
      return dpdkAvailability();
    case 'vhost-user': {
      const vu = await tryImport('@vipc/vhost-user');
      if (typeof vu === 'string') return vu;
      for (const k of ['VhostUserBackend', 'VirtioNetDevice', 'anyPeer']) {
        if (vu[k] === undefined) return `@vipc/vhost-user (this build) lacks ${k}`;
      }
      return dpdkAvailability();
    }
  }
}

async function dpdkAvailability(): Promise<string | null> {
  const dpdk = await tryImport('@vipc/dpdk');
  if (typeof dpdk === 'string') return dpdk;
  for (const k of ['launchDpdk', 'TestpmdController', 'uniqueFilePrefix', 'discoverDpdk']) {
    if (dpdk[k] === undefined) return `@vipc/dpdk (this build) lacks ${k}`;
  }
  const found = (dpdk.discoverDpdk as (o: { probeApp: boolean }) => { installed: boolean; message?: string })(
    {
      probeApp: false,
    },
  );
  if (!found.installed)
    return found.message ?? 'DPDK testpmd is not installed (Debian: apt-get install dpdk-dev)';
  return null;
}
