import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/bin.ts', 'src/commands/*.ts'],
  format: ['esm'],
  target: 'node20',
  sourcemap: true,
  clean: true,
  banner: { js: '' },
});
