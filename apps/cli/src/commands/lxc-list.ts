import { runWith } from './lxc.js';

export const run = runWith('list');
