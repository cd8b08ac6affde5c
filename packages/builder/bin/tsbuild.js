#!/usr/bin/env node
'use strict';
// Keep V8's young generation at its first 1 MB semi-space instead of letting it grow to 16 MB: garbage
// then reaches old space less, and a COPY of 30,000 small files peaked at 134 MB RSS instead of 163 MB
// for the same CPU time (README, Performance). V8 reads this flag whenever the new space would grow.
require('node:v8').setFlagsFromString('--semi-space-growth-factor=1');
const fs = require('node:fs');
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist');
const bundle = path.join(dist, 'cli', 'bundle.js');

/**
 * The one-file bundle (scripts/bundle.js) loads faster than ~110 modules. It is used when present, unless
 * `tsc -b` ran after it in a checkout of the repository (a build info newer than the bundle), so a
 * rebuild without re-bundling runs the new code. An installed package has no build info.
 */
function bundleIsCurrent() {
  const built = fs.statSync(bundle, { throwIfNoEntry: false });
  if (!built) return false;
  const packages = path.join(__dirname, '..', '..');
  return ['builder', 'storage', 'native'].every((name) => {
    const info = fs.statSync(path.join(packages, name, 'dist', '.tsbuildinfo'), { throwIfNoEntry: false });
    return !info || info.mtimeMs <= built.mtimeMs;
  });
}

require(bundleIsCurrent() ? bundle : path.join(dist, 'cli', 'main.js')).main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`tsbuild: internal error: ${err && err.message ? err.message : err}\n`); process.exitCode = 125; },
);
