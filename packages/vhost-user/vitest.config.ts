import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'vhost-user',
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
