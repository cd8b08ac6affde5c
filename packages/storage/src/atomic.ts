// Crash-safe file writes: stage in the same directory, fsync, rename over the target, fsync the
// directory. A crash leaves either the old file or the new one, never a torn one (plus, at worst, a
// `.tmp-*` file that the owner's start-up cleanup removes).
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from '@tsbuild/native';

export const TMP_PREFIX = '.tmp-';

/**
 * The missing directories of `dir`, outermost first, found with stat from `dir` up. An existing
 * non-directory on the way is ENOTDIR, as mkdir -p says.
 */
function missingDirs(dir: string, stat: (p: string) => fs.Stats | undefined): string[] {
  const missing: string[] = [];
  for (let p = path.resolve(dir); ; p = path.dirname(p)) {
    const st = stat(p);
    if (st) {
      if (!st.isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${p}'`), { code: 'ENOTDIR', syscall: 'mkdir', path: p });
      break;
    }
    missing.push(p);
    if (path.dirname(p) === p) break;
  }
  return missing.reverse();
}

function existsAsDir(p: string): boolean {
  return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() === true;
}

/**
 * mkdir -p, one mkdir per missing component. Node 20's `mkdir({ recursive: true })` spins forever on
 * some paths (under /proc: the parent exists, mkdir says ENOENT, it retries), so it is never used.
 * Returns the first directory created, like Node's (undefined when all existed).
 */
export function mkdirpSync(dir: string, mode = 0o755): string | undefined {
  const missing = missingDirs(dir, (p) => fs.statSync(p, { throwIfNoEntry: false }));
  for (const d of missing) {
    try {
      fs.mkdirSync(d, mode);
    } catch (err) {
      // created meanwhile by someone else: fine if it is a directory
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !existsAsDir(d)) throw err;
    }
  }
  return missing[0];
}

/** mkdirpSync with the mkdir calls awaited (the stat walk is a few inline calls). */
export async function mkdirp(dir: string, mode = 0o755): Promise<string | undefined> {
  const missing = missingDirs(dir, (p) => fs.statSync(p, { throwIfNoEntry: false }));
  for (const d of missing) {
    try {
      await fsp.mkdir(d, mode);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !existsAsDir(d)) throw err;
    }
  }
  return missing[0];
}

/** fsync a directory so that a rename or unlink inside it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A unique temporary name next to `target` (same directory, so rename is atomic). */
export function tmpSibling(target: string): string {
  return path.join(path.dirname(target), `${TMP_PREFIX}${path.basename(target)}-${randomBytes(6).toString('hex')}`);
}

/** Writes `data` to `file` atomically and durably. */
export async function writeFileAtomic(file: string, data: Buffer | string, mode = 0o644): Promise<void> {
  const tmp = tmpSibling(file);
  const fh = await fsp.open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(path.dirname(file));
}

/**
 * Writes `data` to `file` atomically (a reader sees the old file or the new one, never a torn one) but
 * not durably: no fsync. For records that mean nothing after a reboot (mount counts, a --rm
 * container's state): a killed process loses nothing, as the page cache outlives it.
 */
export function writeFileAtomicVolatileSync(file: string, data: Buffer | string, mode = 0o644): void {
  const tmp = tmpSibling(file);
  fs.writeFileSync(tmp, data, { mode, flag: 'wx' });
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * Moves `from` to `to` unless `to` exists (link + unlink: Node has no renameat2). Returns false,
 * leaving `from` in place, when `to` already exists. Files only.
 */
export async function renameNoReplace(from: string, to: string): Promise<boolean> {
  try {
    await fsp.link(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  await fsp.unlink(from);
  return true;
}
