// spawn(): start a process in new namespaces, running prepared setup steps in the child (REFERENCE §4.9).
// This file validates and normalizes the spec into plain numbers and strings; cc/spawn*.cc clones from
// a libuv pool thread and watches the pidfd in the event loop.
import * as fs from 'node:fs';
// Required where used, not here: loading it is part of every command's start (README, Performance).
import type * as net from 'node:net';
import * as os from 'node:os';
import * as util from 'node:util';
import type { Readable, Writable } from 'node:stream';
import { binding, nativeBinaries } from './binding';
import type { NativeExitCallback, NativeProcess, NativeSpawnSpec, NativeSpawnStep } from './binding';
import { mknodArgs } from './fsops';
import { MOUNT_FLAGS, NAMESPACE_FLAGS, checkMountData, mountFlagBits } from './mount';
import type {
  Capabilities, ContainerProcess, ExitStatus, Namespace, Rlimit, Signal, SpawnSpec,
} from './types';
import {
  checkArray, checkFd, checkInteger, checkMaxBytes, checkName, checkObject, checkOptionalBoolean, checkString, fail,
} from './validate';

/** The static init built with the loaded addon (cc/init/init.c): pass it as SpawnSpec.initBinary. */
export const INIT_BINARY = nativeBinaries.init;

/** The PATH used when the container's env has none (Docker's default). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Capability numbers (linux/capability.h), by name without the CAP_ prefix. */
export const CAPABILITIES: Readonly<Record<string, number>> = {
  CHOWN: 0, DAC_OVERRIDE: 1, DAC_READ_SEARCH: 2, FOWNER: 3, FSETID: 4, KILL: 5, SETGID: 6, SETUID: 7,
  SETPCAP: 8, LINUX_IMMUTABLE: 9, NET_BIND_SERVICE: 10, NET_BROADCAST: 11, NET_ADMIN: 12, NET_RAW: 13,
  IPC_LOCK: 14, IPC_OWNER: 15, SYS_MODULE: 16, SYS_RAWIO: 17, SYS_CHROOT: 18, SYS_PTRACE: 19, SYS_PACCT: 20,
  SYS_ADMIN: 21, SYS_BOOT: 22, SYS_NICE: 23, SYS_RESOURCE: 24, SYS_TIME: 25, SYS_TTY_CONFIG: 26, MKNOD: 27,
  LEASE: 28, AUDIT_WRITE: 29, AUDIT_CONTROL: 30, SETFCAP: 31, MAC_OVERRIDE: 32, MAC_ADMIN: 33, SYSLOG: 34,
  WAKE_ALARM: 35, BLOCK_SUSPEND: 36, AUDIT_READ: 37, PERFMON: 38, BPF: 39, CHECKPOINT_RESTORE: 40,
};

/** Docker's default capability set (moby/moby:daemon/pkg/oci/caps/defaults.go), also BuildKit's RUN set. */
export const DOCKER_DEFAULT_CAPABILITIES: readonly string[] = [
  'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP',
  'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE',
];

/** Docker's capability sets for a process: bounding = permitted = effective, inheritable and ambient empty. */
export function dockerCapabilities(names: readonly string[] = DOCKER_DEFAULT_CAPABILITIES): Capabilities {
  return { bounding: [...names], effective: [...names], permitted: [...names], inheritable: [], ambient: [] };
}

/** RLIMIT_* numbers on Linux, by lower-case name without the prefix. */
export const RLIMITS: Readonly<Record<string, number>> = {
  cpu: 0, fsize: 1, data: 2, stack: 3, core: 4, rss: 5, nproc: 6, nofile: 7, memlock: 8, as: 9, locks: 10,
  sigpending: 11, msgqueue: 12, nice: 13, rtprio: 14, rttime: 15,
};

const CLONE_NEWPID = NAMESPACE_FLAGS.pid;
const MS_BIND = MOUNT_FLAGS.bind;
const MAX_TREE_SLOTS = 64;
const ATTACH_FLAGS: readonly string[] = ['ro', 'nosuid', 'nodev', 'noexec'];
const ID_MAX = 0xfffffffe;
const BPF_MAXINSNS = 4096;
const SOCK_FILTER_SIZE = 8;
// SECCOMP_FILTER_FLAG_TSYNC | LOG | SPEC_ALLOW: the ones that need no listener or extra fd.
const SECCOMP_FLAGS_ALLOWED = 0x1 | 0x2 | 0x4;

