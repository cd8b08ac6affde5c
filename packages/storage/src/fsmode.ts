// Files and directories whose mode must not depend on the caller's umask: anything that ends up in a
// layer or is shown to a container (mount sources, scratch views, diff roots). open/mkdir apply the
// process umask, so the mode is set again with chmod after creation.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { mkdirp } from './atomic';

/** Writes `data` to `file` (created or truncated) and gives it exactly `mode`. */
export function writeFileExactMode(file: string, data: string | Uint8Array, mode: number): void {
  fs.writeFileSync(file, data, { mode });
  fs.chmodSync(file, mode);
}

export async function writeFileExactModeAsync(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  await fsp.writeFile(file, data, { mode });
  await fsp.chmod(file, mode);
}

/** mkdir with exactly `mode`; false when the directory already existed (its mode is left alone). */
export function mkdirExactMode(dir: string, mode: number): boolean {
  try {
    fs.mkdirSync(dir, { mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  fs.chmodSync(dir, mode);
  return true;
}

export async function mkdirExactModeAsync(dir: string, mode: number): Promise<boolean> {
  try {
    await fsp.mkdir(dir, { mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  await fsp.chmod(dir, mode);
  return true;
}

/**
 * mkdir -p where every directory it creates gets exactly `mode` (as Docker makes implied parents
 * 0755). Existing directories are left alone. Returns the first directory it created, if any.
 */
export async function mkdirpExactMode(dir: string, mode: number): Promise<string | undefined> {
  const first = await mkdirp(dir, mode); // never Node's recursive mkdir (see atomic.ts)
  if (first === undefined) return undefined;
  // Every path from `first` down to `dir` was created by this call.
  let p = dir;
  for (;;) {
    await fsp.chmod(p, mode);
    if (p === first) break;
    const parent = p.slice(0, p.lastIndexOf('/')) || '/';
    if (parent === p) break;
    p = parent;
  }
  return first;
}
