// Loads the addon once. A local build (build/Release: a development checkout, or an install that
// compiled from source) wins over the prebuilt binaries shipped for this platform
// (prebuilds/linux-x64, prebuilds/linux-arm64). When none loads, the error names every place tried,
// why each failed, and how to compile.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SetupStep } from './types';

const packageDir = path.join(__dirname, '..');
const ADDON_FILE = 'tsbuild_native.node';
const INIT_FILE = 'tsbuild-init';
const USERNS_FILE = 'tsbuild-userns';

/** The binaries in use: the addon and the static init built with it (same directory, same arch). */
export interface NativeBinaries {
  /** The loaded `tsbuild_native.node`. */
  addon: string;
  /** The static `tsbuild-init` run as PID 1 in containers. */
  init: string;
  /** The static `tsbuild-userns` that enters a user namespace for the rootless mode. */
  userns: string;
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
    return { exports: mod.exports, binaries: { addon, init: path.join(dir, INIT_FILE), userns: path.join(dir, USERNS_FILE), origin } };
  }
  const mismatch = platformMismatch();
  throw new Error(
    `tsbuild: cannot load the native addon (${failures.join('; ')})` +
      (mismatch ? `; ${mismatch}` : '') +
      `; compile it with "npm rebuild @tsbuild/native" (needs python3, make and g++)`,
  );
}

// ---- the addon's exports, exactly as cc/*.cc define them ----
//
// TypeScript validates and normalizes every argument (src/validate.ts and each wrapper); C++ reads each
// value with its declared presence and type again, and throws a TypeError naming a missing or mistyped
// key. Failed syscalls throw (or reject with) a NativeError: code, errno, syscall and path.

/** One setup step of a normalized spawn spec (cc/spawn_request.cc ParseStep): only `op` is required. */
export interface NativeSpawnStep {
  op: SetupStep['op'];
  path?: string | undefined;
  /** Mount source, symlink target, writeFile data, openTree source. */
  source?: string | undefined;
  fstype?: string | undefined;
  data?: string | undefined;
  /** MS_* bits. */
  flags?: number | undefined;
  mode?: number | undefined;
  parents?: boolean | undefined;
  recursive?: boolean | undefined;
  slot?: number | undefined;
  major?: number | undefined;
  minor?: number | undefined;
  optional?: boolean | undefined;
  ifMissing?: boolean | undefined;
}

/**
 * A spawn spec as the addon takes it (cc/spawn_request.cc): every key is required (null where the
 * value may be absent) except `seccomp`/`seccompFlags`, which come together or not at all.
 */
export interface NativeSpawnSpec {
  argv: string[];
  envp: string[];
  /** Where execve looks for argv[0], in order. */
  candidates: string[];
  /** CLONE_NEW* bits of the namespaces to create. */
  cloneFlags: number;
  vfork: boolean;
  /** Namespaces to join: CLONE_NEW* type and /proc/<pid>/ns path. */
  joins: { type: number; path: string }[];
  cgroupDir: string | null;
  cgroupProcs: string[];
  steps: NativeSpawnStep[];
  cwd: string | null;
  setIds: boolean;
  uid: number;
  gid: number;
  groups: number[];
  /** RLIMIT_* resource numbers; Infinity is RLIM_INFINITY. */
  rlimits: { name: string; resource: number; soft: number; hard: number }[];
  /** Capability bit masks. */
  caps: { bounding: number; effective: number; permitted: number; inheritable: number; ambient: number } | null;
  lastCap: number;
  noNewPrivs: boolean;
  /** struct sock_filter[] of a classic BPF seccomp filter. */
  seccomp?: Buffer;
  seccompFlags?: number;
  terminal: boolean;
  pdeathsig: number;
  stdio: [number, number, number];
  initPath: string | null;
  initExecOnly: boolean;
}

/** The handle spawn resolves with (cc/spawn_process.cc). */
export interface NativeProcess {
  pid: number;
  /** The pty master of a consolePty step. */
  terminalFd?: number;
  /** pidfd_send_signal; false once the process is reaped or gone. */
  kill(signo: number): boolean;
}

