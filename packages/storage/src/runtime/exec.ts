// execInContainer(): another process in a running container (docker exec). The process joins the
// container's namespaces (mount, uts, ipc, net, pid: setns before exec) and its v1 cgroups, gets the
// container's user database for -u, Docker's capabilities and rlimits, and runs under tsbuild-init,
// which the pid namespace join makes the parent of the command inside the container.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  DEFAULT_PATH, DOCKER_DEFAULT_CAPABILITIES, INIT_BINARY, dockerCapabilities, exitCodeOf, spawn, spawnWithPipes,
} from '@tsbuild/native';
import type { ContainerProcess, Namespace, SpawnSpec } from '@tsbuild/native';
import type { ContainerExit } from './run';
import { seccompFor, type SeccompOption } from './seccomp/container';
import { mergeEnv } from './env';
import { resolveRootfsUser } from './users';
import { terminalStreams } from './terminal';
import type { Readable, Writable } from 'node:stream';
import { inUserNamespace } from '../rootless';
import { TsbuildError } from '../errors';

export interface ExecOptions {
  /** Host pid of the container's PID 1. */
  pid: number;
  args: string[];
  /** NAME=value entries added to (and replacing same-named entries of) `baseEnv`. */
  env?: string[];
  /** The container's own environment (the image's Env with run's -e). */
  baseEnv?: string[];
  cwd?: string;
  user?: string;
  /** [stdin, stdout, stderr] fds; default: stdin /dev/null, stdout and stderr piped. */
  stdio?: [number, number, number];
  /** A terminal from the container's devpts (docker exec -t): read and write it through `terminal`. */
  tty?: boolean;
  /** The container's capability set (default Docker's 14), seccomp filter (default Docker's profile)
   * and no_new_privs: docker exec gives the new process the container's. */
  capabilities?: string[];
  seccomp?: SeccompOption;
  noNewPrivileges?: boolean;
}

export interface ExecProcess {
  readonly pid: number;
  stdout?: NodeJS.ReadableStream;
  stderr?: NodeJS.ReadableStream;
  terminal?: { output: Readable; input: Writable };
  wait(): Promise<ContainerExit>;
  kill(signal?: NodeJS.Signals): void;
}

const JOINED: { type: Namespace; file: string }[] = [
  { type: 'mount', file: 'mnt' },
  { type: 'uts', file: 'uts' },
  { type: 'ipc', file: 'ipc' },
  { type: 'net', file: 'net' },
  { type: 'pid', file: 'pid' },
];

/** The v1 cgroup.procs files of the cgroups `pid` is in below the hierarchy roots (its container's). */
export function cgroupProcsOf(pid: number, root = '/sys/fs/cgroup'): string[] {
  const out: string[] = [];
  for (const line of fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const m = /^\d+:([^:]*):(.+)$/.exec(line);
    if (!m || m[2] === '/') continue;
    const controllers = m[1]!;
    const dir = controllers === '' ? 'unified' : controllers.replace(/^name=/, '');
    const procs = path.join(root, dir, m[2]!, 'cgroup.procs');
    if (fs.existsSync(procs)) out.push(procs);
  }
  return out;
}

export async function execInContainer(o: ExecOptions): Promise<ExecProcess> {
  if (!Array.isArray(o.args) || o.args.length === 0) throw new TypeError('execInContainer: args must name a command');
  const rootfs = `/proc/${o.pid}/root`;
  if (!fs.existsSync(rootfs)) {
    if (inUserNamespace() && fs.existsSync(`/proc/${o.pid}`)) {
      // Started in another user namespace (its keeper was killed and a new one made since).
      throw new TsbuildError('EROOTLESSEXEC', 'the container runs in another user namespace than this command (was the rootless keeper process killed?)', { exitCode: 125 });
    }
    throw new TsbuildError('ENOTRUNNING', `the container's process ${o.pid} is not running`);
  }
  const user = resolveRootfsUser(rootfs, o.user);
  const caps = o.capabilities ?? [...DOCKER_DEFAULT_CAPABILITIES];
  const seccomp = await seccompFor(o.seccomp, caps);
  let env = mergeEnv(o.baseEnv ?? [], o.env ?? []);
  if (!env.some((e) => e.startsWith('PATH='))) env = [`PATH=${DEFAULT_PATH}`, ...env];
  if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${user.home}`);
  const spec: Omit<SpawnSpec, 'stdio'> = {
    args: o.args,
    env,
    joinNamespaces: JOINED.map((j) => ({ type: j.type, path: `/proc/${o.pid}/ns/${j.file}` })),
    // Rootless containers get no cgroup of their own (the user's groups are not ours to write).
    cgroupProcs: inUserNamespace() ? [] : cgroupProcsOf(o.pid),
    cwd: o.cwd ?? '/',
    uid: user.uid,
    gid: user.gid,
    additionalGids: [user.gid, ...user.additionalGids.filter((g) => g !== user.gid)],
    rlimits: [{ type: 'nofile', soft: 1024, hard: 1024 }],
    capabilities: dockerCapabilities(caps),
    noNewPrivileges: o.noNewPrivileges ?? false,
    ...(seccomp ? { seccomp } : {}),
    parentDeathSignal: 'SIGKILL',
    // The sealed init forks the command: after the pid namespace join only its children are inside.
    initBinary: INIT_BINARY,
  };
  let proc: ContainerProcess;
  const streams: Pick<ExecProcess, 'stdout' | 'stderr' | 'terminal'> = {};
  if (o.tty) {
    // The pty comes from the container's devpts: the mount namespace is joined before the steps run.
    const devNull = fs.openSync('/dev/null', 'r+');
    try {
      proc = await spawn({ ...spec, env: env.some((e) => e.startsWith('TERM=')) ? env : [...env, 'TERM=xterm'], steps: [{ op: 'consolePty' }], terminal: true, stdio: [devNull, devNull, devNull] });
    } finally {
      fs.closeSync(devNull);
    }
    streams.terminal = terminalStreams(proc.terminalFd!);
  } else if (o.stdio) {
    proc = await spawn({ ...spec, stdio: o.stdio });
  } else {
    const piped = await spawnWithPipes({ ...spec, stdio: ['ignore', 'pipe', 'pipe'] });
    proc = piped;
    if (piped.stdout) streams.stdout = piped.stdout;
    if (piped.stderr) streams.stderr = piped.stderr;
  }
  const done = proc.exited.then((status) => ({ exitCode: exitCodeOf(status), signal: status.signal, oomKilled: false }));
  done.catch(() => undefined);
  return { pid: proc.pid, ...streams, wait: () => done, kill: (signal = 'SIGTERM') => proc.kill(signal) };
}
