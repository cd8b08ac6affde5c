import { defineConfig } from 'vitest/config';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = (name: string) => path.resolve(here, 'packages', name, 'src', 'index.ts');

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
    hookTimeout: 120_000,
    // Root-only syscalls, mounts and namespaces: forks keep native state per test file.
    pool: 'forks',
    maxWorkers: 2,
    // The plain "N passed, N failed" closing line is what CI reads in any language.
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
