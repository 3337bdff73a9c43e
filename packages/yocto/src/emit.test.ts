import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { TWO_CONTAINERS_CLI } from './__fixtures__/two-containers.js';
import { RELEASES } from './defs.js';
import { dryRun, emitLayer, formatDryRun, renderLayer } from './emit.js';
import { YoctoError } from './errors.js';
import { serializeLayer } from './golden.js';
import { DEFAULT_TOPOLOGY, fromCliTopology, type YoctoTopology } from './model.js';
import { PACKAGE_VERSION } from './version.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixture = (name: string) => join(here, '__fixtures__', name);

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), `vipc-yocto-${process.pid}-`));
  dirs.push(d);
  return d;
};

describe('golden layers', () => {
  for (const release of RELEASES) {
    it(`matches __fixtures__/golden/${release}.txt (default topology)`, () => {
      const text = serializeLayer(renderLayer(DEFAULT_TOPOLOGY, { release }));
      const path = fixture(`golden/${release}.txt`);
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(path, text);
      expect(text).toBe(readFileSync(path, 'utf8'));
    });
  }
  it('matches __fixtures__/golden/two-containers-walnascar-nics.txt (CLI fixture, physical NICs, sysvinit)', () => {
    const t = fromCliTopology(TWO_CONTAINERS_CLI);
    const text = serializeLayer(
      renderLayer(t, {
        release: 'walnascar',
        physicalNics: true,
        initSystem: 'sysvinit',
        distro: 'acme',
        layerName: 'meta-acme-ipc',
      }),
    );
    const path = fixture('golden/two-containers-walnascar-nics.txt');
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(path, text);
    expect(text).toBe(readFileSync(path, 'utf8'));
  });
});

describe('emitter', () => {
  it('is deterministic: two renders and two emitted trees are byte-identical', () => {
    const a = serializeLayer(renderLayer());
    const b = serializeLayer(renderLayer(structuredClone(DEFAULT_TOPOLOGY) as YoctoTopology));
    expect(a).toBe(b);
    const d1 = tmp();
    const d2 = tmp();
    const r1 = emitLayer(d1);
    emitLayer(d2);
    for (const f of r1.files)
      expect(readFileSync(join(d1, f.path), 'utf8')).toBe(readFileSync(join(d2, f.path), 'utf8'));
  });

  it('writes every file with its mode and prunes stale files', () => {
    const d = tmp();
    writeFileSync(join(d, 'stale.bb'), 'X = "1"\n');
    const r = emitLayer(d, DEFAULT_TOPOLOGY, {}, { prune: true });
    expect(r.removed).toEqual(['stale.bb']);
    expect(existsSync(join(d, 'stale.bb'))).toBe(false);
    const script = r.files.find((f) => f.mode === 0o755);
    expect(script).toBeDefined();
    expect(statSync(join(d, script!.path)).mode & 0o777).toBe(0o755);
    expect(statSync(join(d, 'conf/layer.conf')).mode & 0o777).toBe(0o644);
  });

  it('dry-run lists every file once with a one-line purpose', () => {
    const entries = dryRun();
    const files = renderLayer();
    expect(entries.map((e) => e.path)).toEqual(files.map((f) => f.path));
    for (const e of entries) {
      expect(e.purpose.length).toBeGreaterThan(10);
      expect(e.purpose).not.toMatch(/\n/);
    }
    const text = formatDryRun(entries);
    expect(text.split('\n').filter(Boolean)).toHaveLength(files.length);
    expect(text).toMatch(/^conf\/layer\.conf\s+layer registration/m);
  });

  it('emits every file YOCTO.md lists', () => {
    const paths = renderLayer().map((f) => f.path);
    for (const p of [
      'README.md',
      'COPYING.MIT',
      'conf/layer.conf',
      'conf/distro/vipc.conf',
      'conf/multiconfig/vipc-guest-ctl.conf',
      'conf/multiconfig/vipc-guest-data.conf',
      'conf/include/vipc-multiconfig.inc',
      'conf/templates/default/local.conf.sample',
      'conf/templates/default/bblayers.conf.sample',
      'conf/templates/default/conf-notes.txt',
      'classes/vipc-guests.bbclass',
      'classes/vipc-lxc-config.bbclass',
      'recipes-containers/lxc-config/lxc-config-guest-ctl_1.0.bb',
      'recipes-containers/lxc/lxc_%.bbappend',
      'recipes-kernel/linux/linux-yocto_%.bbappend',
      'recipes-kernel/linux/files/vipc.scc',
      'recipes-core/images/vipc-host-image.bb',
      'recipes-core/images/vipc-guest-ctl-image.bb',
      'recipes-core/packagegroups/packagegroup-vipc-host.bb',
      'recipes-core/vipc-hugepages/vipc-hugepages_1.0.bb',
    ])
      expect(paths).toContain(p);
  });

  it('adds VFIO/UIO options only with physical NICs', () => {
    const without = renderLayer().map((f) => f.path);
    const withNics = renderLayer(DEFAULT_TOPOLOGY, { physicalNics: true });
    expect(without.some((p) => p.includes('vfio'))).toBe(false);
    const cfg = withNics.find((f) => f.path.endsWith('vipc-vfio-uio.cfg'));
    expect(cfg?.content).toMatch(/^CONFIG_VFIO_PCI=m$/m);
    expect(withNics.find((f) => f.path.endsWith('vipc.scc'))?.content).toMatch(
      /^kconf hardware vipc-vfio-uio\.cfg$/m,
    );
    expect(withNics.find((f) => f.path === 'recipes-extended/dpdk/dpdk_%.bbappend')).toBeDefined();
  });

  it('leaves meta-dpdk out when no endpoint uses DPDK', () => {
    const t = structuredClone(DEFAULT_TOPOLOGY) as YoctoTopology;
    t.endpoints = t.endpoints.filter((e) => e.endpoint.kind !== 'dpdk');
    t.containers = t.containers.filter((k) => k.endpoint.link === 'ctl');
    t.links = t.links.filter((l) => l.name === 'ctl');
    const files = renderLayer(t);
    const layer = files.find((f) => f.path === 'conf/layer.conf')!.content;
    expect(layer).toMatch(/^LAYERDEPENDS_vipc = "core openembedded-layer virtualization-layer"$/m);
    expect(files.some((f) => f.content.includes('pn-dpdk'))).toBe(false);
  });

  it('guest images pull nothing host-only: container endpoints have their own recipe', () => {
    for (const t of [DEFAULT_TOPOLOGY, fromCliTopology(TWO_CONTAINERS_CLI)]) {
      const files = renderLayer(t);
      const guest = files.find((f) => f.path.endsWith('-guest-endpoints_1.0.bb'))!.content;
      expect(guest).not.toMatch(/\b(dpdk|lxc|vipc-hugepages)\b/);
      const host = files.find((f) => f.path === 'recipes-vipc/vipc-endpoints/vipc-endpoints_1.0.bb')!.content;
      for (const k of t.containers) expect(host).not.toContain(`endpoint-${k.name}.service`);
      for (const f of files.filter((x) => /-image\.bb$/.test(x.path) && !x.path.includes('host-image')))
        expect(f.content).not.toMatch(/vipc-endpoints-|packagegroup-vipc-host/);
    }
  });

  it('refuses a distro name that is also a recipe name (bitbake pn-overrides)', () => {
    expect(() => renderLayer(DEFAULT_TOPOLOGY, { distro: 'vipc-cli' })).toThrow(
      /also the name of an emitted recipe/,
    );
  });

  it('writes the version of package.json into the headers', () => {
    const pkg = JSON.parse(readFileSync(join(here, '..', 'package.json'), 'utf8')) as { version: string };
    expect(PACKAGE_VERSION).toBe(pkg.version);
    expect(renderLayer()[2]!.content).toContain(`@vipc/yocto ${pkg.version}`);
  });
});

