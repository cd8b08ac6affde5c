// The metadata of one file in the build context, taken from lstat (symlinks are never followed here).
import type * as fs from 'node:fs';

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'char' | 'block';

export interface ContextEntry {
  /** Path relative to the context root with '/' separators; '' is the root itself. */
  path: string;
  /** Absolute host path. */
  absPath: string;
  type: EntryType;
  /** Permission bits including setuid, setgid and sticky (st_mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Size in bytes for regular files (0 for others, whatever lstat says for them). */
  size: number;
  nlink: number;
  dev: bigint;
  ino: bigint;
  /** Device number of char and block devices (0 otherwise). */
  rdev: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  /** The symlink's target, exactly as stored. */
  linkTarget?: string;
}

const S_IFMT = 0o170000;
const TYPES: ReadonlyMap<number, EntryType> = new Map([
  [0o100000, 'file'],
  [0o040000, 'dir'],
  [0o120000, 'symlink'],
  [0o010000, 'fifo'],
  [0o140000, 'socket'],
  [0o020000, 'char'],
  [0o060000, 'block'],
]);

export function entryType(mode: number): EntryType {
  return TYPES.get(mode & S_IFMT) ?? 'file';
}

export function toEntry(rel: string, absPath: string, st: fs.BigIntStats, linkTarget?: string): ContextEntry {
  const mode = Number(st.mode);
  const type = entryType(mode);
  const entry: ContextEntry = {
    path: rel,
    absPath,
    type,
    mode: mode & 0o7777,
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: type === 'file' ? Number(st.size) : 0,
    nlink: Number(st.nlink),
    dev: st.dev,
    ino: st.ino,
    rdev: type === 'char' || type === 'block' ? Number(st.rdev) : 0,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
  };
  if (linkTarget !== undefined) entry.linkTarget = linkTarget;
  return entry;
}
