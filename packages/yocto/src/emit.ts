import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { checkBitbake, fileKind } from './bitbake/check.js';
import { YoctoError } from './errors.js';
import { classFiles } from './layer/class-index.js';
import { makeContext } from './layer/context.js';
import type { LayerFile } from './layer/file.js';
import {
  DEFAULT_TOPOLOGY,
  type LayerOptions,
  resolveOptions,
  validateTopology,
  type YoctoTopology,
} from './model.js';
import { PACKAGE_VERSION } from './version.js';

/**
 * Renders the whole layer in memory: every file with its purpose, sorted by
 * path. Pure and deterministic (no clock, no environment): the same input gives
 * byte-identical files. Every BitBake file is checked; a failure is an emitter
 * bug and throws EMITTED_INVALID.
 */
export function renderLayer(
  topology: YoctoTopology = DEFAULT_TOPOLOGY,
  options: Partial<LayerOptions> = {},
): LayerFile[] {
  validateTopology(topology);
  const o = resolveOptions(options);
  const c = makeContext(topology, o, PACKAGE_VERSION);
  const files = classFiles(c).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  // A recipe named like an active override applies its PN-specific values to
  // every recipe (bitbake's pn-overrides QA error): refuse such names.
  const pns = new Set(
    files
      .filter((f) => f.path.endsWith('.bb'))
      .map((f) => (f.path.split('/').pop() as string).replace(/(_[^_]*)?\.bb$/, '')),
  );
  const clashes = [c.override, c.guestOverride].filter((o) => pns.has(o));
  if (clashes.length > 0)
    throw new YoctoError(
      'INVALID_OPTIONS',
      'invalid layer options',
      clashes.map(
        (o) => `distro: override '${o}' is also the name of an emitted recipe; choose another distro name`,
      ),
    );
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const f of files) {
    if (seen.has(f.path)) problems.push(`${f.path}: emitted twice`);
    seen.add(f.path);
    const kind = fileKind(f.path);
    if (kind === undefined) continue;
    for (const d of checkBitbake(f.content, { kind, file: f.path }).diagnostics)
      problems.push(`${f.path}:${d.line}: ${d.message}`);
  }
  if (problems.length > 0)
    throw new YoctoError('EMITTED_INVALID', 'the emitted layer failed its syntax check', problems);
  return files;
}

export interface DryRunEntry {
  path: string;
  purpose: string;
  bytes: number;
}

/** What `emitLayer` would write, one entry per file; `formatDryRun` turns it into lines. */
export function dryRun(
  topology: YoctoTopology = DEFAULT_TOPOLOGY,
  options: Partial<LayerOptions> = {},
): DryRunEntry[] {
  return renderLayer(topology, options).map((f) => ({
    path: f.path,
    purpose: f.purpose,
    bytes: Buffer.byteLength(f.content),
  }));
}

export function formatDryRun(entries: readonly DryRunEntry[]): string {
  const width = Math.max(...entries.map((e) => e.path.length));
  return entries.map((e) => `${e.path.padEnd(width)}  ${e.purpose}\n`).join('');
}

export interface EmitResult {
  dir: string;
  files: LayerFile[];
  /** Files present in the directory before that the layer no longer has, which were removed. */
  removed: string[];
}

function listFiles(root: string, rel = ''): string[] {
  let names: string[];
  try {
    names = readdirSync(join(root, rel));
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names) {
    const p = rel ? `${rel}/${n}` : n;
    if (statSync(join(root, p)).isDirectory()) out.push(...listFiles(root, p));
    else out.push(p);
  }
  return out;
}

/**
 * Writes the layer into `dir` (created if needed). With `prune`, files in `dir`
 * that the layer does not contain are removed, so the directory holds exactly
 * the layer (as the committed recipes/ must).
 */
export function emitLayer(
  dir: string,
  topology: YoctoTopology = DEFAULT_TOPOLOGY,
  options: Partial<LayerOptions> = {},
  { prune = false }: { prune?: boolean } = {},
): EmitResult {
  const files = renderLayer(topology, options);
  const removed: string[] = [];
  try {
    if (prune) {
      const keep = new Set(files.map((f) => f.path));
      for (const p of listFiles(dir).sort()) {
        if (!keep.has(p)) {
          rmSync(join(dir, p));
          removed.push(p);
        }
      }
    }
    for (const f of files) {
      const target = join(dir, f.path);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, f.content, { mode: f.mode ?? 0o644 });
    }
  } catch (err) {
    throw new YoctoError('WRITE_FAILED', `cannot write the layer to ${dir}: ${(err as Error).message}`);
  }
  return { dir, files, removed };
}
