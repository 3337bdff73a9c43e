import { defineConfig } from 'tsup';

export default defineConfig({
  // endpoint.ts is the entry of every endpoint process and worker; bin.ts the command.
  entry: ['src/index.ts', 'src/endpoint.ts', 'src/bin.ts'],
  format: ['esm'],
  target: 'node20',
  dts: { entry: ['src/index.ts'] },
  sourcemap: true,
  clean: true,
});
