// The rootless mode (issue 15): an ordinary user runs tsbuild as root of a user namespace that maps
// the user to 0 and the user's subordinate ids (/etc/subuid, /etc/subgid) to 1..N, with a mount
// namespace of its own, the way BuildKit's RootlessKit and buildah's unshare do. Node is multithreaded
// and cannot unshare a user namespace itself, so the static `tsbuild-userns` helper does and waits
// while this process, still outside, maps it with the setuid newuidmap/newgidmap (package uidmap).
// Inside, tsbuild is root: what differs is read from here (overlay's userxattr, no cgroups, no mknod).
// Required where used, not here: loading it is part of every command's start (README, Performance).
import type * as childProcess from 'node:child_process';
import type { Socket } from 'node:net';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { flockWait, nativeBinaries } from '@tsbuild/native';
import { TsbuildError, shortName } from './errors';

/** A contiguous block of ids: `inside` maps to `outside` .. `outside + count - 1`. */
export interface IdMapping {
  inside: number;
  outside: number;
  count: number;
}

/** The fewest subordinate ids a user needs (what useradd gives and images with service users need). */
export const MIN_SUBORDINATE_IDS = 65536;

const IDENTITY_MAP = '0 0 4294967295';

/** Parses /proc/PID/uid_map or gid_map text. */
export function parseIdMap(text: string): IdMapping[] {
  return text
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number))
    .filter((f) => f.length === 3 && f.every(Number.isInteger))
    .map(([inside, outside, count]) => ({ inside: inside!, outside: outside!, count: count! }));
}

let ownMapsCache: { uid: IdMapping[]; gid: IdMapping[] } | null | undefined;

/**
 * This process's uid and gid maps when it runs in a user namespace other than the initial one (the
 * rootless mode), else null. Read once.
 */
export function userNamespaceMaps(): { uid: IdMapping[]; gid: IdMapping[] } | null {
  if (ownMapsCache !== undefined) return ownMapsCache;
  let uid: string;
  try {
    uid = fs.readFileSync('/proc/self/uid_map', 'utf8');
  } catch {
    return (ownMapsCache = null);
  }
  ownMapsCache = uid.trim().split(/\s+/).join(' ') === IDENTITY_MAP
    ? null
    : { uid: parseIdMap(uid), gid: parseIdMap(fs.readFileSync('/proc/self/gid_map', 'utf8')) };
  return ownMapsCache;
}

/** True in a user namespace (tsbuild's rootless mode): mounts take `userxattr`, there is no mknod, no cgroup. */
export function inUserNamespace(): boolean {
  return userNamespaceMaps() !== null;
}

/** True when tsbuild cannot act as the host's root: not uid 0, or uid 0 of a user namespace. */
export function isRootless(): boolean {
  return (typeof process.geteuid === 'function' && process.geteuid() !== 0) || inUserNamespace();
}

/** The default storage root: /var/lib/tsbuild for root, else $XDG_DATA_HOME/tsbuild or ~/.local/share/tsbuild. */
export function defaultStorageRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (!isRootless()) return '/var/lib/tsbuild';
  const xdg = env.XDG_DATA_HOME;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'tsbuild');
  return path.join(env.HOME || os.homedir(), '.local', 'share', 'tsbuild');
}

function mapped(maps: IdMapping[], id: number): boolean {
  return maps.some((m) => id >= m.inside && id < m.inside + m.count);
}

/** The ids inside a map as text, adjacent blocks joined: `0-65536`. */
function mappedRange(maps: IdMapping[]): string {
  const spans: [number, number][] = [];
  for (const m of [...maps].sort((a, b) => a.inside - b.inside)) {
    const last = spans[spans.length - 1];
    if (last && last[1] + 1 === m.inside) last[1] = m.inside + m.count - 1;
    else spans.push([m.inside, m.inside + m.count - 1]);
  }
  return spans.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(', ');
}

/** A file's owner is outside the user namespace's ids (rootless); the message names the file and the id. */
export class UnmappedIdError extends TsbuildError {
  constructor(message: string, options: { cause: unknown }) {
    super('EUNMAPPEDID', message, options);
  }
}

