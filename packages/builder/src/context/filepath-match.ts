// Go's path/filepath.Match (Unix flavour) for COPY/ADD source wildcards: `*` and `?` never match '/',
// `[...]` classes with ranges and `^` negation, `\` escapes. A malformed pattern is reported even when
// the name does not match (as Go ≥1.16 does), so a typo fails loudly instead of matching nothing.
import { TsbuildError } from '@tsbuild/storage';

/** Go's filepath.ErrBadPattern. */
export class BadPatternError extends TsbuildError {
  constructor(readonly pattern: string) {
    super('ERR_BAD_PATTERN', `syntax error in pattern: ${JSON.stringify(pattern)}`);
  }
}

/** Reports whether `name` matches the shell pattern as a whole. Throws BadPatternError. */
export function filepathMatch(pattern: string, name: string): boolean {
  const original = pattern;
  try {
    return matchAll(pattern, name);
  } catch (err) {
    if (err === BAD) throw new BadPatternError(original);
    throw err;
  }
}

/** Checks a pattern's syntax without matching anything (what Go's Match reports for any name). */
export function validatePattern(pattern: string): void {
  filepathMatch(pattern, '');
}

/** True when the string has a character that Match treats specially (Go's hasMeta, Unix). */
export function hasMeta(s: string): boolean {
  return /[*?[\\]/.test(s);
}

// Internal marker thrown by the scanner; converted to BadPatternError at the API boundary.
const BAD = Symbol('bad pattern');

function matchAll(pattern: string, name: string): boolean {
  outer: while (pattern.length > 0) {
    const [star, chunk, rest] = scanChunk(pattern);
    pattern = rest;
    if (star && chunk === '') {
      // A trailing * matches the rest of the name unless it has a '/'.
      return !name.includes('/');
    }
    const t = matchChunk(chunk, name);
    // The last chunk must consume the whole name, otherwise a star may still make it match.
    if (t !== null && (t.length === 0 || pattern.length > 0)) {
      name = t;
      continue;
    }
    if (star) {
      // Let the star swallow 1..n characters, never a '/'.
      for (let i = 0; i < name.length && name[i] !== '/'; i++) {
        const t2 = matchChunk(chunk, name.slice(i + 1));
        if (t2 !== null) {
          if (pattern.length === 0 && t2.length > 0) continue;
          name = t2;
          continue outer;
        }
      }
    }
    // No match: still check that the remainder of the pattern is well-formed.
    while (pattern.length > 0) {
      const [, c, r] = scanChunk(pattern);
      pattern = r;
      matchChunk(c, '');
    }
    return false;
  }
  return name.length === 0;
}

/** Splits off the next segment: leading stars, then characters up to the next star outside a class. */
function scanChunk(pattern: string): [boolean, string, string] {
  let i = 0;
  let star = false;
  while (i < pattern.length && pattern[i] === '*') {
    i++;
    star = true;
  }
  pattern = pattern.slice(i);
  let inRange = false;
  let j = 0;
  for (; j < pattern.length; j++) {
    const c = pattern[j];
    if (c === '\\') {
      if (j + 1 < pattern.length) j++;
    } else if (c === '[') {
      inRange = true;
    } else if (c === ']') {
      inRange = false;
    } else if (c === '*' && !inRange) {
      break;
    }
  }
  return [star, pattern.slice(0, j), pattern.slice(j)];
}

function codePointLength(cp: number): number {
  return cp > 0xffff ? 2 : 1;
}

/**
 * Matches a star-free chunk against the start of `s`; returns the rest of `s`, or null when it does not
 * match. After a mismatch it keeps scanning the chunk so that syntax errors are still reported.
 */
function matchChunk(chunk: string, s: string): string | null {
  let failed = false;
  let ci = 0;
  let si = 0;
  while (ci < chunk.length) {
    if (!failed && si >= s.length) failed = true;
    const c = chunk[ci];
    if (c === '[') {
      let r = -1;
      if (!failed) {
        r = s.codePointAt(si)!;
        si += codePointLength(r);
      }
      ci++;
      let negated = false;
      if (ci < chunk.length && chunk[ci] === '^') {
        negated = true;
        ci++;
      }
      let matched = false;
      let nrange = 0;
      for (;;) {
        if (ci < chunk.length && chunk[ci] === ']' && nrange > 0) {
          ci++;
          break;
        }
        const lo = getEsc(chunk, ci);
        ci = lo.next;
        let hi = lo.r;
        if (chunk[ci] === '-') {
          const h = getEsc(chunk, ci + 1);
          hi = h.r;
          ci = h.next;
        }
        if (lo.r <= r && r <= hi) matched = true;
        nrange++;
      }
      if (matched === negated) failed = true;
    } else if (c === '?') {
      if (!failed) {
        if (s[si] === '/') failed = true;
        si += codePointLength(s.codePointAt(si)!);
      }
      ci++;
    } else {
      if (c === '\\') {
        ci++;
        if (ci >= chunk.length) throw BAD;
      }
      if (!failed) {
        if (chunk[ci] !== s[si]) failed = true;
        si++;
      }
      ci++;
    }
  }
  return failed ? null : s.slice(si);
}

/** A possibly escaped character of a class; a class may not end right after it. */
function getEsc(chunk: string, i: number): { r: number; next: number } {
  if (i >= chunk.length || chunk[i] === '-' || chunk[i] === ']') throw BAD;
  if (chunk[i] === '\\') {
    i++;
    if (i >= chunk.length) throw BAD;
  }
  const r = chunk.codePointAt(i)!;
  const next = i + codePointLength(r);
  if (next >= chunk.length) throw BAD;
  return { r, next };
}
