'use strict';
// Loads the CLI bundle with a V8 code cache, so a command skips parsing and compiling the ~0.8 MB of
// JavaScript it starts with (README, Performance). Node 20 has no compile cache of its own
// (module.enableCompileCache is Node 22).
//
// Two kinds of cache, one format. `bundle.js.cache` is written at bundle time after `--version`
// (scripts/bundle.js) and shipped. Each command (build, run, images...) gets a cache of its own, written
// after its first successful run on this machine (like Node 22's compile cache) and holding what it
// compiled: beside the bundle when that directory is writable (`bundle.js.<command>.cache`), else in
// $XDG_CACHE_HOME/tsbuild (~/.cache/tsbuild). Until then a command starts from the shipped cache.
// Any cache that is missing or stale (another bundle, another V8) is rewritten after the command, staged
// then renamed; writing is best-effort and never fails a command.
//
// V8 checks a cache against the source's length, not its content, so a cache made from another bundle
// of the same length would run that bundle's code. The bundle's first line carries a build id (a hash of
// the rest of it, computed at bundle time) and a cache is used only with the same id in its header. The
// id is not recomputed when loading (hashing the bundle, with node:crypto loaded for it, cost ~10 ms of
// every command): a bundle edited by hand at the same length without changing its id line would run its
// old cache. A file without an id never uses a cache.
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
// The Module class without loading node:module (which loads the ESM loader and source maps).
const Module = module.constructor;

/** The bundle's first line: this prefix, the build id, a newline (scripts/bundle.js writes it). */
const BUILD_ID_PREFIX = '//tsbuild-build-id ';
const BUILD_ID_LENGTH = 32;
/**
 * A bundle written as one function expression (scripts/bundle.js), after its build id line: compiled as
 * it is. Any other file is wrapped as `require` wraps it, which makes V8 copy the joined string before
 * compiling: ~5 ms for the ~0.9 MB bundle here, where touching fresh memory costs ~12 us a page.
 */
const PREWRAPPED_HEAD = '(function (exports, require, module, __filename, __dirname) {';
const PREWRAPPED_TAIL = '\n});\n';

/** A cache file starts with `MAGIC <build id> <V8 version> <start flags>\n` (startFlags), then V8's data. */
const MAGIC = 'tsbuild-code-cache';

/**
 * The native package's tsbuild_mapfile.node (cc/mapfile): files mapped instead of read, which saves ~9 ms
 * of copying the bundle and its cache into fresh memory. Found as the bundle finds the native package
 * (the nearest node_modules/@tsbuild/native above), local build first; null when it is not there or does
 * not load, and files are read.
 */
let mapFileAddon;
function mapFile() {
  if (mapFileAddon !== undefined) return mapFileAddon;
  mapFileAddon = null;
  for (let dir = __dirname; path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    const native = path.join(dir, 'node_modules', '@tsbuild', 'native');
    if (!fs.existsSync(path.join(native, 'package.json'))) continue;
    for (const sub of [path.join('build', 'Release'), path.join('prebuilds', `${process.platform}-${process.arch}`)]) {
      const mod = { exports: {} };
      try {
        process.dlopen(mod, path.join(native, sub, 'tsbuild_mapfile.node'));
        return (mapFileAddon = mod.exports);
      } catch {
        // Not built here: the next place, else read.
      }
    }
    break;
  }
  return mapFileAddon;
}

/** A file's bytes as a latin1 string, mapped when the addon is there. */
function readLatin1(file) {
  return mapFile()?.latin1(file) ?? fs.readFileSync(file, 'latin1');
}

/** A file's bytes, mapped when the addon is there. */
function readBytes(file) {
  return mapFile()?.bytes(file) ?? fs.readFileSync(file);
}

/** The build id on the bundle's first line, else undefined. */
function buildIdOf(source) {
  if (!source.startsWith(BUILD_ID_PREFIX)) return undefined;
  const end = BUILD_ID_PREFIX.length + BUILD_ID_LENGTH;
  if (source.charCodeAt(end) !== 10) return undefined;
  const id = source.slice(BUILD_ID_PREFIX.length, end);
  return /^[0-9a-f]+$/.test(id) ? id : undefined;
}