/**
 * A failed chown explained: in the rootless mode the kernel's EINVAL for an id outside the mapping
 * becomes a one-line error naming the file (`name`: how the user knows it, e.g. its path in the image)
 * and the id; any other error is returned as it is.
 */
export function explainChownError(err: unknown, uid: number, gid: number, name: string): unknown {
  const maps = (err as NodeJS.ErrnoException)?.code === 'EINVAL' ? userNamespaceMaps() : null;
  if (!maps) return err;
  const [kind, id, table] = !mapped(maps.uid, uid) ? ['uid', uid, maps.uid] as const : ['gid', gid, maps.gid] as const;
  return new UnmappedIdError(
    `${shortName(name)} is owned by ${kind} ${id}, outside the ${kind}s this user namespace maps (${mappedRange(table)}); ` +
      `give the user more subordinate ids in /etc/sub${kind}`,
    { cause: err },
  );
}

/** lchown that never falls back to another owner: see explainChownError. */
export function lchownMapped(file: string | Buffer, uid: number, gid: number, name: string): void {
  try {
    fs.lchownSync(file, uid, gid);
  } catch (err) {
    throw explainChownError(err, uid, gid, name);
  }
}

// ---- entering the namespace ----

/** The user's blocks in /etc/subuid or /etc/subgid (lines `name-or-id:start:count`), in file order. */
export function subordinateRanges(text: string, user: { name: string; id: number }): { start: number; count: number }[] {
  const out: { start: number; count: number }[] = [];
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if (who !== user.name && who !== String(user.id)) continue;
    const s = Number(start);
    const c = Number(count);
    if (Number.isInteger(s) && Number.isInteger(c) && s >= 0 && c > 0) out.push({ start: s, count: c });
  }
  return out;
}

/** newuidmap/newgidmap arguments: the user is 0, the subordinate blocks follow from 1. */
export function namespaceMapping(ownId: number, ranges: { start: number; count: number }[]): IdMapping[] {
  const maps: IdMapping[] = [{ inside: 0, outside: ownId, count: 1 }];
  let next = 1;
  for (const r of ranges) {
    maps.push({ inside: next, outside: r.start, count: r.count });
    next += r.count;
  }
  return maps;
}

export interface RootlessUser {
  name: string;
  uid: number;
  gid: number;
}

function currentUser(): RootlessUser {
  const info = os.userInfo();
  return { name: info.username, uid: info.uid, gid: info.gid };
}

