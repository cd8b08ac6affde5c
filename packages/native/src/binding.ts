// Loads the addon once. A local build (build/Release: a development checkout, or an install that
// compiled from source) wins over the prebuilt binaries shipped for this platform
// (prebuilds/linux-x64, prebuilds/linux-arm64). When none loads, the error names every place tried,
// why each failed, and how to compile.
import * as fs from 'node:fs';
import * as path from 'node:path';

const packageDir = path.join(__dirname, '..');
const ADDON_FILE = 'tsbuild_native.node';
const INIT_FILE = 'tsbuild-init';

/** The binaries in use: the addon and the static init built with it (same directory, same arch). */
export interface NativeBinaries {
  /** The loaded `tsbuild_native.node`. */
  addon: string;
  /** The static `tsbuild-init` run as PID 1 in containers. */
  init: string;
  /** `local-build` for build/Release (node-gyp), `prebuilt` for the binary shipped in the package. */
  origin: 'local-build' | 'prebuilt';
}

interface Candidate {
  dir: string;
  origin: NativeBinaries['origin'];
}

function candidates(): Candidate[] {
  return [
    { dir: path.join(packageDir, 'build', 'Release'), origin: 'local-build' },
    { dir: path.join(packageDir, 'prebuilds', `${process.platform}-${process.arch}`), origin: 'prebuilt' },
  ];
}

/** Why a prebuilt binary cannot serve this system, when the reason is knowable up front. */
function platformMismatch(): string | undefined {
  if (process.platform !== 'linux') return `tsbuild runs on Linux only, not ${process.platform}`;
  if (process.arch !== 'x64' && process.arch !== 'arm64') return `no prebuilt binary for ${process.arch}`;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  if (!header?.glibcVersionRuntime) return 'the prebuilt binaries need glibc and this system has another C library (musl?)';
  return undefined;
}

function load(): { exports: Record<string, unknown>; binaries: NativeBinaries } {
  const failures: string[] = [];
  for (const { dir, origin } of candidates()) {
    const addon = path.join(dir, ADDON_FILE);
    if (!fs.existsSync(addon)) {
      failures.push(`${addon}: not found`);
      continue;
    }
    const mod = { exports: {} as Record<string, unknown> };
    try {
      process.dlopen(mod, addon);
    } catch (err) {
      failures.push(`${addon}: ${err instanceof Error ? err.message : String(err)}`);
      continue;
    }
    return { exports: mod.exports, binaries: { addon, init: path.join(dir, INIT_FILE), origin } };
  }
  const mismatch = platformMismatch();
  throw new Error(
    `tsbuild: cannot load the native addon (${failures.join('; ')})` +
      (mismatch ? `; ${mismatch}` : '') +
      `; compile it with "npm rebuild @tsbuild/native" (needs python3, make and g++)`,
  );
}

const loaded = load();

export const binding: any = loaded.exports;

/** Where the addon was loaded from and the init binary that goes with it. */
export const nativeBinaries: Readonly<NativeBinaries> = Object.freeze(loaded.binaries);
