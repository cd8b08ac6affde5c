// The unprivileged user that rootless tests and benchmarks run tsbuild as: `tsbuild-ci`, made by
// .ci/setup (through .ci/rootless-user) with 65536 subordinate uids and gids. A test run on a machine
// where setup did not make it makes it the same way and removes it afterwards.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CLI, REPO } from './roots';

export const ROOTLESS_USER = 'tsbuild-ci';

export interface RootlessUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** Whether this process made the user (then `remove` deletes it again). */
  created: boolean;
  remove(): void;
}

function lookup(name: string): { uid: number; gid: number; home: string } | null {
  const r = spawnSync('getent', ['passwd', name], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const f = r.stdout.trim().split(':');
  return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? `/home/${name}` };
}

/** The rootless user with its subordinate ranges, made (as .ci/setup does) when missing. */
export function ensureRootlessUser(name = ROOTLESS_USER): RootlessUser {
  const existed = lookup(name) !== null;
  const r = spawnSync('bash', [path.join(REPO, '.ci', 'rootless-user'), name], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot make the rootless test user ${name} (.ci/rootless-user): ${r.stderr.trim()}`);
  const found = lookup(name);
  if (!found) throw new Error(`the rootless test user ${name} does not exist after .ci/rootless-user`);
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    if (!fs.readFileSync(file, 'utf8').split('\n').some((l) => l.startsWith(`${name}:`))) {
      throw new Error(`${file} has no range for ${name} after .ci/rootless-user`);
    }
  }
  return {
    name,
    ...found,
    created: !existed,
    remove() {
      // userdel also drops the user's lines from /etc/subuid and /etc/subgid.
      if (!existed) spawnSync('userdel', ['--remove', name]);
    },
  };
}

/** A directory the user owns (for storage roots): created under `parent`, which root removes later. */
export function userDir(user: { uid: number; gid: number }, parent: string, name: string): string {
  const dir = path.join(parent, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.chownSync(dir, user.uid, user.gid);
  return dir;
}

/**
 * Runs a command as `user` (setpriv: real and effective ids, the user's groups) with a clean
 * environment: PATH, HOME and what `env` adds.
 */
export function runAs(
  user: { name: string; home: string },
  command: string[],
  opts: { env?: Record<string, string>; cwd?: string; input?: string } = {},
): SpawnSyncReturns<string> {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: user.home, ...opts.env };
  const gid = lookup(user.name)?.gid;
  if (gid === undefined) throw new Error(`no user ${user.name}`);
  return spawnSync(
    'setpriv',
    ['--reuid', user.name, '--regid', String(gid), '--init-groups', 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...command],
    { encoding: 'utf8', cwd: opts.cwd ?? '/', input: opts.input ?? '', timeout: 600_000 },
  );
}

/** The tsbuild CLI as `user` (the rootless mode) against `root`. */
export function cliAs(
  user: { name: string; home: string },
  root: string,
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): { status: number | null; stdout: string; stderr: string } {
  const r = runAs(user, [process.execPath, CLI, '--root', root, ...args], opts);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The pids of `uid`'s processes running a tsbuild-userns keeper (`--keep <pid file>`). */
function keeperPids(uid: number): number[] {
  const pids: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      const owner = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${name}/status`, 'utf8'));
      if (Number(owner?.[1]) === uid && path.basename(argv[0] ?? '') === 'tsbuild-userns' && argv[1] === '--keep') pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/**
 * Kills the keeper process that holds `user`'s rootless namespace (and with it what was mounted in
 * it) and removes its runtime directory (/tmp/tsbuild-UID: the tests give the user no XDG_RUNTIME_DIR).
 * Returns the pids of other keepers of the user that were still running (there should be one keeper
 * per user, the one its pid file names), after killing them too.
 */
export function stopKeeper(user: { uid: number }): number[] {
  const dir = path.join('/tmp', `tsbuild-${user.uid}`);
  let pid = NaN;
  try {
    pid = Number(fs.readFileSync(path.join(dir, 'userns.pid'), 'utf8').trim());
  } catch {
    // no keeper was made
  }
  const kill = (p: number): void => {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone already
    }
  };
  if (Number.isInteger(pid) && pid > 1) kill(pid);
  const others = keeperPids(user.uid).filter((p) => p !== pid);
  others.forEach(kill);
  fs.rmSync(dir, { recursive: true, force: true });
  return others;
}
