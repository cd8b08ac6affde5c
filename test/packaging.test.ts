// The packages as an npm user gets them: `npm pack` of the three workspaces, installed offline into an
// empty project, the library example compiled against them (strict, nodenext, an ES module project)
// and run as root: it builds and runs an image and cancels a second build mid-RUN, which must leave
// no mount, no work layer, no layer and no tag behind.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxTar } from '../fixtures/busybox';
import { REPO } from './helpers/roots';

const requireHere = createRequire(__filename);
const { ELF_MACHINES, elfMachine } = requireHere('../packages/native/scripts/elf.js') as {
  ELF_MACHINES: Record<string, number>;
  elfMachine(file: string): number | null;
};

const PACKAGES = ['native', 'storage', 'builder'] as const;
const HOST = `linux-${process.arch}`;
/** The other arch with a prebuilt binary: its files stand in for a binary built for the wrong arch. */
const OTHER_ARCH = process.arch === 'arm64' ? 'x64' : 'arm64';
const TSC = path.join(REPO, 'node_modules', '.bin', 'tsc');
const EXAMPLE = path.join(REPO, 'examples', 'library', 'build-and-run.ts');

let top: string;
let app: string;
const tarballs: Record<string, string> = {};

function run(command: string, args: string[], opts: SpawnSyncOptions = {}): { stdout: string; stderr: string } {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited with ${r.status ?? r.signal}: ${String(r.stderr).slice(-2000)}`);
  }
  return { stdout: String(r.stdout), stderr: String(r.stderr) };
}

/**
 * The packages' runtime dependencies from outside the repo, as registry tarball URLs at the versions
 * of the root lockfile: npm finds those in its cache by URL, so the install needs no registry
 * metadata (which `npm ci` never cached).
 */
function externalDependencies(): string[] {
  const lock = JSON.parse(fs.readFileSync(path.join(REPO, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version: string }>;
  };
  const registry = run('npm', ['config', 'get', 'registry'], { cwd: REPO }).stdout.trim().replace(/\/$/, '');
  const names = new Set<string>();
  for (const p of PACKAGES) {
    const manifest = JSON.parse(fs.readFileSync(path.join(REPO, 'packages', p, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    for (const name of Object.keys(manifest.dependencies ?? {})) if (!name.startsWith('@tsbuild/')) names.add(name);
  }
  return [...names].sort().map((name) => {
    const version = lock.packages[`node_modules/${name}`]?.version;
    if (!version) throw new Error(`${name} is not in the root package-lock.json`);
    return `${registry}/${name}/-/${name.split('/').pop()}-${version}.tgz`;
  });
}

/** `npm install --offline`; a cache that lacks a dependency's tarball may fill it from the registry once. */
function installOffline(specs: string[]): void {
  const args = ['install', '--no-audit', '--no-fund', '--no-save', ...specs];
  const offline = spawnSync('npm', ['--offline', ...args], { cwd: app, encoding: 'utf8' });
  if (offline.status === 0) return;
  if (!/ENOTCACHED/.test(offline.stderr)) throw new Error(`npm install --offline failed: ${offline.stderr.slice(-2000)}`);
  run('npm', ['--prefer-offline', ...args], { cwd: app });
}

function tarList(tarball: string): string[] {
  return run('tar', ['-tzf', tarball]).stdout.split('\n').filter(Boolean).map((n) => n.replace(/^package\//, ''));
}

beforeAll(() => {
  top = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-packaging-'));
  const packDir = path.join(top, 'tarballs');
  fs.mkdirSync(packDir);
  // prepack compiles the TypeScript and the prebuilt binaries (skipped when they are up to date).
  const workspaces = PACKAGES.flatMap((p) => ['-w', `packages/${p}`]);
  const out = run('npm', ['pack', '--json', ...workspaces, '--pack-destination', packDir], { cwd: REPO }).stdout;
  const packed = JSON.parse(out.slice(out.indexOf('['))) as { name: string; filename: string }[];
  for (const p of PACKAGES) tarballs[p] = path.join(packDir, packed.find((info) => info.name === `@tsbuild/${p}`)!.filename);
  app = path.join(top, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  installOffline([...PACKAGES.map((p) => tarballs[p]!), ...externalDependencies()]);
}, 600_000);

afterAll(() => {
  if (top) fs.rmSync(top, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('ships dist JS and types, the prebuilt binaries and the fallback build sources, nothing else', () => {
    const native = tarList(tarballs.native!);
    expect(native.filter((n) => n.startsWith('prebuilds/')).sort()).toEqual([
      'prebuilds/linux-arm64/tsbuild-init',
      'prebuilds/linux-arm64/tsbuild-userns',
      'prebuilds/linux-arm64/tsbuild_mapfile.node',
      'prebuilds/linux-arm64/tsbuild_native.node',
      'prebuilds/linux-x64/tsbuild-init',
      'prebuilds/linux-x64/tsbuild-userns',
      'prebuilds/linux-x64/tsbuild_mapfile.node',
      'prebuilds/linux-x64/tsbuild_native.node',
    ]);
    expect(native).toEqual(expect.arrayContaining(['binding.gyp', 'cc/addon.cc', 'cc/init/init.c', 'cc/userns/userns.c', 'scripts/install.js', 'dist/index.d.ts', 'README.md']));
    for (const p of PACKAGES) {
      const files = tarList(tarballs[p]!);
      const leftovers = files.filter((n) => /^(build|src|test)\/|\.(o|map|tsbuildinfo|mk)$|\/\.sources$/.test(n));
      expect(leftovers, p).toEqual([]);
      expect(files, p).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts']));
    }
  });

  it('has prebuilt binaries for the arch they are named after', () => {
    const dir = path.join(app, 'node_modules', '@tsbuild', 'native', 'prebuilds');
    for (const arch of ['x64', 'arm64']) {
      for (const file of ['tsbuild_native.node', 'tsbuild_mapfile.node', 'tsbuild-init', 'tsbuild-userns']) {
        expect(elfMachine(path.join(dir, `linux-${arch}`, file)), `${arch}/${file}`).toBe(ELF_MACHINES[arch]);
      }
    }
  });
});

describe('installed from the tarballs', () => {
  it('loads the prebuilt addon without compiling, and exposes only the exported entry points', () => {
    expect(fs.existsSync(path.join(app, 'node_modules', '@tsbuild', 'native', 'build'))).toBe(false);
    const script = `
      const native = await import('@tsbuild/native');
      const runtime = await import('@tsbuild/storage/runtime');
      const deep = await import('@tsbuild/storage/dist/store.js').then(() => 'imported', (e) => e.code);
      console.log(JSON.stringify({ origin: native.nativeBinaries.origin, runContainer: typeof runtime.runContainer, deep }));`;
    const out = run(process.execPath, ['--input-type=module', '-e', script], { cwd: app }).stdout;
    expect(JSON.parse(out)).toEqual({ origin: 'prebuilt', runContainer: 'function', deep: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });
    expect(run(path.join(app, 'node_modules', '.bin', 'tsbuild'), ['version'], { cwd: app }).stdout).toMatch(/^tsbuild 0\.1\.0\n/);
  });

  it('runs the CLI from its one-file bundle through its code cache, finding the addon in the native package', () => {
    expect(tarList(tarballs.builder!)).toEqual(expect.arrayContaining(['dist/cli/bundle.js', 'dist/cli/bundle.js.cache']));
    // Preloaded: lists at exit the JavaScript files of ours that the process loaded, and whether V8
    // took the code cache offered for each script compiled through node:vm (bin/code-cache.js).
    const preload = path.join(top, 'list-loaded.cjs');
    fs.writeFileSync(preload, `
      const vm = require('node:vm');
      const scripts = [];
      vm.Script = class extends vm.Script {
        constructor(source, options) { super(source, options); scripts.push({ file: options.filename, offered: Boolean(options.cachedData), rejected: this.cachedDataRejected }); }
      };
      const mapped = () => [...new Set(require('node:fs').readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.split(/\\s+/)[5] ?? '').filter((f) => f.includes('@tsbuild/builder/dist')))];
      process.on('exit', () => process.stderr.write(JSON.stringify({ loaded: Object.keys(require.cache).filter((f) => f.includes('@tsbuild')), scripts, mapped: mapped() })));
    `);
    // `images` opens a store: the driver probe needs the addon.
    const root = path.join(top, 'bundle-root');
    const result = run(path.join(app, 'node_modules', '.bin', 'tsbuild'), ['--root', root, 'images'], { cwd: app, env: { ...process.env, NODE_OPTIONS: `--require ${preload}` } });
    expect(result.stdout).toMatch(/^REPOSITORY\s+TAG/);
    const report = JSON.parse(result.stderr) as { loaded: string[]; scripts: { file: string; offered: boolean; rejected: boolean }[]; mapped: string[] };
    const ours = (f: string) => path.relative(path.join(app, 'node_modules'), f);
    expect(report.loaded.map(ours)).toEqual(['@tsbuild/builder/bin/tsbuild.js', '@tsbuild/builder/bin/code-cache.js', '@tsbuild/builder/dist/cli/bundle.js']);
    expect(report.scripts.map((s) => ({ ...s, file: ours(s.file) }))).toEqual([{ file: '@tsbuild/builder/dist/cli/bundle.js', offered: true, rejected: false }]);
    // The bundle is read through the prebuilt tsbuild_mapfile.node: mapped, not copied (its cache too,
    // until the collector frees the buffer).
    expect(report.mapped.map(ours)).toEqual(expect.arrayContaining(['@tsbuild/builder/dist/cli/bundle.js']));
  });

  it('compiles the library example under strict + nodenext, builds, runs and cancels without leftovers', () => {
    fs.copyFileSync(EXAMPLE, path.join(app, 'build-and-run.ts'));
    // The runtime's subpath export carries its types too.
    fs.writeFileSync(
      path.join(app, 'runtime-types.ts'),
      "import { runContainer, type RunOptions } from '@tsbuild/storage/runtime';\nexport const start: (opts: RunOptions) => ReturnType<typeof runContainer> = runContainer;\n",
    );
    fs.writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          outDir: 'out',
          types: ['node'],
          // The project has no @types/node of its own: the repository's.
          typeRoots: [path.join(REPO, 'node_modules', '@types')],
        },
        files: ['build-and-run.ts', 'runtime-types.ts'],
      }),
    );
    run(TSC, ['-p', app]);

    const root = path.join(top, 'root');
    const base = makeBusyboxTar(path.join(top, 'busybox.tar'));
    const out = run(process.execPath, [path.join(app, 'out', 'build-and-run.js'), root, base], { cwd: app }).stdout;
    const result = JSON.parse(out) as { tags: string[]; steps: string[]; run: { exitCode: number; stdout: string }; canceled: string };
    expect(result.tags).toEqual(['example:latest']);
    expect(result.steps.map((name) => name.replace(/^\[[^\]]*\] /, ''))).toEqual(['FROM base:latest', 'RUN echo built by tsbuild > /greeting']);
    expect(result.run).toEqual({ exitCode: 0, stdout: 'built by tsbuild\n' });
    expect(result.canceled).toBe('build canceled');

    // Looked at on disk (opening a Store would repair what a leak left): nothing of the canceled build.
    const mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    expect(mountinfo.split('\n').filter((l) => l.includes(root))).toEqual([]);
    const committed = fs.readdirSync(path.join(root, 'layers', 'sha256'));
    expect(committed).toHaveLength(2); // the base and the example's RUN
    expect(fs.readdirSync(path.join(root, 'overlay2')).filter((n) => n !== 'l')).toHaveLength(2);
    expect(fs.readdirSync(path.join(root, 'layers', 'mounts'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'layers', 'tmp'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'tmp'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'leases'))).toEqual([]);
    const index = JSON.parse(fs.readFileSync(path.join(root, 'oci', 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
    expect(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']).sort()).toEqual(['base:latest', 'example:latest']);
  });

  it('explains why the prebuilt binary cannot be used and what compiling needs', () => {
    // A copy of the installed package whose binaries for this arch are the other arch's.
    const copy = path.join(top, 'native-wrong-arch');
    fs.cpSync(path.join(app, 'node_modules', '@tsbuild', 'native'), copy, { recursive: true });
    for (const file of ['tsbuild_native.node', 'tsbuild-init']) {
      fs.copyFileSync(path.join(copy, 'prebuilds', `linux-${OTHER_ARCH}`, file), path.join(copy, 'prebuilds', HOST, file));
    }
    const wrongArch = `prebuilds/${HOST}/tsbuild_native.node is built for ${OTHER_ARCH}, not ${process.arch}`;
    const load = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(copy)})`], { encoding: 'utf8' });
    expect(load.status).not.toBe(0);
    expect(load.stderr).toContain(`tsbuild: cannot load the native addon (${path.join(copy, 'build', 'Release', 'tsbuild_native.node')}: not found; ${path.join(copy, 'prebuilds', HOST, 'tsbuild_native.node')}: `);
    expect(load.stderr).toContain('compile it with "npm rebuild @tsbuild/native" (needs python3, make and g++)');

    // The install script falls back to node-gyp; with a compiler that does not exist, it says so.
    const install = spawnSync(process.execPath, [path.join(copy, 'scripts', 'install.js')], {
      cwd: copy,
      encoding: 'utf8',
      env: { ...process.env, CC: '/nonexistent/cc', CXX: '/nonexistent/c++', npm_config_node_gyp: requireHere.resolve('node-gyp/bin/node-gyp.js', { paths: [REPO] }) },
    });
    expect(install.status).toBe(1);
    expect(install.stderr).toContain(`@tsbuild/native: ${wrongArch}; compiling from source with node-gyp`);
    expect(install.stderr).toContain(`@tsbuild/native: cannot install: ${wrongArch}, and compiling failed (node-gyp exited with 1).`);
    expect(install.stderr).toContain('apt-get install python3 make g++');
  });
});
