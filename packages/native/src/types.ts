// The typed surface of @tsbuild/native. TypeScript validates every argument and builds plain objects;
// C++ executes syscalls and throws NativeError (code, errno, syscall, path).

export interface NativeError extends Error {
  code: string; // errno name, e.g. 'EBUSY'
  errno: number;
  syscall: string;
  path?: string;
}

/** mount(2) flags by name; 'rec' combines with bind/private/slave/shared/unbindable. */
export type MountFlag =
  | 'ro' | 'nosuid' | 'nodev' | 'noexec' | 'sync' | 'remount' | 'bind' | 'rec'
  | 'private' | 'slave' | 'shared' | 'unbindable' | 'noatime' | 'nodiratime' | 'relatime'
  | 'strictatime' | 'move' | 'silent';

export interface MountSpec {
  source?: string;
  target: string;
  type?: string;
  flags?: MountFlag[];
  /** The filesystem-specific data string (e.g. 'mode=755,size=65536k'). */
  data?: string;
}

export interface UmountOptions {
  detach?: boolean; // MNT_DETACH
  force?: boolean; // MNT_FORCE
  noFollow?: boolean; // UMOUNT_NOFOLLOW
}

export interface OverlayMountSpec {
  /** Lower directories, topmost first. */
  lower: string[];
  upper?: string;
  work?: string;
  target: string;
  /** Extra overlay options, e.g. ['index=off', 'redirect_dir=off', 'volatile']. */
  options?: string[];
  /** Mount flags applied to the new mount (e.g. ['ro','nodev']). */
  flags?: MountFlag[];
}

export type Namespace = 'mount' | 'uts' | 'ipc' | 'net' | 'pid' | 'user' | 'cgroup';

export type MknodType = 'char' | 'block' | 'fifo' | 'file' | 'socket';

export type Signal = NodeJS.Signals | number;

/** One setup step the child runs, in order, after clone and before execve (raw syscalls only). */
export type SetupStep =
  | { op: 'mount'; source?: string; target: string; type?: string; flags?: MountFlag[]; data?: string; optional?: boolean }
  /** Bind `source` onto `target`, then remount with `flags` (bind remounts need two calls). */
  | { op: 'bindRemount'; target: string; flags: MountFlag[]; optional?: boolean }
  | { op: 'mkdir'; path: string; mode?: number; optional?: boolean }
  | { op: 'mknod'; path: string; type: MknodType; mode: number; major?: number; minor?: number; optional?: boolean }
  | { op: 'symlink'; target: string; path: string; optional?: boolean }
  | { op: 'writeFile'; path: string; data: string; mode?: number; optional?: boolean }
  /** runc's pivot_root dance on `root` (bind onto itself, pivot, detach old root). */
  | { op: 'pivotRoot'; root: string }
  | { op: 'chroot'; root: string }
  /** Mask a path: /dev/null (checked to be char 1:3) over a file, a read-only tmpfs over a dir. */
  | { op: 'maskPath'; path: string }
  /** Bind a path onto itself and remount it read-only (keeping nosuid/nodev/noexec). */
  | { op: 'readonlyPath'; path: string }
  | { op: 'sethostname'; name: string }
  | { op: 'chdir'; path: string }
  | { op: 'umask'; mask: number };

export interface Rlimit {
  /** 'nofile', 'nproc', 'core', 'memlock', 'stack', ... (RLIMIT_ name in lower case, without the prefix) */
  type: string;
  soft: number;
  hard: number;
}

export interface Capabilities {
  /** Capability names without the CAP_ prefix, e.g. 'CHOWN', 'NET_BIND_SERVICE'. */
  bounding: string[];
  effective: string[];
  permitted: string[];
  inheritable: string[];
  ambient: string[];
}

export interface SpawnSpec {
  /** argv; args[0] is looked up in the container's PATH (from env) unless `path` is given. */
  args: string[];
  path?: string;
  env: string[];
  /** New namespaces to create (clone3 flags). */
  namespaces?: Namespace[];
  /** Existing namespaces to join, by /proc/<pid>/ns/<type> path, applied before the steps. */
  joinNamespaces?: { type: Namespace; path: string }[];
  /** cgroup v2 directory: the child starts inside it (CLONE_INTO_CGROUP). */
  cgroupDir?: string;
  /** cgroup v1 `cgroup.procs` files: opened by the parent, the child writes its own pid ("0") to each. */
  cgroupProcs?: string[];
  /** Setup steps, run in order in the child. */
  steps?: SetupStep[];
  cwd?: string;
  uid?: number;
  gid?: number;
  additionalGids?: number[];
  rlimits?: Rlimit[];
  capabilities?: Capabilities;
  noNewPrivileges?: boolean;
  /** fds to become the child's 0,1,2 (from native.pipe(), native.openPty(), or open files). */
  stdio: [number, number, number];
  /** setsid() and make fd 0 the controlling terminal (for -t). */
  terminal?: boolean;
  /** Signal sent to the child when the spawning thread dies (PR_SET_PDEATHSIG). */
  parentDeathSignal?: Signal;
  /** Execute this host file (a static init) via a sealed memfd instead of args[0]; args stay as given. */
  initBinary?: string;
}

export interface ExitStatus {
  /** The exit code, or null when killed by a signal. */
  exitCode: number | null;
  /** The signal name that killed the process, or null. */
  signal: NodeJS.Signals | null;
}

export interface ContainerProcess {
  readonly pid: number;
  /** Resolves when the process has exited and been reaped (pidfd watched in the libuv loop). */
  readonly exited: Promise<ExitStatus>;
  /** pidfd_send_signal; a no-op once the process has been reaped. */
  kill(signal?: Signal): void;
}
