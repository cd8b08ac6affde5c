// File-level syscalls Node lacks: mknod (device nodes, fifos, overlay whiteouts), binary-safe l*xattr,
// statfs with the filesystem's name, flock (sync and awaitable), pipe2 and pseudo-terminals.
import { binding } from './binding';
import type { MknodType } from './types';
import {
  checkFd, checkInteger, checkMaxBytes, checkName, checkObject, checkOptionalBoolean, checkOptionalObject,
  checkFsPath, checkPath, checkString, fail,
} from './validate';

/** S_IF* file type bits for each MknodType. */
const MKNOD_TYPES: Readonly<Record<MknodType, number>> = {
  fifo: 0o010000, char: 0o020000, block: 0o060000, file: 0o100000, socket: 0o140000,
};

export interface MknodOptions {
  type: MknodType;
  /** Permission bits (0 to 0o7777). */
  mode: number;
  /** Device numbers, for 'char' and 'block' only. An overlay whiteout is char 0/0. */
  major?: number;
  minor?: number;
}

const DEV_MAX = 0xffffffff;

/** Validates mknod options into the kernel's mode (type | permissions) and device numbers. */
export function mknodArgs(fn: string, opts: unknown): { mode: number; major: number; minor: number } {
  const o = checkObject(fn, 'options', opts);
  const typeBits = checkName(fn, 'type', o.type, MKNOD_TYPES);
  const perm = checkInteger(fn, 'mode', o.mode, 0, 0o7777);
  const isDevice = o.type === 'char' || o.type === 'block';
  if (!isDevice && (o.major !== undefined || o.minor !== undefined)) {
    fail(fn, 'major/minor', `omitted for type '${String(o.type)}' (only char and block devices have them)`, o.major ?? o.minor);
  }
  const major = o.major === undefined ? 0 : checkInteger(fn, 'major', o.major, 0, DEV_MAX);
  const minor = o.minor === undefined ? 0 : checkInteger(fn, 'minor', o.minor, 0, DEV_MAX);
  return { mode: typeBits | perm, major, minor };
}

/** mknod(2): a device node, fifo, socket or empty file. The umask applies to `mode`. */
export function mknod(path: string | Buffer, opts: MknodOptions): void {
  checkFsPath('mknod', 'path', path);
  const { mode, major, minor } = mknodArgs('mknod', opts);
  binding.mknod(path, mode, major, minor);
}

// ---- extended attributes (never following symlinks) ----

const XATTR_NAME_MAX = 255;
const XATTR_SIZE_MAX = 65536;
const XATTR_SET_FLAGS = { create: 1, replace: 2 } as const;

function checkXattrName(fn: string, name: unknown): string {
  return checkMaxBytes(fn, 'name', checkString(fn, 'name', name), XATTR_NAME_MAX);
}

/** lgetxattr(2): the value's bytes, or null when the attribute is absent (ENODATA). */
export function lgetxattr(path: string | Buffer, name: string): Buffer | null {
  return binding.lgetxattr(checkFsPath('lgetxattr', 'path', path), checkXattrName('lgetxattr', name));
}

/** lsetxattr(2) with any bytes (e.g. a security.capability blob); 'create'/'replace' as in XATTR_*. */
export function lsetxattr(path: string | Buffer, name: string, value: Buffer | Uint8Array, flags?: 'create' | 'replace'): void {
  const fn = 'lsetxattr';
  checkFsPath(fn, 'path', path);
  checkXattrName(fn, name);
  if (!(value instanceof Uint8Array)) fail(fn, 'value', 'a Buffer or Uint8Array', value);
  if (value.byteLength > XATTR_SIZE_MAX) fail(fn, 'value', `at most ${XATTR_SIZE_MAX} bytes`, `${value.byteLength} bytes`);
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const flagBits = flags === undefined ? 0 : checkName(fn, 'flags', flags, XATTR_SET_FLAGS);
  binding.lsetxattr(path, name, bytes, flagBits);
}

