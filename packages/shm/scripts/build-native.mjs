// Builds the native addon offline, against the headers of the Node.js that
// runs this script (never downloads them). Skips the build when the binaries
// are newer than their sources, unless --force.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const force = process.argv.includes('--force');
const outputs = ['vipc_shm.node', 'vipc_shm_shared.node'].map((f) => join(root, 'build', 'Release', f));
const inputs = ['binding.gyp', 'native/shm.c', 'native/shared-buffer.cc'].map((f) => join(root, f));

const newest = Math.max(...inputs.map((f) => statSync(f).mtimeMs));
if (!force && outputs.every((f) => existsSync(f) && statSync(f).mtimeMs >= newest)) process.exit(0);

// Node's own headers: <prefix>/include/node, prefix = the dir above bin/node.
const candidates = [
  process.env.npm_config_nodedir,
  resolve(dirname(process.execPath), '..'),
  '/usr',
  '/usr/local',
];
const nodedir = candidates.find((d) => d && existsSync(join(d, 'include', 'node', 'node_api.h')));
if (!nodedir) {
  console.error(
    '@vipc/shm: cannot find Node.js headers (include/node/node_api.h) next to this Node.js.\n' +
      'Install them (Debian: apt-get install libnode-dev, or use the official Node.js tarball, which ships them)\n' +
      'or set npm_config_nodedir to the directory that holds include/node.',
  );
  process.exit(1);
}

const require = createRequire(import.meta.url);
const gyp = require.resolve('node-gyp/bin/node-gyp.js');
const r = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`, '--loglevel=warn'], {
  cwd: root,
  stdio: ['ignore', 'inherit', 'inherit'],
});
if (r.status !== 0) {
  console.error('@vipc/shm: building the native addon failed (needs python3, make and a C/C++ compiler).');
  process.exit(r.status ?? 1);
}
