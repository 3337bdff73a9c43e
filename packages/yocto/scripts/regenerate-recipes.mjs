// Rewrites the repository's recipes/ with the layer emitted from the default
// topology and options (run after a build: `pnpm --filter @vipc/yocto regenerate`).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { emitLayer } from '../dist/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const out = join(root, 'recipes');
const { files, removed } = emitLayer(out, undefined, undefined, { prune: true });
console.error(
  `recipes/: wrote ${files.length} files${removed.length ? `, removed ${removed.join(', ')}` : ''}`,
);
