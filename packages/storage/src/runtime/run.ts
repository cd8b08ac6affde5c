// runContainer(): a process in a prepared rootfs with Docker's defaults (REFERENCE §4): namespaces,
// mounts, masked and read-only paths, the 14 capabilities, NOFILE 1024:1024, a cgroup with the limits,
// and a sealed init as PID 1. The rootfs is someone else's (mounted and populated already).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import {
  CAPABILITIES, DEFAULT_PATH, DOCKER_DEFAULT_CAPABILITIES, INIT_BINARY, dockerCapabilities, exitCodeOf, spawn, spawnWithPipes,
} from '@tsbuild/native';
import type { ContainerProcess, Namespace, Rlimit, Signal, SpawnSpec } from '@tsbuild/native';
import { CGROUP_ID_FILE, createCgroup, type CgroupOptions, type ContainerCgroup } from './cgroups';
import { seccompFor, type SeccompOption } from './seccomp/container';
import { containerSteps, type BindMount } from './steps';
import { writeFileExactMode } from '../fsmode';
import { resolveRootfsUser } from './users';
import { TsbuildError } from '../errors';
import { resolveInRootSync } from '../archive/resolve';
import { mkdirpSync, removeKnownDir } from '../atomic';
import { terminalStreams } from './terminal';
import { inUserNamespace } from '../rootless';
import { randomBytes } from '@tsbuild/native';

export interface RunOptions {
  /** The container's root directory, already populated (and mounted, if it is an overlay). */
  rootfs: string;
  args: string[];
  /** NAME=value entries; PATH, HOSTNAME and HOME get Docker's defaults when absent. */
  env?: string[];
  /** Working directory inside the container (created when missing). Default '/'. */
  cwd?: string;
  /** 'name', 'uid', 'name:group' or 'uid:gid', resolved with the rootfs's own /etc/passwd and /etc/group. */
  user?: string;
  /** Default: the first 12 characters of the id (the host's name with network 'host'). */
  hostname?: string;
  /** 'none' (default): a network namespace with only lo. 'host': the host's network. */
  network?: 'none' | 'host';
  /** Extra /etc/hosts lines (docker run --add-host HOST:IP). */
  extraHosts?: { host: string; ip: string }[];
  /** Bytes of /dev/shm (docker's --shm-size); default 64 MiB. */
  shmSize?: number;
  /** Run tsbuild-init as PID 1 (reaps zombies, forwards signals). Default true. With false the command
   * is PID 1 (exec'd through the sealed init all the same). */
  init?: boolean;
  readonlyRootfs?: boolean;
  mounts?: BindMount[];
  /** Memory limit in bytes (an OOM kill gives exit code 137 and oomKilled). */
  memory?: number;
  cpus?: number;
  pidsLimit?: number;
  /** Default 'pipe' for stdout/stderr and /dev/null for stdin. With tty, the terminal is all three. */
  stdio?: 'pipe' | 'inherit' | [number, number, number];
  /** A pseudo-terminal from the container's devpts as stdio (setsid + controlling terminal); read and
   * write it through `terminal` (the output stream owns the master fd). */
  tty?: boolean;
  noNewPrivileges?: boolean;
  /** The capability set (names without CAP_), or changes to Docker's 14 (`ALL` as in docker run). */
  capabilities?: string[] | { add?: string[]; drop?: string[] };
  /**
   * The seccomp filter: 'default' (Docker's profile, resolved against the capabilities), a profile
   * in Docker's JSON format, or 'unconfined' (none). Default 'default'.
   */
  seccomp?: SeccompOption;
  /**
   * docker run --privileged, dangerous: every capability, no seccomp filter, no masked or read-only
   * paths, a writable /sys, and the host's devices in /dev (and allowed by the device cgroup).
   */
  privileged?: boolean;
  /** Added to (and overriding by type) the default NOFILE 1024:1024. Clamped to the host's hard limits. */
  rlimits?: Rlimit[];
  /** Default: 64 random hex digits. Names the cgroup. */
  id?: string;
  /**
   * A directory for the container's own files (/etc/hosts and friends), removed after exit. Default: a
   * new one under the system temp dir. A store passes one under its root, so that crash repair finds it.
   */
  stateDir?: string;
  /** Where the cgroups go (default: detected at /sys/fs/cgroup, under 'tsbuild'). */
  cgroups?: CgroupOptions;
}