// ---- signals and exit statuses ----

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(
  Object.entries(os.constants.signals).map(([name, num]) => [num, name as NodeJS.Signals]),
);

/** A signal name or number as its number (TypeError when unknown). */
export function signalNumber(signal: Signal, fn = 'kill'): number {
  if (typeof signal === 'number') return checkInteger(fn, 'signal', signal, 0, 64);
  const num = (os.constants.signals as Record<string, number>)[signal];
  if (num === undefined) fail(fn, 'signal', 'a signal name such as SIGTERM', signal);
  return num;
}

/** The shell's view of an exit status: the code, or 128 + the signal number. */
export function exitCodeOf(status: ExitStatus): number {
  if (status.exitCode !== null) return status.exitCode;
  return 128 + (status.signal ? os.constants.signals[status.signal] : 0);
}

// ---- host facts, probed once ----

let lastCapCache: number | undefined;
function lastCap(): number {
  if (lastCapCache === undefined) {
    lastCapCache = Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
  }
  return lastCapCache;
}

function hasCapSysResource(): boolean {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return eff !== null && (BigInt('0x' + eff[1]!) & (1n << BigInt(CAPABILITIES.SYS_RESOURCE!))) !== 0n;
}

// ---- normalization ----

const FN = 'spawn';

/** An argv or env list: strings without NUL bytes; empty strings are valid arguments (execve passes them). */
function checkStrings(what: string, value: unknown, allowEmptyList = false): string[] {
  const arr = checkArray(FN, what, value);
  if (!allowEmptyList && arr.length === 0) fail(FN, what, 'a non-empty array', value);
  return arr.map((v) => {
    if (typeof v !== 'string' || v.includes('\0')) fail(FN, `each of ${what}`, 'a string without NUL bytes', v);
    return v;
  });
}

function checkAbsolute(what: string, value: unknown): string {
  const p = checkString(FN, what, value);
  if (!p.startsWith('/')) fail(FN, what, 'an absolute path', value);
  return p;
}

function checkMode(what: string, value: unknown, def: number): number {
  return value === undefined ? def : checkInteger(FN, what, value, 0, 0o7777);
}

/** Where execve will look for args[0]: `path`, args[0] itself when it has a slash, else each PATH dir. */
export function execCandidates(args: string[], env: string[], file?: string): string[] {
  if (file !== undefined) return [file];
  const cmd = args[0] ?? '';
  // An empty command names no file (execvp fails with ENOENT; docker: not found, 127).
  if (cmd === '') return [];
  if (cmd.includes('/')) return [cmd];
  let searchPath = DEFAULT_PATH;
  for (const entry of env) if (entry.startsWith('PATH=')) searchPath = entry.slice(5);
  return searchPath.split(':').map((dir) => (dir === '' ? '.' : dir.replace(/\/+$/, '')) + '/' + cmd);
}

function capMask(what: string, names: unknown, last: number): number {
  let mask = 0n;
  for (const raw of checkArray(FN, what, names)) {
    const name = checkString(FN, `each of ${what}`, raw).toUpperCase().replace(/^CAP_/, '');
    const bit = CAPABILITIES[name];
    if (bit === undefined) fail(FN, `each of ${what}`, 'a capability name such as CHOWN', raw);
    if (bit > last) throw new Error(`spawn: capability ${name} is not supported by this kernel (cap_last_cap ${last})`);
    mask |= 1n << BigInt(bit);
  }
  return Number(mask);
}

function normalizeCaps(value: unknown): NativeSpawnSpec['caps'] {
  if (value === undefined) return null;
  const c = checkObject(FN, 'capabilities', value);
  const last = lastCap();
  return {
    bounding: capMask('capabilities.bounding', c.bounding, last),
    effective: capMask('capabilities.effective', c.effective, last),
    permitted: capMask('capabilities.permitted', c.permitted, last),
    inheritable: capMask('capabilities.inheritable', c.inheritable, last),
    ambient: capMask('capabilities.ambient', c.ambient, last),
  };
}

