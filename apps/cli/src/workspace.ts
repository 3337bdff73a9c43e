/** Where the CLI's own files are, to run its endpoint in a child or a container. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/bin.js of this CLI (the file `node` runs for `vipc`). */
export function binPath(): string {
  // This module is bundled into dist/ (tsup), so the bin sits next to it or one level up.
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, 'bin.js'), join(here, '..', 'bin.js'), join(here, '..', 'dist', 'bin.js')]) {
    if (existsSync(p)) return resolve(p);
  }
  throw new Error(`cannot find the vipc bin next to ${here}; build it: pnpm --filter @vipc/cli build`);
}

/**
 * The directory to bind-mount read-only into a container so that the CLI and
 * the workspace packages it imports resolve there as on the host: the
 * workspace root (pnpm links packages and node_modules/.pnpm inside it).
 */
export function workspaceRoot(): string {
  let dir = dirname(binPath());
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    dir = dirname(dir);
  }
  // An installed CLI: its own package directory (with its node_modules) is what it needs.
  return dirname(dirname(binPath()));
}
