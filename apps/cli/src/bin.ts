#!/usr/bin/env node
import { main } from './main.js';

// `vipc ... | head`: once the reader is gone, further output is dropped, but the
// command still runs to its end, so it cleans up (containers, sockets) as usual.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
});

process.exitCode = await main(process.argv.slice(2));