function checkLimitValue(what: string, value: unknown): number {
  if (value === Infinity || value === -1) return Infinity;
  return checkInteger(FN, what, value, 0, Number.MAX_SAFE_INTEGER);
}

/** Validates rlimits (an unknown or duplicate type is an error, as in OCI) and fits hard limits to the host. */
export function normalizeRlimits(value: unknown, clamp = true): NativeSpawnSpec['rlimits'] {
  if (value === undefined) return [];
  const seen = new Set<string>();
  const canRaise = hasCapSysResource();
  return checkArray(FN, 'rlimits', value).map((raw) => {
    const r = checkObject(FN, 'each rlimit', raw) as Partial<Rlimit>;
    const name = checkString(FN, 'rlimit type', r.type).toLowerCase().replace(/^rlimit_/, '');
    const resource = RLIMITS[name];
    if (resource === undefined) fail(FN, 'rlimit type', `one of ${Object.keys(RLIMITS).join(', ')}`, r.type);
    if (seen.has(name)) throw new TypeError(`spawn: rlimit ${name} is given twice`);
    seen.add(name);
    let soft = checkLimitValue(`rlimit ${name} soft`, r.soft);
    let hard = checkLimitValue(`rlimit ${name} hard`, r.hard);
    if (soft > hard) throw new RangeError(`spawn: rlimit ${name}: the soft limit ${soft} is above the hard limit ${hard}`);
    const hostHard = binding.getrlimit(resource)[1];
    if (hard > hostHard && !canRaise) {
      if (!clamp) {
        throw Object.assign(
          new Error(`spawn: rlimit ${name}: the hard limit ${hard} is above this host's ${hostHard}, and raising it needs CAP_SYS_RESOURCE`),
          { code: 'EPERM' },
        );
      }
      hard = hostHard;
      soft = Math.min(soft, hard);
    }
    return { name, resource, soft, hard };
  });
}

