import { header, type LayerContext } from './context.js';
import type { LayerFile } from './file.js';

export function sanityClass(c: LayerContext): LayerFile {
  const P = c.varPrefix;
  return {
    path: `classes/${c.collection}-sanity.bbclass`,
    purpose: 'configuration checks: guest multiconfigs enabled, required distro features present',
    content: `${header(c, 'Configuration sanity checks, INHERITed by the distro include.')}
addhandler ${P.toLowerCase()}_sanity_check
${P.toLowerCase()}_sanity_check[eventmask] = "bb.event.ConfigParsed"

python ${P.toLowerCase()}_sanity_check() {
    data = e.data
    if data.getVar('${P}_GUEST'):
        # Inside a guest multiconfig: nothing to check.
        return
    enabled = (data.getVar('BBMULTICONFIG') or '').split()
    wanted = (data.getVar('${P}_GUEST_MULTICONFIGS') or '').split()
    missing = [mc for mc in wanted if mc not in enabled]
    if missing:
        bb.warn("${c.o.layerName}: multiconfig(s) %s are not in BBMULTICONFIG, so the host image "
                "cannot install those containers; add 'require conf/include/${c.collection}-multiconfig.inc' "
                "to conf/local.conf" % ' '.join(missing))
    features = (data.getVar('DISTRO_FEATURES') or '').split()
    for feature in ['virtualization']:
        if feature not in features:
            bb.warn("${c.o.layerName}: DISTRO_FEATURES lacks '%s'; LXC will not be usable" % feature)
}
`,
  };
}

export function guestsClass(c: LayerContext): LayerFile {
  const P = c.varPrefix;
  const fn = `${P.toLowerCase()}_install_guests`;
  return {
    path: `classes/${c.collection}-guests.bbclass`,
    purpose:
      'installs each guest image (built in its multiconfig) into the host rootfs, with guarded mcdepends',
    content: `${header(c, 'Installs container root filesystems built in guest multiconfigs into a host image.')}
#
# An image inheriting this class sets:
#   ${P}_GUESTS                 container names
#   ${P}_GUEST_MC[<name>]       the multiconfig that builds the container
#   ${P}_GUEST_IMAGE[<name>]    the image recipe of the container
# Each guest is unpacked into \${${P}_MACHINES_DIR}/<name>.
#
# The mcdepends is added only for multiconfigs listed in BBMULTICONFIG: an
# unconditional one is fatal when the multiconfig is not enabled. A guest whose
# multiconfig is disabled makes the recipe skipped (with the reason) unless
# ${P}_MISSING_GUEST = "warn", which builds the host without that container.
#
# The dependency on do_image_complete puts the guest image's task hash into the
# host's do_rootfs signature, so a changed guest is re-installed: no
# do_rootfs[nostamp] is needed.

${P}_GUESTS ??= ""
${P}_MACHINES_DIR ??= "\${localstatedir}/lib/machines"
${P}_MISSING_GUEST ??= "skip"
${P}_GUEST_TARBALL ??= "\${TOPDIR}/tmp-@MC@${c.release.tclibcAppend ? '${TCLIBCAPPEND}' : ''}/deploy/images/\${MACHINE}/@IMAGE@-\${MACHINE}.rootfs.tar.bz2"

python __anonymous() {
    enabled = (d.getVar('BBMULTICONFIG') or '').split()
    frommc = d.getVar('BB_CURRENT_MC') or ''
    if frommc == 'default':
        frommc = ''
    installed = []
    missing = []
    for name in (d.getVar('${P}_GUESTS') or '').split():
        mc = d.getVarFlag('${P}_GUEST_MC', name)
        image = d.getVarFlag('${P}_GUEST_IMAGE', name)
        if not mc or not image:
            bb.fatal("%s: ${P}_GUEST_MC[%s] and ${P}_GUEST_IMAGE[%s] must be set" % (d.getVar('PN'), name, name))
        if mc not in enabled:
            missing.append(mc)
            continue
        d.appendVarFlag('do_rootfs', 'mcdepends', ' mc:%s:%s:%s:do_image_complete' % (frommc, mc, image))
        installed.append(name)
    d.setVar('${P}_GUESTS_INSTALLED', ' '.join(installed))
    if missing:
        msg = ("multiconfig(s) %s not in BBMULTICONFIG; require conf/include/${c.collection}-multiconfig.inc "
               "from conf/local.conf" % ' '.join(missing))
        if d.getVar('${P}_MISSING_GUEST') == 'warn':
            bb.warn("%s: building without containers: %s" % (d.getVar('PN'), msg))
        else:
            raise bb.parse.SkipRecipe(msg)
}

python ${fn}() {
    import os
    import subprocess
    rootfs = d.getVar('IMAGE_ROOTFS')
    machines = d.getVar('${P}_MACHINES_DIR')
    pattern = d.getVar('${P}_GUEST_TARBALL')
    for name in (d.getVar('${P}_GUESTS_INSTALLED') or '').split():
        mc = d.getVarFlag('${P}_GUEST_MC', name)
        image = d.getVarFlag('${P}_GUEST_IMAGE', name)
        tarball = pattern.replace('@MC@', mc).replace('@IMAGE@', image)
        if not os.path.exists(tarball):
            bb.fatal("guest %s: %s does not exist (did mc:%s:%s build?)" % (name, tarball, mc, image))
        dest = rootfs + machines + '/' + name
        bb.utils.remove(dest, recurse=True)
        bb.utils.mkdirhier(dest)
        subprocess.check_call(['tar', '--numeric-owner', '-xjf', tarball, '-C', dest])
        bb.note("installed guest %s from %s" % (name, tarball))
}
${fn}[vardeps] += "${P}_GUESTS_INSTALLED ${P}_MACHINES_DIR ${P}_GUEST_TARBALL"

ROOTFS_POSTPROCESS_COMMAND += "${fn}; "
`,
  };
}

