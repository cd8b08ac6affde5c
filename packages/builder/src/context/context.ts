// The build context: a directory filtered by .dockerignore, and the COPY/ADD source rules on top of it.
// Excluded files are invisible, exactly as if they had not been sent; a directory excluded by a pattern
// but holding a file re-included by a later '!' pattern is visible with just that content (as fsutil
// sends it). Sources are resolved inside the context: symlinks met on the way are followed within it,
// and one leading outside is an error naming it.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ContextError } from './errors';
import { type ContextEntry, toEntry } from './entry';
import { type CopyItem, CopyItems } from './items';
import { BadPatternError, filepathMatch } from './filepath-match';
import { PatternMatcher, readDockerignore } from './patternmatcher';
import { cleanPath, compareBytes, joinRel } from './paths';
import { timeSlicer } from './slices';
import { decodeName, fsPath } from '@tsbuild/storage';

export interface OpenOptions {
  /**
   * The Dockerfile: absolute, or relative to the context directory. Default: `Dockerfile`, falling back
   * to `dockerfile` like the docker CLI.
   */
  dockerfilePath?: string;
  /** Dockerfile text given directly (`-f -`); then only the context's `.dockerignore` applies. */
  dockerfileText?: string;
  /**
   * An explicit ignore file (absolute, or relative to the context directory), or null for none.
   * Default: `<Dockerfile>.dockerignore` if it exists, else `<context>/.dockerignore`.
   */
  ignoreFile?: string | null;
  /**
   * `root`: the directory is a root filesystem (a stage or image for COPY --from): absolute symlink
   * targets are relative to it and `..` stops at it, as inside the container. Default `context`: a
   * symlink leading out of the build context is an error.
   */
  symlinks?: 'context' | 'root';
}

export interface ResolveOptions {
  /**
   * Follow a symlink named by a source (or matched by its wildcard), as COPY does (default true).
   * Symlinks inside a copied directory are always kept as symlinks.
   */
  followSymlinks?: boolean;
  /** A wildcard matching nothing yields no entries (BuildKit, default true) instead of an error. */
  allowEmptyWildcard?: boolean;
  /**
   * `COPY --exclude` patterns (patternmatcher syntax), matched against paths relative to each source
   * directory, and for wildcard matches against the match's path relative to the wildcard's base dir.
   */
  excludes?: readonly string[];
}

export interface WalkOptions {
  /** Extra exclusions (patternmatcher syntax) matched against paths relative to the walked directory. */
  excludes?: readonly string[];
}

/** One matched COPY/ADD source. */
export interface SourceEntry {
  /** The source as written in the instruction. */
  source: string;
  /**
   * The context path the source (or its wildcard) named, before following a final symlink. Its base
   * name is the destination name when a file is copied into a directory.
   */
  matchedPath: string;
  /** The item actually copied: items.at(0), with symlinks followed when followSymlinks is on. */
  root: CopyItem;
  /** The root first, then (for a directory) every visible descendant, depth-first in byte order. */
  items: CopyItems;
}

/**
 * Where walkDir puts what it finds. `D` identifies a directory to the sink (its parent argument).
 * An excluded directory that may re-include something is added first and dropped when nothing inside
 * it showed.
 */
interface WalkSink<D> {
  dir(parent: D, c: Child): D;
  leaf(parent: D, c: Child, linkTarget: string | undefined): void;
  /** How many entries were added so far. */
  count(): number;
  dropLast(): void;
}

/** A directory's child as the walk sees it. */
interface Child {
  name: string;
  rel: string;
  abs: string;
  st: fs.BigIntStats;
}

/** Resolution within the context never leaves it; this bounds symlink chains (Linux's MAXSYMLINKS). */
const MAX_SYMLINK_HOPS = 40;

interface Resolved {
  rel: string;
  abs: string;
  st: fs.BigIntStats;
}

interface ExtraExcludes {
  matcher: PatternMatcher;
  /** Context path the patterns are relative to. */
  base: string;
}

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** BuildKit's containsWildcards: `*`, `?` or `[`, skipping `\`-escaped characters. */
function containsWildcards(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') i++;
    else if (c === '*' || c === '?' || c === '[') return true;
  }
  return false;
}

function relativeTo(base: string, p: string): string {
  return base === '' ? p : p.slice(base.length + 1);
}

function notFound(source: string, rel: string): ContextError {
  return new ContextError(
    'SOURCE_NOT_FOUND',
    `failed to compute cache key: "/${rel}": not found: file not found in build context or excluded by .dockerignore`,
    source,
  );
}

