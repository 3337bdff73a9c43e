import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'dpdk',
    pool: 'forks',
    // testpmd busy-polls its forwarding lcore: run this package's files one at a time so at most one
    // pair of testpmd processes competes for the machine's (shared) CPUs.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