function normalizeStep(raw: unknown, index: number, openSlots: Set<number>): NativeSpawnStep {
  const what = `steps[${index}]`;
  const s = checkObject(FN, what, raw);
  const optional = checkOptionalBoolean(FN, `${what}.optional`, s.optional);
  const str = (key: string) => checkString(FN, `${what}.${key}`, s[key]);
  const optStr = (key: string) => (s[key] === undefined ? undefined : str(key));
  switch (s.op) {
    case 'mount':
      return {
        op: 'mount', path: str('target'), source: optStr('source'), fstype: optStr('type'),
        data: checkMountData(FN, s.data) ?? undefined, flags: mountFlagBits(s.flags, FN, `${what}.flags`), optional,
      };
    case 'bindRemount': {
      const target = str('target');
      return {
        op: 'bindRemount', path: target, source: optStr('source') ?? target,
        flags: (mountFlagBits(s.flags, FN, `${what}.flags`) & ~MOUNT_FLAGS.remount) | MS_BIND, optional,
      };
    }
    case 'mkdir':
      return {
        op: 'mkdir', path: str('path'), mode: checkMode(`${what}.mode`, s.mode, 0o755),
        parents: checkOptionalBoolean(FN, `${what}.parents`, s.parents), optional,
      };
    case 'mknod': {
      const { mode, major, minor } = mknodArgs(FN, s);
      return { op: 'mknod', path: str('path'), mode, major, minor, optional };
    }
    case 'symlink':
      return { op: 'symlink', path: str('path'), source: str('target'), optional };
    case 'writeFile': {
      if (typeof s.data !== 'string') fail(FN, `${what}.data`, 'a string', s.data);
      return {
        op: 'writeFile', path: str('path'), source: s.data, mode: checkMode(`${what}.mode`, s.mode, 0o644),
        ifMissing: checkOptionalBoolean(FN, `${what}.ifMissing`, s.ifMissing), optional,
      };
    }
    case 'pivotRoot':
    case 'chroot':
      return { op: s.op, path: str('root') };
    case 'maskPath':
    case 'readonlyPath':
    case 'chdir':
      return { op: s.op, path: str('path'), optional: s.op === 'chdir' ? optional : undefined };
    case 'sethostname':
      return { op: 'sethostname', path: checkMaxBytes(FN, `${what}.name`, str('name'), 64) };
    case 'umask':
      return { op: 'umask', mode: checkInteger(FN, `${what}.mask`, s.mask, 0, 0o777) };
    case 'openTree': {
      const slot = checkInteger(FN, `${what}.slot`, s.slot, 0, MAX_TREE_SLOTS - 1);
      if (openSlots.has(slot)) throw new TypeError(`spawn: ${what}: tree slot ${slot} is already open`);
      openSlots.add(slot);
      return {
        op: 'openTree', source: str('source'), slot,
        recursive: s.recursive === undefined ? true : checkOptionalBoolean(FN, `${what}.recursive`, s.recursive),
      };
    }
    case 'attachTree': {
      const slot = checkInteger(FN, `${what}.slot`, s.slot, 0, MAX_TREE_SLOTS - 1);
      if (!openSlots.delete(slot)) throw new TypeError(`spawn: ${what}: no earlier openTree step fills slot ${slot}`);
      for (const f of (s.flags as unknown[] | undefined) ?? []) {
        if (!ATTACH_FLAGS.includes(f as string)) fail(FN, `each of ${what}.flags`, `one of ${ATTACH_FLAGS.join(', ')}`, f);
      }
      return {
        op: 'attachTree', path: str('target'), slot, flags: mountFlagBits(s.flags, FN, `${what}.flags`),
        recursive: s.recursive === undefined ? true : checkOptionalBoolean(FN, `${what}.recursive`, s.recursive), optional,
      };
    }
    case 'consolePty':
      return { op: 'consolePty', path: s.ptmx === undefined ? '/dev/pts/ptmx' : str('ptmx') };
    case 'loopbackUp':
      return { op: 'loopbackUp' };
    default:
      return fail(FN, `${what}.op`, 'a SetupStep op such as mount, mkdir or pivotRoot', s.op);
  }
}

function checkNamespace(what: string, value: unknown): Namespace {
  checkName(FN, what, value, NAMESPACE_FLAGS);
  if (value === 'user') {
    throw new Error('spawn: user namespaces are not supported (spawn writes no uid/gid maps); run as root without one');
  }
  return value as Namespace;
}

function normalizeSeccomp(value: unknown): Pick<NativeSpawnSpec, 'seccomp' | 'seccompFlags'> {
  if (value === undefined) return {};
  const o = checkObject(FN, 'seccomp', value);
  if (!(o.filter instanceof Uint8Array)) fail(FN, 'seccomp.filter', 'a Buffer of struct sock_filter', o.filter);
  const filter = o.filter as Uint8Array;
  const count = filter.length / SOCK_FILTER_SIZE;
  if (!Number.isInteger(count) || count < 1 || count > BPF_MAXINSNS) {
    fail(FN, 'seccomp.filter', `1 to ${BPF_MAXINSNS} instructions of ${SOCK_FILTER_SIZE} bytes`, `${filter.length} bytes`);
  }
  const flags = o.flags === undefined ? 0 : checkInteger(FN, 'seccomp.flags', o.flags, 0, SECCOMP_FLAGS_ALLOWED);
  return { seccomp: Buffer.from(filter), seccompFlags: flags };
}

