import { RELEASE_INFO, type Release } from '../defs.js';
import { type Assignment, type Diagnostic, type FileKind, type ParseResult, parseBitbake } from './parser.js';

/** The parser a file is read with, from its name; undefined for non-BitBake files. */
export function fileKind(path: string): FileKind | undefined {
  if (path.endsWith('.conf') && !path.includes('/files/') && !path.endsWith('.conf.sample')) return 'conf';
  if (path.endsWith('.conf.sample')) return 'conf';
  if (/\.(bb|bbappend|bbclass|inc)$/.test(path)) return path.startsWith('conf/') ? 'conf' : 'recipe';
  return undefined;
}

export interface CheckOptions {
  kind: FileKind;
  /** For messages only. */
  file?: string;
}

/** Parses and syntax-checks one file; `diagnostics` is empty when bitbake would accept its syntax. */
export function checkBitbake(text: string, options: CheckOptions): ParseResult {
  return parseBitbake(text, options.kind);
}

export type LintRule =
  | 'SYNTAX'
  | 'GLOBAL_SETTING_OUTSIDE_DISTRO'
  | 'DPDK_NOT_ENABLED'
  | 'RT_GROUP_SCHED_ENABLED'
  | 'UNGUARDED_MCDEPENDS'
  | 'UNGATED_BBAPPEND'
  | 'LAYERSERIES_COMPAT_MISMATCH'
  | 'VERSION_PINNED_BBAPPEND'
  | 'SOURCE_DIR_FOR_RELEASE'
  | 'NOSTAMP'
  | 'MISSING_RECIPE_METADATA'
  | 'HARDCODED_PATH';

export interface LintIssue {
  file: string;
  line: number;
  rule: LintRule;
  message: string;
}

export interface LintOptions {
  release: Release;
  /** The override every bbappend assignment must carry. */
  gateOverride: string;
}

/** Variables whose value is global: they do nothing useful in a recipe (talk demo defect 1). */
const GLOBAL_VARS =
  /^(DISTRO_FEATURES|DISTRO_FEATURES_BACKFILL_CONSIDERED|INIT_MANAGER|DISTRO|MACHINE|BBMULTICONFIG|PREFERRED_PROVIDER_.*|PREFERRED_VERSION_.*|VIRTUAL-RUNTIME_.*|TCLIBCAPPEND)$/;

const assignments = (r: ParseResult) => r.statements.filter((s): s is Assignment => s.type === 'assignment');

function sourceDirLines(release: Release): string[][] {
  switch (RELEASE_INFO[release].sourceDir) {
    case 'workdir':
      return [['S', '${WORKDIR}']];
    case 'sources-unpackdir':
      return [
        ['S', '${WORKDIR}/sources'],
        ['UNPACKDIR', '${S}'],
      ];
    case 'unpackdir':
      return [['S', '${UNPACKDIR}']];
  }
}

/**
 * Layer-level rules: every defect of the talk's demo layer (see the package
 * README) plus the Yocto Project compatible-layer basics.
 */