function compileExcludes(patterns: readonly string[] | undefined, what: string): PatternMatcher | undefined {
  if (!patterns || patterns.length === 0) return undefined;
  try {
    const pm = new PatternMatcher(patterns);
    pm.validate();
    return pm;
  } catch (err) {
    throw new ContextError('BAD_PATTERN', `invalid ${what} pattern: ${(err as Error).message}`);
  }
}

export class BuildContext {
  private constructor(
    /** The context directory, symlinks resolved. */
    readonly root: string,
    /** The context directory as given, made absolute (absolute symlinks may point through it). */
    private readonly givenRoot: string,
    /** The Dockerfile's path, or null when its text was given directly. */
    readonly dockerfilePath: string | null,
    /** The Dockerfile's text (always readable, even when .dockerignore excludes it). */
    readonly dockerfile: string,
    /** The ignore file in effect, or null. */
    readonly ignoreFile: string | null,
    /** The effective patterns (the file's, plus exceptions keeping the Dockerfile and .dockerignore). */
    readonly ignorePatterns: readonly string[],
    private readonly matcher: PatternMatcher,
  ) {}

  static async open(dir: string, opts: OpenOptions = {}): Promise<BuildContext> {
    const givenRoot = path.resolve(dir);
    let root: string;
    try {
      root = await fsp.realpath(givenRoot);
    } catch {
      throw new ContextError('CONTEXT_NOT_FOUND', `unable to prepare context: path "${dir}" not found`, undefined, givenRoot);
    }
    if (!(await fsp.stat(root)).isDirectory()) {
      throw new ContextError('CONTEXT_NOT_FOUND', `unable to prepare context: context must be a directory: ${dir}`, undefined, givenRoot);
    }

    let dockerfilePath: string | null = null;
    let dockerfile: string;
    if (opts.dockerfileText !== undefined) {
      dockerfile = opts.dockerfileText;
    } else {
      dockerfilePath = path.resolve(givenRoot, opts.dockerfilePath ?? 'Dockerfile');
      if (opts.dockerfilePath === undefined && !fs.existsSync(dockerfilePath)) {
        const lower = path.join(givenRoot, 'dockerfile');
        if (fs.existsSync(lower)) dockerfilePath = lower;
      }
      try {
        dockerfile = await fsp.readFile(dockerfilePath, 'utf8');
      } catch (err) {
        const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message;
        throw new ContextError('CONTEXT_NOT_FOUND', `failed to read dockerfile: open ${dockerfilePath}: ${reason}`, undefined, dockerfilePath);
      }
    }

    const ignoreFile = await findIgnoreFile(givenRoot, root, dockerfilePath, opts.ignoreFile);
    let patterns: string[] = [];
    let matcher: PatternMatcher;
    try {
      if (ignoreFile !== null) patterns = readDockerignore(await fsp.readFile(ignoreFile, 'utf8'));
      matcher = new PatternMatcher(patterns);
      matcher.validate();
    } catch (err) {
      if (err instanceof ContextError) throw err;
      throw new ContextError('BAD_IGNORE_FILE', `failed to parse ${ignoreFile}: ${(err as Error).message}`, undefined, ignoreFile ?? undefined);
    }

    // Like the docker CLI, keep the build files themselves in the context even when a pattern excludes
    // them, so COPY can still name them.
    const keep = new Set(['.dockerignore']);
    for (const f of [ignoreFile, dockerfilePath]) {
      const rel = f === null ? null : pathInside([root, givenRoot], f);
      if (rel) keep.add(rel);
    }
    let kept = false;
    for (const rel of keep) {
      if (!matcher.matchesOrParentMatches(rel)) continue;
      patterns.push('!' + rel);
      kept = true;
    }
    if (kept) matcher = new PatternMatcher(patterns);

    const ctx = new BuildContext(root, givenRoot, dockerfilePath, dockerfile, ignoreFile, patterns, matcher);
    ctx.chrootSymlinks = opts.symlinks === 'root';
    return ctx;
  }

  /** Whether .dockerignore excludes this context path by itself (a re-included child may still show). */
  isExcluded(rel: string): boolean {
    rel = cleanPath(rel);
    if (rel === '.' || rel === '/') return false;
    return this.matcher.matchesOrParentMatches(rel.replace(/^\/+/, ''));
  }