/** Validates a SpawnSpec and turns it into what the addon takes. Exported for tests and benchmarks. */
export function normalizeSpawnSpec(spec: SpawnSpec): NativeSpawnSpec {
  const s = checkObject(FN, 'spec', spec) as Partial<SpawnSpec>;
  const args = checkStrings('args', s.args);
  const env = checkStrings('env', s.env, true);
  for (const e of env) if (!e.includes('=')) fail(FN, 'each of env', 'a NAME=value string', e);
  const file = s.path === undefined ? undefined : checkString(FN, 'path', s.path);

  const seen = new Set<Namespace>();
  let cloneFlags = 0;
  for (const ns of checkArray(FN, 'namespaces', s.namespaces ?? [])) {
    const name = checkNamespace('each of namespaces', ns);
    if (seen.has(name)) throw new TypeError(`spawn: namespace ${name} is listed twice`);
    seen.add(name);
    cloneFlags |= NAMESPACE_FLAGS[name];
  }
  const joins = checkArray(FN, 'joinNamespaces', s.joinNamespaces ?? []).map((raw, i) => {
    const j = checkObject(FN, `joinNamespaces[${i}]`, raw);
    const type = checkNamespace(`joinNamespaces[${i}].type`, j.type);
    if (seen.has(type)) throw new TypeError(`spawn: namespace ${type} is both created and joined, or joined twice`);
    seen.add(type);
    return { type: NAMESPACE_FLAGS[type], path: checkAbsolute(`joinNamespaces[${i}].path`, j.path) };
  });

  const openSlots = new Set<number>();
  const steps = checkArray(FN, 'steps', s.steps ?? []).map((raw, i) => normalizeStep(raw, i, openSlots));
  if (openSlots.size > 0) throw new TypeError(`spawn: tree slot ${[...openSlots][0]} is opened but never attached`);

  const stdio = checkArray(FN, 'stdio', s.stdio);
  if (stdio.length !== 3) fail(FN, 'stdio', 'three fds [stdin, stdout, stderr]', s.stdio);
  const setIds = s.uid !== undefined || s.gid !== undefined || s.additionalGids !== undefined;
  const mode = s.cloneMode ?? 'auto';
  if (mode !== 'auto' && mode !== 'vfork' && mode !== 'fork') fail(FN, 'cloneMode', "'auto', 'vfork' or 'fork'", mode);
  const ownPidNs = (cloneFlags & CLONE_NEWPID) !== 0;

  return {
    argv: args,
    envp: env,
    candidates: execCandidates(args, env, file),
    cloneFlags,
    vfork: mode === 'vfork' || (mode === 'auto' && ownPidNs),
    joins,
    cgroupDir: s.cgroupDir === undefined ? null : checkAbsolute('cgroupDir', s.cgroupDir),
    cgroupProcs: (s.cgroupProcs ?? []).map((p, i) => checkAbsolute(`cgroupProcs[${i}]`, p)),
    steps,
    cwd: s.cwd === undefined ? null : checkAbsolute('cwd', s.cwd),
    setIds,
    uid: s.uid === undefined ? 0 : checkInteger(FN, 'uid', s.uid, 0, ID_MAX),
    gid: s.gid === undefined ? 0 : checkInteger(FN, 'gid', s.gid, 0, ID_MAX),
    groups: checkArray(FN, 'additionalGids', s.additionalGids ?? []).map((g) => checkInteger(FN, 'each of additionalGids', g, 0, ID_MAX)),
    rlimits: normalizeRlimits(s.rlimits, s.clampRlimits !== false),
    caps: normalizeCaps(s.capabilities),
    lastCap: s.capabilities === undefined ? 0 : lastCap(),
    noNewPrivs: checkOptionalBoolean(FN, 'noNewPrivileges', s.noNewPrivileges),
    ...normalizeSeccomp(s.seccomp),
    terminal: checkOptionalBoolean(FN, 'terminal', s.terminal),
    pdeathsig: s.parentDeathSignal === undefined ? 0 : signalNumber(s.parentDeathSignal, FN),
    stdio: [checkFd(FN, 'stdio[0]', stdio[0]), checkFd(FN, 'stdio[1]', stdio[1]), checkFd(FN, 'stdio[2]', stdio[2])],
    initPath: s.initBinary === undefined ? null : checkAbsolute('initBinary', s.initBinary),
    initExecOnly: checkOptionalBoolean(FN, 'initExecOnly', s.initExecOnly),
  };
}

// ---- the process ----

class SpawnedProcess implements ContainerProcess {
  readonly terminalFd?: number;

  constructor(
    private readonly handle: NativeProcess,
    readonly exited: Promise<ExitStatus>,
  ) {
    if (handle.terminalFd !== undefined) this.terminalFd = handle.terminalFd;
  }

