// The other process of the cross-process tests: `node test/peer.mjs <scenario> <socket> [args]`.
// It uses the built package, exactly as a user's program would.
import { connect, EventFd, mmap, openFdCount } from '../dist/index.js';

const [scenario, path, ...args] = process.argv.slice(2);
const sock = await connect(path, { timeoutMs: 10_000 });

switch (scenario) {
  case 'memfd': {
    // Receive a memfd, read what the parent wrote, answer through the same memory.
    const { fds } = await sock.readExact(1, { maxFds: 1 });
    const map = mmap(fds[0]);
    const view = new Uint32Array(map.buffer);
    view[1] = view[0] * 2;
    sock.write(Buffer.from('k'));
    await sock.readExact(1);
    map.unmap();
    fds[0].close();
    break;
  }
  case 'kick': {
    const { fds } = await sock.readExact(1, { maxFds: 1 });
    const efd = EventFd.from(fds[0]);
    efd.kick(Number(args[0] ?? 1));
    await sock.readExact(1);
    efd.close();
    break;
  }
  case 'echo-fds': {
    // Receive a 4-byte counter with one fd, send it back with the same fd.
    const cycles = Number(args[0]);
    const before = openFdCount();
    for (let i = 0; i < cycles; i++) {
      const { data, fds } = await sock.readExact(4, { maxFds: 1 });
      sock.write(data, fds);
      for (const f of fds) f.close();
    }
    const after = openFdCount();
    sock.write(Buffer.from(JSON.stringify({ before, after })));
    await sock.readExact(1);
    break;
  }
  case 'creds': {
    const me = { pid: process.pid, uid: process.getuid(), gid: process.getgid() };
    const body = Buffer.from(JSON.stringify(me));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(body.length);
    sock.write(Buffer.concat([len, body]));
    await sock.readExact(1);
    break;
  }
  case 'die-mid-message': {
    // Announce 12 bytes, send 6, then die without closing anything.
    const header = Buffer.alloc(4);
    header.writeUInt32LE(12);
    sock.write(Buffer.concat([header, Buffer.from('abcdef')]));
    setTimeout(() => process.kill(process.pid, 'SIGKILL'), 50);
    await new Promise(() => {});
    break;
  }
  default:
    console.error(`peer: unknown scenario ${scenario}`);
    process.exit(2);
}
sock.close();
