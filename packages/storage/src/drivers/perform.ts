// The one place that turns mount plans into syscalls (through @tsbuild/native), or into a
// fuse-overlayfs process for the aufs driver on kernels without aufs.
// Required where used, not here: loading it is part of every command's start (README, Performance).
import type * as child from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as native from '@tsbuild/native';
import type { MountFlag } from '@tsbuild/native';
import { isFuseOverlayMount, isOverlayMount, type FuseOverlayMount, type Mount, type MountPlan } from './types';
import { isMountPoint, readMountInfo } from './mountinfo';
import { mkdirpSync } from '../atomic';
import { randomBytes } from '@tsbuild/native';

/** Option words of a generic mount that are mount(2) flags rather than filesystem data. */
const FLAG_WORDS: ReadonlySet<string> = new Set<MountFlag>([
  'ro', 'nosuid', 'nodev', 'noexec', 'sync', 'remount', 'bind', 'rec', 'private', 'slave', 'shared',
  'unbindable', 'noatime', 'nodiratime', 'relatime', 'strictatime',
]);

/** The native call of a kernel (non-FUSE) mount: an overlay, or a generic mount(2). */
function nativeMount(m: Exclude<Mount, FuseOverlayMount>, target: string): { overlay: native.OverlayMountSpec } | { generic: native.MountSpec } {
  if (isOverlayMount(m)) {
    const { lower, upper, work, options } = m;
    return { overlay: { lower, target, options, ...(upper === undefined ? {} : { upper }), ...(work === undefined ? {} : { work }) } };
  }
  const flags = m.options.filter((o) => FLAG_WORDS.has(o)) as MountFlag[];
  const data = m.options.filter((o) => !FLAG_WORDS.has(o)).join(',');
  return { generic: { source: m.source, target, type: m.type, flags, ...(data ? { data } : {}) } };
}

async function performOne(m: Mount, defaultTarget: string): Promise<void> {
  const target = m.target ?? defaultTarget;
  if (isFuseOverlayMount(m)) return mountFuseOverlay(m, target);
  const call = nativeMount(m, target);
  if ('overlay' in call) await native.mountOverlay(call.overlay);
  else await native.mount(call.generic);
}

/**
 * performOne on the calling thread: for the host probes (aufs), which run inside a driver's synchronous
 * open and so cannot await.
 */
function performOneSync(m: Mount, defaultTarget: string): void {
  const target = m.target ?? defaultTarget;
  if (isFuseOverlayMount(m)) return mountFuseOverlaySync(m, target);
  const call = nativeMount(m, target);
  if ('overlay' in call) native.mountOverlaySync(call.overlay);
  else native.mountSync(call.generic);
}

/** Creates the mount point and performs every mount of the plan; on failure undoes what it did. */
export async function performPlan(plan: MountPlan): Promise<void> {
  mkdirpSync(plan.target, 0o755);
  const done: string[] = [];
  try {
    for (const m of plan.mounts) {
      await performOne(m, plan.target);
      done.push(m.target ?? plan.target);
    }
  } catch (err) {
    for (const t of done.reverse()) await detach(t);
    throw err;
  }
}

/** performPlan on the calling thread, for the host probes that run inside a driver's synchronous open. */
export function performPlanSync(plan: MountPlan): void {
  mkdirpSync(plan.target, 0o755);
  const done: string[] = [];
  try {
    for (const m of plan.mounts) {
      performOneSync(m, plan.target);
      done.push(m.target ?? plan.target);
    }
  } catch (err) {
    for (const t of done.reverse()) detachSync(t);
    throw err;
  }
}

/** EINVAL: not a mount point (anymore); ENOENT: gone. Both mean there is nothing left to detach. */
function rethrowUnlessUnmounted(err: unknown): void {
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== 'EINVAL' && code !== 'ENOENT') throw err;
}

/** A lazy unmount: succeeds even when a process still has a cwd or an open file inside. */
export async function detach(target: string): Promise<void> {
  await native.umount(target, { detach: true }).catch(rethrowUnlessUnmounted);
}

/** detach on the calling thread, for the host probes that run inside a driver's synchronous open. */
export function detachSync(target: string): void {
  try {
    native.umountSync(target, { detach: true });
  } catch (err) {
    rethrowUnlessUnmounted(err);
  }
}

/** Detaches every mount stacked on `target`, then removes the (now plain) directory if empty. */
export async function unmountAndRemove(target: string, warn: (msg: string) => void): Promise<void> {
  unmountFuse(target); // a FUSE mount is asked to go cleanly first, so its daemon exits now
  for (let i = 0; i < 64 && isMountPoint(target); i++) {
    try {
      await detach(target);
    } catch (err) {
      warn(`unmounting ${target}: ${(err as Error).message}`);
      return;
    }
  }
  removeMountPoint(target, warn);
}

