// A full copy of a directory tree keeping everything a layer carries: owners (any uid), modes with
// setuid/sticky bits, times, xattrs (security.capability included), hard links, symlinks, devices,
// fifos and sockets. Used by vfs to start a layer from its parent. Data is cloned when the filesystem
// can (FICLONE), else copied in the kernel (copy_file_range).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as native from '@tsbuild/native';
import { copyXattrs } from './xattrs';

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
    fs.lchownSync(dst, Number(st.uid), Number(st.gid));
    if (!st.isSymbolicLink()) fs.chmodSync(dst, Number(st.mode & 0o7777n));
    copyXattrs(src, dst);
  }

  copy(src: string, dst: string, st: Stats): void {
    if (st.isDirectory()) {
      fs.mkdirSync(dst, { mode: 0o700 });
      for (const name of fs.readdirSync(src)) {
        const s = path.join(src, name);
        this.copy(s, path.join(dst, name), fs.lstatSync(s, { bigint: true }));
      }
      this.attrs(src, dst, st);
      this.dirs.push({ dst, st }); // times once nothing more is created inside
      return;
    }
    if (st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.links.get(key);
      if (first !== undefined) {
        fs.linkSync(first, dst);
        return;
      }
      this.links.set(key, dst);
    }
    if (st.isFile()) {
      fs.copyFileSync(src, dst, fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE);
    } else if (st.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(src, { encoding: 'buffer' }), dst);
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const type = st.isCharacterDevice() ? 'char' : 'block';
      native.mknod(dst, { type, mode: 0o600, major: devMajor(st.rdev), minor: devMinor(st.rdev) });
    } else if (st.isFIFO()) {
      native.mknod(dst, { type: 'fifo', mode: 0o600 });
    } else if (st.isSocket()) {
      native.mknod(dst, { type: 'socket', mode: 0o600 });
    } else {
      throw new Error(`cannot copy ${src}: unknown file type`);
    }
    this.attrs(src, dst, st);
    fs.lutimesSync(dst, seconds(st.atimeNs), seconds(st.mtimeNs));
  }

  finish(): void {
    for (const { dst, st } of this.dirs) fs.lutimesSync(dst, seconds(st.atimeNs), seconds(st.mtimeNs));
  }
}

/** Copies the tree at `from` to `to` (which must not exist). */
export function copyTree(from: string, to: string): void {
  const c = new TreeCopier();
  c.copy(from, to, fs.lstatSync(from, { bigint: true }));
  c.finish();
}
