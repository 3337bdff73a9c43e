import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Endpoints run as separate processes and workers from the compiled
// dist/endpoint.js, so the tests need a build that matches src/. The
// workspace build (setup, CI) normally provides it; rebuild when stale.
function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p));
    else if (!e.name.endsWith('.test.ts')) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

export default function setup(): void {
  const root = path.dirname(fileURLToPath(import.meta.url));
  const entry = path.join(root, 'dist', 'endpoint.js');
  if (existsSync(entry) && statSync(entry).mtimeMs >= newest(path.join(root, 'src'))) return;
  execFileSync('pnpm', ['exec', 'tsup'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}