/** Commands that run little more than `--version`, whose cache the shipped one is. */
const DEFAULT_FAMILY_COMMANDS = new Set(['version', 'help']);

/**
 * The cache family of a command line, from a cheap look at it: the command word after the global options
 * (main.ts splitGlobals), so each command gets a cache of what it compiles; a first word that is an option
 * or a path is the `tsbuild -t app .` build shorthand. A cache is written only after a command succeeded,
 * so a mistyped word leaves none. A wrong guess only costs time (`run img sh -h` takes the shipped one).
 */
function familyOf(argv) {
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i];
    if (arg === '--root' || arg === '--storage-driver') i += 2;
    else if (arg.startsWith('--root=') || arg.startsWith('--storage-driver=') || arg === '--debug') i += 1;
    else break;
  }
  const first = argv[i];
  // A command's usage compiles little more than --version; its cache must not become the command's.
  if (first === undefined || DEFAULT_FAMILY_COMMANDS.has(first) || argv.includes('--help') || argv.includes('-h')) return 'default';
  if (/^[a-z][a-z0-9-]{0,31}$/.test(first)) return first;
  if (/^(-[^-h]|--(?!help$|version$)|\.|\/)/.test(first)) return 'build';
  return 'default';
}

function cacheFileOf(file, family = 'default') {
  return family === 'default' ? `${file}.cache` : `${file}.${family}.cache`;
}

/** Where a cache goes when the bundle's directory is not writable. */
function userCacheFileOf(file, family, buildId) {
  const home = process.env.XDG_CACHE_HOME || (process.env.HOME ? path.join(process.env.HOME, '.cache') : undefined);
  if (!home || !path.isAbsolute(home)) return undefined;
  return path.join(home, 'tsbuild', `${buildId}.${path.basename(cacheFileOf(file, family))}`);
}

/**
 * What this process was started with that can change V8's flags (NODE_OPTIONS, node's own options), as a
 * short FNV-1a hash. V8 rejects a cache made under other flags, but only after reading it: a cache
 * written once under `NODE_OPTIONS=--max-old-space-size=...` would otherwise be rejected by every
 * plain command after it and never rewritten (a same-build cache is not rewritten on rejection, which
 * would repeat on every command when the data is damaged).
 */
function startFlags() {
  const text = `${process.env.NODE_OPTIONS ?? ''}\0${process.execArgv.filter((arg) => arg.startsWith('-') && arg !== '-e' && arg !== '--eval').join('\0')}`;
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash.toString(16).padStart(8, '0');
}

function headerOf(buildId) {
  return `${MAGIC} ${buildId} ${process.versions.v8} ${startFlags()}\n`;
}

/**
 * The first of `files` made for this build and this V8, else the first that exists, as
 * { data, sameV8, sameFlags }: data is V8's part, only for this build and V8; sameFlags when it was
 * written by a process started with the same flags as this one.
 */
function readCache(files, buildId) {
  let found;
  for (const file of files) {
    if (!file) continue;
    let bytes;
    try {
      bytes = readBytes(file);
    } catch {
      continue;
    }
    const newline = bytes.indexOf(10);
    const header = newline > 0 && newline < 200 ? bytes.latin1Slice(0, newline).split(' ') : [];
    const sameV8 = header.length === 4 && header[0] === MAGIC && header[1] === buildId && header[2] === process.versions.v8;
    if (sameV8 && bytes.length > newline + 1) return { data: bytes.subarray(newline + 1), sameV8, sameFlags: header[3] === startFlags() };
    found ??= { data: undefined, sameV8: false, sameFlags: false };
  }
  return found;
}

