// Resolving a path inside a root directory the way a process chrooted there would see it: symlinks met
// on the way are read and re-interpreted relative to the root (absolute targets re-rooted, `..` stopping
// at the root), never followed by the host. Lexical lstat walking: safe for trees that nobody else
// modifies meanwhile (a private staging dir, a stopped container's rootfs); openat2(RESOLVE_IN_ROOT) in
// the addon is the answer for trees under attack (REFERENCE §5.2).
import * as fs from 'node:fs';
import { decodeName, fsPath } from '../names';
import { TsbuildError, shortName, quoteName } from '../errors';

/** A path that would leave the root. `code` is 'EBREAKOUT'; `entry` names the offending tar entry/path. */
export class BreakoutError extends TsbuildError {
  constructor(
    readonly entry: string,
    message: string,
  ) {
    super('EBREAKOUT', `${message} (path breakout)`);
  }
}

export interface ResolveOptions {
  /** Resolve a symlink in the last component too (default false: the last component is returned as is). */
  followFinal?: boolean;
  /**
   * `..` that would climb above the root, in the path or a symlink target: 'clamp' stays at the root
   * (chroot and RESOLVE_IN_ROOT semantics, the default); 'error' throws a BreakoutError (Go's os.Root).
   */
  escape?: 'clamp' | 'error';
  /** Create missing intermediate directories (mode 0755, owned by the caller) instead of resolving them lexically. */
  createParents?: boolean;
  /** Called with each directory created by createParents. */
  onCreate?: (dir: string) => void;
}

const MAX_SYMLINKS = 40; // Linux's MAXSYMLINKS

/** Path components, without empty ones and '.'; '..' kept. */
export function splitPath(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Cleans an archive member name into components below the root: leading '/' ignored, '.' and empty
 * components dropped, '..' applied lexically. Throws a BreakoutError when '..' climbs above the root.
 */
export function cleanRelPath(name: string, what = 'path'): string[] {
  const out: string[] = [];
  for (const c of splitPath(name)) {
    if (c === '..') {
      if (out.length === 0) throw new BreakoutError(name, `${what} ${quoteName(name)} climbs above the root with ".."`);
      out.pop();
    } else out.push(c);
  }
  return out;
}

type Kind = 'dir' | 'symlink' | 'other' | 'missing';
type Step = { op: 'lstat'; path: string } | { op: 'readlink'; path: string } | { op: 'mkdir'; path: string };

/** A path that cannot be resolved inside the root because of what is on it (a file as a parent, a symlink loop). */
export class ResolveError extends TsbuildError {
  constructor(
    code: 'ENOTDIR' | 'ELOOP',
    message: string,
    /** The host path where resolution stopped. */
    readonly path: string,
  ) {
    super(code, message);
  }
}

function notDirError(path: string, rel: string): Error {
  return new ResolveError('ENOTDIR', `cannot resolve ${quoteName(rel)}: ${shortName(path)} is not a directory`, path);
}

/** The resolution algorithm, as a generator of filesystem requests so sync and async share it. */
function* resolveSteps(root: string, rel: string, opts: ResolveOptions): Generator<Step, string, Kind | string | undefined> {
  const resolved: string[] = [];
  // pending components, in reverse so pop() gives the next one
  const pending = splitPath(rel).reverse();
  let links = 0;
  const base = root === '/' ? '' : root.replace(/\/+$/, '');
  const here = (extra?: string): string => {
    const parts = extra === undefined ? resolved : [...resolved, extra];
    return parts.length ? `${base}/${parts.join('/')}` : base || '/';
  };
  while (pending.length) {
    const c = pending.pop()!;
    if (c === '..') {
      if (resolved.length) resolved.pop();
      else if (opts.escape === 'error') {
        throw new BreakoutError(rel, `path ${quoteName(rel)} resolves above the root via ".." (in the path or a symlink on it)`);
      }
      continue;
    }
    const isFinal = pending.length === 0;
    const p = here(c);
    if (isFinal && !opts.followFinal) {
      resolved.push(c);
      break;
    }
    const kind = (yield { op: 'lstat', path: p }) as Kind;
    if (kind === 'symlink') {
      if (++links > MAX_SYMLINKS) {
        throw new ResolveError('ELOOP', `cannot resolve ${quoteName(rel)}: too many levels of symbolic links`, p);
      }
      const target = (yield { op: 'readlink', path: p }) as string;
      if (target.startsWith('/')) resolved.length = 0;
      for (const t of splitPath(target).reverse()) pending.push(t);
      continue;
    }
    if (kind === 'missing' && opts.createParents && !isFinal) {
      yield { op: 'mkdir', path: p };
      opts.onCreate?.(p);
    } else if (kind === 'other' && !isFinal) {
      throw notDirError(p, rel);
    }
    resolved.push(c);
  }
  return here();
}

function kindOf(st: fs.Stats | fs.BigIntStats | undefined): Kind {
  if (!st) return 'missing';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isDirectory()) return 'dir';
  return 'other';
}

/**
 * The host path of `relPath` inside `root` (an absolute, symlink-free path). Leading '/' in relPath is
 * relative to the root. Missing components are appended lexically (or created with createParents).
 */
export async function resolveInRoot(root: string, relPath: string, opts: ResolveOptions = {}): Promise<string> {
  const gen = resolveSteps(root, relPath, opts);
  let r = gen.next();
  while (!r.done) {
    const step = r.value;
    let answer: Kind | string | undefined;
    if (step.op === 'lstat') {
      answer = kindOf(await fs.promises.lstat(fsPath(step.path)).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw e;
      }));
    } else if (step.op === 'readlink') {
      answer = decodeName(await fs.promises.readlink(fsPath(step.path), { encoding: 'buffer' }));
    } else {
      await fs.promises.mkdir(fsPath(step.path));
      await fs.promises.chmod(fsPath(step.path), 0o755); // exactly 0755 whatever the umask
    }
    r = gen.next(answer);
  }
  return r.value;
}

/** resolveInRoot, synchronously. */
export function resolveInRootSync(root: string, relPath: string, opts: ResolveOptions = {}): string {
  const gen = resolveSteps(root, relPath, opts);
  let r = gen.next();
  while (!r.done) {
    const step = r.value;
    let answer: Kind | string | undefined;
    if (step.op === 'lstat') answer = kindOf(fs.lstatSync(fsPath(step.path), { throwIfNoEntry: false }));
    else if (step.op === 'readlink') answer = decodeName(fs.readlinkSync(fsPath(step.path), { encoding: 'buffer' }));
    else {
      fs.mkdirSync(fsPath(step.path));
      fs.chmodSync(fsPath(step.path), 0o755);
    }
    r = gen.next(answer);
  }
  return r.value;
}

/** True when `p` is `root` or below it (string-wise on clean absolute paths, separator-aware). */
export function isInside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith('/') ? root : `${root}/`);
}