export function lintLayer(
  files: ReadonlyArray<{ path: string; content: string }>,
  options: LintOptions,
): LintIssue[] {
  const issues: LintIssue[] = [];
  const add = (file: string, line: number, rule: LintRule, message: string) =>
    issues.push({ file, line, rule, message });
  const parsed = new Map<string, ParseResult>();
  for (const f of files) {
    const kind = fileKind(f.path);
    if (!kind) continue;
    const r = parseBitbake(f.content, kind);
    parsed.set(f.path, r);
    for (const d of r.diagnostics as Diagnostic[]) add(f.path, d.line, 'SYNTAX', `${d.code}: ${d.message}`);
  }
  let dpdkUsed = false;
  let dpdkEnabled = false;
  for (const [path, r] of parsed) {
    const isDistro = path.startsWith('conf/distro/');
    const isLayerConf = path === 'conf/layer.conf';
    const isRecipe = /\.(bb|bbappend|bbclass)$/.test(path);
    for (const a of assignments(r)) {
      // 1. Global settings belong to the distro configuration.
      const pnOverride = a.overrides.some((o) => o.startsWith('pn-'));
      if ((isRecipe || isLayerConf) && (GLOBAL_VARS.test(a.base) || pnOverride))
        add(
          path,
          a.line,
          'GLOBAL_SETTING_OUTSIDE_DISTRO',
          `${a.variable} is a global setting: set it in conf/distro/`,
        );
      if (
        isLayerConf &&
        !/^(BBPATH|BBFILES|BBFILE_COLLECTIONS|BBFILE_PATTERN_.*|BBFILE_PRIORITY_.*|LAYER[A-Z_]*_.*|BBFILES_DYNAMIC)$/.test(
          a.base,
        )
      )
        add(path, a.line, 'GLOBAL_SETTING_OUTSIDE_DISTRO', `${a.variable} does not belong in layer.conf`);
      // 2. meta-dpdk's COMPATIBLE_MACHINE = "null" needs an opt-in from the distro.
      if (
        isDistro &&
        a.base === 'COMPATIBLE_MACHINE' &&
        a.overrides.includes('pn-dpdk') &&
        a.value !== 'null' &&
        a.value !== ''
      )
        dpdkEnabled = true;
      if (a.base.startsWith('LAYERDEPENDS_') && a.value.split(/\s+/).includes('dpdk')) dpdkUsed = true;
      // 4. mcdepends only from anonymous python that checks BBMULTICONFIG.
      if (a.flag === 'mcdepends')
        add(path, a.line, 'UNGUARDED_MCDEPENDS', `${a.variable}[mcdepends] is set unconditionally`);
      // 6. The release named, and only that one.
      if (
        a.base.startsWith('LAYERSERIES_COMPAT_') &&
        a.value.trim() !== RELEASE_INFO[options.release].layerSeriesCompat
      )
        add(
          path,
          a.line,
          'LAYERSERIES_COMPAT_MISMATCH',
          `${a.base} = "${a.value}", expected "${RELEASE_INFO[options.release].layerSeriesCompat}"`,
        );
      // 8. No nostamp work-arounds.
      if (a.flag === 'nostamp' && a.value.trim() !== '0')
        add(path, a.line, 'NOSTAMP', `${a.variable}[nostamp] forces the task to re-run every build`);
    }
    for (const s of r.statements) {
      if ((s.type === 'function' || s.type === 'def') && s.body.some((l) => l.includes('mcdepends'))) {
        const body = s.body.join('\n');
        if (!body.includes('BBMULTICONFIG'))
          add(path, s.line, 'UNGUARDED_MCDEPENDS', `${s.name} adds mcdepends without checking BBMULTICONFIG`);
        for (const m of body.matchAll(/mc:[^'"\s]*:(do_\w+)/g))
          if (m[1] !== 'do_image_complete')
            add(path, s.line, 'UNGUARDED_MCDEPENDS', `mcdepends on ${m[1]}; depend on do_image_complete`);
      }
      if (s.type === 'function' && !s.python && /do_install/.test(s.name)) {
        s.body.forEach((l, i) => {
          if (/\$\{D\}\/(usr|etc|var|lib|bin|sbin)\b/.test(l))
            add(
              path,
              s.line + 1 + i,
              'HARDCODED_PATH',
              `hard-coded path in ${s.name}: use \${bindir}, \${sysconfdir}, ...`,
            );
        });
      }
    }
    // 5. bbappends change nothing until the distro override is active.
    if (path.endsWith('.bbappend')) {
      const gate = options.gateOverride;
      for (const s of r.statements) {
        if (s.type === 'assignment') {
          if (!s.overrides.includes(gate) && !s.conditions.includes(gate))
            add(path, s.line, 'UNGATED_BBAPPEND', `${s.variable} is not gated by the '${gate}' override`);
        } else if (s.type === 'function') {
          if (!s.name.split(':').includes(gate))
            add(path, s.line, 'UNGATED_BBAPPEND', `${s.name} is not gated by '${gate}'`);
        } else
          add(path, s.line, 'UNGATED_BBAPPEND', `${s.type} in a bbappend cannot be gated by an override`);
      }
      // 6. Never pin a version.
      const base = path.split('/').pop() as string;
      if (!/_%\.bbappend$/.test(base) && /_[0-9]/.test(base))
        add(
          path,
          1,
          'VERSION_PINNED_BBAPPEND',
          `${base} is pinned to one version; use ${base.replace(/_[^_]*\.bbappend$/, '_%.bbappend')}`,
        );
    }
    // 7. Source directory of file-only recipes, per release.
    if (path.endsWith('.bb')) {
      const as = assignments(r);
      const names = new Set(as.map((a) => a.base));
      for (const v of ['SUMMARY', 'DESCRIPTION', 'HOMEPAGE', 'LICENSE', 'LIC_FILES_CHKSUM'])
        if (!names.has(v)) add(path, 1, 'MISSING_RECIPE_METADATA', `${v} is not set`);
      const src = as.filter((a) => a.variable === 'SRC_URI' && a.operator === '=');
      const fileOnly =
        src.length > 0 &&
        src.every((a) =>
          a.value
            .replace(/\\/g, ' ')
            .split(/\s+/)
            .filter(Boolean)
            .every((u) => u.startsWith('file://')),
        );
      const sLines = as.filter((a) => (a.variable === 'S' || a.variable === 'UNPACKDIR') && !a.flag);
      if (fileOnly) {
        const want = sourceDirLines(options.release);
        const got = sLines.map((a) => [a.variable, a.value]);
        const same =
          want.length === got.length && want.every((w, i) => got[i]?.[0] === w[0] && got[i]?.[1] === w[1]);
        if (!same)
          add(
            path,
            sLines[0]?.line ?? 1,
            'SOURCE_DIR_FOR_RELEASE',
            `file-only recipe must set ${want.map(([k, v]) => `${k} = "${v}"`).join(' and ')} on ${options.release}`,
          );
      }
      if (options.release !== 'scarthgap')
        for (const a of sLines)
          if (a.variable === 'S' && a.value === '${WORKDIR}')
            add(path, a.line, 'SOURCE_DIR_FOR_RELEASE', `S = "\${WORKDIR}" is fatal on ${options.release}`);
    }
  }
  // 3. RT_GROUP_SCHED breaks systemd.
  for (const f of files) {
    if (!f.path.endsWith('.cfg')) continue;
    f.content.split('\n').forEach((l, i) => {
      if (/^CONFIG_RT_GROUP_SCHED=[ym]/.test(l))
        add(f.path, i + 1, 'RT_GROUP_SCHED_ENABLED', 'CONFIG_RT_GROUP_SCHED breaks systemd; leave it unset');
    });
  }
  if (dpdkUsed && !dpdkEnabled)
    add(
      'conf/distro',
      0,
      'DPDK_NOT_ENABLED',
      'meta-dpdk sets COMPATIBLE_MACHINE = "null"; set COMPATIBLE_MACHINE:pn-dpdk in the distro conf',
    );
  return issues;
}