function readOrEmpty(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * The maps the user's namespace gets, or a one-line error (exit 125) naming what the host lacks: a line
 * in /etc/subuid or /etc/subgid, or newuidmap/newgidmap. Checked before anything is created.
 */
export function rootlessMappings(
  user: RootlessUser = currentUser(),
  files: { subuid: string; subgid: string } = { subuid: '/etc/subuid', subgid: '/etc/subgid' },
): { uid: IdMapping[]; gid: IdMapping[] } {
  const missing: string[] = [];
  const result = { uid: [] as IdMapping[], gid: [] as IdMapping[] };
  for (const kind of ['uid', 'gid'] as const) {
    const file = kind === 'uid' ? files.subuid : files.subgid;
    const ranges = subordinateRanges(readOrEmpty(file), { name: user.name, id: user[kind] });
    const total = ranges.reduce((n, r) => n + r.count, 0);
    if (total < MIN_SUBORDINATE_IDS) {
      missing.push(`${file} needs a line "${user.name}:100000:${MIN_SUBORDINATE_IDS}"${total > 0 ? ` (it gives ${total} ids)` : ''}`);
    }
    result[kind] = namespaceMapping(user[kind], ranges);
  }
  if (missing.length > 0) {
    throw new TsbuildError(
      'ENOSUBIDS',
      `rootless mode needs subordinate ids for ${user.name}: ${missing.join(' and ')} ` +
        `(as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user.name})`,
      { exitCode: 125 },
    );
  }
  return result;
}

function execFileAsync(file: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return promisify((require('node:child_process') as typeof childProcess).execFile)(file, args);
}

function onPath(command: string): string | undefined {
  for (const dir of (process.env.PATH || '/usr/local/bin:/usr/bin:/bin').split(':')) {
    const full = path.join(dir || '.', command);
    try {
      fs.accessSync(full, fs.constants.X_OK);
      return full;
    } catch {
      // next
    }
  }
  for (const dir of ['/usr/bin', '/usr/sbin', '/bin']) if (fs.existsSync(path.join(dir, command))) return path.join(dir, command);
  return undefined;
}

const UNSHARE_HINT =
  'user namespaces are disabled for unprivileged users here (sysctl user.max_user_namespaces, ' +
  'kernel.unprivileged_userns_clone on Debian, kernel.apparmor_restrict_unprivileged_userns on Ubuntu, ' +
  "or a container's seccomp profile)";

async function writeMap(tool: string, pid: number, maps: IdMapping[]): Promise<void> {
  const args = [String(pid), ...maps.flatMap((m) => [String(m.inside), String(m.outside), String(m.count)])];
  try {
    await execFileAsync(tool, args);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    const why = (e.stderr || e.message).trim().split('\n').pop();
    throw new TsbuildError('EUSERNSMAP', `rootless mode: ${path.basename(tool)} failed: ${why}`, { exitCode: 125 });
  }
}

export interface UserNamespaceCommand {
  /** The program (an absolute path) and its arguments. */
  file: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Default: this process's stdio. */
  stdio?: [number, number, number];
}

/**
 * Where the keeper of the user's namespace records its pid: $XDG_RUNTIME_DIR/tsbuild, else
 * /tmp/tsbuild-UID, a directory only the user may write (else an error: another user could name a
 * process of theirs).
 */
export function rootlessRuntimeDir(uid = process.getuid?.() ?? 0, env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_RUNTIME_DIR;
  const dir = xdg && path.isAbsolute(xdg) ? path.join(xdg, 'tsbuild') : path.join(os.tmpdir(), `tsbuild-${uid}`);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch {
    // checked below
  }
  const st = fs.lstatSync(dir, { throwIfNoEntry: false });
  if (!st || !st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new TsbuildError('EUSERNSDIR', `rootless mode: ${dir} must be a directory of uid ${uid} that only it can access (mode 0700)`, { exitCode: 125 });
  }
  return dir;
}

/** The pid of the keeper holding this user's namespace, when one is alive (and really ours). */
function liveKeeper(pidFile: string, uid: number): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1) return undefined;
    const owner = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    // Any tsbuild's keeper binary, not only this one's path: the CLI reaches the addon through
    // node_modules/@tsbuild/native and a library through its real path (or another install), and one
    // that took the other's for dead made a second namespace and left the first keeper running.
    if (Number(owner?.[1]) !== uid || path.basename(argv[0] ?? '') !== path.basename(nativeBinaries.userns) || argv[1] !== '--keep' || argv[2] !== pidFile) return undefined;
  } catch {
    return undefined;
  }
  return pid;
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  return code ?? 128 + (signal ? os.constants.signals[signal] : 0);
}

/**
 * Runs a command as root of the user's user + mount namespace, mapped as described above, and resolves
 * with its exit code (128 + signal when killed). The first command makes the namespace and leaves a
 * keeper process holding it (as podman's pause process), so every later command, and `exec` into a
 * container one of them started, shares it. SIGINT, SIGTERM, SIGHUP and SIGQUIT sent here are passed on.
 */
export async function runInUserNamespace(cmd: UserNamespaceCommand): Promise<number> {
  const maps = rootlessMappings();
  const uid = process.getuid?.() ?? 0;
  const dir = rootlessRuntimeDir(uid);
  const pidFile = path.join(dir, 'userns.pid');
  const keeper = liveKeeper(pidFile, uid);
  if (keeper !== undefined) return runHelper(['--join', String(keeper), cmd.file, ...cmd.args], cmd);
  // Only one command makes the namespace; the others wait and join it.
  const lock = fs.openSync(path.join(dir, 'userns.lock'), 'w', 0o600);
  try {
    await flockWait(lock, 'exclusive');
    const made = liveKeeper(pidFile, uid);
    if (made !== undefined) {
      fs.closeSync(lock);
      return runHelper(['--join', String(made), cmd.file, ...cmd.args], cmd);
    }
    return await runHelper(['--keep', pidFile, cmd.file, ...cmd.args], cmd, { maps, onMade: () => fs.closeSync(lock) });
  } finally {
    try {
      fs.closeSync(lock);
    } catch {
      // closed when the namespace was made
    }
  }
}

