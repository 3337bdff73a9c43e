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
      'vipc demo [--messages N] [--size BYTES] [--mode poll|event] [--ring split|packed] [--process | --container] [--json]',
    help: {
      messages: 'messages the front-end sends and expects echoed (default 20000)',
      size: 'bytes per message, from 8 to what the link carries (32756 with the default buffers; default 64)',
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
      verify: 'sink: count messages that are not vipc-generated (a vipc source) as corrupt',
      reconnect: 'when the link goes down, wait for the peer again (counters keep adding up)',
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
      verify: flag,
      reconnect: flag,
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
      'vipc send --socket /tmp/vhost.sock --count 100000 --size 64 --json   # into testpmd net_vhost',
      'printf "hello\\nworld\\n" | vipc send --socket /run/vipc/l.sock',
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
  {
    name: 'yocto emit',
    summary: 'emit the Yocto layer (recipes, kernel fragments, LXC configs) for a topology',
    usage: 'vipc yocto emit [FILE] --release R --out DIR [--prune] [--dry-run] [--json]',
    help: {
      release: 'Yocto release: scarthgap, styhead, walnascar, whinlatter or wrynose (required)',
      out: 'directory to write the layer to (created if needed)',
      layer: 'layer name (default meta-vipc)',
      prune: 'remove files in DIR that the layer does not have',
      'dry-run': 'list the files and what each is for; write nothing',
      json: 'print one JSON document with the files written',
    },
    options: { release: str, out: str, layer: str, prune: flag, 'dry-run': flag, json },
    positionals: { min: 0, max: 1 },
    examples: [
      'vipc yocto emit --release scarthgap --out meta-vipc',
      'vipc yocto emit topology.yaml --release styhead --out layers/meta-vipc --prune',
      'vipc yocto emit --release scarthgap --dry-run',
    ],
    load: () => import('./commands/yocto-emit.js'),
  },
  {
    name: 'dpdk testpmd',
    summary: 'run DPDK testpmd on a vhost-user socket (net_vhost or net_virtio_user) with live stats',
    usage:
      'vipc dpdk testpmd (--vhost PATH | --virtio-user PATH) [--forward-mode M] [--duration S] [--packed] [--json]',
    help: {
      vhost: 'testpmd is the back-end: net_vhost creates the socket PATH',
      'virtio-user': 'testpmd is the front-end: net_virtio_user connects to PATH',
      'forward-mode': 'rxonly (default with --vhost), txonly (default with --virtio-user), io or macswap',
      queues: 'queue pairs (default 1)',
      packed: 'negotiate packed virtqueues (front-end only)',
      memory: 'MiB of memory (default 256; memfd-backed, --no-huge, unless --huge-dir)',
      'huge-dir': 'use hugepages from this hugetlbfs mount',
      txpkts: 'txonly packet size in bytes (default 64)',
      duration: 'stop after S seconds (default: at Ctrl-C)',
      log: 'append testpmd output to this file',
      events: 'with --json: NDJSON events on stdout before the final document',
      json: 'print one final JSON document with the forward statistics',
    },
    options: {
      vhost: str,
      'virtio-user': str,
      'forward-mode': str,
      queues: str,
      packed: flag,
      memory: str,
      'huge-dir': str,
      txpkts: str,
      duration: str,
      log: str,
      events: flag,
      json,
    },
    examples: [
      'vipc dpdk testpmd --vhost /tmp/vhost.sock            # then: vipc send --socket /tmp/vhost.sock --count 1000',
      'vipc dpdk testpmd --virtio-user /run/vipc/l.sock --duration 10 --json',
    ],
    load: () => import('./commands/dpdk-testpmd.js'),
  },
  {
    name: 'dpdk hugepages',
    summary: 'show, reserve and mount hugepages; remove leftover DPDK hugepage files',
    usage:
      'vipc dpdk hugepages [--reserve N] [--size 2M|1G] [--mount DIR | --unmount DIR] [--clean] [--json]',
    help: {
      reserve: 'reserve N pages of --size (root)',
      size: 'page size (default 2M)',
      mount: 'mount hugetlbfs of --size pages on DIR (root)',
      unmount: 'unmount the hugetlbfs on DIR',
      clean: 'remove <prefix>map_* files no live process holds',
      json: 'print one JSON document: pools, mounts, files',
    },
    options: { reserve: str, size: str, mount: str, unmount: str, clean: flag, json },
    examples: [
      'vipc dpdk hugepages',
      'vipc dpdk hugepages --reserve 512 --mount /dev/hugepages',
      'vipc dpdk hugepages --clean',
    ],
    load: () => import('./commands/dpdk-hugepages.js'),
  },
  ...lxcCommands(),
  {
    name: 'bench',
    summary: 'run the benchmark app: vrings against Unix sockets, TCP, pipes, MessagePort and DPDK',
    usage:
      'vipc bench [--quick] [--json] [--sizes 64,1500,64k] [--scenarios id,...] [--html FILE] [--list] ...',
    help: {},
    options: {},
    passthrough: true,
    examples: ['vipc bench --quick', 'vipc bench --list', 'vipc bench --sizes 64,64k --html report.html'],
    load: () => import('./commands/bench.js'),
  },
];

