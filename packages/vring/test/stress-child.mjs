// The device process of the cross-process stress test: `node stress-child.mjs <kind> <size>`
// with the shared memfd on fd 3, the kick eventfd on fd 4 and the call eventfd on fd 5.
// It sleeps on the kick eventfd through the event loop (EVENT_IDX decides every notification).
import { EventFd, Fd, mmap } from '@vipc/shm';
import { StressDevice } from './stress-lib.mjs';

const [kind, sizeText] = process.argv.slice(2);
const size = Number(sizeText);
const map = mmap(new Fd(3));
const kick = EventFd.from(new Fd(4));
const call = EventFd.from(new Fd(5));
const device = new StressDevice({ kind, size, buffer: map.buffer, call: () => call.kick() });
let sleeps = 0;

function finish(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  kick.close();
  call.close();
  map.unmap();
  process.exit(result.ok ? 0 : 1);
}

function run() {
  try {
    for (;;) {
      const r = device.step();
      if (r === 'done') return finish({ ok: true, processed: device.processed, calls: device.calls, sleeps });
      if (r === 'sleep') {
        sleeps++;
        return; // the kick watcher calls run() again
      }
    }
  } catch (e) {
    finish({ ok: false, error: String(e?.stack ?? e) });
  }
}

kick.watch(() => run());
run();
