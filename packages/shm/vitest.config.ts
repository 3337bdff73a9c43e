import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'shm',
    // Native code and file descriptors: one process per test file.
    pool: 'forks',
    testTimeout: 30_000,
  },
});
