import { defineConfig } from 'vitest/config';

// One runner for the whole monorepo: each package and app brings its own
// vitest.config.ts (pool, timeouts); this file only gathers them.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*'],
    reporters: process.env.CI ? ['default', ['json', { outputFile: '.ci/results.json' }]] : ['default'],
  },
});
