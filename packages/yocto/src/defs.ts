/**
 * Constants of the Yocto Project and BitBake that the emitter depends on.
 * Each names where it is defined (the Yocto Project Reference Manual "variables"
 * chapter, the BitBake User Manual, or the layer that owns the value).
 */

/** The releases the emitter targets (Yocto Project release names, Reference Manual "Release Information"). */
export const RELEASES = ['scarthgap', 'styhead', 'walnascar', 'whinlatter', 'wrynose'] as const;
export type Release = (typeof RELEASES)[number];

/** How a recipe that only has `file://` sources names its source directory. */
export type SourceDirRule = 'workdir' | 'sources-unpackdir' | 'unpackdir';

export interface ReleaseInfo {
  name: Release;
  /** Yocto Project version number. */
  version: string;
  /** Long-term support release. */
  lts: boolean;
  /** Value for LAYERSERIES_COMPAT_<collection> (Reference Manual, LAYERSERIES_COMPAT). */
  layerSeriesCompat: string;
  /**
   * S/UNPACKDIR rule for file-only recipes (Reference Manual, migration notes 5.1:
   * "S = ${WORKDIR}" is no longer supported; UNPACKDIR was introduced in 5.1).
   */
  sourceDir: SourceDirRule;
  /** LXC series packaged by meta-virtualization on that branch (recipes-containers/lxc/lxc_git.bb). */
  lxcSeries: string;
  /** Branch of meta-virtualization, meta-openembedded and meta-dpdk to pair with. */
  branch: string;
  /** Where bitbake and OE-core come from for this release. */
  coreRepos: 'poky' | 'split';
  /**
   * TMPDIR still gets `${TCLIBCAPPEND}` appended (until scarthgap); from styhead on
   * the variable is in BB_RENAMED_VARIABLES and setting it is an error.
   */
  tclibcAppend: boolean;
  /**
   * OE-core's defaultsetup.conf already requires no-static-libs.inc,
   * security_flags.inc and yocto-uninative.inc and inherits uninative (wrynose):
   * a distro requiring them again gets "Duplicate inclusion" warnings.
   */
  coreHardeningDefaults: boolean;
}

export const RELEASE_INFO: Readonly<Record<Release, ReleaseInfo>> = {
  scarthgap: {
    name: 'scarthgap',
    version: '5.0',
    lts: true,
    layerSeriesCompat: 'scarthgap',
    sourceDir: 'workdir',
    lxcSeries: '5.0',
    branch: 'scarthgap',
    coreRepos: 'poky',
    tclibcAppend: true,
    coreHardeningDefaults: false,
  },
  styhead: {
    name: 'styhead',
    version: '5.1',
    lts: false,
    layerSeriesCompat: 'styhead',
    sourceDir: 'sources-unpackdir',
    lxcSeries: '6.0',
    branch: 'styhead',
    coreRepos: 'poky',
    tclibcAppend: false,
    coreHardeningDefaults: false,
  },
  walnascar: {
    name: 'walnascar',
    version: '5.2',
    lts: false,
    layerSeriesCompat: 'walnascar',
    sourceDir: 'sources-unpackdir',
    lxcSeries: '6.0',
    branch: 'walnascar',
    coreRepos: 'poky',
    tclibcAppend: false,
    coreHardeningDefaults: false,
  },
  whinlatter: {
    name: 'whinlatter',
    version: '5.3',
    lts: false,
    layerSeriesCompat: 'whinlatter',
    sourceDir: 'unpackdir',
    lxcSeries: '6.0',
    branch: 'whinlatter',
    coreRepos: 'split',
    tclibcAppend: false,
    coreHardeningDefaults: false,
  },
  wrynose: {
    name: 'wrynose',
    version: '6.0',
    lts: true,
    layerSeriesCompat: 'wrynose',
    sourceDir: 'unpackdir',
    lxcSeries: '6.0',
    branch: 'wrynose',
    coreRepos: 'split',
    tclibcAppend: false,
    coreHardeningDefaults: true,
  },
};

/** BBFILE_COLLECTIONS names of the layers the emitted layer depends on (each layer's conf/layer.conf). */
export const COLLECTION_CORE = 'core';
export const COLLECTION_VIRTUALIZATION = 'virtualization-layer';
export const COLLECTION_OPENEMBEDDED = 'openembedded-layer';
export const COLLECTION_DPDK = 'dpdk';