  /**
   * Every visible entry below a context directory (not following symlinks), depth-first with each
   * directory before its children and names in byte order. Excluded directories are pruned unless an
   * exception may re-include something inside them.
   */
  async walk(relDir = '', opts: WalkOptions = {}): Promise<ContextEntry[]> {
    const rel = this.normalize(relDir, relDir);
    const abs = this.abs(rel);
    let st: fs.BigIntStats;
    try {
      st = await fsp.lstat(fsPath(abs), { bigint: true });
    } catch (err) {
      if (isNotFound(err)) throw notFound(relDir, rel);
      throw err;
    }
    if (!st.isDirectory()) return [];
    const extra = compileExcludes(opts.excludes, 'exclude');
    const out: ContextEntry[] = [];
    const sink: WalkSink<undefined> = {
      dir: (_parent, c) => void out.push(toEntry(c.rel, c.abs, c.st)),
      leaf: (_parent, c, target) => void out.push(toEntry(c.rel, c.abs, c.st, target)),
      count: () => out.length,
      dropLast: () => void out.pop(),
    };
    await this.walkDir(rel, undefined, sink, extra ? { matcher: extra, base: rel } : undefined, timeSlicer());
    return out;
  }

  /**
   * Resolves COPY/ADD sources: each is relative to the context root (a leading '/' is the root), may
   * use filepath.Match wildcards per path component, and yields one SourceEntry per match in order.
   */
  async resolveSources(sources: readonly string[], opts: ResolveOptions = {}): Promise<SourceEntry[]> {
    const follow = opts.followSymlinks ?? true;
    const allowEmpty = opts.allowEmptyWildcard ?? true;
    const excludes = compileExcludes(opts.excludes, '--exclude');
    const out: SourceEntry[] = [];
    for (const source of sources) {
      const rel = this.normalize(source, source);
      const comps = rel === '' ? [] : rel.split('/');
      const w = comps.findIndex(containsWildcards);
      if (w < 0) {
        const resolved = await this.resolvePath(source, comps, follow);
        out.push(await this.sourceEntry(source, rel, resolved, excludes));
        continue;
      }
      const base = await this.resolvePath(source, comps.slice(0, w), true);
      const matches = base.st.isDirectory() ? await this.expandWildcards(source, base.rel, comps.slice(w)) : [];
      let matched = 0;
      for (const m of matches) {
        if (excludes?.matchesOrParentMatches(relativeTo(base.rel, m))) continue;
        const resolved = await this.resolvePath(source, m.split('/'), follow);
        out.push(await this.sourceEntry(source, m, resolved, excludes));
        matched++;
      }
      if (matched === 0 && !allowEmpty) {
        throw new ContextError('NO_MATCH', `failed to compute cache key: "/${rel}": no source files were specified (no match)`, source);
      }
    }
    linkHardlinks(out);
    return out;
  }

  // ---- internals ----

  private abs(rel: string): string {
    return rel === '' ? this.root : path.join(this.root, rel);
  }

  /** Cleans a context-relative path; '..' climbing above the root is refused, naming the source. */
  private normalize(p: string, source: string): string {
    const c = cleanPath(p.replace(/^\/+/, ''));
    if (c === '..' || c.startsWith('../')) {
      throw new ContextError('OUTSIDE_CONTEXT', `forbidden path outside the build context: ${source}`, source);
    }
    return c === '.' ? '' : c;
  }

  private excludedByAny(rel: string, extra?: ExtraExcludes): boolean {
    if (this.matcher.matchesOrParentMatches(rel)) return true;
    return extra !== undefined && extra.matcher.matchesOrParentMatches(relativeTo(extra.base, rel));
  }

  private mayReinclude(rel: string, extra?: ExtraExcludes): boolean {
    const mine = this.matcher.matchesOrParentMatches(rel);
    if (mine && !this.matcher.mayReinclude(rel)) return false;
    if (extra && extra.matcher.matchesOrParentMatches(relativeTo(extra.base, rel))) {
      return extra.matcher.mayReinclude(relativeTo(extra.base, rel));
    }
    return true;
  }

  /**
   * Sorted lstat of a directory's children; entries vanishing meanwhile are skipped. Synchronous calls:
   * each is a few µs, a pool round trip ten times that (see slices.ts).
   */
  private children(rel: string): Child[] {
    const dirAbs = this.abs(rel);
    const names = fs.readdirSync(fsPath(dirAbs), { encoding: 'buffer' }).map(decodeName).sort(compareBytes);
    const out: Child[] = [];
    for (const name of names) {
      const abs = path.join(dirAbs, name);
      let st: fs.BigIntStats;
      try {
        st = fs.lstatSync(fsPath(abs), { bigint: true });
      } catch (err) {
        if (isNotFound(err)) continue;
        throw err;
      }
      out.push({ name, rel: joinRel(rel, name), abs, st });
    }
    return out;
  }

