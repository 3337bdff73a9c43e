#!/usr/bin/env node
import { main } from './cli.js';

const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort());
process.exitCode = await main(process.argv.slice(2), { signal: controller.signal });
