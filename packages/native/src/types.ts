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
  data?: string | undefined;
}

export interface UmountOptions {
  detach?: boolean; // MNT_DETACH
  force?: boolean; // MNT_FORCE
  noFollow?: boolean; // UMOUNT_NOFOLLOW
}

export interface OverlayMountSpec {
  /** Lower directories, topmost first. */
  lower: string[];
  upper?: string | undefined;
  work?: string | undefined;
  target: string;
  /** Extra overlay options, e.g. ['index=off', 'redirect_dir=off', 'volatile']. */
  options?: string[];
  /** Mount flags applied to the new mount (e.g. ['ro','nodev']). */
  flags?: MountFlag[];
}

export type Namespace = 'mount' | 'uts' | 'ipc' | 'net' | 'pid' | 'user' | 'cgroup';

export type MknodType = 'char' | 'block' | 'fifo' | 'file' | 'socket';

export type Signal = NodeJS.Signals | number;

/**
 * One setup step the child runs, in order, after clone and before execve (raw syscalls only). Paths are
 * resolved in the child's current root: host paths before a pivotRoot/chroot step, container paths after
 * it. Prefer doing mounts after the pivot so that symlinks in an untrusted rootfs resolve inside it.
 * `optional` steps ignore ENOENT.
 */
export type SetupStep =
  /** mount(2). Propagation-only flags (['rec','slave']) change propagation; a bind with more flags is
   * followed by the bind remount those flags need; propagation flags with others apply after the mount. */
  | { op: 'mount'; source?: string; target: string; type?: string; flags?: MountFlag[]; data?: string; optional?: boolean }
  /** Bind `source` (default: `target` itself) onto `target`, then remount with `flags` (two calls). */
  | { op: 'bindRemount'; source?: string; target: string; flags: MountFlag[]; optional?: boolean }
  /** mkdir; an existing entry is fine. `parents` creates the missing ancestors (mkdir -p). Mode 0755. */
  | { op: 'mkdir'; path: string; mode?: number; parents?: boolean; optional?: boolean }
  | { op: 'mknod'; path: string; type: MknodType; mode: number; major?: number; minor?: number; optional?: boolean }
  | { op: 'symlink'; target: string; path: string; optional?: boolean }
  /** Creates or truncates `path` (never following a final symlink) and writes `data`. Mode 0644.
   * `ifMissing`: only create it when absent (e.g. a file mount point), leaving an existing file as is. */
  | { op: 'writeFile'; path: string; data: string; mode?: number; ifMissing?: boolean; optional?: boolean }
  /** runc's pivot_root dance on `root`: pivot_root(".", "."), make the old root a slave, detach it,
   * chdir("/"). `root` must be a mount point: bind it onto itself first (and make / rslave or rprivate). */
  | { op: 'pivotRoot'; root: string }
  | { op: 'chroot'; root: string }
  /** Mask a path: /dev/null (checked to be char 1:3) over a file, a read-only tmpfs over a dir. A
   * missing path is skipped. Needs /proc mounted (mounts go through /proc/self/fd). */
  | { op: 'maskPath'; path: string }
  /** Bind a path onto itself and remount it read-only (keeping nosuid/nodev/noexec). Missing: skipped. */
  | { op: 'readonlyPath'; path: string }
  | { op: 'sethostname'; name: string }
  | { op: 'chdir'; path: string }
  | { op: 'umask'; mask: number }
  /** open_tree(OPEN_TREE_CLONE) of a host path into `slot` (0..63), before pivotRoot: a detached copy
   * that attachTree later mounts inside the root without resolving anything on the host. */
  | { op: 'openTree'; source: string; slot: number; recursive?: boolean }
  /** move_mount the tree in `slot` onto `target` (after pivotRoot: a container path), applying
   * ro/nosuid/nodev/noexec from `flags` first (recursively unless recursive is false). */
  | { op: 'attachTree'; slot: number; target: string; flags?: MountFlag[]; recursive?: boolean; optional?: boolean }
  /** Allocate a pseudo-terminal from the container's devpts (mount it with newinstance first) by opening
   * `ptmx` (default /dev/pts/ptmx): its slave becomes fds 0-2 (pass `terminal` to make it the
   * controlling tty), its master comes back as ContainerProcess.terminalFd. Inside, ttyname works. */
  | { op: 'consolePty'; ptmx?: string }
  /** Bring the loopback interface up (a new network namespace starts with `lo` down). */
  | { op: 'loopbackUp' };

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
  /** New namespaces to create (clone3 flags). 'user' is not supported (spawn writes no id maps). */
  namespaces?: Namespace[];
  /** Existing namespaces to join, by /proc/<pid>/ns/<type> path, applied before the steps. A type
   * may appear once, and not in `namespaces` too. */
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
  /** Applied in the child with prlimit. Set every limit you care about: Node raises its own soft
   * NOFILE to the hard limit, and the child inherits Node's limits. */
  rlimits?: Rlimit[];
  /** A hard limit above the host's cannot be raised without CAP_SYS_RESOURCE: true (default) lowers it
   * to the host's hard limit (and the soft limit with it); false fails naming the limit. */
  clampRlimits?: boolean;
  capabilities?: Capabilities;
  noNewPrivileges?: boolean;
  /**
   * A seccomp filter: a classic BPF program (struct sock_filter[], 8 bytes per instruction, at most
   * 4096) and SECCOMP_FILTER_FLAG_* bits. The child loads it with seccomp(SECCOMP_SET_MODE_FILTER)
   * last before execve when noNewPrivileges is set, else just before its capabilities drop.
   */
  seccomp?: { filter: Uint8Array; flags?: number };
  /** fds to become the child's 0,1,2 (from native.pipe(), native.openPty(), or open files). */
  stdio: [number, number, number];
  /** setsid() and make fd 0 the controlling terminal (for -t). */
  terminal?: boolean;
  /** Signal sent to the child when the spawning thread dies (PR_SET_PDEATHSIG). */
  parentDeathSignal?: Signal;
  /** Execute this host file (a static init, see INIT_BINARY) via a sealed memfd; it runs the command
   * (args, resolved in the container's PATH by spawn) as its child. */
  initBinary?: string;
  /** With initBinary: the init only execs the command in place (it stays PID 1, nothing reaps
   * orphans). Still worth it: /proc/self/exe is the sealed memfd, not node, while the command is
   * exec'd, so a `#!/proc/self/exe` script cannot run host node (CVE-2019-5736). */
  initExecOnly?: boolean;
  /** 'vfork': CLONE_VM|CLONE_VFORK on a dedicated stack, cost independent of Node's RSS; 'fork':
   * copy-on-write, and the child is non-dumpable during setup. 'auto' (default) uses vfork when the
   * child gets a new PID namespace (nothing in the container can see it before execve), else fork. */
  cloneMode?: 'auto' | 'vfork' | 'fork';
}

/** spawn()'s rejection when the child failed before or at execve (it has been reaped). */
export interface SpawnError extends NativeError {
  /** What a CLI should exit with: 127 command not found, 126 not executable, 125 setup failure. */
  exitCode: number;
  /** Index and op of the failing setup step, when a step failed. */
  step?: number;
  stepName?: SetupStep['op'];
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
  /** The pty master from a consolePty step (the caller owns and closes it). */
  readonly terminalFd?: number;
}
