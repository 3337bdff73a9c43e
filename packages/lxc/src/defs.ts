/**
 * Constants of LXC 5 (lxc.container.conf(5), lxc-start(1), lxc-wait(1)) and of
 * the Debian packages this package relies on.
 */

/** Container states, lxc-wait(1) "STATES" / lxc_state.h. */
export const CONTAINER_STATES = [
  'STOPPED',
  'STARTING',
  'RUNNING',
  'STOPPING',
  'ABORTING',
  'FREEZING',
  'FROZEN',
  'THAWED',
] as const;
export type ContainerState = (typeof CONTAINER_STATES)[number];

/** The system lxcpath of Debian's lxc package (`lxc-config lxc.lxcpath`). */
export const DEFAULT_LXCPATH = '/var/lib/lxc';

/** Debian package that provides lxc-start, lxc-attach, ... */
export const LXC_PACKAGE = 'lxc';
/** Debian package that provides the static busybox used for root filesystems. */
export const BUSYBOX_PACKAGE = 'busybox-static';
/** Where Debian's busybox-static installs the binary. */
export const BUSYBOX_PATHS = ['/bin/busybox', '/usr/bin/busybox'] as const;

/**
 * Container names: lxc-create accepts any name that is a valid directory name;
 * we restrict to what is also a valid hostname label so `lxc.uts.name` can
 * default to it (lxc.container.conf(5) "UTS NAME").
 */
export const CONTAINER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** Log priorities, lxc.container.conf(5) "LOGGING" (lxc.log.level). */
export const LOG_LEVELS = [
  'TRACE',
  'DEBUG',
  'INFO',
  'NOTICE',
  'WARN',
  'ERROR',
  'CRIT',
  'ALERT',
  'FATAL',
] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Network types, lxc.container.conf(5) "NETWORK" (lxc.net.[i].type). */
export const NET_TYPES = ['empty', 'none', 'veth', 'vlan', 'macvlan', 'ipvlan', 'phys'] as const;
export type NetType = (typeof NET_TYPES)[number];

/** Upper bound on a config text we agree to parse (LXC itself reads any size; configs are a few KiB). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
