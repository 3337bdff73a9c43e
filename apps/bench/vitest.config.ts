import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'bench',
    pool: 'forks',
    globalSetup: ['./vitest.global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
