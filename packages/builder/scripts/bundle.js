#!/usr/bin/env node
'use strict';
// Bundles the CLI (dist/cli/main.js with @tsbuild/storage and @tsbuild/native's JavaScript) into one
// file, dist/cli/bundle.js, which bin/tsbuild.js loads when it is present and current. Node resolving
// package exports and reading ~110 files took a good part of a short command's time (README,
// Performance). Modules required inside functions (the lazy transports, runtime, fsck) stay wrapped and
// run only when first required. The addon and the helper binaries stay files found as before: the
// native package's directory comes from resolving its package.json instead of the bundle's __dirname.
// Run after `tsc -b` (the root's prepare and pretest, this package's prepack).
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const esbuild = require('esbuild');
const crypto = require('node:crypto');
const { cacheFileOf, BUILD_ID_PREFIX, BUILD_ID_LENGTH, PREWRAPPED_HEAD, PREWRAPPED_TAIL } = require('../bin/code-cache.js');

const packageDir = path.join(__dirname, '..');
const entry = path.join(packageDir, 'dist', 'cli', 'main.js');
const outfile = path.join(packageDir, 'dist', 'cli', 'bundle.js');
// The loader maps the bundle (bin/code-cache.js): a command running while it is rebuilt keeps the file it
// mapped only if the new one comes by rename, so esbuild writes elsewhere and the result is renamed in.
const staged = `${outfile}.${process.pid}.tmp`;
const NATIVE_DIR = "path.join(__dirname, '..')";

/**
 * binding.js finds the addon next to itself; in the bundle it must look in the native package: the
 * nearest node_modules/@tsbuild/native above the bundle (where npm puts a dependency, a workspace link
 * included), else wherever require.resolve finds it. require.resolve alone cost ~4 ms of every command
 * (Node compiles its package-exports resolver for it).
 */
const NATIVE_DIR_IN_BUNDLE = `((start) => {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', '@tsbuild', 'native');
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) return path.dirname(require.resolve('@tsbuild/native/package.json'));
  }
})(__dirname)`;
function nativePackageDir(file, source) {
  if (!/[\\/]native[\\/]dist[\\/]binding\.js$/.test(file)) return source;
  if (!source.includes(NATIVE_DIR)) throw new Error(`${file}: no "${NATIVE_DIR}" to replace; update scripts/bundle.js`);
  return source.replace(NATIVE_DIR, NATIVE_DIR_IN_BUNDLE);
}

/**
 * tsc compiles `import * as fs from 'node:fs'` to `__importStar(require("node:fs"))`, which copies every
 * export of the built-in module into a new object of getters, once per importing file: ~140 copies of
 * node:fs, node:path and the like cost 20 to 30 ms of every command's start. Our code only reads
 * properties of these namespaces (never `default`), for which the module object itself is the same.
 */
const NAMESPACE_OF_BUILTIN = /__importStar\(require\("(node:[a-z_/]+)"\)\)/g;
function builtinNamespaces(source) {
  return source.replace(NAMESPACE_OF_BUILTIN, 'require("$1")');
}

/** Our compiled JavaScript, adjusted for the bundle. */
const adjustOurModules = {
  name: 'adjust-our-modules',
  setup(build) {
    build.onLoad({ filter: /[\\/]packages[\\/](builder|storage|native)[\\/]dist[\\/].*\.js$/ }, (args) => ({
      loader: 'js',
      contents: builtinNamespaces(nativePackageDir(args.path, fs.readFileSync(args.path, 'utf8'))),
    }));
  },
};

/**
 * The bin loads the bundle through a V8 code cache (bin/code-cache.js): the shipped one is written here by
 * running the bin once, so the cache also holds the functions that command compiled; the caches of other
 * command families, written on first use, are removed. Without a cache the bundle still runs.
 */
function writeCodeCache() {
  const dir = path.dirname(outfile);
  const ofBundle = new RegExp(`^${path.basename(outfile).replace('.', '\\.')}\\.([\\w-]+\\.)?cache(\\.\\d+\\.tmp)?$`);
  for (const name of fs.readdirSync(dir)) if (ofBundle.test(name)) fs.rmSync(path.join(dir, name), { force: true });
  execFileSync(process.execPath, [path.join(packageDir, 'bin', 'tsbuild.js'), '--version'], {
    env: { ...process.env, TSBUILD_WRITE_CODE_CACHE: '1' },
    stdio: 'ignore',
  });
  if (!fs.existsSync(cacheFileOf(outfile))) throw new Error(`${cacheFileOf(outfile)} was not written`);
}

esbuild
  .build({
    entryPoints: [entry],
    outfile: staged,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // ASCII without comments: Node reads a file with any other byte into a two-byte string, which took
    // ~25 ms for this one (a comment with an arrow was enough). Names stay: only whitespace goes.
    charset: 'ascii',
    minifyWhitespace: true,
    // Resolved at run time from dist/cli, where main.js sits too.
    external: ['../../bin/tsbuild.js', '@tsbuild/native/package.json'],
    plugins: [adjustOurModules],
    logLevel: 'warning',
  })
  .then(() => {
    const code = fs.readFileSync(staged, 'latin1');
    if (/[^\x00-\x7f]/.test(code)) throw new Error(`${outfile}: not ASCII; bin/code-cache.js reads it as latin1`);
    if (code.includes('__importStar(require("node:')) throw new Error(`${outfile}: a built-in namespace import was not rewritten; update scripts/bundle.js`);
    // bin/code-cache.js runs the bundle as a vm script, where `import()` fails: use require.
    const dynamicImport = /\bimport\((?!\))/.exec(code);
    if (dynamicImport) throw new Error(`${outfile}: import() at offset ${dynamicImport.index} (${code.slice(dynamicImport.index - 60, dynamicImport.index + 30)}); use require`);
    // The build id bin/code-cache.js matches a cache against, in place of hashing the bundle each time.
    // Written as the function `require` would wrap it in, so the loader compiles the file as read.
    const body = `${PREWRAPPED_HEAD}${code}${PREWRAPPED_TAIL}`;
    const buildId = crypto.createHash('sha256').update(body).digest('hex').slice(0, BUILD_ID_LENGTH);
    fs.writeFileSync(staged, `${BUILD_ID_PREFIX}${buildId}\n${body}`, 'latin1');
    fs.renameSync(staged, outfile);
    writeCodeCache();
  })
  .catch((err) => {
    fs.rmSync(staged, { force: true });
    if (err && !err.errors) process.stderr.write(`bundle: ${err.message}\n`);
    process.exitCode = 1;
  });
