// .dockerignore semantics of moby/patternmatcher (+ its ignorefile reader): patterns become anchored
// regular expressions in which `*` and `?` never match '/', `**` matches any number of directories,
// `\` escapes and `[...]` classes work as in filepath.Match. The last matching pattern wins, and a path
// is excluded when it or any of its parents matches (MatchesOrParentMatches).
import { BadPatternError, validatePattern } from './filepath-match';
import { cleanPath, dirPath } from './paths';

export { BadPatternError } from './filepath-match';

/**
 * Reads .dockerignore text into patterns (moby/patternmatcher ignorefile.ReadAll): the UTF-8 BOM is
 * stripped, lines starting with '#' (column 1) are comments, lines are trimmed and empty ones skipped,
 * a leading '!' marks an exception, and each pattern is cleaned with its leading '/' removed. A lone
 * '!' is returned as is; PatternMatcher rejects it (`illegal exclusion pattern: "!"`).
 */
export function readDockerignore(text: string): string[] {
  const out: string[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    let line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (index === 0 && line.startsWith('\ufeff')) line = line.slice(1);
    if (line.startsWith('#')) return;
    let pattern = line.trim();
    if (pattern === '') return;
    const invert = pattern.startsWith('!');
    if (invert) pattern = pattern.slice(1).trim();
    if (pattern.length > 0) {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    out.push(invert ? '!' + pattern : pattern);
  });
  return out;
}

export type MatchType = 'exact' | 'prefix' | 'suffix' | 'regexp';

interface Compiled {
  type: MatchType;
  regexp?: RegExp;
  /** The expression as built (RegExp.source would re-escape '/'). */
  source?: string;
}

/** One cleaned pattern; compiled on first use, like the Go original (a bad one fails at match time). */
export class Pattern {
  /** The pattern split on '/'. */
  readonly dirs: string[];
  private compiled?: Compiled;
  private segments?: (Pattern | null)[];

  constructor(readonly cleaned: string, readonly exclusion: boolean) {
    this.dirs = cleaned.split('/');
  }

  toString(): string {
    return this.cleaned;
  }

  /** How the pattern is matched (exposed for the compile table tests). */
  get matchType(): MatchType {
    return this.compile().type;
  }

  /** The regular expression source for 'regexp' patterns. */
  get regexpSource(): string | undefined {
    return this.compile().source;
  }

  /** Matches one slash path against this pattern alone. Throws BadPatternError. */
  match(path: string): boolean {
    const c = this.compile();
    switch (c.type) {
      case 'exact':
        return path === this.cleaned;
      case 'prefix':
        return path.startsWith(this.cleaned.slice(0, -2));
      case 'suffix': {
        const suffix = this.cleaned.slice(2);
        if (path.endsWith(suffix)) return true;
        // "**/foo" also matches "foo".
        return suffix.startsWith('/') && path === suffix.slice(1);
      }
      case 'regexp':
        return c.regexp!.test(path);
    }
  }

  /**
   * Whether this pattern could match some path strictly below `dir` that neither `dir` nor its parents
   * match. Conservative: `**` and classes always say yes. Used to avoid pruning re-included subtrees.
   */
  mayMatchBelow(dir: string): boolean {
    const comps = dir === '' ? [] : dir.split('/');
    this.segments ??= this.dirs.map((seg) => (seg.includes('**') || seg.includes('[') ? null : new Pattern(seg, false)));
    for (let i = 0; i < this.segments.length; i++) {
      const seg = this.segments[i]!;
      if (seg === null) return true;
      if (i >= comps.length) return true;
      if (!seg.match(comps[i]!)) return false;
    }
    // The pattern is no longer than dir: it can only match dir or a parent, which dir's verdict covers.
    return false;
  }

  private compile(): Compiled {
    if (this.compiled) return this.compiled;
    this.compiled = compilePattern(this.cleaned);
    return this.compiled;
  }
}

/** Characters that are literal in filepath.Match but special in a regular expression. */
const REGEXP_SPECIAL = new Set(['.', '+', '(', ')', '|', '{', '}', '$', '^']);
/** Characters that may (and must) be escaped with '\' in a unicode-mode regular expression. */
const SYNTAX_CHARS = new Set(['^', '$', '\\', '.', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '/']);

function escapedLiteral(ch: string): string {
  return SYNTAX_CHARS.has(ch) ? '\\' + ch : ch;
}

function classLiteral(ch: string): string {
  return ch === '\\' || ch === ']' || ch === '[' || ch === '^' || ch === '-' ? '\\' + ch : ch;
}