/** llistxattr(2): the attribute names, in the kernel's order. */
export function llistxattr(path: string | Buffer): string[] {
  const list: string = binding.llistxattr(checkFsPath('llistxattr', 'path', path));
  return list === '' ? [] : list.slice(0, -1).split('\0');
}

export function lremovexattr(path: string | Buffer, name: string): void {
  binding.lremovexattr(checkFsPath('lremovexattr', 'path', path), checkXattrName('lremovexattr', name));
}

// ---- batch file copies (on the pool) ----

/** A regular file to copy: the target is created (O_EXCL), then owner, mode and times set through it. */
export interface FileCopy {
  source: string | Buffer;
  target: string | Buffer;
  /** Permission bits (0 to 0o7777), set after the owner (chown clears setuid/setgid). */
  mode: number;
  uid: number;
  gid: number;
  /** The target's atime and mtime, in nanoseconds since the epoch. */
  mtimeNs: bigint;
}

export interface CopyFilesResult {
  /** Files [0, done) were copied. */
  done: number;
  /** 1 where a copied file's source has extended attributes (the caller copies those it keeps). */
  xattrs: Uint8Array;
  /** Why file `done` failed (code, errno, syscall, path), or null when all were copied. */
  error: NodeJS.ErrnoException | null;
}

const ID_MAX = 0xfffffffe; // (uid_t)-1 means "unchanged" to fchown
const NS_PER_S = 1_000_000_000n;

/**
 * Copies small regular files one after the other on a libuv pool thread: open the source (O_NOFOLLOW,
 * O_NONBLOCK) and refuse it unless it is a regular file (EISDIR for a directory, else EINVAL, syscall
 * 'open'), create the target (O_EXCL | O_NOFOLLOW, so an existing target is an EEXIST error), copy the
 * content to its end, fchown, fchmod, futimens, close. Stops at the first failure and reports it in the
 * result rather than rejecting, so the caller knows which files were copied.
 */
export function copyFiles(files: readonly FileCopy[]): Promise<CopyFilesResult> {
  const fn = 'copyFiles';
  const sources: (string | Buffer)[] = [];
  const targets: (string | Buffer)[] = [];
  const meta = new Float64Array(files.length * 5);
  for (const [i, f] of files.entries()) {
    sources.push(checkFsPath(fn, `files[${i}].source`, f.source));
    targets.push(checkFsPath(fn, `files[${i}].target`, f.target));
    if (typeof f.mtimeNs !== 'bigint') fail(fn, `files[${i}].mtimeNs`, 'a bigint', f.mtimeNs);
    let seconds = f.mtimeNs / NS_PER_S;
    let nanos = f.mtimeNs % NS_PER_S;
    if (nanos < 0n) {
      nanos += NS_PER_S;
      seconds -= 1n;
    }
    meta.set([
      checkInteger(fn, `files[${i}].mode`, f.mode, 0, 0o7777),
      checkInteger(fn, `files[${i}].uid`, f.uid, 0, ID_MAX),
      checkInteger(fn, `files[${i}].gid`, f.gid, 0, ID_MAX),
      Number(seconds),
      Number(nanos),
    ], i * 5);
  }
  return binding.copyFiles(sources, targets, meta);
}

/** Per file in HashFilesResult.stats: before the read, then after it. */
export const HASH_STAT_FIELDS = ['dev', 'ino', 'size', 'mtimeNs', 'ctimeNs', 'mode'] as const;

export interface HashFilesResult {
  /** Files [0, done) were hashed. */
  done: number;
  /** Their SHA-256s, 32 bytes a file. */
  digests: Buffer;
  /**
   * 12 numbers a file: fstat's dev, ino, size, mtime ns, ctime ns and mode before the read, then the
   * same after it (dev and ino as their 64-bit patterns: BigInt.asUintN(64, v)).
   */
  stats: BigInt64Array;
  /** Why file `done` failed (code, errno, syscall, path), or null when all were hashed. */
  error: NodeJS.ErrnoException | null;
}

