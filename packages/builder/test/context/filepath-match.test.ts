// Go's path/filepath.Match table (src/path/filepath/match_test.go), ported by hand.
import { describe, expect, it } from 'vitest';
import { BadPatternError, filepathMatch, hasMeta, validatePattern } from '../../src/context/filepath-match';

// Go path/filepath match_test.go matchTests: [pattern, name, match, badPattern] (56 cases)
const goMatchTests: [string, string, boolean, boolean][] = [
  ["abc", "abc", true, false],
  ["*", "abc", true, false],
  ["*c", "abc", true, false],
  ["a*", "a", true, false],
  ["a*", "abc", true, false],
  ["a*", "ab/c", false, false],
  ["a*/b", "abc/b", true, false],
  ["a*/b", "a/c/b", false, false],
  ["a*b*c*d*e*/f", "axbxcxdxe/f", true, false],
  ["a*b*c*d*e*/f", "axbxcxdxexxx/f", true, false],
  ["a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false, false],
  ["a*b*c*d*e*/f", "axbxcxdxexxx/fff", false, false],
  ["a*b?c*x", "abxbbxdbxebxczzx", true, false],
  ["a*b?c*x", "abxbbxdbxebxczzy", false, false],
  ["ab[c]", "abc", true, false],
  ["ab[b-d]", "abc", true, false],
  ["ab[e-g]", "abc", false, false],
  ["ab[^c]", "abc", false, false],
  ["ab[^b-d]", "abc", false, false],
  ["ab[^e-g]", "abc", true, false],
  ["a\\*b", "a*b", true, false],
  ["a\\*b", "ab", false, false],
  ["a?b", "a☺b", true, false],
  ["a[^a]b", "a☺b", true, false],
  ["a???b", "a☺b", false, false],
  ["a[^a][^a][^a]b", "a☺b", false, false],
  ["[a-ζ]*", "α", true, false],
  ["*[a-ζ]", "A", false, false],
  ["a?b", "a/b", false, false],
  ["a*b", "a/b", false, false],
  ["[\\]a]", "]", true, false],
  ["[\\-]", "-", true, false],
  ["[x\\-]", "x", true, false],
  ["[x\\-]", "-", true, false],
  ["[x\\-]", "z", false, false],
  ["[\\-x]", "x", true, false],
  ["[\\-x]", "-", true, false],
  ["[\\-x]", "a", false, false],
  ["[]a]", "]", false, true],
  ["[-]", "-", false, true],
  ["[x-]", "x", false, true],
  ["[x-]", "-", false, true],
  ["[x-]", "z", false, true],
  ["[-x]", "x", false, true],
  ["[-x]", "-", false, true],
  ["[-x]", "a", false, true],
  ["\\", "a", false, true],
  ["[a-b-c]", "a", false, true],
  ["[", "a", false, true],
  ["[^", "a", false, true],
  ["[^bc", "a", false, true],
  ["a[", "a", false, true],
  ["a[", "ab", false, true],
  ["a[", "x", false, true],
  ["a/b[", "x", false, true],
  ["*x", "xxx", true, false],
];

describe('filepathMatch (Go filepath.Match)', () => {
  it.each(goMatchTests)('Match(%j, %j) = %s (bad pattern: %s)', (pattern, name, match, bad) => {
    if (bad) {
      expect(() => filepathMatch(pattern, name)).toThrow(BadPatternError);
    } else {
      expect(filepathMatch(pattern, name)).toBe(match);
    }
  });

  it('reports the pattern in the error', () => {
    expect(() => filepathMatch('a[', 'x')).toThrow('syntax error in pattern: "a["');
  });

  it('validates a whole pattern even when an earlier chunk fails to match', () => {
    expect(() => filepathMatch('x*[', 'abc')).toThrow(BadPatternError);
    expect(() => validatePattern('ok*/[')).toThrow(BadPatternError);
    expect(() => validatePattern('[[]x]')).not.toThrow();
  });

  it('matches a literal [ written as [[]', () => {
    expect(filepathMatch('[[]x]', '[x]')).toBe(true);
    expect(filepathMatch('[[]x]', 'x')).toBe(false);
  });

  it('hasMeta sees *, ?, [ and \\', () => {
    expect(['a', 'a*', 'a?', 'a[', 'a\\b'].map(hasMeta)).toEqual([false, true, true, true, true]);
  });
});