/** unmountAndRemove on the calling thread, for the host probes that run inside a driver's synchronous open. */
export function unmountAndRemoveSync(target: string, warn: (msg: string) => void): void {
  unmountFuse(target);
  for (let i = 0; i < 64 && isMountPoint(target); i++) {
    try {
      detachSync(target);
    } catch (err) {
      warn(`unmounting ${target}: ${(err as Error).message}`);
      return;
    }
  }
  removeMountPoint(target, warn);
}

function removeMountPoint(target: string, warn: (msg: string) => void): void {
  try {
    fs.rmdirSync(target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') warn(`removing mount point ${target}: ${(err as Error).message}`);
  }
}

// ---- fuse-overlayfs ----

/** How a fuse-overlayfs mount is run: pure, so the escaping is testable without mounting. */
export interface FuseOverlayCommand {
  command: 'fuse-overlayfs';
  args: string[];
  /** Set when the layers are named relative to it (a layer path held a ':'). */
  cwd?: string;
  env: Record<string, string>;
}

/** Linux's MAX_ARG_STRLEN: the longest single argv string (the `-o` value). */
const MAX_ARG = 128 * 1024 - 1;

/** libfuse's `-o` parser reads `\,` as a literal comma and `\\` as a backslash. */
function fuseOptEscape(value: string): string {
  return value.replace(/[\\,]/g, (c) => `\\${c}`);
}

function commonDir(paths: string[]): string {
  let dir = path.dirname(paths[0]!);
  while (!paths.every((p) => p === dir || p.startsWith(dir === '/' ? '/' : `${dir}/`))) dir = path.dirname(dir);
  return dir;
}

/**
 * The fuse-overlayfs invocation for a mount (foreground `-f`: the daemon stays our child, so it is
 * reaped; an init that does not reap would collect zombies of a daemonized one). fuse-overlayfs (1.10)
 * splits lowerdir at every ':' and has no escape for it, so when a lower path holds one, the lowers are
 * named relative to their common directory, which becomes the process's cwd. The upper dir cannot be
 * helped: fuse-overlayfs splits its real path (after realpath) the same way.
 */
export function fuseOverlayCommand(m: FuseOverlayMount, target: string): FuseOverlayCommand {
  if (m.lower.length === 0) throw new Error('fuse-overlayfs: a mount needs at least one lower directory');
  if (m.upper?.includes(':')) {
    throw new Error(`fuse-overlayfs cannot use the upper dir ${m.upper}: it splits the path at ':' and has no escape for it`);
  }
  const lowers = m.lower.map((p) => path.resolve(p));
  let cwd: string | undefined;
  let names = lowers;
  if (lowers.some((p) => p.includes(':'))) {
    const base = commonDir(lowers);
    cwd = base;
    names = lowers.map((p) => path.relative(base, p) || '.');
    const bad = names.findIndex((n) => n.includes(':'));
    if (bad >= 0) throw new Error(`fuse-overlayfs cannot stack ${lowers[bad]}: it splits layer lists at every ':' and the name holds one`);
  }
  const opts = [`lowerdir=${names.map(fuseOptEscape).join(':')}`];
  if (m.upper) opts.push(`upperdir=${fuseOptEscape(path.resolve(m.upper))}`);
  if (m.work) opts.push(`workdir=${fuseOptEscape(path.resolve(m.work))}`);
  opts.push(...m.options);
  const o = opts.join(',');
  if (Buffer.byteLength(o) > MAX_ARG) {
    throw Object.assign(new Error(`fuse-overlayfs: the options of ${m.lower.length} layers are ${Buffer.byteLength(o)} bytes, more than one argument can hold (${MAX_ARG})`), { code: 'E2BIG' });
  }
  return { command: 'fuse-overlayfs', args: ['-f', '-o', o, target], ...(cwd ? { cwd } : {}), env: { ...m.env } };
}

/** How long a fuse-overlayfs process may take to put its mount in place. */
const FUSE_MOUNT_TIMEOUT_MS = 30_000;

/** The daemon serving each fuse-overlayfs mount point of this process. */
const fuseDaemons = new Map<string, child.ChildProcess>();
/** Daemons whose mount was unmounted cleanly: they exit on their own, shortly. */
const exitingDaemons = new Map<string, Promise<void>>();

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Whether a child process still runs (a zombie has exited; a reaped one is gone from /proc). */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function readAll(fd: number): string {
  const size = fs.fstatSync(fd).size;
  const buf = Buffer.alloc(Math.min(size, 64 * 1024));
  const n = fs.readSync(fd, buf, 0, buf.length, 0);
  return buf.subarray(0, n).toString('utf8').trim();
}

/** A fuse-overlayfs process started for a mount, until its mount is in place. */
interface FuseStart {
  proc: child.ChildProcess;
  pid: number;
  target: string;
  /** Its stderr: an unlinked file, so there is nothing to drain while we wait and nothing left behind. */
  errFd: number;
  deadline: number;
}

function startFuseOverlay(m: FuseOverlayMount, target: string): FuseStart {
  const cmd = fuseOverlayCommand(m, target);
  const errFile = path.join(os.tmpdir(), `tsbuild-fuse-${process.pid}-${randomBytes(6).toString('hex')}`);
  const errFd = fs.openSync(errFile, 'w+', 0o600);
  fs.unlinkSync(errFile);
  try {
    const proc = (require('node:child_process') as typeof child).spawn(cmd.command, cmd.args, {
      cwd: cmd.cwd,
      env: { ...process.env, ...cmd.env },
      stdio: ['ignore', 'ignore', errFd],
      detached: true, // its own session: a ^C meant for us does not pull the filesystem away
    });
    proc.on('error', () => {}); // a failed spawn is reported below (no pid)
    const pid = proc.pid;
    if (pid === undefined) throw new Error('cannot run fuse-overlayfs: is it installed? (apt-get install fuse-overlayfs)');
    return { proc, pid, target, errFd, deadline: Date.now() + FUSE_MOUNT_TIMEOUT_MS };
  } catch (err) {
    fs.closeSync(errFd);
    throw err;
  }
}

/** true once the mount is in place (the daemon is then kept); throws when the daemon failed or timed out. */
function fuseMounted(s: FuseStart): boolean {
  if (isMountPoint(s.target)) {
    s.proc.unref(); // the mount may outlive our event loop's interest; the daemon is still reaped
    fuseDaemons.set(s.target, s.proc);
    return true;
  }
  if (!running(s.pid)) {
    const why = readAll(s.errFd).split('\n').filter((l) => !l.startsWith('unknown argument ignored')).join('; ');
    throw new Error(`fuse-overlayfs failed: ${why || 'it exited without mounting'}`);
  }
  if (Date.now() > s.deadline) {
    process.kill(s.pid, 'SIGKILL');
    throw new Error(`fuse-overlayfs did not mount ${s.target} within ${FUSE_MOUNT_TIMEOUT_MS / 1000} s`);
  }
  return false;
}

/** Spawns fuse-overlayfs and resolves once its mount is in place (polling, with the event loop free). */
async function mountFuseOverlay(m: FuseOverlayMount, target: string): Promise<void> {
  const started = startFuseOverlay(m, target);
  try {
    for (let wait = 1; !fuseMounted(started); wait = Math.min(wait * 2, 20)) {
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  } finally {
    fs.closeSync(started.errFd);
  }
}

/** mountFuseOverlay blocking the calling thread, for the aufs host probe (inside a synchronous open). */
function mountFuseOverlaySync(m: FuseOverlayMount, target: string): void {
  const started = startFuseOverlay(m, target);
  try {
    for (let wait = 1; !fuseMounted(started); wait = Math.min(wait * 2, 20)) sleepSync(wait);
  } finally {
    fs.closeSync(started.errFd);
  }
}

function isFuseMountPoint(target: string): boolean {
  const t = path.resolve(target);
  const top = readMountInfo().filter((e) => e.mountPoint === t).pop();
  return top !== undefined && top.fsType.startsWith('fuse');
}

/**
 * If `target` is a FUSE mount: `fusermount3 -u` (then `fusermount -u`), which lets the daemon exit.
 * A busy mount stays; the caller detaches it lazily and the daemon exits once its last user is gone.
 */
export function unmountFuse(target: string): boolean {
  const t = path.resolve(target);
  if (!isFuseMountPoint(t)) return false;
  for (const tool of ['fusermount3', 'fusermount']) {
    const r = (require('node:child_process') as typeof child).spawnSync(tool, ['-u', t], { stdio: 'ignore' });
    if (r.status === 0) {
      const proc = fuseDaemons.get(t);
      fuseDaemons.delete(t);
      if (proc && proc.exitCode === null && proc.signalCode === null) {
        exitingDaemons.set(t, new Promise((resolve) => proc.once('exit', () => resolve())));
      }
      return true;
    }
    if (!r.error) break; // the tool ran and refused (busy): another one would too
  }
  fuseDaemons.delete(t); // detached lazily by the caller: nothing to wait for
  return false;
}

/**
 * Resolves once the fuse-overlayfs daemon of a cleanly unmounted `target` has exited (and been
 * reaped), or after `timeoutMs`. Returns whether it is gone.
 */
export async function settleFuseDaemon(target: string, timeoutMs = 10_000): Promise<boolean> {
  const t = path.resolve(target);
  const exiting = exitingDaemons.get(t);
  if (!exiting) return true;
  let timer: NodeJS.Timeout | undefined;
  const gone = await Promise.race([
    exiting.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
  ]);
  clearTimeout(timer);
  if (exitingDaemons.get(t) === exiting) exitingDaemons.delete(t);
  return gone;
}
