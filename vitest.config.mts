import { configDefaults, defineConfig } from 'vitest/config';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = (name: string) => path.resolve(here, 'packages', name, 'src', 'index.ts');

// Three tiers (`npm run test:unit`, `test:integration`, `test:peers`; `npm test` runs all three).
// A test file is unit unless listed below: unit runs as nobody (test/helpers/unit-tier-setup.ts),
// so a new test that needs root fails there and belongs in `integration`.
/** Tests that start a peer: skopeo, umoci, podman, dockerd, docker-registry. */
const peers = [
  'test/{cli,cli-docker,cli-errors,cli-extra-ca,corpus,docker-parity,interop-transport,nonutf8-names,platforms,shared-cache,shared-cache-ci,store-integrity,workloads}.test.ts',
  'packages/storage/test/registry.test.ts',
];
/** Tests that need root: mounts, namespaces, cgroups, chown, mknod, trusted.* xattrs; the end-to-end tests and fuzz targets. */
const integration = [
  'test/**/*.test.ts',
  'packages/native/test/{binding,fsops,mount,overlay,spawn}.test.ts',
  'packages/storage/test/archive/{apply,breakout,codec,whiteout,xattrs}.test.ts',
  'packages/storage/test/drivers/**/*.test.ts',
  'packages/storage/test/{layers,liveness,transport,runtime,runtime-hardening,runtime-seccomp,runtime-stale-cgroups}.test.ts',
  'packages/builder/test/context/hash.test.ts',
];
const all = ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'];

export default defineConfig({
  resolve: {
    alias: {
      '@tsbuild/native': pkg('native'),
      '@tsbuild/storage': pkg('storage'),
      '@tsbuild/builder': pkg('builder'),
    },
  },
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Root-only syscalls, mounts and namespaces: forks keep native state per test file.
    pool: 'forks',
    maxWorkers: 2,
    // Spawned CLIs run the bundle, as installed ones do.
    globalSetup: ['./test/helpers/bundle-setup.ts'],
    // The plain "N passed, N failed" closing line is what CI reads in any language.
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    projects: [
      { extends: true, test: { name: 'unit', include: all, exclude: [...configDefaults.exclude, ...integration, ...peers], setupFiles: ['./test/helpers/unit-tier-setup.ts'] } },
      { extends: true, test: { name: 'integration', include: integration, exclude: [...configDefaults.exclude, ...peers] } },
      { extends: true, test: { name: 'peers', include: peers } },
    ],
  },
});
