// A full copy of a directory tree keeping everything a layer carries: owners (any uid), modes with
// setuid/sticky bits, times, xattrs (security.capability included), hard links, symlinks, devices,
// fifos and sockets. Used by vfs to start a layer from its parent. Data is cloned when the filesystem
// can (FICLONE), else copied in the kernel (copy_file_range).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as native from '@tsbuild/native';
import { copyXattrs } from '../archive/xattrs';
import { decodeName, fsPath } from '../names';
import { randomBytes } from '@tsbuild/native';

type Stats = fs.BigIntStats;

function devMajor(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n));
}
function devMinor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n));
}

function seconds(ns: bigint): number {
  return Number(ns / 1_000_000_000n) + Number((ns % 1_000_000_000n) / 1000n) / 1e6;
}

class TreeCopier {
  /** dev:ino → the first copy of a multiply-linked inode. */
  private readonly links = new Map<string, string>();
  private readonly dirs: Array<{ dst: string; st: Stats }> = [];

  /** Owner, mode, xattrs, in the order that keeps them: chown clears setuid bits and capabilities. */
  private attrs(src: string, dst: string, st: Stats): void {
    fs.lchownSync(fsPath(dst), Number(st.uid), Number(st.gid));
    if (!st.isSymbolicLink()) fs.chmodSync(fsPath(dst), Number(st.mode & 0o7777n));
    copyXattrs(src, dst);
  }

  copy(src: string, dst: string, st: Stats): void {
    if (st.isDirectory()) {
      fs.mkdirSync(fsPath(dst), { mode: 0o700 });
      for (const name of fs.readdirSync(fsPath(src), { encoding: 'buffer' }).map(decodeName)) {
        const s = path.join(src, name);
        this.copy(s, path.join(dst, name), fs.lstatSync(fsPath(s), { bigint: true }));
      }
      this.attrs(src, dst, st);
      this.dirs.push({ dst, st }); // times once nothing more is created inside
      return;
    }
    if (st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.links.get(key);
      if (first !== undefined) {
        fs.linkSync(fsPath(first), fsPath(dst));
        return;
      }
      this.links.set(key, dst);
    }
    if (st.isFile()) {
      fs.copyFileSync(fsPath(src), fsPath(dst), fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE);
    } else if (st.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(fsPath(src), { encoding: 'buffer' }), fsPath(dst));
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const type = st.isCharacterDevice() ? 'char' : 'block';
      native.mknod(fsPath(dst), { type, mode: 0o600, major: devMajor(st.rdev), minor: devMinor(st.rdev) });
    } else if (st.isFIFO()) {
      native.mknod(fsPath(dst), { type: 'fifo', mode: 0o600 });
    } else if (st.isSocket()) {
      native.mknod(fsPath(dst), { type: 'socket', mode: 0o600 });
    } else {
      throw new Error(`cannot copy ${src}: unknown file type`);
    }
    this.attrs(src, dst, st);
    fs.lutimesSync(fsPath(dst), seconds(st.atimeNs), seconds(st.mtimeNs));
  }

  /**
   * Puts a copy of `src` at `dst` without following anything already there: directories meet
   * directories and are merged into; anything else is made under a temporary name in the same
   * directory and renamed over `dst`, which replaces a symlink (or a file, or a directory) rather
   * than writing through it.
   */
  merge(src: string, dst: string, st: Stats): void {
    const existing = fs.lstatSync(fsPath(dst), { throwIfNoEntry: false, bigint: true });
    if (st.isDirectory() && existing?.isDirectory()) {
      for (const name of fs.readdirSync(fsPath(src), { encoding: 'buffer' }).map(decodeName)) {
        const s = path.join(src, name);
        this.merge(s, path.join(dst, name), fs.lstatSync(fsPath(s), { bigint: true }));
      }
      this.attrs(src, dst, st);
      this.dirs.push({ dst, st });
      return;
    }
    const tmp = path.join(path.dirname(dst), `.tsbuild-tmp-${randomBytes(6).toString('hex')}`);
    try {
      this.copy(src, tmp, st);
      // rename replaces a non-directory with a non-directory; anything else goes first (rm never follows symlinks)
      if (existing && (existing.isDirectory() || st.isDirectory())) fs.rmSync(fsPath(dst), { recursive: true, force: true });
      fs.renameSync(fsPath(tmp), fsPath(dst));
    } catch (err) {
      fs.rmSync(fsPath(tmp), { recursive: true, force: true });
      throw err;
    }
    this.moved(tmp, dst);
  }

  /** Paths remembered under `from` (first links, directories awaiting their times) now live under `to`. */
  private moved(from: string, to: string): void {
    const rebase = (p: string) => (p === from ? to : p.startsWith(`${from}/`) ? to + p.slice(from.length) : p);
    for (const [key, p] of this.links) this.links.set(key, rebase(p));
    for (const d of this.dirs) d.dst = rebase(d.dst);
  }

  finish(): void {
    for (const { dst, st } of this.dirs) fs.lutimesSync(fsPath(dst), seconds(st.atimeNs), seconds(st.mtimeNs));
  }
}

/**
 * Copies the tree at `from` into the directory `to`, keeping what `to` holds that `from` does not, and
 * replacing, never following, what both hold (a symlink left in `to` is replaced, not written through).
 */
export function mergeTree(from: string, to: string): void {
  const c = new TreeCopier();
  c.merge(from, to, fs.lstatSync(fsPath(from), { bigint: true }));
  c.finish();
}

/** Copies the tree at `from` to `to` (which must not exist). */
export function copyTree(from: string, to: string): void {
  const c = new TreeCopier();
  c.copy(from, to, fs.lstatSync(fsPath(from), { bigint: true }));
  c.finish();
}
