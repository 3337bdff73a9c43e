import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { lintLayer } from './bitbake/check.js';
import { renderLayer } from './emit.js';
import { DEFAULT_LAYER_OPTIONS } from './model.js';

const recipes = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'recipes');

function walk(rel = ''): string[] {
  const out: string[] = [];
  for (const n of readdirSync(join(recipes, rel)).sort()) {
    const p = rel ? `${rel}/${n}` : n;
    if (statSync(join(recipes, p)).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

describe('recipes/ (the committed layer)', () => {
  const files = renderLayer();
  it('holds exactly the files the emitter produces for the default topology (regenerate: pnpm --filter @vipc/yocto regenerate)', () => {
    expect(walk().sort()).toEqual(files.map((f) => f.path).sort());
  });
  it('has byte-identical contents and the same modes', () => {
    for (const f of files) {
      expect({ path: f.path, content: readFileSync(join(recipes, f.path), 'utf8') }).toEqual({
        path: f.path,
        content: f.content,
      });
      expect({ path: f.path, mode: statSync(join(recipes, f.path)).mode & 0o111 ? 0o755 : 0o644 }).toEqual({
        path: f.path,
        mode: f.mode ?? 0o644,
      });
    }
  });
  it(`passes the layer lint for ${DEFAULT_LAYER_OPTIONS.release}`, () => {
    const onDisk = walk().map((p) => ({ path: p, content: readFileSync(join(recipes, p), 'utf8') }));
    expect(
      lintLayer(onDisk, {
        release: DEFAULT_LAYER_OPTIONS.release,
        gateOverride: DEFAULT_LAYER_OPTIONS.distro,
      }),
    ).toEqual([]);
  });
});