  private async walkDir<D>(rel: string, parent: D, sink: WalkSink<D>, extra: ExtraExcludes | undefined, pause: () => Promise<void> | undefined): Promise<void> {
    await pause();
    for (const c of this.children(rel)) {
      const excluded = this.excludedByAny(c.rel, extra);
      if (c.st.isDirectory()) {
        if (!excluded) {
          await this.walkDir(c.rel, sink.dir(parent, c), sink, extra, pause);
        } else if (this.mayReinclude(c.rel, extra)) {
          // An excluded directory shows only when something inside it is re-included.
          const before = sink.count();
          await this.walkDir(c.rel, sink.dir(parent, c), sink, extra, pause);
          if (sink.count() === before + 1) sink.dropLast();
        }
        continue;
      }
      if (excluded) continue;
      sink.leaf(parent, c, c.st.isSymbolicLink() ? readLinkSync(c.abs) : undefined);
    }
  }

  /** Whether an excluded directory still shows because something below it is re-included. */
  private async hasVisibleDescendant(rel: string): Promise<boolean> {
    if (!this.matcher.mayReinclude(rel)) return false;
    for (const c of this.children(rel)) {
      if (!this.matcher.matchesOrParentMatches(c.rel)) return true;
      if (c.st.isDirectory() && (await this.hasVisibleDescendant(c.rel))) return true;
    }
    return false;
  }

  private async isVisible(rel: string, st: fs.BigIntStats): Promise<boolean> {
    if (rel === '' || !this.matcher.matchesOrParentMatches(rel)) return true;
    return st.isDirectory() && (await this.hasVisibleDescendant(rel));
  }

  /**
   * Resolves context path components, following symlinks within the context: every intermediate one,
   * and the final one when `followFinal`. Excluded paths do not exist; a symlink leading outside the
   * context is an error naming it.
   */
  private chrootSymlinks = false;

  private async resolvePath(source: string, comps: string[], followFinal: boolean): Promise<Resolved> {
    const done: string[] = [];
    const todo = [...comps];
    let hops = 0;
    let st = await fsp.lstat(this.root, { bigint: true });
    while (todo.length > 0) {
      const c = todo.shift()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        // Only symlink targets bring '..' here (sources are cleaned first).
        if (done.length === 0) {
          if (this.chrootSymlinks) continue; // `..` at the root of a root filesystem stays there
          throw this.outside(source, comps);
        }
        done.pop();
        st = await fsp.lstat(fsPath(this.abs(done.join('/'))), { bigint: true });
        continue;
      }
      const rel = joinRel(done.join('/'), c);
      const abs = this.abs(rel);
      try {
        st = await fsp.lstat(fsPath(abs), { bigint: true });
      } catch (err) {
        if (isNotFound(err)) throw notFound(source, comps.join('/'));
        throw err;
      }
      const last = todo.length === 0;
      if (this.matcher.matchesOrParentMatches(rel)) {
        const passable = st.isDirectory() && (last ? await this.hasVisibleDescendant(rel) : this.matcher.mayReinclude(rel));
        if (!passable) throw notFound(source, comps.join('/'));
      }
      if (st.isSymbolicLink() && (!last || followFinal)) {
        if (++hops > MAX_SYMLINK_HOPS) {
          throw new ContextError('SYMLINK_LOOP', `failed to compute cache key: "/${comps.join('/')}": too many levels of symbolic links`, source);
        }
        const target = await readLink(abs);
        let targetComps: string[];
        if (path.isAbsolute(target) && this.chrootSymlinks) {
          done.length = 0;
          targetComps = target.split('/');
        } else if (path.isAbsolute(target)) {
          const inside = this.insideRoot(target);
          if (inside === null) throw this.outside(source, comps, rel, target);
          done.length = 0;
          targetComps = inside === '' ? [] : inside.split('/');
        } else {
          targetComps = target.split('/');
        }
        if (!this.chrootSymlinks && climbsAboveRoot(done.length, targetComps)) throw this.outside(source, comps, rel, target);
        todo.unshift(...targetComps);
        continue;
      }
      if (!last && !st.isDirectory()) throw notFound(source, comps.join('/'));
      done.push(c);
    }
    const rel = done.join('/');
    return { rel, abs: this.abs(rel), st };
  }

  /** The context path of an absolute host path inside the context, or null. */
  private insideRoot(p: string): string | null {
    return pathInside([this.root, this.givenRoot], p);
  }

  private outside(source: string, comps: string[], link?: string, target?: string): ContextError {
    const detail = link === undefined ? '' : ` (symlink "${link}" -> "${target}")`;
    return new ContextError('OUTSIDE_CONTEXT', `forbidden path outside the build context: ${source}${detail}`, source, comps.join('/'));
  }

  /** Expands wildcard components below `base` (like BuildKit's walk: no symlinks followed on the way). */
  private async expandWildcards(source: string, base: string, pattern: string[]): Promise<string[]> {
    let current = [base];
    for (let i = 0; i < pattern.length; i++) {
      const last = i === pattern.length - 1;
      const next: string[] = [];
      for (const dir of current) {
        for (const c of this.children(dir)) {
          let ok: boolean;
          try {
            ok = filepathMatch(pattern[i]!, c.name);
          } catch (err) {
            if (err instanceof BadPatternError) {
              throw new ContextError('BAD_PATTERN', `failed to compute cache key: "/${[base, ...pattern].filter(Boolean).join('/')}": syntax error in pattern`, source);
            }
            throw err;
          }
          if (!ok) continue;
          if (!last && !c.st.isDirectory()) continue;
          if (!(await this.isVisible(c.rel, c.st))) continue;
          next.push(c.rel);
        }
      }
      current = next;
    }
    return current;
  }

  private async sourceEntry(source: string, matchedPath: string, r: Resolved, excludes?: PatternMatcher): Promise<SourceEntry> {
    const target = r.st.isSymbolicLink() ? await readLink(r.abs) : undefined;
    const items = new CopyItems(r.rel, r.abs);
    const rootDir = items.addRoot(r.st, target);
    if (rootDir >= 0) {
      const sink: WalkSink<number> = {
        dir: (parent, c) => items.add(parent, c.name, c.st),
        leaf: (parent, c, linkTarget) => void items.add(parent, c.name, c.st, linkTarget),
        count: () => items.length,
        dropLast: () => items.dropLast(),
      };
      await this.walkDir(r.rel, rootDir, sink, excludes ? { matcher: excludes, base: r.rel } : undefined, timeSlicer());
    }
    return { source, matchedPath, root: items.at(0), items };
  }
}

