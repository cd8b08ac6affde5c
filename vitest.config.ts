import { defineConfig } from 'vitest/config';
import * as path from 'node:path';

const pkg = (name: string) => path.resolve(__dirname, 'packages', name, 'src', 'index.ts');

export default defineConfig({
  resolve: {
    alias: {
      '@tsbuild/native': pkg('native'),
      '@tsbuild/storage': pkg('storage'),
      '@tsbuild/builder': pkg('builder'),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Root-only syscalls, mounts and namespaces: forks keep native state per test file.
    pool: 'forks',
    maxWorkers: 2,
  },
});
