import {
  COLLECTION_CORE,
  COLLECTION_DPDK,
  COLLECTION_OPENEMBEDDED,
  COLLECTION_VIRTUALIZATION,
} from '../defs.js';
import { guestImage, guestMc, header, hostImage, type LayerContext, list } from './context.js';
import type { LayerFile } from './file.js';

export function layerConf(c: LayerContext): LayerFile {
  const deps = [COLLECTION_CORE, COLLECTION_OPENEMBEDDED, COLLECTION_VIRTUALIZATION];
  if (c.usesDpdk) deps.push(COLLECTION_DPDK);
  const n = c.collection;
  return {
    path: 'conf/layer.conf',
    purpose: `layer registration: BBPATH, BBFILES, collection ${n}, LAYERDEPENDS, LAYERSERIES_COMPAT ${c.release.layerSeriesCompat}`,
    content: `${header(c, `Layer configuration of ${c.o.layerName}.`)}
# Only paths, the collection and its dependencies live here: a layer.conf must
# never change a build by itself (no DISTRO_FEATURES, providers or machines).
BBPATH .= ":\${LAYERDIR}"

BBFILES += "\${LAYERDIR}/recipes-*/*/*.bb \\
            \${LAYERDIR}/recipes-*/*/*.bbappend"

BBFILE_COLLECTIONS += "${n}"
BBFILE_PATTERN_${n} = "^\${LAYERDIR}/"
BBFILE_PRIORITY_${n} = "${c.o.priority}"
LAYERVERSION_${n} = "1"

LAYERDEPENDS_${n} = "${deps.join(' ')}"
LAYERSERIES_COMPAT_${n} = "${c.release.layerSeriesCompat}"
`,
  };
}

/** Everything global, for users who keep their own distro: `require conf/distro/include/<collection>.inc`. */
export function distroInclude(c: LayerContext): LayerFile {
  const P = c.varPrefix;
  const features = ['virtualization', c.collection];
  if (c.o.initSystem === 'systemd') features.push('systemd', 'usrmerge');
  else features.push('sysvinit');
  const lines: string[] = [];
  lines.push(`${header(c, `Global settings of ${c.o.layerName}, required by conf/distro/${c.o.distro}.conf.`)}
# Distros other than ${c.o.distro} may require this file instead of using the
# distro conf. It adds the "${c.override}" override, which gates every bbappend
# of the layer: without it the layer changes nothing in a build.
DISTROOVERRIDES:append = ":${c.override}"

DISTRO_FEATURES:append = " ${features.join(' ')}"
`);
  if (c.o.initSystem === 'systemd') {
    lines.push(`INIT_MANAGER ?= "systemd"
`);
  } else {
    lines.push(`INIT_MANAGER ?= "sysvinit"
DISTRO_FEATURES_BACKFILL_CONSIDERED:append = " systemd"
`);
  }
  if (c.usesDpdk) {
    lines.push(`
# meta-dpdk ships COMPATIBLE_MACHINE = "null": opt in for the machines we run on.
COMPATIBLE_MACHINE:pn-dpdk = "${c.o.machine}"
COMPATIBLE_MACHINE:pn-dpdk-module = "${c.o.machine}"
`);
  }
  if (c.release.tclibcAppend)
    lines.push(`
# Guest multiconfigs write to \${TOPDIR}/tmp-<mc>\${TCLIBCAPPEND}; keep that predictable.
TCLIBCAPPEND = ""
`);
  lines.push(`
# The guests the host image installs (one multiconfig each); the sanity class
# warns when one of them is missing from BBMULTICONFIG.
${P}_GUEST_MULTICONFIGS ?= "${c.t.containers.map((k) => guestMc(c, k)).join(' ')}"
INHERIT += "${c.collection}-sanity"
`);
  return {
    path: `conf/distro/include/${c.collection}.inc`,
    purpose: `global settings (distro features, init manager, DPDK machines, override ${c.override}) for any distro`,
    content: lines.join(''),
  };
}

function hardening(c: LayerContext): string {
  if (c.release.coreHardeningDefaults)
    return `# Sanity knobs: OE-core's defaultsetup.conf already brings no static libraries,
# hardened compiler flags and uninative on ${c.release.name}; nothing to add.
`;
  return `# Sanity knobs: no static libraries, hardened compiler flags and a
# reproducible native glibc (uninative), as the reference distro does.
require conf/distro/include/no-static-libs.inc
require conf/distro/include/security_flags.inc
require conf/distro/include/yocto-uninative.inc
INHERIT += "uninative"
`;
}

export function distroConf(c: LayerContext): LayerFile {
  return {
    path: `conf/distro/${c.o.distro}.conf`,
    purpose: `distro ${c.o.distro}: requires the layer's global settings plus OE-core's hardening and uninative`,
    content: `${header(c, `Distro ${c.o.distro}: a host for vhost-user IPC between LXC containers.`)}
DISTRO = "${c.o.distro}"
DISTRO_NAME = "${c.o.distro} (vhost-user container IPC)"
DISTRO_VERSION = "${c.o.vipcVersion}"
DISTRO_CODENAME = "${c.release.name}"
MAINTAINER = "${c.o.maintainer.name} <${c.o.maintainer.email}>"

require conf/distro/include/${c.collection}.inc

${hardening(c)}
# QA warnings that hide real packaging bugs are errors here.
WARN_TO_ERROR_QA = "already-stripped compile-host-path install-host-path \\
                    installed-vs-shipped ldflags pn-overrides rpaths staticdev \\
                    unknown-configure-option useless-rpaths"
WARN_QA:remove = "\${WARN_TO_ERROR_QA}"
ERROR_QA:append = " \${WARN_TO_ERROR_QA}"
`,
  };
}