export interface ContainerExit {
  /** The exit code as a shell reports it: the code, or 128 + signal (137 for an OOM kill). */
  exitCode: number;
  signal: NodeJS.Signals | null;
  oomKilled: boolean;
}

export interface RunningContainer {
  readonly id: string;
  /** Host pid of the container's PID 1. */
  readonly pid: number;
  stdin?: Writable;
  stdout?: Readable;
  stderr?: Readable;
  /** With tty: the terminal's output (read) and input (write). */
  terminal?: { output: Readable; input: Writable };
  /** Resolves once the container has exited and its cgroup and state have been removed. */
  wait(): Promise<ContainerExit>;
  kill(signal?: Signal): void;
}

const DEFAULT_RLIMITS: Rlimit[] = [{ type: 'nofile', soft: 1024, hard: 1024 }];

/**
 * Every capability this kernel has (Docker's GetAllCapabilities) that tsbuild itself holds: none can
 * be granted beyond its own bounding set (runc fails with "unable to apply caps" instead).
 */
export function allCapabilities(): string[] {
  const last = Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
  const bnd = /^CapBnd:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  const own = bnd ? BigInt('0x' + bnd[1]!) : (1n << BigInt(last + 1)) - 1n;
  return Object.entries(CAPABILITIES).filter(([, bit]) => bit <= last && (own >> BigInt(bit)) & 1n).map(([name]) => name);
}

/** docker run's --cap-add/--cap-drop (moby caps.TweakCapabilities): ALL in either, else drop then add. */
export function capabilitySet(opt: RunOptions['capabilities'], privileged = false): string[] {
  if (privileged) return allCapabilities();
  const norm = (c: string) => c.toUpperCase().replace(/^CAP_/, '');
  if (Array.isArray(opt)) return opt.map(norm);
  const add = (opt?.add ?? []).map(norm);
  const drop = (opt?.drop ?? []).map(norm);
  for (const c of [...add, ...drop]) {
    if (c !== 'ALL' && CAPABILITIES[c] === undefined) {
      throw new TsbuildError('EINVAL', `unknown capability: "${c}"`, { exitCode: 125 });
    }
  }
  if (add.includes('ALL')) return allCapabilities().filter((c) => !drop.includes(c));
  if (drop.includes('ALL')) return [...new Set(add)];
  return [...new Set([...DOCKER_DEFAULT_CAPABILITIES.filter((c) => !drop.includes(c)), ...add])];
}

function mergeRlimits(extra: Rlimit[] = []): Rlimit[] {
  const byType = new Map<string, Rlimit>();
  for (const r of [...DEFAULT_RLIMITS, ...extra]) byType.set(r.type.toLowerCase().replace(/^rlimit_/, ''), r);
  return [...byType.values()];
}

function containerEnv(env: string[], defaults: Record<string, string>): string[] {
  const out = [...env];
  for (const [name, value] of Object.entries(defaults)) {
    if (!out.some((e) => e.startsWith(`${name}=`))) out.push(`${name}=${value}`);
  }
  return out;
}

/** What writeEtcFiles puts in the state dir: all it holds, so its removal needs no walk. */
const ETC_FILES = ['hosts', 'hostname', 'resolv.conf'] as const;

/** Per-container /etc/hosts, /etc/hostname and /etc/resolv.conf, bound over the rootfs's. */
function writeEtcFiles(dir: string, hostname: string, network: 'none' | 'host', extraHosts: { host: string; ip: string }[] = []) {
  const files = {
    hosts: path.join(dir, ETC_FILES[0]),
    hostname: path.join(dir, ETC_FILES[1]),
    resolvConf: path.join(dir, ETC_FILES[2]),
  };
  const hosts =
    (network === 'host'
      ? readOr('/etc/hosts', '')
      : `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${hostname}\n`) +
    extraHosts.map((h) => `${h.ip}\t${h.host}\n`).join('');
  // Bound into the container: 0644 whatever the caller's umask, so a non-root process reads them.
  writeFileExactMode(files.hosts, hosts, 0o644);
  writeFileExactMode(files.hostname, `${hostname}\n`, 0o644);
  writeFileExactMode(files.resolvConf, readOr('/etc/resolv.conf', ''), 0o644);
  return files;
}

