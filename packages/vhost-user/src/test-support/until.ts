/** The tests' way of waiting for a peer (shared with the benchmark): see src/poll-until.ts. */
export { pollUntil } from '../poll-until.js';