/** Kernel configuration fragments (Kconfig symbols without the CONFIG_ prefix; "n" means "is not set"). */
export type KconfigValue = 'y' | 'm' | 'n';
export interface KernelFragment {
  /** File base name (`<name>.cfg`). */
  name: string;
  /** `kconf hardware` or `kconf non-hardware` in the .scc (Yocto Kernel Development Manual, "Kernel Metadata Syntax"). */
  kind: 'hardware' | 'non-hardware';
  purpose: string;
  options: ReadonlyArray<readonly [string, KconfigValue]>;
}

export const FRAGMENT_HUGEPAGES: KernelFragment = {
  name: 'hugepages',
  kind: 'non-hardware',
  purpose: 'hugetlbfs for vring memory shared with DPDK',
  // MEMFD_CREATE is a hidden symbol selected by TMPFS/HUGETLBFS: never set it.
  options: [
    ['HUGETLBFS', 'y'],
    ['HUGETLB_PAGE', 'y'],
    ['CGROUP_HUGETLB', 'y'],
    ['PROC_PAGE_MONITOR', 'y'],
  ],
};

export const FRAGMENT_VHOST: KernelFragment = {
  name: 'vhost',
  kind: 'non-hardware',
  purpose: 'eventfd, tun and kernel vhost (vhost-user itself needs no kernel vhost)',
  options: [
    ['VHOST_MENU', 'y'],
    ['VHOST_NET', 'm'],
    ['VHOST_VSOCK', 'm'],
    ['TUN', 'y'],
    ['EVENTFD', 'y'],
  ],
};

export const FRAGMENT_LXC: KernelFragment = {
  name: 'lxc',
  kind: 'non-hardware',
  purpose: 'namespaces and cgroups for LXC (RT_GROUP_SCHED stays off: it breaks systemd)',
  options: [
    ['NAMESPACES', 'y'],
    ['UTS_NS', 'y'],
    ['IPC_NS', 'y'],
    ['USER_NS', 'y'],
    ['PID_NS', 'y'],
    ['NET_NS', 'y'],
    ['CGROUPS', 'y'],
    ['CGROUP_DEVICE', 'y'],
    ['CGROUP_FREEZER', 'y'],
    ['CGROUP_PIDS', 'y'],
    ['CGROUP_CPUACCT', 'y'],
    ['CPUSETS', 'y'],
    ['MEMCG', 'y'],
    ['CGROUP_SCHED', 'y'],
    ['FAIR_GROUP_SCHED', 'y'],
    ['RT_GROUP_SCHED', 'n'],
    ['BLK_CGROUP', 'y'],
    ['CGROUP_BPF', 'y'],
    ['BPF', 'y'],
    ['BPF_SYSCALL', 'y'],
    ['CHECKPOINT_RESTORE', 'y'],
  ],
};

export const FRAGMENT_LXC_NET: KernelFragment = {
  name: 'lxc-net',
  kind: 'non-hardware',
  purpose: 'veth and bridge for LXC networks other than "empty"',
  options: [
    ['VETH', 'm'],
    ['BRIDGE', 'm'],
  ],
};

export const FRAGMENT_VFIO: KernelFragment = {
  name: 'vfio-uio',
  kind: 'hardware',
  purpose: 'VFIO and UIO so DPDK can drive physical NICs',
  options: [
    ['PCI_MSI', 'y'],
    ['VFIO', 'm'],
    ['VFIO_IOMMU_TYPE1', 'm'],
    ['VFIO_PCI', 'm'],
    ['UIO', 'm'],
    ['UIO_PCI_GENERIC', 'm'],
  ],
};

/** Old-style override operators BitBake refuses since 3.4 (bitbake data_smart.py setVar). */
export const OLD_OVERRIDE_OPERATIONS = ['_append', '_prepend', '_remove'] as const;

/** Assignment operators (BitBake User Manual, "Basic Syntax"). */
export const ASSIGNMENT_OPERATORS = ['=', '?=', '??=', ':=', '+=', '=+', '.=', '=.'] as const;
export type AssignmentOperator = (typeof ASSIGNMENT_OPERATORS)[number];

/** Override-style operations (BitBake User Manual, "Appending and Prepending (Override Style Syntax)"). */
export const OVERRIDE_OPERATIONS = ['append', 'prepend', 'remove'] as const;

/** The MIT licence checksum of OE-core's common-licenses/MIT (meta/files/common-licenses/MIT). */
export const COMMON_MIT_MD5 = '0835ade698e0bcf8506ecda2f7b4f302';
