// Go's path/filepath.Match table (src/path/filepath/match_test.go), ported by hand.
import { describe, expect, it } from 'vitest';
import { BadPatternError, filepathMatch, hasMeta, validatePattern } from '../../src/context/filepath-match';
import { goMatchTests } from './match-tables';

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