function lxcCommands(): CommandSpec[] {
  const lxcpath = { lxcpath: str };
  const lxcHelp = { lxcpath: 'the containers directory (default /var/lib/vipc/lxc; env VIPC_LXC_PATH)' };
  const one = { min: 1, max: 1 };
  return [
    {
      name: 'lxc create',
      summary: 'create a container with a busybox + node rootfs and IPC bind mounts',
      usage:
        'vipc lxc create NAME [--socket-dir DIR] [--mount SRC:DST[:ro]]... [--memory MiB] [--start] [--json]',
      help: {
        'socket-dir': 'bind-mount this socket directory at the same path inside',
        mount: 'more bind mounts, HOST:CONTAINER[:ro] (repeatable)',
        memory: 'memory limit in MiB (cgroup)',
        'no-node': 'a plain busybox rootfs, without the host node runtime',
        start: 'start it right away',
        ...lxcHelp,
      },
      options: {
        'socket-dir': str,
        mount: { type: 'string', multiple: true },
        memory: str,
        'no-node': flag,
        start: flag,
        ...lxcpath,
        json,
      },
      positionals: one,
      examples: [
        'vipc lxc create guest --socket-dir /run/vipc --start',
        'vipc lxc create db --mount /srv/data:/data:ro',
      ],
      load: () => import('./commands/lxc-create.js'),
    },
    {
      name: 'lxc start',
      summary: 'start a container and wait until it runs',
      usage: 'vipc lxc start NAME [--json]',
      help: lxcHelp,
      options: { ...lxcpath, json },
      positionals: one,
      examples: ['vipc lxc start guest'],
      load: () => import('./commands/lxc-start.js'),
    },
    {
      name: 'lxc stop',
      summary: 'stop a container (clean shutdown, then kill)',
      usage: 'vipc lxc stop NAME [--kill] [--json]',
      help: { kill: 'kill at once, no clean shutdown', ...lxcHelp },
      options: { kill: flag, ...lxcpath, json },
      positionals: one,
      examples: ['vipc lxc stop guest', 'vipc lxc stop guest --kill'],
      load: () => import('./commands/lxc-stop.js'),
    },
    {
      name: 'lxc destroy',
      summary: 'stop and remove a container with its rootfs',
      usage: 'vipc lxc destroy NAME [--json]',
      help: lxcHelp,
      options: { ...lxcpath, json },
      positionals: one,
      examples: ['vipc lxc destroy guest'],
      load: () => import('./commands/lxc-destroy.js'),
    },
    {
      name: 'lxc list',
      summary: 'list the containers and their state',
      usage: 'vipc lxc list [--json]',
      help: lxcHelp,
      options: { ...lxcpath, json },
      examples: ['vipc lxc list', 'vipc lxc list --lxcpath /var/lib/lxc'],
      load: () => import('./commands/lxc-list.js'),
    },
    {
      name: 'lxc info',
      summary: 'state, init pid, memory and CPU of a container',
      usage: 'vipc lxc info NAME [--json]',
      help: lxcHelp,
      options: { ...lxcpath, json },
      positionals: one,
      examples: ['vipc lxc info guest --json'],
      load: () => import('./commands/lxc-info.js'),
    },
    {
      name: 'lxc exec',
      summary: 'run a command in a running container (clean environment)',
      usage: 'vipc lxc exec NAME [--json] -- CMD [ARGS...]',
      help: { ...lxcHelp, json: 'print one JSON document: exitCode, stdout, stderr' },
      options: { ...lxcpath, json },
      positionals: { min: 2, max: 1000 },
      examples: ['vipc lxc exec guest -- node -e "console.log(process.version)"'],
      load: () => import('./commands/lxc-exec.js'),
    },
  ];
}

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
