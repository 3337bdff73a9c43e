// Test-only helpers of this package (not published); the shared ones live in ./testing.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export { leftoversOf, rootAvailable, runPair, testpmdAvailable } from './testing/index.js';

/** Bundle this package's source into one ESM file (for child processes running as another user). */
export function bundleSource(outDir: string): string {
  const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
  const out = join(outDir, 'dpdk.mjs');
  // esbuild comes with tsup (a dev dependency); find its binary through tsup if no .bin link exists
  let esbuild = join(pkgDir, 'node_modules/.bin/esbuild');
  if (!existsSync(esbuild)) {
    const fromTsup = createRequire(createRequire(join(pkgDir, 'package.json')).resolve('tsup'));
    esbuild = join(dirname(fromTsup.resolve('esbuild/package.json')), 'bin/esbuild');
  }
  execFileSync(esbuild, [
    join(pkgDir, 'src/index.ts'),
    '--bundle',
    '--platform=node',
    '--format=esm',
    `--outfile=${out}`,
    '--log-level=error',
  ]);
  chmodSync(outDir, 0o755);
  chmodSync(out, 0o644);
  return out;
}