function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

function checkOptions(o: RunOptions): void {
  if (!o || typeof o !== 'object') throw new TypeError('runContainer: options must be an object');
  let st: fs.Stats;
  try {
    st = fs.statSync(o.rootfs);
  } catch (err) {
    throw new Error(`runContainer: the rootfs ${String(o.rootfs)} cannot be used: ${(err as NodeJS.ErrnoException).code}`);
  }
  if (!st.isDirectory()) throw new Error(`runContainer: the rootfs ${o.rootfs} is not a directory`);
  if (!Array.isArray(o.args) || o.args.length === 0) throw new TypeError('runContainer: args must name a command');
  if (o.network !== undefined && o.network !== 'none' && o.network !== 'host') {
    throw new TypeError(`runContainer: network must be 'none' or 'host' (got ${JSON.stringify(o.network)})`);
  }
  if (o.cwd !== undefined && !o.cwd.startsWith('/')) throw new TypeError(`runContainer: cwd must be absolute (got ${JSON.stringify(o.cwd)})`);
  checkMountPoints(o.rootfs);
}

/**
 * proc, sysfs and the /dev tmpfs are mounted where the image says /proc, /sys and /dev are. An image
 * that makes them symlinks could send proc to a path the masks and read-only remounts no longer
 * reach (an unmasked, writable /proc: CVE-2025-31133/52565 shapes), so, as runc 1.2 does, refuse.
 * Nothing runs in the rootfs while a container starts, so this check cannot be raced.
 */
function checkMountPoints(rootfs: string): void {
  for (const name of ['proc', 'sys', 'dev']) {
    const st = fs.lstatSync(path.join(rootfs, name), { throwIfNoEntry: false });
    if (st && !st.isDirectory()) {
      const what = st.isSymbolicLink() ? `a symlink to ${fs.readlinkSync(path.join(rootfs, name))}` : 'not a directory';
      throw new TsbuildError('EBADROOTFS', `the image's /${name} is ${what}: refusing to mount ${name} there`, { exitCode: 125 });
    }
  }
}

/** `containerPath` with every symlink on it resolved inside `rootfs` (missing components kept as written). */
function inRootfs(rootfs: string, containerPath: string): string {
  if (!containerPath.startsWith('/')) return containerPath; // refused with a clear message by the step checks
  const host = resolveInRootSync(rootfs, containerPath, { followFinal: true });
  return `/${path.relative(rootfs, host)}`;
}

