import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fstat, memfdCreate, mmap, UnixServer, type UnixSocket } from '@vipc/shm';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { baseConfig } from './container.js';
import {
  cleanupLxc,
  leftoverCgroups,
  leftovers,
  lxcUnavailable,
  monitorsGone,
  mountsUnder,
  mustRun,
  tempLxc,
} from './test-support.js';
import { bindMount, socketDirMount } from './wiring.js';

const missing = lxcUnavailable();
const shmRoot = dirname(createRequire(import.meta.url).resolve('@vipc/shm/package.json'));

// Runs inside the container with the container's node; @vipc/shm comes from a read-only bind.
const GUEST = `
import { connect, memfdCreate, mmap } from '/opt/vipc/shm/dist/index.js';
const sock = await connect('/run/vipc/host.sock', { timeoutMs: 20000 });
// 1. receive a memfd from the host, read what it wrote, double the number in it
const { data, fds } = await sock.readExact(1, { maxFds: 1 });
const hostView = new Uint32Array(mmap(fds[0]).buffer);
hostView[1] = hostView[0] * 2;
// 2. create a memfd here, write into it, send it to the host
const mine = memfdCreate('from-container', { size: 4096 });
const text = Buffer.from('written inside pid ' + process.pid);
new Uint8Array(mmap(mine).buffer).set(text);
sock.write(Buffer.from([text.length]), [mine]);
await sock.readExact(1); // the host is done
sock.close();
console.log(JSON.stringify({ got: data.toString(), pid: process.pid }));
`;

describe.skipIf(missing !== undefined && !mustRun)('IPC across the bind-mounted socket directory', () => {
  it('has LXC', () => {
    expect(missing).toBeUndefined();
  });
  const lxc = tempLxc('ipc');
  const share = join(tmpdir(), `vipc-lxc-ipc-${process.pid}`);
  let server: UnixServer | undefined;

  afterEach(async () => {
    // Every test removes its containers; whatever is left is removed here and fails the test.
    expect(await leftovers(lxc)).toEqual([]);
    expect(await monitorsGone(lxc.lxcpath)).toEqual([]);
    expect(mountsUnder(lxc.lxcpath)).toEqual([]);
    expect(leftoverCgroups()).toEqual([]);
  });

  afterAll(async () => {
    server?.close();
    await cleanupLxc(lxc);
    rmSync(share, { recursive: true, force: true });
    expect(existsSync(lxc.lxcpath)).toBe(false);
    expect(mountsUnder(lxc.lxcpath)).toEqual([]);
    expect(await monitorsGone(lxc.lxcpath)).toEqual([]);
  });

  it('a host UnixServer accepts a connection from node inside, and memfds cross both ways', async () => {
    expect(existsSync(join(shmRoot, 'dist/index.js'))).toBe(true);
    mkdirSync(share, { recursive: true });
    writeFileSync(join(share, 'guest.mjs'), GUEST);
    const name = `ipc-${process.pid}`;
    const config = baseConfig();
    config.mounts = [
      socketDirMount(share, '/run/vipc'),
      bindMount(shmRoot, '/opt/vipc/shm', { readOnly: true }),
    ];
    const box = await lxc.create(name, { config, rootfs: true });
    await box.start();
    const containerPid = (await box.info()).pid;

    server = UnixServer.listen(join(share, 'host.sock'));
    const accepted = new Promise<UnixSocket>((resolve) => server?.once('connection', resolve));
    const guest = box.attach(['node', '/run/vipc/guest.mjs'], { timeoutMs: 60_000 });

    const sock = await accepted;
    // The peer is a process of the container (host pid namespace view).
    const creds = sock.peerCredentials();
    expect(creds.uid).toBe(0);
    expect(creds.pid).toBeGreaterThan(0);
    expect(creds.pid).not.toBe(containerPid);

    using hostMem = memfdCreate('from-host', { size: 4096 });
    const hostMap = mmap(hostMem);
    const words = new Uint32Array(hostMap.buffer);
    words[0] = 21;
    sock.write(Buffer.from('h'), [hostMem]);

    const { data, fds } = await sock.readExact(1, { maxFds: 1 });
    expect(fds).toHaveLength(1);
    const theirs = fds[0];
    if (!theirs) throw new Error('no fd');
    expect(fstat(theirs).size).toBe(4096);
    const len = data[0] as number;
    const text = Buffer.from(mmap(theirs).buffer.slice(0, len)).toString();
    expect(text).toMatch(/^written inside pid \d+$/);
    // The container doubled the number the host wrote, in the host's memfd.
    expect(words[1]).toBe(42);
    sock.write(Buffer.from('k'));

    const r = await guest;
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const out = JSON.parse(r.stdout) as { got: string; pid: number };
    expect(out.got).toBe('h');
    // Inside, node sees its own pid namespace.
    expect(text).toBe(`written inside pid ${out.pid}`);
    theirs.close();
    hostMap.unmap();
    sock.close();
    server.close();
    server = undefined;
    await box.stop({ timeoutMs: 20_000 });
    await box.destroy();
  });
});