  get pid(): number {
    return this.handle.pid;
  }

  kill(signal: Signal = 'SIGTERM'): void {
    this.handle.kill(signalNumber(signal));
  }
}

/**
 * Starts a process as described by `spec`. Resolves once execve succeeded; rejects with a SpawnError
 * (code, syscall, path, exitCode 125/126/127) when the child failed first, after reaping it.
 */
export async function spawn(spec: SpawnSpec): Promise<ContainerProcess> {
  const native = normalizeSpawnSpec(spec);
  let onExit!: NativeExitCallback;
  const exited = new Promise<ExitStatus>((resolve, reject) => {
    onExit = (code, signo, waitErrno) => {
      if (waitErrno !== 0) {
        const code = util.getSystemErrorName(-waitErrno);
        reject(Object.assign(new Error(`waitid: process was reaped elsewhere (errno ${waitErrno})`), { code, errno: waitErrno, syscall: 'waitid' }));
        return;
      }
      resolve({ exitCode: code, signal: signo === null ? null : (SIGNAL_NAMES.get(signo) ?? null) });
    };
  });
  // Rejects with a SpawnError built by the addon (message, code, syscall, path, exitCode).
  const handle: NativeProcess = await binding.spawn(native, onExit);
  return new SpawnedProcess(handle, exited);
}

// ---- convenience: Node streams over pipes ----

export type StdioOption = 'pipe' | 'ignore' | 'inherit' | number;

export interface PipedProcess extends ContainerProcess {
  stdin: Writable | null;
  stdout: Readable | null;
  stderr: Readable | null;
}

/**
 * spawn() with pipes: each of stdin/stdout/stderr is 'pipe' (a net.Socket over the parent's end),
 * 'ignore' (/dev/null), 'inherit' (this process's fd) or an fd. Default ['ignore', 'pipe', 'pipe'].
 * The child's ends are closed in the parent once spawn settles.
 */
export async function spawnWithPipes(
  spec: Omit<SpawnSpec, 'stdio'> & { stdio?: [StdioOption, StdioOption, StdioOption] },
): Promise<PipedProcess> {
  const options = spec.stdio ?? ['ignore', 'pipe', 'pipe'];
  const childFds: number[] = [];
  const toClose: number[] = [];
  const parentEnds: (number | null)[] = [null, null, null];
  try {
    options.forEach((opt, i) => {
      if (opt === 'pipe') {
        const [r, w] = binding.pipe();
        childFds.push(i === 0 ? r : w);
        parentEnds[i] = i === 0 ? w : r;
        toClose.push(i === 0 ? r : w);
      } else if (opt === 'ignore') {
        const fd = fs.openSync('/dev/null', i === 0 ? 'r' : 'w');
        childFds.push(fd);
        toClose.push(fd);
      } else if (opt === 'inherit') {
        childFds.push(i);
      } else {
        childFds.push(checkFd(FN, `stdio[${i}]`, opt));
      }
    });
    const proc = await spawn({ ...spec, stdio: childFds as [number, number, number] });
    const sockets = parentEnds.map((fd, i) =>
      fd === null ? null : new (require('node:net') as typeof net).Socket({ fd, readable: i !== 0, writable: i === 0 }),
    );
    parentEnds.fill(null);
    return Object.assign(proc, {
      stdin: sockets[0] as Writable | null,
      stdout: sockets[1] as Readable | null,
      stderr: sockets[2] as Readable | null,
    });
  } finally {
    for (const fd of toClose) fs.closeSync(fd);
    for (const fd of parentEnds) if (fd !== null) fs.closeSync(fd);
  }
}

/** Reads a stream to its end as a string (for short outputs). */
export async function readAll(stream: Readable | null): Promise<string> {
  if (!stream) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Marks an fd close-on-exec or not (spawn closes every fd >= 3 in the child anyway). */
export function setCloexec(fd: number, on: boolean): void {
  if (typeof on !== 'boolean') fail('setCloexec', 'on', 'a boolean', on);
  binding.setCloexec(checkFd('setCloexec', 'fd', fd), on);
}