/** Starts a container. Rejects (with exitCode 125/126/127 on the error) when it cannot start. */
export async function runContainer(opts: RunOptions): Promise<RunningContainer> {
  checkOptions(opts);
  const privileged = opts.privileged === true;
  const caps = capabilitySet(opts.capabilities, privileged);
  // Checked and compiled before anything is created for the container. Privileged means unconfined
  // whatever else is asked, as in Docker.
  const seccomp = await seccompFor(privileged ? 'unconfined' : opts.seccomp, caps);
  const id = opts.id ?? randomBytes(32).toString('hex');
  const network = opts.network ?? 'none';
  const hostname = opts.hostname ?? (network === 'host' ? os.hostname() : id.slice(0, 12));
  const user = resolveRootfsUser(opts.rootfs, opts.user);
  // Paths in the container are resolved in its rootfs, as runc does: an image's absolute symlink on
  // the way (/link -> /real) leads to /real inside, never to the host's /real.
  const cwd = inRootfs(opts.rootfs, opts.cwd ?? '/');
  const mounts = opts.mounts?.map((m) => ({ ...m, target: inRootfs(opts.rootfs, m.target) }));
  const env = containerEnv(opts.env ?? [], {
    PATH: DEFAULT_PATH, HOSTNAME: hostname, HOME: user.home, ...(opts.tty ? { TERM: 'xterm' } : {}),
  });

  const stateDir = opts.stateDir ?? fs.mkdtempSync(path.join(os.tmpdir(), `tsbuild-ctr-${id.slice(0, 12)}-`));
  if (opts.stateDir) mkdirpSync(stateDir, 0o700);
  const cleanups: (() => Promise<void> | void)[] = [() => removeKnownDir(stateDir, [...ETC_FILES, CGROUP_ID_FILE])];
  const cleanup = async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  };
  try {
    // Before the groups exist: a tsbuild killed from here on leaves a state dir naming them.
    if (opts.stateDir) fs.writeFileSync(path.join(stateDir, CGROUP_ID_FILE), id);
    const cgroup: ContainerCgroup = createCgroup(
      id, { memory: opts.memory, cpus: opts.cpus, pidsLimit: opts.pidsLimit, ...(privileged ? { allDevices: true } : {}) }, opts.cgroups,
    );
    cleanups.push(() => cgroup.remove());
    const namespaces: Namespace[] = ['mount', 'pid', 'uts', 'ipc'];
    if (network === 'none') namespaces.push('net');
    const spec: Omit<SpawnSpec, 'stdio'> = {
      args: opts.args,
      env,
      namespaces,
      ...cgroup.spawnOptions,
      steps: containerSteps({
        rootfs: opts.rootfs, hostname, etcFiles: writeEtcFiles(stateDir, hostname, network, opts.extraHosts),
        mounts, readonlyRootfs: opts.readonlyRootfs, cwd, console: opts.tty === true,
        ownNetwork: network === 'none',
        rootless: inUserNamespace(),
        ...(opts.shmSize !== undefined ? { shmSize: opts.shmSize } : {}),
        ...(privileged ? { privileged, maskedPaths: [], readonlyPaths: [] } : {}),
      }),
      cwd,
      uid: user.uid,
      gid: user.gid,
      // The primary gid is a supplementary group too, as Docker sets it: otherwise a file whose group
      // only allows access would be denied once the process changes its gid (CVE-2022-36109 class).
      additionalGids: [user.gid, ...user.additionalGids.filter((g) => g !== user.gid)],
      rlimits: mergeRlimits(opts.rlimits),
      capabilities: dockerCapabilities(caps),
      noNewPrivileges: opts.noNewPrivileges ?? false,
      ...(seccomp ? { seccomp } : {}),
      parentDeathSignal: 'SIGKILL',
      // Even without an init as PID 1 the command is exec'd from the sealed init (CVE-2019-5736).
      initBinary: INIT_BINARY,
      initExecOnly: opts.init === false,
    };

    let proc: ContainerProcess;
    const streams: Partial<RunningContainer> = {};
    if (opts.tty) {
      // The terminal comes from the container's own devpts (consolePty), so ttyname works inside.
      const devNull = fs.openSync('/dev/null', 'r+');
      try {
        proc = await spawn({ ...spec, stdio: [devNull, devNull, devNull], terminal: true });
      } finally {
        fs.closeSync(devNull);
      }
      streams.terminal = terminalStreams(proc.terminalFd!);
    } else if (Array.isArray(opts.stdio)) {
      proc = await spawn({ ...spec, stdio: opts.stdio });
    } else if (opts.stdio === 'inherit') {
      proc = await spawn({ ...spec, stdio: [0, 1, 2] });
    } else {
      const piped = await spawnWithPipes({ ...spec, stdio: ['ignore', 'pipe', 'pipe'] });
      proc = piped;
      if (piped.stdout) streams.stdout = piped.stdout;
      if (piped.stderr) streams.stderr = piped.stderr;
    }

    const done = (async (): Promise<ContainerExit> => {
      try {
        const status = await proc.exited;
        const oomKilled = cgroup.oomKilled();
        return { exitCode: oomKilled ? 137 : exitCodeOf(status), signal: status.signal, oomKilled };
      } finally {
        await cleanup(); // the cgroup and the state dir go even when waiting failed
      }
    })();
    done.catch(() => undefined); // observed through wait()
    return {
      id,
      pid: proc.pid,
      ...streams,
      wait: () => done,
      kill: (signal: Signal = 'SIGTERM') => proc.kill(signal),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