/**
 * SHA-256 of regular files, one after the other on a libuv pool thread: open (O_NOFOLLOW, O_NONBLOCK),
 * fstat (anything but a regular file fails as copyFiles says), read
 * to the end (a short read ending at fstat's size is the end), fstat, close. Stops at the first failure
 * and reports it in the result rather than rejecting.
 */
export function hashFiles(paths: readonly (string | Buffer)[]): Promise<HashFilesResult> {
  return binding.hashFiles(paths.map((p, i) => checkFsPath('hashFiles', `paths[${i}]`, p)));
}

// ---- statfs ----

/** Filesystem magic numbers (linux/magic.h) for the filesystems tsbuild meets. */
export const FS_MAGIC: Readonly<Record<string, number>> = {
  overlay: 0x794c7630, tmpfs: 0x01021994, ext4: 0xef53, xfs: 0x58465342, btrfs: 0x9123683e,
  fuse: 0x65735546, cgroup2: 0x63677270, cgroup: 0x0027e0eb, proc: 0x9fa0, sysfs: 0x62656572,
  devpts: 0x1cd1, ramfs: 0x858458f6, squashfs: 0x73717368, nfs: 0x6969, zfs: 0x2fc12fc1,
  f2fs: 0xf2f52010, erofs: 0xe0f5e1e2, aufs: 0x61756673, '9p': 0x01021997, mqueue: 0x19800202,
  nsfs: 0x6e736673, bpf: 0xcafe4a11, hugetlbfs: 0x958458f6, vfat: 0x4d44, debugfs: 0x64626720,
  tracefs: 0x74726163, securityfs: 0x73636673,
};

const FS_NAMES = new Map(Object.entries(FS_MAGIC).map(([name, magic]) => [magic, name]));

export interface StatfsResult {
  /** f_type: the filesystem's magic number. */
  type: number;
  /** Its name when known ('ext4' also stands for ext2/ext3, which share the magic). */
  typeName?: string;
}

/** statfs(2): which filesystem holds `path`. */
export function statfs(path: string): StatfsResult {
  const type: number = binding.statfs(checkPath('statfs', 'path', path));
  const typeName = FS_NAMES.get(type);
  return typeName === undefined ? { type } : { type, typeName };
}

// ---- flock ----

export type FlockMode = 'shared' | 'exclusive' | 'unlock';
const FLOCK_OPS: Readonly<Record<FlockMode, number>> = { shared: 1, exclusive: 2, unlock: 8 };
const LOCK_NB = 4;

/**
 * flock(2). Locks belong to the open file description, so two opens of one file contend even within one
 * process. With nonBlocking, returns false instead of waiting when another description holds it;
 * without, it blocks the calling thread (use flockWait on the event loop).
 */
export function flock(fd: number, mode: FlockMode, opts?: { nonBlocking?: boolean }): boolean {
  checkFd('flock', 'fd', fd);
  const op = checkName('flock', 'mode', mode, FLOCK_OPS);
  const nonBlocking = checkOptionalBoolean('flock', 'options.nonBlocking', checkOptionalObject('flock', 'options', opts).nonBlocking);
  return binding.flock(fd, nonBlocking ? op | LOCK_NB : op);
}

/**
 * A blocking flock(2) on a libuv pool thread: resolves once the lock is held, without blocking the event
 * loop. While it waits it occupies one pool thread (4 by default) and keeps the process alive.
 */
export function flockWait(fd: number, mode: FlockMode): Promise<void> {
  checkFd('flockWait', 'fd', fd);
  return binding.flockWait(fd, checkName('flockWait', 'mode', mode, FLOCK_OPS));
}

// ---- pipes and terminals (close the fds with fs.closeSync) ----

/** pipe2(2) with O_CLOEXEC: [readFd, writeFd]. */
export function pipe(): [readFd: number, writeFd: number] {
  return binding.pipe();
}

export interface Pty {
  master: number;
  slave: number;
  /** e.g. /dev/pts/3 */
  slavePath: string;
}

/** A pseudo-terminal pair, both fds O_CLOEXEC | O_NOCTTY (the caller gains no controlling terminal). */
export function openPty(): Pty {
  return binding.openPty();
}
