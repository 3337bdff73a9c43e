import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { TWO_CONTAINERS_CLI } from './__fixtures__/two-containers.js';
import { type LintRule, lintLayer } from './bitbake/check.js';
import { parseBitbake } from './bitbake/parser.js';
import { RELEASE_INFO, RELEASES, type Release } from './defs.js';
import { renderLayer } from './emit.js';
import type { LayerFile } from './layer/file.js';
import { DEFAULT_TOPOLOGY, fromCliTopology, type LayerOptions } from './model.js';

const VARIANTS: Array<Partial<LayerOptions>> = [
  {},
  { physicalNics: true },
  { initSystem: 'sysvinit' },
  { distro: 'acme', layerName: 'meta-acme', kernelRecipe: 'linux-acme' },
];
const layers = RELEASES.flatMap((release) =>
  VARIANTS.flatMap((v) => [
    { release, v, topology: 'default', files: renderLayer(DEFAULT_TOPOLOGY, { ...v, release }) },
    {
      release,
      v,
      topology: 'two-containers',
      files: renderLayer(fromCliTopology(TWO_CONTAINERS_CLI), { ...v, release }),
    },
  ]),
);
const lint = (
  files: ReadonlyArray<{ path: string; content: string }>,
  release: Release = 'scarthgap',
  gate = 'vipc',
) => lintLayer(files, { release, gateOverride: gate });
const rules = (files: ReadonlyArray<{ path: string; content: string }>, release?: Release) =>
  lint(files, release).map((i) => i.rule);
const file = (files: LayerFile[], path: string) => {
  const f = files.find((x) => x.path === path);
  if (!f) throw new Error(`${path} not emitted`);
  return f.content;
};

describe('every emitted layer passes the syntax check and the layer lint', () => {
  it(`${layers.length} layers (5 releases x 4 option sets x 2 topologies) have no lint issue`, () => {
    for (const l of layers) {
      const gate = l.v.distro ?? 'vipc';
      expect({
        release: l.release,
        v: l.v,
        t: l.topology,
        issues: lintLayer(l.files, { release: l.release, gateOverride: gate }),
      }).toEqual({
        release: l.release,
        v: l.v,
        t: l.topology,
        issues: [],
      });
    }
  });
});

/** A fragment of the talk's demo layer for each defect: the lint must catch it. */
const DEMO: Record<
  number,
  { rule: LintRule; files: Array<{ path: string; content: string }>; release?: Release }
> = {
  1: {
    rule: 'GLOBAL_SETTING_OUTSIDE_DISTRO',
    files: [
      {
        path: 'recipes-core/images/demo-image.bb',
        content:
          'SUMMARY = "x"\nDESCRIPTION = "x"\nHOMEPAGE = "x"\nLICENSE = "MIT"\nLIC_FILES_CHKSUM = "x"\nCOMPATIBLE_MACHINE:pn-dpdk = "qemux86-64"\nDISTRO_FEATURES:append = " virtualization"\nINIT_MANAGER = "systemd"\nPREFERRED_PROVIDER_virtual/kernel = "linux-yocto"\n',
      },
    ],
  },
  2: {
    rule: 'DPDK_NOT_ENABLED',
    files: [
      {
        path: 'conf/layer.conf',
        content: 'LAYERDEPENDS_demo = "core dpdk"\nLAYERSERIES_COMPAT_demo = "scarthgap"\n',
      },
      { path: 'conf/distro/demo.conf', content: 'DISTRO = "demo"\n' },
    ],
  },
  3: {
    rule: 'RT_GROUP_SCHED_ENABLED',
    files: [
      { path: 'recipes-kernel/linux/files/lxc.cfg', content: 'CONFIG_CGROUPS=y\nCONFIG_RT_GROUP_SCHED=y\n' },
    ],
  },
  4: {
    rule: 'UNGUARDED_MCDEPENDS',
    files: [
      { path: 'classes/demo.bbclass', content: 'do_rootfs[mcdepends] = "mc::guest:guest-image:do_rootfs"\n' },
    ],
  },
  5: {
    rule: 'UNGATED_BBAPPEND',
    files: [
      { path: 'recipes-containers/lxc/lxc_%.bbappend', content: 'SYSTEMD_AUTO_ENABLE:${PN} = "enable"\n' },
    ],
  },
  6: {
    rule: 'VERSION_PINNED_BBAPPEND',
    files: [
      { path: 'recipes-extended/dpdk/dpdk_23.03.bbappend', content: 'A:append:vipc = " x"\n' },
      { path: 'conf/layer.conf', content: 'LAYERSERIES_COMPAT_demo = "mickledore"\n' },
    ],
  },
  7: {
    rule: 'SOURCE_DIR_FOR_RELEASE',
    release: 'styhead',
    files: [
      {
        path: 'recipes-core/demo/demo_1.0.bb',
        content:
          'SUMMARY = "x"\nDESCRIPTION = "x"\nHOMEPAGE = "x"\nLICENSE = "MIT"\nLIC_FILES_CHKSUM = "x"\nSRC_URI = "file://a.service"\nS = "${WORKDIR}"\n',
      },
    ],
  },
  8: {
    rule: 'NOSTAMP',
    files: [{ path: 'recipes-core/images/host.bb', content: 'do_rootfs[nostamp] = "1"\n' }],
  },
};

