#!/usr/bin/env node
import { runBackendProgram } from './program.js';

process.exitCode = await runBackendProgram(process.argv.slice(2));