/** The slash path of `p` relative to the first of `roots` containing it ('' for a root), or null. */
function pathInside(roots: string[], p: string): string | null {
  for (const r of roots) {
    const rel = path.relative(r, path.resolve(p));
    if (rel === '') return '';
    if (rel !== '..' && !rel.startsWith('../') && !path.isAbsolute(rel)) return rel.split(path.sep).join('/');
  }
  return null;
}

/** Whether following `target` from a directory `depth` levels deep climbs above the context root. */
function climbsAboveRoot(depth: number, target: string[]): boolean {
  for (const c of target) {
    if (c === '..') {
      if (depth === 0) return true;
      depth--;
    } else if (c !== '' && c !== '.') {
      depth++;
    }
  }
  return false;
}

async function findIgnoreFile(givenRoot: string, root: string, dockerfilePath: string | null, explicit: string | null | undefined): Promise<string | null> {
  if (explicit === null) return null;
  if (explicit !== undefined) {
    const p = path.resolve(givenRoot, explicit);
    if (!fs.existsSync(p)) {
      throw new ContextError('CONTEXT_NOT_FOUND', `ignore file not found: ${p}`, undefined, p);
    }
    return p;
  }
  const candidates = dockerfilePath === null ? [] : [`${dockerfilePath}.dockerignore`];
  candidates.push(path.join(root, '.dockerignore'));
  for (const c of candidates) {
    try {
      if ((await fsp.stat(c)).isFile()) return c;
    } catch {
      // absent: try the next one
    }
  }
  return null;
}

/** Marks regular files that share an inode with an earlier item of the result. */
function linkHardlinks(sources: SourceEntry[]): void {
  const first = new Map<string, string>();
  for (const s of sources) {
    for (let i = 0; i < s.items.length; i++) {
      if (s.items.typeOf(i) !== 'file' || s.items.nlinkOf(i) < 2) continue;
      const item = s.items.at(i);
      const key = `${item.dev}:${item.ino}`;
      const prev = first.get(key);
      if (prev === undefined) first.set(key, item.path);
      else if (prev !== item.path) {
        s.items.setHardlinkTo(i, prev);
        if (i === 0) s.root.hardlinkTo = prev;
      }
    }
  }
}

/** A symlink's target, any bytes kept (see @tsbuild/storage's names.ts). */
async function readLink(abs: string): Promise<string> {
  return decodeName(await fsp.readlink(fsPath(abs), { encoding: 'buffer' }));
}

function readLinkSync(abs: string): string {
  return decodeName(fs.readlinkSync(fsPath(abs), { encoding: 'buffer' }));
}
