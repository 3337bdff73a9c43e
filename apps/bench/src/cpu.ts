import { readFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

/** hrtime in ns as a number (exact below 2^53 ns, i.e. 104 days of uptime). */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

/**
 * CPU time consumed so far (ns). In a process's main thread: the whole
 * process (process.cpuUsage, all its threads). In a worker thread: that thread
 * alone (/proc/thread-self/schedstat, ns resolution), because process-wide
 * figures would count the other worker too.
 */
export function cpuNs(): number {
  if (isMainThread) {
    const u = process.cpuUsage();
    return (u.user + u.system) * 1000;
  }
  return threadCpuNs();
}

export function cpuScope(): 'process' | 'thread' {
  return isMainThread ? 'process' : 'thread';
}

/** CPU time of the calling thread (ns) from /proc/thread-self/schedstat. */
export function threadCpuNs(): number {
  const text = readFileSync('/proc/thread-self/schedstat', 'latin1');
  const first = text.split(' ', 1)[0];
  const n = Number(first);
  if (!Number.isFinite(n)) throw new Error(`unexpected /proc/thread-self/schedstat: ${text}`);
  return n;
}
