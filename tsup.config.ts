import { defineConfig } from 'tsup';

// The library and the CLI are built side by side so the CLI imports the same
// modules the library exports; dist/ mirrors the source folders.
export default defineConfig({
  entry: {
    'libstorage/index': 'libstorage/index.ts',
    'controlplane/cli': 'controlplane/cli.ts',
  },
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  dts: { entry: { 'libstorage/index': 'libstorage/index.ts' } },
  sourcemap: true,
  clean: true,
  splitting: true,
  shims: false,
});