/** Called once the process is reaped: its exit code or signal number, or the waitid errno. */
export type NativeExitCallback = (exitCode: number | null, signo: number | null, waitErrno: number) => void;

/**
 * Every function the addon exports. The plain names of blocking calls (mount, umount, fsmount,
 * flockWait) run on a libuv pool thread and return promises; the `*Sync` ones run on the JS thread,
 * for the callers that cannot await (see each wrapper).
 */
export interface NativeBinding {
  // cc/mount.cc
  mount(source: string | null, target: string, type: string | null, flags: number, data: string | null): Promise<void>;
  mountSync(source: string | null, target: string, type: string | null, flags: number, data: string | null): void;
  umount(target: string, flags: number): Promise<void>;
  umountSync(target: string, flags: number): void;
  /** Whether fsopen(fstype) accepts the string parameter key=value; never mounts. */
  fsconfigProbe(fstype: string, key: string, value: string): boolean;
  /** fsopen, fsconfig key=value each (null: a flag), create, fsmount with MOUNT_ATTR_* bits, move_mount. */
  fsmount(fstype: string, keys: string[], values: (string | null)[], attrFlags: number, target: string): Promise<void>;
  fsmountSync(fstype: string, keys: string[], values: (string | null)[], attrFlags: number, target: string): void;
  pivotRoot(newRoot: string, putOld: string): void;
  chroot(path: string): void;
  sethostname(name: string): void;
  unshare(flags: number): void;
  setns(pathOrFd: string | number, nstype: number): void;
  // cc/fsops.cc
  mknod(path: string | Buffer, mode: number, major: number, minor: number): void;
  lgetxattr(path: string | Buffer, name: string): Buffer | null;
  lsetxattr(path: string | Buffer, name: string, value: Buffer, flags: number): void;
  /** The kernel's NUL-terminated name list as one string. */
  llistxattr(path: string | Buffer): string;
  lremovexattr(path: string | Buffer, name: string): void;
  /** f_type, the filesystem magic. */
  statfs(path: string): number;
  /** false when op has LOCK_NB and another description holds the lock. */
  flock(fd: number, op: number): boolean;
  flockWait(fd: number, op: number): Promise<void>;
  // cc/hashfiles.cc
  hashFiles(paths: (string | Buffer)[]): Promise<{ done: number; digests: Buffer; stats: BigInt64Array; error: NodeJS.ErrnoException | null }>;
  // cc/sha256.cc
  /** An incremental SHA-256 handle (freed when collected). */
  sha256Create(): unknown;
  sha256Update(hash: unknown, data: string | NodeJS.TypedArray): void;
  /** 32 bytes; the handle must not be used again. */
  sha256Digest(hash: unknown): Buffer;
  sha256(data: string | NodeJS.TypedArray): Buffer;
  /** Fills `bytes` from getrandom(2). */
  randomFill(bytes: NodeJS.TypedArray): void;
  // cc/copyfiles.cc
  /** meta: mode, uid, gid, mtime seconds, mtime nanoseconds per file. */
  copyFiles(sources: (string | Buffer)[], targets: (string | Buffer)[], meta: Float64Array): Promise<{ done: number; xattrs: Uint8Array; error: NodeJS.ErrnoException | null }>;
  pipe(): [readFd: number, writeFd: number];
  openPty(): { master: number; slave: number; slavePath: string };
  // cc/spawn.cc
  spawn(spec: NativeSpawnSpec, onExit: NativeExitCallback): Promise<NativeProcess>;
  /** [soft, hard]; Infinity for RLIM_INFINITY. */
  getrlimit(resource: number): [soft: number, hard: number];
  setCloexec(fd: number, on: boolean): void;
}

const loaded = load();

/** The raw addon. Prefer the validating wrappers; this is for tests and for the wrappers themselves. */
export const binding: NativeBinding = loaded.exports as unknown as NativeBinding;

/** Where the addon was loaded from and the init binary that goes with it. */
export const nativeBinaries: Readonly<NativeBinaries> = Object.freeze(loaded.binaries);
