// Interim main job until the `vipc` CLI lands: two processes set up shared
// memory the vhost-user way (a memfd and two eventfds passed over a Unix
// socket) and ping-pong messages through it, reporting round-trip latency.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, EventFd, memfdCreate, mmap, UnixServer } from '../packages/shm/dist/index.js';

const rounds = Number(process.env.VIPC_DEMO_ROUNDS ?? 20000);

if (process.argv[2] === '--peer') {
  const sock = await connect(process.argv[3], { timeoutMs: 5000 });
  const { fds } = await sock.readExact(1, { maxFds: 3 });
  const map = mmap(fds[0]);
  const words = new Int32Array(map.buffer);
  const ping = EventFd.from(fds[1]);
  const pong = EventFd.from(fds[2]);
  ping.watch(() => {
    const seq = Atomics.load(words, 0);
    Atomics.store(words, 1, seq);
    pong.kick();
    if (seq === rounds) {
      ping.close();
      pong.close();
      map.unmap();
      sock.close();
    }
  });
} else {
  const dir = mkdtempSync(join(tmpdir(), 'vipc-demo-'));
  const path = join(dir, 'demo.sock');
  const server = UnixServer.listen(path);
  const child = spawn(process.execPath, [new URL(import.meta.url).pathname, '--peer', path], {
    stdio: 'inherit',
  });
  const sock = await new Promise((resolve) => server.once('connection', resolve));
  const memfd = memfdCreate('vipc-demo', { size: 4096 });
  const map = mmap(memfd);
  const words = new Int32Array(map.buffer);
  const ping = EventFd.create();
  const pong = EventFd.create();
  sock.write(Buffer.from('s'), [memfd, ping.fd, pong.fd]);
  console.log(
    `vipc demo: peer process ${child.pid} mapped the shared memfd; ${rounds} round trips over eventfd...`,
  );
  const samples = new Float64Array(rounds);
  let seq = 0;
  let t0 = process.hrtime.bigint();
  const start = t0;
  await new Promise((resolve) => {
    pong.watch(() => {
      if (Atomics.load(words, 1) !== seq)
        throw new Error(`peer answered ${Atomics.load(words, 1)}, expected ${seq}`);
      const now = process.hrtime.bigint();
      samples[seq - 1] = Number(now - t0) / 1000;
      if (seq === rounds) return resolve();
      t0 = now;
      Atomics.store(words, 0, ++seq);
      ping.kick();
    });
    Atomics.store(words, 0, ++seq);
    ping.kick();
  });
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  samples.sort();
  const pct = (p) => samples[Math.min(rounds - 1, Math.floor(p * rounds))].toFixed(1);
  console.log(`  ${rounds} round trips in ${elapsed.toFixed(2)} s, none lost`);
  console.log(`  round trip p50 ${pct(0.5)} µs, p99 ${pct(0.99)} µs (event mode, two processes)`);
  await new Promise((resolve) => child.once('exit', resolve));
  pong.close();
  ping.close();
  map.unmap();
  memfd.close();
  sock.close();
  server.close();
  rmSync(dir, { recursive: true, force: true });
}
