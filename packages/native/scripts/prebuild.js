#!/usr/bin/env node
// Builds the binaries shipped inside the package: prebuilds/linux-<arch>/{tsbuild_native.node,
// tsbuild-init,tsbuild-userns} for x64 and arm64 (glibc), so that installing needs no compiler on those platforms.
//
// Each arch is built by node-gyp in a clean temporary copy of binding.gyp and cc/, so the local
// build/ (what `npm ci` compiled for development) is never touched. An arch other than the host's is
// cross-compiled with Debian's cross toolchain (g++-aarch64-linux-gnu, g++-x86-64-linux-gnu). An arch
// whose binaries were built from the current sources is skipped: the digest of the sources is kept
// next to them (prebuilds/linux-<arch>/.sources, not shipped).
//
//   node scripts/prebuild.js            # both arches (npm run prebuild; also run by prepack)
//   node scripts/prebuild.js arm64      # one arch
//   node scripts/prebuild.js --force    # rebuild even when up to date
'use strict';
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ELF_MACHINES, elfMachine } = require('./elf');

const pkgDir = path.resolve(__dirname, '..');
const OUTPUTS = ['tsbuild_native.node', 'tsbuild_mapfile.node', 'tsbuild-init', 'tsbuild-userns'];
const TOOLCHAINS = {
  x64: { triple: 'x86_64-linux-gnu', apt: 'g++-x86-64-linux-gnu' },
  arm64: { triple: 'aarch64-linux-gnu', apt: 'g++-aarch64-linux-gnu' },
};

function sourceFiles() {
  const files = ['binding.gyp'];
  const walk = (rel) => {
    for (const entry of fs.readdirSync(path.join(pkgDir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const child = path.posix.join(rel, entry.name);
      if (entry.isDirectory()) walk(child);
      else files.push(child);
    }
  };
  walk('cc');
  return files;
}

function nodeAddonApiDir() {
  return path.dirname(require.resolve('node-addon-api/package.json', { paths: [pkgDir] }));
}

/** What the binaries of one arch are a function of: the sources, node-addon-api, the arch. */
function sourcesDigest(arch) {
  const hash = crypto.createHash('sha256');
  hash.update(`arch=${arch}\nnode-addon-api=${require(path.join(nodeAddonApiDir(), 'package.json')).version}\n`);
  for (const file of sourceFiles()) {
    hash.update(`${file}\0`);
    hash.update(fs.readFileSync(path.join(pkgDir, file)));
  }
  return hash.digest('hex');
}

function onPath(command) {
  return (process.env.PATH || '').split(':').some((dir) => {
    try {
      fs.accessSync(path.join(dir, command), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** CC/CXX for an arch: the host's compiler for the host arch, the cross toolchain for the other. */
function compilerEnv(arch) {
  if (arch === process.arch) return {};
  const { triple, apt } = TOOLCHAINS[arch];
  const cxx = `${triple}-g++`;
  if (!onPath(cxx)) throw new Error(`prebuild ${arch}: the cross compiler ${cxx} is not installed (apt-get install ${apt})`);
  return { CC: `${triple}-gcc`, CXX: cxx, LINK: cxx, AR: `${triple}-ar` };
}

function nodeGyp() {
  // npm passes its bundled node-gyp to scripts; outside npm, the devDependency.
  return process.env.npm_config_node_gyp || require.resolve('node-gyp/bin/node-gyp.js', { paths: [pkgDir] });
}

/**
 * Where node-gyp finds Node's headers: npm's nodedir setting, else the running Node's own prefix when
 * it has them (a distro Node), so no header download is needed.
 */
function nodeDirArgs() {
  if (process.env.npm_config_nodedir) return [`--nodedir=${process.env.npm_config_nodedir}`];
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

function buildArch(arch, force) {
  const outDir = path.join(pkgDir, 'prebuilds', `linux-${arch}`);
  const stamp = path.join(outDir, '.sources');
  const digest = sourcesDigest(arch);
  const upToDate = OUTPUTS.every((f) => fs.existsSync(path.join(outDir, f))) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === digest;
  if (upToDate && !force) {
    process.stderr.write(`prebuild ${arch}: up to date\n`);
    return;
  }
  const env = { ...process.env, ...compilerEnv(arch) };
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `tsbuild-prebuild-${arch}-`));
  try {
    fs.copyFileSync(path.join(pkgDir, 'binding.gyp'), path.join(work, 'binding.gyp'));
    fs.cpSync(path.join(pkgDir, 'cc'), path.join(work, 'cc'), { recursive: true });
    // binding.gyp finds node-addon-api with require() from the build directory.
    fs.mkdirSync(path.join(work, 'node_modules'));
    fs.symlinkSync(nodeAddonApiDir(), path.join(work, 'node_modules', 'node-addon-api'));
    process.stderr.write(`prebuild ${arch}: compiling${env.CXX ? ` with ${env.CXX}` : ''}\n`);
    execFileSync(process.execPath, [nodeGyp(), 'rebuild', `--arch=${arch}`, '--loglevel=error', ...nodeDirArgs()], { cwd: work, env, stdio: ['ignore', 'ignore', 'inherit'] });
    fs.mkdirSync(outDir, { recursive: true });
    for (const file of OUTPUTS) {
      const built = path.join(work, 'build', 'Release', file);
      const machine = elfMachine(built);
      if (machine !== ELF_MACHINES[arch]) throw new Error(`prebuild ${arch}: ${file} was built for ELF machine ${machine}, not ${arch}`);
      fs.copyFileSync(built, path.join(outDir, file));
      fs.chmodSync(path.join(outDir, file), 0o755);
    }
    fs.writeFileSync(stamp, digest);
    process.stderr.write(`prebuild ${arch}: ${path.relative(pkgDir, outDir)}\n`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function main(argv) {
  const force = argv.includes('--force');
  const arches = argv.filter((a) => a !== '--force');
  for (const arch of arches.length > 0 ? arches : Object.keys(TOOLCHAINS)) {
    if (!TOOLCHAINS[arch]) throw new Error(`prebuild: unknown arch "${arch}" (expected ${Object.keys(TOOLCHAINS).join(' or ')})`);
    buildArch(arch, force);
  }
}

try {
  main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  process.exitCode = 1;
}