describe('input validation', () => {
  it('rejects a bad topology with every problem named', () => {
    const t = structuredClone(DEFAULT_TOPOLOGY) as YoctoTopology;
    t.links[0]!.socket = '/run/vipc/a b.sock';
    t.containers[0]!.endpoint.link = 'nope';
    t.containers[1]!.name = 'Bad_Name';
    let err: unknown;
    try {
      renderLayer(t);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(YoctoError);
    const y = err as YoctoError;
    expect(y.code).toBe('INVALID_TOPOLOGY');
    expect(y.issues.some((i) => i.startsWith('links[0].socket'))).toBe(true);
    expect(y.issues.some((i) => i.includes("'nope' is not declared"))).toBe(true);
    expect(y.issues.some((i) => i.startsWith('containers[1].name'))).toBe(true);
  });

  it('rejects bad options', () => {
    const bad = (o: Record<string, unknown>) => {
      try {
        renderLayer(DEFAULT_TOPOLOGY, o);
      } catch (e) {
        return (e as YoctoError).code;
      }
      return 'none';
    };
    expect(bad({ release: 'kirkstone' })).toBe('INVALID_OPTIONS');
    expect(bad({ layerName: 'vipc' })).toBe('INVALID_OPTIONS');
    expect(bad({ machine: '(' })).toBe('INVALID_OPTIONS');
    expect(bad({ machine: 'a"b' })).toBe('INVALID_OPTIONS');
    expect(bad({ distro: 'My Distro' })).toBe('INVALID_OPTIONS');
    expect(bad({ initSystem: 'openrc' })).toBe('INVALID_OPTIONS');
    expect(bad({ maintainer: { name: 'x', email: 'nope' } })).toBe('INVALID_OPTIONS');
    expect(bad({ machine: 5 })).toBe('INVALID_OPTIONS');
    expect(bad({ maintainer: { name: 7, email: 'a@b.org' } })).toBe('INVALID_OPTIONS');
    expect(bad({ release: 'wrynose' })).toBe('none');
  });

  it('maps the CLI topology (two-containers.yaml) and drops the rootfs path', () => {
    const t = fromCliTopology(TWO_CONTAINERS_CLI);
    expect(t.containers.map((k) => k.name)).toEqual(['producer-a', 'producer-b']);
    expect(t.containers[0]!.autostart).toBe(true);
    expect(Object.keys(t.containers[1]!)).not.toContain('rootfs');
    const files = renderLayer(t);
    const lxc = files.find(
      (f) => f.path === 'recipes-containers/lxc-config/lxc-config-producer-a_1.0.bb',
    )!.content;
    expect(lxc).toContain('/srv/data:/data:ro');
    expect(lxc).toContain('VIPC_LXC_MEMORY_MAX = "268435456"');
  });
});
