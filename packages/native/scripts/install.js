#!/usr/bin/env node
// The package's install script (npm runs it at install; see README "Installing"): keeps the prebuilt
// binary for this platform when it loads here, otherwise compiles the addon with node-gyp and, when
// that fails too, says why the prebuilt binary could not be used and what the compile needs.
//
// A source checkout (src/ present: the repository's workspace) always compiles, so edits to cc/ are
// never shadowed by an old prebuilt binary; so does npm_config_build_from_source=true
// (`npm install --build-from-source`).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { ELF_MACHINES, archOfMachine, elfMachine } = require('./elf');

const pkgDir = path.resolve(__dirname, '..');
const platformDir = `${process.platform}-${process.arch}`;

function say(line) {
  process.stderr.write(`@tsbuild/native: ${line}\n`);
}

/** Why the prebuilt binaries cannot be used here, or null when they load. */
function prebuiltProblem() {
  if (process.platform !== 'linux') return `tsbuild runs on Linux only, not ${process.platform}`;
  const dir = path.join(pkgDir, 'prebuilds', platformDir);
  const addon = path.join(dir, 'tsbuild_native.node');
  const helpers = ['tsbuild_mapfile.node', 'tsbuild-init', 'tsbuild-userns'].map((name) => path.join(dir, name));
  for (const file of [addon, ...helpers]) {
    if (!fs.existsSync(file)) return `no prebuilt binary for ${platformDir} (${path.relative(pkgDir, file)} is missing)`;
    const machine = elfMachine(file);
    if (machine !== ELF_MACHINES[process.arch]) return `${path.relative(pkgDir, file)} is built for ${archOfMachine(machine)}, not ${process.arch}`;
  }
  const header = process.report.getReport().header;
  if (!header.glibcVersionRuntime) return 'the prebuilt binaries need glibc and this system has another C library (musl?)';
  try {
    process.dlopen({ exports: {} }, addon);
  } catch (err) {
    return `the prebuilt ${path.relative(pkgDir, addon)} does not load: ${err.message}`;
  }
  return null;
}

/** node-gyp as npm provides it to scripts (npm ships one), else the one on PATH. */
function nodeGypCommand() {
  const bundled = process.env.npm_config_node_gyp;
  return bundled ? [process.execPath, [bundled, 'rebuild']] : ['node-gyp', ['rebuild']];
}

function compile(reason, announce = true) {
  if (announce) say(`${reason}; compiling from source with node-gyp (needs python3, make and g++)`);
  const [command, args] = nodeGypCommand();
  const result = spawnSync(command, args, { cwd: pkgDir, stdio: 'inherit' });
  if (result.status === 0) return 0;
  const failure = result.error ? result.error.message : `node-gyp exited with ${result.status ?? result.signal}`;
  say(`cannot install: ${reason}, and compiling failed (${failure}).`);
  say('install python3, make and g++ (Debian: apt-get install python3 make g++) and run "npm rebuild @tsbuild/native"');
  return 1;
}

function main() {
  if (process.env.npm_config_build_from_source === 'true') return compile('--build-from-source was given');
  if (fs.existsSync(path.join(pkgDir, 'src'))) return compile('a source checkout', false);
  const problem = prebuiltProblem();
  if (problem === null) return 0;
  return compile(problem);
}

process.exitCode = main();
