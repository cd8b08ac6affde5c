#!/bin/sh
':' //; case " ${NODE_OPTIONS-} " in *' --use-openssl-ca '*|*' --use_openssl_ca '*|*' --use-system-ca '*|*' --use_system_ca '*) ;; *) if [ -n "${NODE_EXTRA_CA_CERTS-}" ]; then export TSBUILD_NODE_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"; unset NODE_EXTRA_CA_CERTS; fi ;; esac
':' //; exec node "$0" "$@"
'use strict';
// The lines above are sh, and JavaScript that does nothing: run as a program (`tsbuild`, a link to this
// file), sh starts node on this file without NODE_EXTRA_CA_CERTS. With that variable set, Node 20 loads its
// ~140 bundled root certificates and the named file into a certificate store as it starts, before any of
// our code (nodejs/node#40524): 40 to 60 ms of every command on a machine whose site CA is named there,
// though most commands make no TLS connection. The variable is moved to TSBUILD_NODE_EXTRA_CA_CERTS;
// cli/extra-ca-certs.ts puts it back for the programs tsbuild starts and trusts the file from the first
// fetch on, as Node would have. With NODE_OPTIONS choosing OpenSSL's store instead of the bundled one,
// nothing moves. `node tsbuild.js` runs this file as before.
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

/** The bundle through its code cache (bin/code-cache.js), else the compiled modules. */
const codeCache = bundleIsCurrent() ? require('./code-cache.js') : undefined;
const loaded = codeCache ? codeCache.loadWithCodeCache(bundle, process.argv.slice(2)) : undefined;
const cli = loaded ? loaded.exports : require(path.join(dist, 'cli', 'main.js'));
cli.takeMovedExtraCaCerts(process.env);

// Keep V8's young generation at its first semi-space instead of letting it grow to 16 MB: garbage then
// reaches old space less, and a COPY of 30,000 small files peaked at 134 MB RSS instead of 163 MB for the
// same CPU time (README, Performance). V8 reads this flag whenever the new space would grow. Set only
// now: any flag change alters V8's flag hash, and every code cache checked after it is rejected, Node's
// own for its built-in modules (~10 ms more per command) and the bundle's. So a code cache is written
// with both flags back at V8's defaults (restoreV8Flags). The old generation may grow by half before a
// mark-compact, not up to 4× (V8's factor for a fast mutator, read whenever it sets the next limit): in a
// 100,000-file COPY the commit promotes ~0.6 MB per scavenge, and with 23 MB live the heap reached 62 MB
// before the build ended.
const v8 = require('node:v8');
v8.setFlagsFromString('--semi-space-growth-factor=1');
v8.setFlagsFromString('--heap-growing-percent=50');
function restoreV8Flags() {
  v8.setFlagsFromString('--semi-space-growth-factor=2');
  v8.setFlagsFromString('--heap-growing-percent=0');
}

/**
 * Resolves once what was written to `stream` has left the process. A pipe takes what fits (64 KiB) and
 * Node queues the rest: process.exit() would drop it (`tsbuild logs C | less` lost most of a long log).
 * A reader that went away (EPIPE) ends the wait too.
 */
function drained(stream) {
  return new Promise((resolve) => {
    if (!stream.writableLength || stream.destroyed) return resolve();
    stream.once('error', () => resolve());
    stream.write('', () => resolve());
  });
}

// A command is done when main() settles: everything it started has been awaited, and once stdout and
// stderr drained (nothing to wait for with files and terminals), process.exit() skips tearing down the
// heap and the worker threads one by one, which took 20 to 30 ms of a short command (README, Performance).
const exitWhenDrained = (code) => Promise.all([drained(process.stdout), drained(process.stderr)]).then(() => process.exit(code));
cli.main(process.argv.slice(2)).then(
  (code) => {
    // After a command's first success with this bundle, its code cache (bin/code-cache.js), so the next
    // one skips compiling what this one compiled; scripts/bundle.js runs `--version` with
    // TSBUILD_WRITE_CODE_CACHE=1 to write the shipped one.
    if (loaded && ((code === 0 && loaded.stale) || process.env.TSBUILD_WRITE_CODE_CACHE === '1')) codeCache.writeCodeCache(bundle, loaded, restoreV8Flags);
    return exitWhenDrained(code);
  },
  (err) => {
    process.stderr.write(`tsbuild: internal error: ${err && err.message ? err.message : err}\n`);
    return exitWhenDrained(125);
  },
);