async function runHelper(
  args: string[],
  cmd: UserNamespaceCommand,
  make?: { maps: { uid: IdMapping[]; gid: IdMapping[] }; onMade: () => void },
): Promise<number> {
  const tools = { uid: onPath('newuidmap'), gid: onPath('newgidmap') };
  if (make && (!tools.uid || !tools.gid)) {
    throw new TsbuildError('ENOUIDMAP', 'rootless mode needs newuidmap and newgidmap (apt-get install uidmap)', { exitCode: 125 });
  }
  const child = (require('node:child_process') as typeof childProcess).spawn(nativeBinaries.userns, args, {
    env: cmd.env ?? process.env,
    stdio: [...(cmd.stdio ?? [0, 1, 2]), make ? 'pipe' : 'ignore'],
  });
  const exited = new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(exitCodeOf(code, signal)));
  });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
  for (const s of signals) process.on(s, forward);
  try {
    if (make) await mapNamespace(child.pid!, child.stdio[3] as Socket, exited, make.maps, tools as { uid: string; gid: string }, () => child.kill('SIGKILL'), make.onMade);
    return await exited;
  } finally {
    for (const s of signals) process.off(s, forward);
  }
}

/** The --keep handshake: wait for the unshare, write the maps, let the helper go on, see the keeper made. */
async function mapNamespace(
  pid: number,
  sync: Socket,
  exited: Promise<number>,
  maps: { uid: IdMapping[]; gid: IdMapping[] },
  tools: { uid: string; gid: string },
  kill: () => void,
  onMade: () => void,
): Promise<void> {
  let got = '';
  let wake: (() => void) | undefined;
  let ended = false;
  sync.on('data', (d: Buffer) => {
    got += d.toString();
    wake?.();
  });
  sync.once('close', () => {
    ended = true;
    wake?.();
  });
  const next = async (want: string) => {
    while (!got.startsWith(want) && !ended && !/^[EMPF]/.test(got)) await new Promise<void>((r) => (wake = r));
    const ok = got.startsWith(want);
    if (ok) got = got.slice(want.length);
    return ok;
  };
  if (!(await next('R'))) {
    const code = await exited;
    if (got.startsWith('E')) {
      const errno = Number(got.slice(1));
      const name = Object.entries(os.constants.errno).find(([, n]) => n === errno)?.[0];
      throw new TsbuildError('EUSERNS', `rootless mode: cannot create a user namespace (unshare: ${name ?? errno}): ${UNSHARE_HINT}`, { exitCode: 125 });
    }
    throw new TsbuildError('EUSERNS', `rootless mode: the user namespace helper ${nativeBinaries.userns} exited with ${code}`, { exitCode: 125 });
  }
  try {
    await writeMap(tools.uid, pid, maps.uid);
    await writeMap(tools.gid, pid, maps.gid);
  } catch (err) {
    kill();
    await exited;
    throw err;
  }
  sync.write('G');
  if (!(await next('K'))) {
    const code = await exited;
    throw new TsbuildError('EUSERNS', `rootless mode: the user namespace helper could not set up the namespace (${got || `exit ${code}`})`, { exitCode: 125 });
  }
  onMade();
}

/**
 * For a program using the library as an ordinary user: re-executes it (the same node, flags, script
 * and arguments) as root of a user namespace and exits with its code; returns at once when already
 * root (of the host or of a namespace). buildah's unshare.MaybeReexecUsingUserNamespace, for Node:
 *
 *     await reexecInUserNamespace();   // first thing in main
 *     const store = await Store.open(defaultStorageRoot());
 */
export async function reexecInUserNamespace(): Promise<void> {
  if (!isRootless() || inUserNamespace()) return;
  const code = await runInUserNamespace({ file: process.execPath, args: [...process.execArgv, ...process.argv.slice(1)] });
  process.exit(code);
}
