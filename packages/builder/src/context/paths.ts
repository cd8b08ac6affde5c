// Go's path.Clean and path.Dir for slash paths: Node's path.posix.normalize keeps trailing slashes and
// differs on edge cases, and .dockerignore semantics depend on the exact Go results.
import { compareNames } from '@tsbuild/storage';


/** Go's path.Clean: the shortest equivalent path ("" → ".", rooted ".." dropped, no trailing slash). */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return '/' + joined;
  return joined === '' ? '.' : joined;
}

/** Go's path.Dir: everything before the last '/', cleaned ("file" → "."). */
export function dirPath(p: string): string {
  const i = p.lastIndexOf('/');
  return cleanPath(p.slice(0, i + 1));
}

/** Byte-wise (UTF-8) string order, as Go's sort.Strings and filepath.Walk use. */
export function compareBytes(a: string, b: string): number {
  if (a === b) return 0;
  // UTF-16 order equals UTF-8 byte order unless surrogates meet U+E000..U+FFFF.
  if (!HIGH_UNITS.test(a) && !HIGH_UNITS.test(b)) return a < b ? -1 : 1;
  return compareNames(a, b);
}

const HIGH_UNITS = /[\ud800-\uffff]/;

/** Joins context-relative slash paths, where '' is the context root. */
export function joinRel(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}
