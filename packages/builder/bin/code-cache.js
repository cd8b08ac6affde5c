'use strict';
// Loads the CLI bundle with a V8 code cache written beside it at bundle time (scripts/bundle.js), so a
// short command skips parsing and compiling the ~0.8 MB of JavaScript it starts with (README,
// Performance). Node 20 has no compile cache of its own (module.enableCompileCache is Node 22).
//
// V8 checks a cache against the source's length, not its content, so a cache made from another bundle
// of the same length would run that bundle's code: the cache file starts with the SHA-256 of the source
// it was made from, and anything else (no file, another hash, a V8 or flag mismatch) compiles normally.
const crypto = require('node:crypto');
const fs = require('node:fs');
const Module = require('node:module');
const path = require('node:path');
const vm = require('node:vm');

const HASH_BYTES = 32;

function cacheFileOf(file) {
  return `${file}.cache`;
}

function sha256(buffer) {
  return crypto.createHash('sha256').update(buffer).digest();
}

/** The cache's V8 data when it was made from exactly these source bytes, else undefined. */
function readCodeCache(file, sourceBytes) {
  let cache;
  try {
    cache = fs.readFileSync(cacheFileOf(file));
  } catch {
    return undefined;
  }
  if (cache.length <= HASH_BYTES || !cache.subarray(0, HASH_BYTES).equals(sha256(sourceBytes))) return undefined;
  return cache.subarray(HASH_BYTES);
}

/**
 * Runs a CommonJS file as `require` would (a module registered under its path, with its own `require`),
 * compiled with its code cache when one matches. Returns the module's exports and, for writeCodeCache,
 * the script. The file must be ASCII: the bundle is (esbuild `charset: 'ascii'`, comments stripped), and
 * reading it as latin1 keeps V8's one-byte string fast path. It must not use `import()`: a vm script
 * can only with --experimental-vm-modules or an experimental option that prints a warning (the bundle
 * script checks).
 */
function loadWithCodeCache(file) {
  const sourceBytes = fs.readFileSync(file);
  const script = new vm.Script(`${Module.wrapper[0]}${sourceBytes.toString('latin1')}${Module.wrapper[1]}`, {
    filename: file,
    cachedData: readCodeCache(file, sourceBytes),
  });
  const mod = new Module(file, module);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(path.dirname(file));
  Module._cache[file] = mod;
  try {
    script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(file), mod, file, path.dirname(file));
  } catch (err) {
    delete Module._cache[file];
    throw err;
  }
  mod.loaded = true;
  return { exports: mod.exports, script, sourceBytes, cacheAccepted: script.cachedDataRejected === false };
}

/**
 * Writes the cache of a script after it ran, so the functions compiled while it ran are in it too.
 * Staged then renamed: a reader sees the old cache or the new one.
 */
function writeCodeCache(file, loaded) {
  const data = Buffer.concat([sha256(loaded.sourceBytes), loaded.script.createCachedData()]);
  const staged = `${cacheFileOf(file)}.${process.pid}.tmp`;
  fs.writeFileSync(staged, data);
  fs.renameSync(staged, cacheFileOf(file));
}

module.exports = { loadWithCodeCache, writeCodeCache, cacheFileOf };