function compilePattern(pattern: string): Compiled {
  const chars = Array.from(pattern); // code points, as Go's text/scanner reads runes
  let re = '^';
  let type: MatchType = 'exact';
  let i = 0;
  for (let step = 0; i < chars.length; step++) {
    const ch = chars[i++]!; // i < chars.length
    if (ch === '*') {
      if (chars[i] === '*') {
        i++;
        // "**/" is treated as "**".
        if (chars[i] === '/') i++;
        if (i >= chars.length) {
          // A trailing "**" accepts everything below, as in .gitignore.
          if (type === 'exact') {
            type = 'prefix';
          } else {
            re += '.*';
            type = 'regexp';
          }
        } else {
          // Any number of directories, including none.
          re += '(.*/)?';
          type = 'regexp';
        }
        if (step === 0) type = 'suffix';
      } else {
        re += '[^/]*';
        type = 'regexp';
      }
    } else if (ch === '?') {
      re += '[^/]';
      type = 'regexp';
    } else if (REGEXP_SPECIAL.has(ch)) {
      re += '\\' + ch;
    } else if (ch === '\\') {
      if (i >= chars.length) throw new BadPatternError(pattern);
      re += escapedLiteral(chars[i++]!);
      type = 'regexp';
    } else if (ch === '[') {
      const parsed = compileClass(chars, i, pattern);
      re += parsed.source;
      i = parsed.next;
      type = 'regexp';
    } else if (ch === ']') {
      re += '\\]';
      type = 'regexp';
    } else {
      re += ch;
    }
  }
  if (type !== 'regexp') return { type };
  re += '$';
  try {
    return { type, regexp: new RegExp(re, 'u'), source: re };
  } catch {
    // e.g. a reversed range such as [z-a], which Go's regexp rejects as well.
    throw new BadPatternError(pattern);
  }
}

/** Translates a `[...]` class starting after its '['; filepath.Match has already checked its shape. */
function compileClass(chars: string[], i: number, pattern: string): { source: string; next: number } {
  let source = '[';
  if (chars[i] === '^') {
    source += '^';
    i++;
  }
  let items = 0;
  for (;;) {
    if (i >= chars.length) throw new BadPatternError(pattern);
    const c = chars[i]!;
    if (c === ']' && items > 0) {
      return { source: source + ']', next: i + 1 };
    }
    if (c === '\\') {
      if (i + 1 >= chars.length) throw new BadPatternError(pattern);
      source += classLiteral(chars[i + 1]!);
      i += 2;
      items++;
    } else if (c === '-' && items > 0) {
      source += '-';
      i++;
    } else {
      source += classLiteral(c);
      i++;
      items++;
    }
  }
}

/** A list of .dockerignore patterns (moby/patternmatcher New + MatchesOrParentMatches). */
export class PatternMatcher {
  readonly patterns: Pattern[] = [];
  private hasExclusions = false;

  /** Throws on a lone '!' and on patterns that filepath.Match rejects. */
  constructor(patterns: readonly string[]) {
    for (let p of patterns) {
      p = p.trim();
      if (p === '') continue;
      p = cleanPath(p);
      let exclusion = false;
      if (p.startsWith('!')) {
        if (p.length === 1) throw new Error('illegal exclusion pattern: "!"');
        exclusion = true;
        p = p.slice(1);
        this.hasExclusions = true;
      }
      validatePattern(p);
      this.patterns.push(new Pattern(p, exclusion));
    }
  }

  /** True when some pattern is an exception ('!'). */
  exclusions(): boolean {
    return this.hasExclusions;
  }

  /** Compiles every pattern now, so a bad one is reported up front instead of on the first match. */
  validate(): void {
    for (const p of this.patterns) void p.matchType;
  }

  /**
   * Whether a slash path is excluded: the last pattern matching it or one of its parents decides.
   * Throws BadPatternError for a pattern that cannot be compiled.
   */
  matchesOrParentMatches(file: string): boolean {
    let matched = false;
    const parent = dirPath(file);
    const parentDirs = parent.split('/');
    for (const pattern of this.patterns) {
      // Only a pattern that would flip the verdict needs evaluating.
      if (pattern.exclusion !== matched) continue;
      let match = pattern.match(file);
      if (!match && parent !== '.') {
        for (let i = 0; i < parentDirs.length && !match; i++) {
          match = pattern.match(parentDirs.slice(0, i + 1).join('/'));
        }
      }
      if (match) matched = !pattern.exclusion;
    }
    return matched;
  }

  /**
   * Whether a later exception could re-include something below an excluded directory, in which case a
   * walk must descend into it (docker/cli#2919) instead of pruning it.
   */
  mayReinclude(dir: string): boolean {
    if (!this.hasExclusions) return false;
    return this.patterns.some((p) => p.exclusion && p.mayMatchBelow(dir));
  }
}

/** moby/patternmatcher's package-level MatchesOrParentMatches: "." is never excluded. */
export function matchesOrParentMatches(file: string, patterns: readonly string[]): boolean {
  const pm = new PatternMatcher(patterns);
  file = cleanPath(file);
  if (file === '.') return false;
  return pm.matchesOrParentMatches(file);
}
