/**
 * Constants of DPDK 22.11 behaviour this package relies on. Sections refer to the DPDK
 * documentation: "EAL parameters" (doc/guides/linux_gsg/linux_eal_parameters.rst and
 * eal_args.include.rst), "Testpmd Runtime Functions" / "Testpmd Command-line Options"
 * (doc/guides/testpmd_app_ug), "Vhost Library" and "Virtio_user for Container Networking"
 * (doc/guides/howto/virtio_user_for_container_networking.rst), and the net_vhost PMD
 * guide (doc/guides/nics/vhost.rst).
 */

/** The Debian package that ships dpdk-testpmd and the other DPDK apps (the package `dpdk` alone does not). */
export const DEBIAN_PACKAGE = 'dpdk-dev';

/** Directories searched for DPDK applications when they are not on PATH. */
export const APP_SEARCH_DIRS: readonly string[] = [
  '/usr/bin',
  '/usr/local/bin',
  '/usr/sbin',
  '/usr/local/sbin',
];

/** The test application. */
export const TESTPMD = 'dpdk-testpmd';

/** The default --file-prefix of the EAL ("EAL parameters": --file-prefix). */
export const DEFAULT_FILE_PREFIX = 'rte';

/**
 * Runtime directory of an EAL process (lib/eal/linux eal_create_runtime_dir): /var/run/dpdk/<prefix> as
 * root, otherwise $XDG_RUNTIME_DIR/dpdk/<prefix>, falling back to /tmp/dpdk/<prefix>.
 */
export const ROOT_RUNTIME_BASE = '/var/run/dpdk';
export const USER_RUNTIME_FALLBACK_BASE = '/tmp';

/** Hugepage backing files are named <prefix>map_<n> (single-file-segments: <prefix>map_<list>). */
export const HUGEPAGE_FILE_INFIX = 'map_';

/** sysfs locations of hugepage pools (kernel Documentation/admin-guide/mm/hugetlbpage.rst). */
export const SYSFS_HUGEPAGES = '/sys/kernel/mm/hugepages';
export const SYSFS_NODES = '/sys/devices/system/node';

/** testpmd interactive prompt ("Testpmd Runtime Functions"). */
export const TESTPMD_PROMPT = 'testpmd> ';

/** Forwarding modes of testpmd 22.11 ("Testpmd Command-line Options": --forward-mode). */
export const FORWARD_MODES = [
  'io',
  'mac',
  'macswap',
  'flowgen',
  'rxonly',
  'txonly',
  'csum',
  'icmpecho',
  'ieee1588',
  'noisy',
  '5tswap',
  'shared-rxq',
] as const;
export type ForwardMode = (typeof FORWARD_MODES)[number];

/** Lines testpmd and the vhost library print at the moments the Supervisor reports. */
export const OUTPUT_PATTERNS = {
  /** lib/vhost socket.c: "(<path>) vhost-user server: socket created, fd: N" */
  socketCreated: /\((?<path>[^)]+)\) vhost-user server: socket created/,
  /** lib/vhost: "(<path>) virtio is now ready for processing." (back-end side link up) */
  virtioReady: /\((?<path>[^)]+)\) virtio is now ready for processing/,
  /** lib/vhost: "(<path>) vhost peer closed" */
  peerClosed: /\((?<path>[^)]+)\) vhost peer closed/,
  /** testpmd: "<mode> packet forwarding - ports=N - cores=N ..." printed when forwarding starts. */
  forwardingStarted: /^(?<mode>[\w-]+) packet forwarding - ports=(?<ports>\d+)/,
  /** testpmd: "Port N: link state change event" */
  linkStateChange: /^Port (?<port>\d+): link state change event/,
  /** testpmd: "Port N: <MAC>" after a port is configured. */
  portConfigured: /^Port (?<port>\d+): (?<mac>[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})$/,
  /** EAL start-up failure. */
  ealError: /^EAL: (?:Error|FATAL|Cannot|Invalid)/,
} as const;

/** How many output lines a process keeps in memory for exit reports. */
export const DEFAULT_LOG_TAIL_LINES = 200;