export function multiconfigConf(c: LayerContext, k: import('../model.js').YoctoContainer): LayerFile {
  const mc = guestMc(c, k);
  return {
    path: `conf/multiconfig/${mc}.conf`,
    purpose: `guest multiconfig of container ${k.name}: own TMPDIR, linux-dummy kernel, container rootfs`,
    content: `${header(c, `Multiconfig ${mc}: the root filesystem of container ${k.name}.`)}
# Enabled by conf/include/${c.collection}-multiconfig.inc (BBMULTICONFIG is never set here).
# Build with: bitbake mc:${mc}:${guestImage(c, k)}
TMPDIR = "\${TOPDIR}/tmp-\${BB_CURRENT_MC}"

${c.varPrefix}_GUEST = "${k.name}"
DISTROOVERRIDES:append = ":${c.guestOverride}"

# A container shares the host's kernel.
PREFERRED_PROVIDER_virtual/kernel = "linux-dummy"
# The guest override wins over what the machine conf adds to IMAGE_FSTYPES.
IMAGE_FSTYPES:${c.guestOverride} = "container"
`,
  };
}

export function multiconfigInclude(c: LayerContext): LayerFile {
  return {
    path: `conf/include/${c.collection}-multiconfig.inc`,
    purpose: 'enables the guest multiconfigs; required from local.conf',
    content: `${header(c, 'Enables one multiconfig per container.')}
# In conf/local.conf:   require conf/include/${c.collection}-multiconfig.inc
BBMULTICONFIG += "${c.t.containers.map((k) => guestMc(c, k)).join(' ')}"
`,
  };
}

function defaultMachine(c: LayerContext): string {
  const first = c.o.machine.split('|')[0] ?? '';
  return /^[a-z0-9][a-z0-9-]*$/.test(first) ? first : 'qemux86-64';
}

export function templates(c: LayerContext): LayerFile[] {
  const layers = [
    '##OEROOT##/meta',
    '##OEROOT##/../meta-openembedded/meta-oe',
    '##OEROOT##/../meta-openembedded/meta-python',
    '##OEROOT##/../meta-openembedded/meta-networking',
    '##OEROOT##/../meta-openembedded/meta-filesystems',
    '##OEROOT##/../meta-virtualization',
  ];
  if (c.usesDpdk) layers.push('##OEROOT##/../meta-dpdk');
  layers.push(`##OEROOT##/../${c.o.layerName}`);
  const dir = 'conf/templates/default';
  return [
    {
      path: `${dir}/local.conf.sample`,
      purpose: 'TEMPLATECONF local.conf: machine, distro, the multiconfig include',
      content: `${header(c, 'local.conf template (TEMPLATECONF=<layer>/conf/templates/default).')}
MACHINE ??= "${defaultMachine(c)}"
DISTRO ?= "${c.o.distro}"
PACKAGE_CLASSES ?= "package_ipk"

# One multiconfig per container; the host image installs their root filesystems.
require conf/include/${c.collection}-multiconfig.inc

# The vipc CLI is not fetched from anywhere by default: point this at a tarball
# of the CLI built for the target (see the layer's README).
#${c.varPrefix}_CLI_SRC_URI = "file:///path/to/vipc-cli.tar.gz"

BB_DISKMON_DIRS ??= "\\
    STOPTASKS,\${TMPDIR},1G,100K \\
    STOPTASKS,\${DL_DIR},1G,100K \\
    STOPTASKS,\${SSTATE_DIR},1G,100K \\
    HALT,\${TMPDIR},100M,1K \\
    HALT,\${DL_DIR},100M,1K \\
    HALT,\${SSTATE_DIR},100M,1K"

CONF_VERSION = "2"
`,
    },
    {
      path: `${dir}/bblayers.conf.sample`,
      purpose: 'TEMPLATECONF bblayers.conf: OE-core, meta-oe, meta-virtualization, meta-dpdk and this layer',
      content: `${header(c, 'bblayers.conf template; layers are expected next to the OE-core (or poky) checkout.')}
BBPATH = "\${TOPDIR}"
BBFILES ?= ""

BBLAYERS ?= ${list(layers, '  ')}
`,
    },
    {
      path: `${dir}/conf-notes.txt`,
      purpose: 'targets printed by oe-init-build-env',
      content: `
### Shell environment set up for builds with ${c.o.layerName}. ###

Common targets are:
    ${hostImage(c)}
        the host: LXC${c.usesDpdk ? ', DPDK' : ''}, the vhost-user endpoints and every container
${c.t.containers.map((k) => `    mc:${guestMc(c, k)}:${guestImage(c, k)}\n        the root filesystem of container ${k.name} alone\n`).join('')}
`,
    },
  ];
}