/**
 * Runs a CommonJS file as `require` would (a module registered under its path, with its own `require`),
 * compiled with the code cache of `argv`'s family (else the default one) when its build id matches.
 * Returns the module's exports and, for writeCodeCache, the script and whether (and which) cache to write.
 * The file must be ASCII: the bundle is (esbuild `charset: 'ascii'`, comments stripped), and reading it
 * as latin1 keeps V8's one-byte string fast path. It must not use `import()`: a vm script can only with
 * --experimental-vm-modules or an experimental option that prints a warning (the bundle script checks).
 */
function loadWithCodeCache(file, argv = []) {
  const source = readLatin1(file);
  const buildId = buildIdOf(source);
  const family = familyOf(argv);
  let cache;
  let familyCache;
  if (buildId) {
    familyCache = readCache([cacheFileOf(file, family), userCacheFileOf(file, family, buildId)], buildId);
    cache = familyCache;
    if (!cache?.data && family !== 'default') cache = readCache([cacheFileOf(file), userCacheFileOf(file, 'default', buildId)], buildId);
  }
  const body = buildId ? BUILD_ID_PREFIX.length + BUILD_ID_LENGTH + 1 : 0;
  const prewrapped = source.startsWith(PREWRAPPED_HEAD, body) && source.endsWith(PREWRAPPED_TAIL);
  const script = new vm.Script(prewrapped ? source : `${Module.wrapper[0]}${source}${Module.wrapper[1]}`, { filename: file, cachedData: cache?.data });
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
  const cacheAccepted = cache?.data !== undefined && script.cachedDataRejected === false;
  // Rewritten when missing, made for another build or V8, or rejected by V8 after a process started with
  // other flags wrote it (startFlags). One this process's flags wrote and V8 still rejects is damaged or
  // made under flags set later: rewriting it would repeat on every command.
  const rejectedOtherFlags = familyCache?.data !== undefined && cache === familyCache && script.cachedDataRejected === true && !familyCache.sameFlags;
  const stale = buildId !== undefined && (!familyCache?.sameV8 || rejectedOtherFlags);
  return { exports: mod.exports, script, buildId, family, cacheAccepted, stale };
}

/** Stages `data` beside `target` and renames it into place; false when the directory is not writable. */
function writeAtomically(target, data) {
  const staged = `${target}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(staged, data);
    fs.renameSync(staged, target);
    return true;
  } catch {
    fs.rmSync(staged, { force: true });
    return false;
  }
}

/** The user cache directory's caches of other builds of the bundle that `kept` is a cache of. */
function removeOtherBuilds(kept, buildId) {
  const dir = path.dirname(kept);
  const suffix = path.basename(kept).slice(buildId.length);
  for (const name of fs.readdirSync(dir)) {
    if (name.endsWith(suffix) && name.length === BUILD_ID_LENGTH + suffix.length && !name.startsWith(buildId)) fs.rmSync(path.join(dir, name), { force: true });
  }
}

/**
 * Writes the cache of a script after it ran, so the functions compiled while it ran are in it too: beside
 * the bundle, else in the user's cache directory. V8 stamps the data with its current flags and rejects it
 * under others, so `restoreFlags` first undoes what the bin changed after loading. Returns where it wrote,
 * or undefined. Never throws.
 */
function writeCodeCache(file, loaded, restoreFlags = () => undefined) {
  if (!loaded.buildId) return undefined;
  try {
    restoreFlags();
    const data = Buffer.concat([Buffer.from(headerOf(loaded.buildId), 'latin1'), loaded.script.createCachedData()]);
    const beside = cacheFileOf(file, loaded.family);
    if (writeAtomically(beside, data)) return beside;
    const user = userCacheFileOf(file, loaded.family, loaded.buildId);
    if (user && writeAtomically(user, data)) {
      removeOtherBuilds(user, loaded.buildId);
      return user;
    }
  } catch {
    // Best-effort: a command never fails for its cache.
  }
  return undefined;
}

module.exports = { loadWithCodeCache, writeCodeCache, cacheFileOf, familyOf, BUILD_ID_PREFIX, BUILD_ID_LENGTH, PREWRAPPED_HEAD, PREWRAPPED_TAIL };
