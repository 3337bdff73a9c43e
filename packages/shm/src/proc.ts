import { readdirSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';

/** The number of open descriptors of a process (from /proc/<pid>/fd), this one by default. */
export function openFdCount(pid: number | 'self' = 'self'): number {
  // readdir itself opens one descriptor, which is gone again when it returns.
  return readdirSync(`/proc/${pid}/fd`).length - (pid === 'self' ? 1 : 0);
}

/** The symbolic name of a positive errno value, e.g. 12 -> ENOMEM. */
export function errnoName(errno: number): `E${string}` {
  const name = getSystemErrorName(-errno);
  return (name.startsWith('E') ? name : `E${errno}`) as `E${string}`;
}
