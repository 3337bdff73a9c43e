import { guestImage, guestMc, hostImage, type LayerContext } from './context.js';
import type { LayerFile } from './file.js';

export function copying(): LayerFile {
  return {
    path: 'COPYING.MIT',
    purpose: 'the MIT licence of the layer',
    content: `Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in
all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
THE SOFTWARE.
`,
  };
}

export function readme(c: LayerContext): LayerFile {
  const r = c.release;
  const b = r.branch;
  const core =
    r.coreRepos === 'poky'
      ? `- poky (bitbake and OE-core), branch \`${b}\`: https://git.yoctoproject.org/poky`
      : `- bitbake and openembedded-core, branch \`${b}\`: https://git.openembedded.org/bitbake, https://git.openembedded.org/openembedded-core`;
  const deps = [
    core,
    `- meta-openembedded (meta-oe, meta-python, meta-networking, meta-filesystems), branch \`${b}\`: https://git.openembedded.org/meta-openembedded`,
    `- meta-virtualization, branch \`${b}\` (LXC ${r.lxcSeries}): https://git.yoctoproject.org/meta-virtualization`,
  ];
  if (c.usesDpdk) deps.push(`- meta-dpdk, branch \`${b}\`: https://git.yoctoproject.org/meta-dpdk`);
  const P = c.varPrefix;
  return {
    path: 'README.md',
    purpose: 'purpose, dependencies with branches, build steps, maintainer and how to send patches',
    content: `# ${c.o.layerName}

A Yocto Project layer (release ${r.name}, ${r.version}${r.lts ? ' LTS' : ''}) for a host
that runs LXC containers talking to each other and to the host over vhost-user:
vrings in shared memory${c.usesDpdk ? ', interoperating with DPDK' : ''}. It was emitted by
\`@vipc/yocto\` from the topology \`${c.t.name}\`: regenerate it rather than edit it.

## What it builds

- \`${hostImage(c)}\`: LXC, hugepages (${c.t.hugepages ? `${c.t.hugepages.count} x ${c.t.hugepages.pageSize} at ${c.t.hugepages.mount}` : 'none'}),
  the host endpoints (${c.t.endpoints.map((e) => `${e.name}: ${e.endpoint.kind} ${e.endpoint.role}`).join(', ')}),
  started ${c.o.initSystem === 'systemd' ? 'by systemd' : 'by SysV init'} before the containers, and each container's root
  filesystem under \`/var/lib/machines/<name>\` with its LXC config in \`/var/lib/lxc/<name>/config\`.
${c.t.containers.map((k) => `- \`mc:${guestMc(c, k)}:${guestImage(c, k)}\`: container \`${k.name}\` (link \`${k.endpoint.link}\`, ${k.endpoint.role}).`).join('\n')}

## Dependencies

${deps.join('\n')}

Layer collections: see \`LAYERDEPENDS\` in \`conf/layer.conf\`.

## Using it

\`\`\`sh
TEMPLATECONF=$PWD/${c.o.layerName}/conf/templates/default source ${r.coreRepos === 'poky' ? 'poky' : 'openembedded-core'}/oe-init-build-env build
# local.conf from the template selects DISTRO = "${c.o.distro}" and requires
# conf/include/${c.collection}-multiconfig.inc (the guest multiconfigs).
bitbake ${hostImage(c)}
\`\`\`

Or with kas, when the layer is the root of its own repository:
\`kas build ${c.o.layerName}/kas/${c.collection}.yml\`.

The vipc CLI is not fetched by the layer: set \`${P}_CLI_SRC_URI\` (and
\`${P}_CLI_SHA256\`) in \`local.conf\` to a tarball whose top directory \`package\`
holds the CLI with its production \`node_modules\`, built for the target (it
contains a native addon). Until then the \`vipc-cli\` recipe is skipped and says why.

With your own distro instead of \`${c.o.distro}\`, add
\`require conf/distro/include/${c.collection}.inc\` to it. The layer's bbappends
are gated by the \`${c.override}\` override that include adds, so adding the layer
alone changes nothing in a build.

Kernel: \`${c.o.kernelRecipe}\` gets hugetlbfs, vhost, LXC${c.o.physicalNics ? ' and VFIO/UIO' : ''} options from
\`recipes-kernel/linux/files/${c.collection}.scc\`.

## Maintainer

${c.o.maintainer.name} <${c.o.maintainer.email}>

## Patches

Send patches to ${c.o.maintainer.email} with \`git send-email\`, with
\`[${c.o.layerName}][${r.branch}]\` in the subject. Changes that come from the
emitter belong in \`@vipc/yocto\`, not in this generated layer.
`,
  };
}