describe('the 8 defects of the demo layer', () => {
  for (const n of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const demo = DEMO[n]!;
    it(`defect ${n} (${demo.rule}): caught in the demo fragment, absent from every emitted layer`, () => {
      expect(rules(demo.files, demo.release)).toContain(demo.rule);
      for (const l of layers)
        expect(lint(l.files, l.release, l.v.distro ?? 'vipc').filter((i) => i.rule === demo.rule)).toEqual(
          [],
        );
    });
  }

  it('1: DPDK machines, distro features, init manager live only in conf/distro', () => {
    for (const l of layers) {
      for (const f of l.files.filter(
        (x) => /\.(bb|bbappend|bbclass)$/.test(x.path) || x.path === 'conf/layer.conf',
      )) {
        const r = parseBitbake(f.content, 'recipe');
        for (const s of r.statements)
          if (s.type === 'assignment')
            expect(`${f.path}: ${s.base}`).not.toMatch(
              /: (DISTRO_FEATURES|INIT_MANAGER|PREFERRED_PROVIDER_.*|BBMULTICONFIG|COMPATIBLE_MACHINE)$/,
            );
      }
      const inc = l.files.find((f) => f.path.startsWith('conf/distro/include/'))!.content;
      expect(inc).toMatch(/^DISTRO_FEATURES:append = " virtualization /m);
      expect(inc).toMatch(/^INIT_MANAGER \?= "(systemd|sysvinit)"$/m);
    }
  });

  it('2: COMPATIBLE_MACHINE:pn-dpdk is set from the machine option in the distro include', () => {
    const files = renderLayer(DEFAULT_TOPOLOGY, { machine: 'intel-corei7-64|qemuarm64' });
    expect(file(files, 'conf/distro/include/vipc.inc')).toMatch(
      /^COMPATIBLE_MACHINE:pn-dpdk = "intel-corei7-64\|qemuarm64"$/m,
    );
  });

  it('3: the LXC fragment says RT_GROUP_SCHED is not set', () => {
    for (const l of layers) {
      const cfg = l.files.find((f) => f.path.endsWith('-lxc.cfg'))!.content;
      expect(cfg).toMatch(/^# CONFIG_RT_GROUP_SCHED is not set$/m);
      expect(cfg).not.toMatch(/CONFIG_RT_GROUP_SCHED=/);
    }
  });

  it('4: mcdepends come only from anonymous python guarded by BBMULTICONFIG, on do_image_complete', () => {
    for (const l of layers) {
      const cls = l.files.find((f) => f.path.endsWith('-guests.bbclass'))!;
      const anon = parseBitbake(cls.content, 'recipe').statements.find(
        (s) => s.type === 'function' && s.name === '__anonymous',
      );
      expect(anon?.type === 'function' && anon.body.join('\n')).toMatch(
        /if mc not in enabled:\n\s+missing\.append\(mc\)\n\s+continue\n\s+d\.appendVarFlag\('do_rootfs', 'mcdepends', ' mc:%s:%s:%s:do_image_complete'/,
      );
      for (const f of l.files) expect(f.content).not.toMatch(/\[mcdepends\]\s*[+?:.]?=/);
    }
  });

  it('5: every bbappend assignment carries the distro override', () => {
    for (const l of layers) {
      const gate = l.v.distro ?? 'vipc';
      const appends = l.files.filter((f) => f.path.endsWith('.bbappend'));
      expect(appends.length).toBeGreaterThanOrEqual(2);
      for (const f of appends)
        for (const s of parseBitbake(f.content, 'recipe').statements)
          expect(s.type === 'assignment' && (s.overrides.includes(gate) || s.conditions.includes(gate))).toBe(
            true,
          );
      expect(file(l.files, `conf/distro/include/${(l.v.layerName ?? 'meta-vipc').slice(5)}.inc`)).toContain(
        `DISTROOVERRIDES:append = ":${gate}"`,
      );
    }
  });

  it('6: LAYERSERIES_COMPAT names exactly the chosen release, bbappends use %', () => {
    for (const l of layers) {
      const conf = file(l.files, 'conf/layer.conf');
      const coll = (l.v.layerName ?? 'meta-vipc').slice(5);
      expect(conf).toMatch(
        new RegExp(`^LAYERSERIES_COMPAT_${coll} = "${RELEASE_INFO[l.release].layerSeriesCompat}"$`, 'm'),
      );
      for (const f of l.files.filter((x) => x.path.endsWith('.bbappend')))
        expect(f.path).toMatch(/_%\.bbappend$/);
    }
    expect(rules(DEMO[6]!.files)).toContain('LAYERSERIES_COMPAT_MISMATCH');
  });

  it('7: S and UNPACKDIR follow the release table', () => {
    const want: Record<string, string> = {
      scarthgap: 'S = "${WORKDIR}"\n',
      styhead: 'S = "${WORKDIR}/sources"\nUNPACKDIR = "${S}"\n',
      walnascar: 'S = "${WORKDIR}/sources"\nUNPACKDIR = "${S}"\n',
      whinlatter: 'S = "${UNPACKDIR}"\n',
      wrynose: 'S = "${UNPACKDIR}"\n',
    };
    for (const l of layers) {
      for (const p of [
        'recipes-core/vipc-hugepages/vipc-hugepages_1.0.bb',
        'recipes-vipc/vipc-endpoints/vipc-endpoints_1.0.bb',
        'recipes-vipc/vipc-guest-endpoints/vipc-guest-endpoints_1.0.bb',
      ]) {
        const f = l.files.find(
          (x) => x.path === p.replaceAll('vipc-', `${(l.v.layerName ?? 'meta-vipc').slice(5)}-`),
        );
        if (!f) continue;
        expect(f.content).toContain(`\n${want[l.release]}`);
        if (l.release !== 'scarthgap') expect(f.content).not.toContain('S = "${WORKDIR}"\n');
      }
      const cli = l.files.find((x) => x.path.includes('vipc-cli_'))!.content;
      expect(cli).toContain(
        l.release === 'scarthgap' ? 'S = "${WORKDIR}/package"' : 'S = "${UNPACKDIR}/package"',
      );
    }
    expect(rules(DEMO[7]!.files, 'scarthgap')).not.toContain('SOURCE_DIR_FOR_RELEASE');
  });

  it('8: no nostamp anywhere; the guest install depends on do_image_complete instead', () => {
    for (const l of layers) for (const f of l.files) expect(f.content).not.toMatch(/\[nostamp\]\s*[+?:.]?=/);
  });
});

describe('release differences', () => {
  it('TCLIBCAPPEND is set (and used for guest paths) only where it exists (scarthgap)', () => {
    for (const l of layers) {
      const uses = l.files.some((f) => f.content.includes('TCLIBCAPPEND'));
      expect(uses).toBe(l.release === 'scarthgap');
    }
  });
  it('the hardening includes are required only where OE-core does not already (all but wrynose)', () => {
    for (const l of layers) {
      const conf = l.files.find((f) => /^conf\/distro\/[^/]+\.conf$/.test(f.path))!.content;
      const requires = /^require conf\/distro\/include\/security_flags\.inc$/m.test(conf);
      expect({ release: l.release, requires }).toEqual({
        release: l.release,
        requires: !RELEASE_INFO[l.release].coreHardeningDefaults,
      });
    }
    expect(RELEASE_INFO.wrynose.coreHardeningDefaults).toBe(true);
  });
  it('the LXC series of each release is named in the lxc bbappend', () => {
    for (const l of layers)
      expect(file(l.files, 'recipes-containers/lxc/lxc_%.bbappend')).toContain(
        `LXC ${RELEASE_INFO[l.release].lxcSeries}`,
      );
  });
});

function haveTool(cmd: string, pkg: string): boolean {
  const ok = spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
  if (!ok && process.env.CI === 'true') throw new Error(`${cmd} is required: apt-get install ${pkg}`);
  if (!ok) console.warn(`skipping ${cmd} checks: apt-get install ${pkg}`);
  return ok;
}

describe('function bodies are valid shell and python', () => {
  it('every shell function and shell script of every layer passes sh -n / bash -n', () => {
    if (!haveTool('bash', 'bash')) return;
    let n = 0;
    for (const l of layers) {
      for (const f of l.files) {
        const scripts: string[] = [];
        if (f.mode === 0o755) scripts.push(f.content);
        if (/\.(bb|bbappend|bbclass)$/.test(f.path))
          for (const s of parseBitbake(f.content, 'recipe').statements)
            if (s.type === 'function' && !s.python) scripts.push(s.body.join('\n'));
        for (const body of scripts) {
          execFileSync('bash', ['-n'], { input: body });
          execFileSync('sh', ['-n'], { input: body });
          n++;
        }
      }
    }
    expect(n).toBeGreaterThan(layers.length);
  });

  it('every python function compiles with python3 (ast.parse)', () => {
    if (!haveTool('python3', 'python3')) return;
    const bodies: string[] = [];
    for (const f of layers[0]!.files.concat(layers[5]!.files)) {
      if (!/\.(bb|bbappend|bbclass)$/.test(f.path)) continue;
      for (const s of parseBitbake(f.content, 'recipe').statements) {
        if (s.type === 'def') bodies.push(s.body.join('\n'));
        if (s.type === 'function' && s.python)
          bodies.push(`def f(d, e=None):\n${s.body.map((l) => (l ? `${l}` : l)).join('\n')}\n    pass\n`);
      }
    }
    expect(bodies.length).toBeGreaterThan(5);
    const script =
      'import ast, json, sys\nfor src in json.load(sys.stdin):\n    ast.parse(src)\nprint("ok")\n';
    expect(
      execFileSync('python3', ['-c', script], { input: JSON.stringify(bodies) })
        .toString()
        .trim(),
    ).toBe('ok');
  });
});