export function lxcConfigClass(c: LayerContext): LayerFile {
  const P = c.varPrefix;
  return {
    path: `classes/${c.collection}-lxc-config.bbclass`,
    purpose: 'renders and installs one LXC container configuration from variables',
    content: `${header(c, 'Renders an LXC configuration (LXC 4.0 and later key names) into ${${P}_LXC_PATH}/<name>/config.')}
#
# ${P}_LXC_NAME          container name (required)
# ${P}_LXC_ROOTFS        directory root filesystem on the target
# ${P}_LXC_MOUNTS        bind mounts, "host-path:container-path:ro|rw" each
# ${P}_LXC_MEMORY_MAX    memory limit in bytes (cgroup2 memory.max), empty = none
# ${P}_LXC_CAP_DROP      capabilities dropped inside the container
# ${P}_LXC_AUTOSTART     "1" to start with the host (lxc-autostart)
# ${P}_LXC_HALT_SIGNAL   what the container's init halts on

${P}_LXC_NAME ??= ""
${P}_LXC_PATH ??= "\${localstatedir}/lib/lxc"
${P}_LXC_ROOTFS ??= "\${localstatedir}/lib/machines/\${${P}_LXC_NAME}"
${P}_LXC_MOUNTS ??= ""
${P}_LXC_MEMORY_MAX ??= ""
${P}_LXC_CAP_DROP ??= "mac_admin mac_override sys_boot sys_module sys_rawio sys_time"
${P}_LXC_AUTOSTART ??= "1"
${P}_LXC_START_ORDER ??= "50"
${P}_LXC_INIT ??= "/sbin/init"
${P}_LXC_HALT_SIGNAL ??= "${c.o.initSystem === 'systemd' ? 'SIGRTMIN+3' : 'SIGPWR'}"

INHIBIT_DEFAULT_DEPS = "1"
do_configure[noexec] = "1"
do_compile[noexec] = "1"

def ${P.toLowerCase()}_lxc_config(d):
    name = d.getVar('${P}_LXC_NAME')
    if not name:
        bb.fatal("%s: ${P}_LXC_NAME is not set" % d.getVar('PN'))
    lines = [
        '# LXC configuration of container %s, installed by %s' % (name, d.getVar('PN')),
        'lxc.uts.name = %s' % name,
        'lxc.rootfs.path = dir:%s' % d.getVar('${P}_LXC_ROOTFS'),
        'lxc.init.cmd = %s' % d.getVar('${P}_LXC_INIT'),
        'lxc.signal.halt = %s' % d.getVar('${P}_LXC_HALT_SIGNAL'),
        '# No network: the container talks to the host over vhost-user only.',
        'lxc.net.0.type = empty',
        'lxc.autodev = 1',
        'lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed',
        'lxc.tty.max = 1',
        'lxc.pty.max = 16',
    ]
    for entry in (d.getVar('${P}_LXC_MOUNTS') or '').split():
        parts = entry.split(':')
        if len(parts) != 3 or parts[2] not in ('ro', 'rw') or not parts[0].startswith('/') or not parts[1].startswith('/'):
            bb.fatal("%s: bad ${P}_LXC_MOUNTS entry '%s' (want /host:/container:ro|rw)" % (d.getVar('PN'), entry))
        options = 'bind,create=dir' + (',ro' if parts[2] == 'ro' else '')
        lines.append('lxc.mount.entry = %s %s none %s 0 0' % (parts[0], parts[1].lstrip('/'), options))
    caps = (d.getVar('${P}_LXC_CAP_DROP') or '').split()
    if caps:
        lines.append('lxc.cap.drop = %s' % ' '.join(caps))
    memory = d.getVar('${P}_LXC_MEMORY_MAX')
    if memory:
        lines.append('lxc.cgroup2.memory.max = %s' % memory)
    lines.append('lxc.start.auto = %s' % ('1' if d.getVar('${P}_LXC_AUTOSTART') == '1' else '0'))
    lines.append('lxc.start.order = %s' % d.getVar('${P}_LXC_START_ORDER'))
    return '\\n'.join(lines) + '\\n'

python do_install() {
    import os
    name = d.getVar('${P}_LXC_NAME')
    confdir = d.getVar('D') + d.getVar('${P}_LXC_PATH') + '/' + name
    bb.utils.mkdirhier(confdir)
    with open(os.path.join(confdir, 'config'), 'w') as f:
        f.write(${P.toLowerCase()}_lxc_config(d))
    os.chmod(os.path.join(confdir, 'config'), 0o644)
    bb.utils.mkdirhier(d.getVar('D') + d.getVar('${P}_LXC_ROOTFS'))
}
do_install[vardeps] += "${P}_LXC_NAME ${P}_LXC_PATH ${P}_LXC_ROOTFS ${P}_LXC_MOUNTS ${P}_LXC_MEMORY_MAX \\
                        ${P}_LXC_CAP_DROP ${P}_LXC_AUTOSTART ${P}_LXC_START_ORDER ${P}_LXC_INIT ${P}_LXC_HALT_SIGNAL"

FILES:\${PN} = "\${${P}_LXC_PATH}/\${${P}_LXC_NAME} \${${P}_LXC_ROOTFS}"
RDEPENDS:\${PN} = "lxc"
`,
  };
}
