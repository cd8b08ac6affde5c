#!/usr/bin/env node
'use strict';
// Bundles the CLI (dist/cli/main.js with @tsbuild/storage and @tsbuild/native's JavaScript) into one
// file, dist/cli/bundle.js, which bin/tsbuild.js loads when it is present and current. Node resolving
// package exports and reading ~110 files took a good part of a short command's time (README,
// Performance). Modules required inside functions (the lazy transports, runtime, fsck) stay wrapped and
// run only when first required. The addon and the helper binaries stay files found as before: the
// native package's directory comes from resolving its package.json instead of the bundle's __dirname.
// Run after `tsc -b` (the root's prepare and pretest, this package's prepack).
const fs = require('node:fs');
const path = require('node:path');
const esbuild = require('esbuild');

const packageDir = path.join(__dirname, '..');
const entry = path.join(packageDir, 'dist', 'cli', 'main.js');
const outfile = path.join(packageDir, 'dist', 'cli', 'bundle.js');
const NATIVE_DIR = "path.join(__dirname, '..')";

/** binding.js finds the addon next to itself; in the bundle it must look in the native package. */
const nativePackageDir = {
  name: 'native-package-dir',
  setup(build) {
    build.onLoad({ filter: /[\\/]native[\\/]dist[\\/]binding\.js$/ }, (args) => {
      const source = fs.readFileSync(args.path, 'utf8');
      if (!source.includes(NATIVE_DIR)) throw new Error(`${args.path}: no "${NATIVE_DIR}" to replace; update scripts/bundle.js`);
      return { loader: 'js', contents: source.replace(NATIVE_DIR, "path.dirname(require.resolve('@tsbuild/native/package.json'))") };
    });
  },
};

esbuild
  .build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // Resolved at run time from dist/cli, where main.js sits too.
    external: ['../../bin/tsbuild.js', '@tsbuild/native/package.json'],
    plugins: [nativePackageDir],
    logLevel: 'warning',
  })
  .catch(() => { process.exitCode = 1; });
