import type { CommandSpec } from './command.js';
import { LINK_HELP, LINK_OPTIONS } from './link-options.js';

const json = { type: 'boolean' } as const;
const str = { type: 'string' } as const;
const flag = { type: 'boolean' } as const;
const stateDir = { 'state-dir': str };
const stateHelp = {
  'state-dir': 'where state files live (default /run/vipc/state as root; env VIPC_STATE_DIR)',
};

/** Every command, declared once; each module is imported only when its command runs. */
export const COMMANDS: CommandSpec[] = [
  {
    name: 'doctor',
    summary: 'check the kernel, hugepages, DPDK, LXC and permissions; each finding comes with its fix',
    usage: 'vipc doctor [--json]',
    help: { json: 'print one JSON document with every finding' },
    options: { json },
    examples: ['vipc doctor', 'vipc doctor --json | jq ".findings[] | select(.status != \\"ok\\")"'],
    load: () => import('./commands/doctor.js'),
  },
  {
    name: 'validate',
    summary: 'check a topology file and print what it describes',
    usage: 'vipc validate FILE [--json]',
    help: { json: 'print the normalised topology as JSON' },
    options: { json },
    positionals: { min: 1, max: 1 },
    examples: ['vipc validate topology.yaml'],
    load: () => import('./commands/validate.js'),
  },
  {
    name: 'demo',
    summary: 'a host back-end and a front-end in an LXC container exchange messages over vhost-user',
    usage:
      'vipc demo [--messages N] [--size BYTES] [--mode poll|event] [--ring split|packed] [--process] [--json]',
    help: {
      messages: 'messages the front-end sends and expects echoed (default 20000)',
      size: 'bytes per message, 8 to 65536 (default 64)',
      mode: 'event (eventfd kicks, default) or poll (busy-polling)',
      ring: 'split (default) or packed virtqueues',
      process: 'run the front-end in a second process even when LXC is usable',
      container: 'insist on an LXC container (fail instead of falling back to a process)',
      json: 'print one JSON document: endpoint (container|process), sent, received, lost, throughput, latency',
    },
    options: { messages: str, size: str, mode: str, ring: str, process: flag, container: flag, json },
    examples: [
      'vipc demo',
      'vipc demo --messages 100000 --size 1024 --mode poll',
      'vipc demo --json | jq "{endpoint, sent, received, lost}"',
    ],
    load: () => import('./commands/demo.js'),
  },
  {
    name: 'up',
    summary: 'bring a topology up: hugepages, DPDK apps, containers and vipc endpoints',
    usage: 'vipc up FILE [--timeout SECONDS] [--state-dir DIR] [--json]',
    help: {
      timeout: 'seconds to wait for every link to come up (default 60)',
      ...stateHelp,
      json: 'print one JSON document with the state recorded',
    },
    options: { timeout: str, ...stateDir, json },
    positionals: { min: 1, max: 1 },
    examples: ['vipc up topology.yaml', 'vipc up topology.yaml --timeout 120 && vipc status'],
    load: () => import('./commands/up.js'),
  },
  {
    name: 'down',
    summary: 'tear a topology down from its state file (also after a crashed vipc up)',
    usage: 'vipc down [NAME] [--all] [--state-dir DIR] [--json]',
    help: {
      all: 'tear down every recorded topology',
      ...stateHelp,
      json: 'print one JSON document of what was removed',
    },
    options: { all: flag, ...stateDir, json },
    positionals: { min: 0, max: 1 },
    examples: ['vipc down', 'vipc down vipc-demo', 'vipc down --all'],
    load: () => import('./commands/down.js'),
  },
  {
    name: 'status',
    summary: 'report the topologies that are up: processes, containers, links and their counters',
    usage: 'vipc status [NAME] [--state-dir DIR] [--json]',
    help: { ...stateHelp, json: 'print one JSON document; exit 1 unless everything is up' },
    options: { ...stateDir, json },
    positionals: { min: 0, max: 1 },
    examples: ['vipc status', 'vipc status --json | jq ".topologies[].health"'],
    load: () => import('./commands/status.js'),
  },
  {
    name: 'endpoint',
    summary: 'run one vipc endpoint (echo, sink, source or ping) on a link; what up and demo start',
    usage:
      'vipc endpoint --socket PATH [--role R] [--listen] [--action echo|sink|source|ping] [--count N] [--size B] [--json]',
    help: {
      ...LINK_HELP,
      action: 'echo (default), sink, source, or ping (send and time the echoes)',
      count: 'messages to send (source, ping) or to receive (sink); 0 = no limit',
      size: 'bytes per generated message (default 64)',
      window: 'ping: messages in flight at most (default: half the queue size, up to 64)',
      idle: 'ping: seconds without an echo after which missing ones count as lost (default 5)',
      'status-file': 'keep a JSON status (state, counters) in this file',
      json: 'print NDJSON events on stdout: link-up, traffic-progress, traffic-done',
    },
    options: {
      ...LINK_OPTIONS,
      action: str,
      count: str,
      size: str,
      window: str,
      idle: str,
      'status-file': str,
      json,
    },
    examples: [
      'vipc endpoint --socket /run/vipc/l.sock --listen --action echo',
      'vipc endpoint --socket /run/vipc/l.sock --action ping --count 1000 --json',
    ],
    load: () => import('./commands/endpoint.js'),
  },
  {
    name: 'send',
    summary: 'send messages on a vhost-user link: stdin lines, length-prefixed frames, or generated traffic',
    usage:
      'vipc send --socket PATH [--role frontend|backend] [--listen] [--count N --size B | --binary] [--json]',
    help: {
      ...LINK_HELP,
      role: 'frontend (default: the virtio driver side) or backend',
      count: 'send N generated messages instead of reading stdin',
      size: 'bytes per generated message (default 64)',
      binary: 'stdin holds frames: a 4-byte big-endian length, then the bytes',
      json: 'print one final JSON document: sent, bytes',
    },
    options: { ...LINK_OPTIONS, count: str, size: str, binary: flag, json },
    examples: [
      'printf "hello\\nworld\\n" | vipc send --socket /run/vipc/l.sock',
      'vipc send --socket /tmp/vhost.sock --count 100000 --size 64 --json   # into testpmd net_vhost',
    ],
    load: () => import('./commands/send.js'),
  },
  {
    name: 'recv',
    summary: 'receive messages from a vhost-user link: as stdout lines, length-prefixed frames, or counted',
    usage: 'vipc recv --socket PATH [--role backend|frontend] [--listen] [--count N] [--binary] [--json]',
    help: {
      ...LINK_HELP,
      role: 'backend (default: the vhost device side) or frontend',
      count: 'stop after N messages (default: until the peer goes away)',
      binary: 'write frames (a 4-byte big-endian length, then the bytes) instead of lines',
      json: 'print only one final JSON document: received, bytes',
    },
    options: { ...LINK_OPTIONS, count: str, binary: flag, json },
    examples: [
      'vipc recv --socket /run/vipc/l.sock --listen',
      'vipc recv --socket /tmp/virtio.sock --listen --count 128 --json   # from testpmd net_virtio_user',
    ],
    load: () => import('./commands/recv.js'),
  },
];

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** The command named by the first words of argv (`dpdk testpmd ...` before `dpdk`), and the rest. */
export function resolveCommand(argv: string[]): { spec: CommandSpec; args: string[] } | undefined {
  for (const words of [2, 1]) {
    if (argv.length < words) continue;
    const spec = findCommand(argv.slice(0, words).join(' '));
    if (spec) return { spec, args: argv.slice(words) };
  }
  return undefined;
}
