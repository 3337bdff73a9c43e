import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/bin.ts', 'src/bench.ts'],
  format: ['esm'],
  target: 'node20',
  dts: { entry: ['src/index.ts'] },
  sourcemap: true,
  clean: true,
  // @vipc/dpdk is a devDependency (only the benchmark uses it): bundled into
  // dist/bench.js, so the bench runs from dist without it installed
  noExternal: ['@vipc/dpdk'],
});
