// Micro-benchmark of the per-call costs (a script, not a test):
//   node dist/bench.js [--json]
// Prints the cost of an eventfd kick+drain, a socket send carrying one fd (with
// its receive), and an mmap+munmap of 2 MiB, each as the median of 5 runs.

import { raw } from './binding.js';
import { EventFd } from './eventfd.js';
import { memfdCreate } from './memfd.js';
import { mmap } from './mmap.js';
import { socketPair } from './socket.js';

function timeIt(iterations: number, fn: () => void): number {
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn();
    runs.push(Number(process.hrtime.bigint() - t0) / iterations);
  }
  runs.sort((a, b) => a - b);
  return runs[2]!;
}

const results: Record<string, number> = {};

{
  using efd = EventFd.create();
  results.eventfdKickDrainNs = timeIt(100_000, () => {
    efd.kick();
    efd.drain();
  });
}

{
  const [a, b] = socketPair();
  using memfd = memfdCreate('bench', { size: 4096 });
  const one = Buffer.from([1]);
  const rx = Buffer.alloc(1);
  const fdNum = memfd.fd;
  results.sendWithOneFdNs = timeIt(20_000, () => {
    raw.socketSend(a.fd.fd, one, 0, 1, [fdNum]);
    const r = raw.socketRecv(b.fd.fd, rx, 0, 1, 1);
    if (r === null || r.fds.length !== 1) throw new Error('lost a message');
    raw.close(r.fds[0]!);
  });
  a.close();
  b.close();
}

{
  const size = 2 * 1024 * 1024;
  using memfd = memfdCreate('bench-map', { size });
  results.mmapMunmap2MiBNs = timeIt(2_000, () => {
    mmap(memfd, { length: size }).unmap();
  });
}

if (process.argv.includes('--json')) {
  console.log(JSON.stringify(results));
} else {
  console.log('per-call cost (median of 5 runs)');
  console.log(`  eventfd kick + drain        ${(results.eventfdKickDrainNs! / 1000).toFixed(2)} µs`);
  console.log(`  send + receive with one fd  ${(results.sendWithOneFdNs! / 1000).toFixed(2)} µs`);
  console.log(`  mmap + munmap of 2 MiB      ${(results.mmapMunmap2MiBNs! / 1000).toFixed(2)} µs`);
}
