// moby/patternmatcher's tables (patternmatcher_test.go, ignorefile/ignorefile_test.go), ported by hand.
import { describe, expect, it } from 'vitest';
import { BadPatternError } from '../../src/context/filepath-match';
import {
  type MatchType, matchesOrParentMatches, Pattern, PatternMatcher, readDockerignore,
} from '../../src/context/patternmatcher';
import { pmMatchTests } from './match-tables';

// moby/patternmatcher TestMatches: [pattern, text, pass] (67 cases)
const matchesTests: [string, string, boolean][] = [
  ["**", "file", true],
  ["**", "file/", true],
  ["**/", "file", true],
  ["**/", "file/", true],
  ["**", "/", true],
  ["**/", "/", true],
  ["**", "dir/file", true],
  ["**/", "dir/file", true],
  ["**", "dir/file/", true],
  ["**/", "dir/file/", true],
  ["**/**", "dir/file", true],
  ["**/**", "dir/file/", true],
  ["dir/**", "dir/file", true],
  ["dir/**", "dir/file/", true],
  ["dir/**", "dir/dir2/file", true],
  ["dir/**", "dir/dir2/file/", true],
  ["**/dir", "dir", true],
  ["**/dir", "dir/file", true],
  ["**/dir2/*", "dir/dir2/file", true],
  ["**/dir2/*", "dir/dir2/file/", true],
  ["**/dir2/**", "dir/dir2/dir3/file", true],
  ["**/dir2/**", "dir/dir2/dir3/file/", true],
  ["**file", "file", true],
  ["**file", "dir/file", true],
  ["**/file", "dir/file", true],
  ["**file", "dir/dir/file", true],
  ["**/file", "dir/dir/file", true],
  ["**/file*", "dir/dir/file", true],
  ["**/file*", "dir/dir/file.txt", true],
  ["**/file*txt", "dir/dir/file.txt", true],
  ["**/file*.txt", "dir/dir/file.txt", true],
  ["**/file*.txt*", "dir/dir/file.txt", true],
  ["**/**/*.txt", "dir/dir/file.txt", true],
  ["**/**/*.txt2", "dir/dir/file.txt", false],
  ["**/*.txt", "file.txt", true],
  ["**/**/*.txt", "file.txt", true],
  ["a**/*.txt", "a/file.txt", true],
  ["a**/*.txt", "a/dir/file.txt", true],
  ["a**/*.txt", "a/dir/dir/file.txt", true],
  ["a/*.txt", "a/dir/file.txt", false],
  ["a/*.txt", "a/file.txt", true],
  ["a/*.txt**", "a/file.txt", true],
  ["a[b-d]e", "ae", false],
  ["a[b-d]e", "ace", true],
  ["a[b-d]e", "aae", false],
  ["a[^b-d]e", "aze", true],
  [".*", ".foo", true],
  [".*", "foo", false],
  ["abc.def", "abcdef", false],
  ["abc.def", "abc.def", true],
  ["abc.def", "abcZdef", false],
  ["abc?def", "abcZdef", true],
  ["abc?def", "abcdef", false],
  ["a\\\\", "a\\", true],
  ["**/foo/bar", "foo/bar", true],
  ["**/foo/bar", "dir/foo/bar", true],
  ["**/foo/bar", "dir/dir2/foo/bar", true],
  ["abc/**", "abc", false],
  ["abc/**", "abc/def", true],
  ["abc/**", "abc/def/ghi", true],
  ["**/.foo", ".foo", true],
  ["**/.foo", "bar.foo", false],
  ["a(b)c/def", "a(b)c/def", true],
  ["a(b)c/def", "a(b)c/xyz", false],
  ["a.|)$(}+{bc", "a.|)$(}+{bc", true],
  ["dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true],
  ["dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true],
];
// moby/patternmatcher TestMatches multiPatternTests: [patterns, text, pass] (4 cases)
const multiPatternTests: [string[], string, boolean][] = [
  [["**", "!util/docker/web"], "util/docker/web/foo", false],
  [["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", true],
  [["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false],
  [["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false],
];
// moby/patternmatcher compileTests: [pattern, matchType, regexp source] (21 cases)
const compileTests: [string, MatchType, string][] = [
  ["*", "regexp", "^[^/]*$"],
  ["file*", "regexp", "^file[^/]*$"],
  ["*file", "regexp", "^[^/]*file$"],
  ["a*/b", "regexp", "^a[^/]*/b$"],
  ["**", "suffix", ""],
  ["**/**", "regexp", "^(.*/)?.*$"],
  ["dir/**", "prefix", ""],
  ["**/dir", "suffix", ""],
  ["**/dir2/*", "regexp", "^(.*/)?dir2/[^/]*$"],
  ["**/dir2/**", "regexp", "^(.*/)?dir2/.*$"],
  ["**file", "suffix", ""],
  ["**/file*txt", "regexp", "^(.*/)?file[^/]*txt$"],
  ["**/**/*.txt", "regexp", "^(.*/)?(.*/)?[^/]*\\.txt$"],
  ["a[b-d]e", "regexp", "^a[b-d]e$"],
  [".*", "regexp", "^\\.[^/]*$"],
  ["abc.def", "exact", ""],
  ["abc?def", "regexp", "^abc[^/]def$"],
  ["**/foo/bar", "suffix", ""],
  ["a(b)c/def", "exact", ""],
  ["a.|)$(}+{bc", "exact", ""],
  ["dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", "exact", ""],
];

describe('PatternMatcher.matchesOrParentMatches (TestMatches)', () => {
  it('has the full tables', () => {
    expect(matchesTests).toHaveLength(67);
    expect(multiPatternTests).toHaveLength(4);
  });

  it.each([...matchesTests, ['a\\*b', 'a*b', true] as [string, string, boolean]])(
    'pattern %j, text %j → %s',
    (pattern, text, pass) => {
      const pm = new PatternMatcher([pattern]);
      expect(pm.matchesOrParentMatches(text)).toBe(pass);
    },
  );

  it.each(multiPatternTests)('patterns %j, text %j → %s', (patterns, text, pass) => {
    const pm = new PatternMatcher(patterns);
    expect(pm.matchesOrParentMatches(text)).toBe(pass);
  });
});

describe('matchTests through the package-level matcher (TestMatch)', () => {
  it('has the full table', () => expect(pmMatchTests).toHaveLength(54));

  it.each(pmMatchTests)('Matches(%j, %j) = %s (bad pattern: %s)', (pattern, name, match, bad) => {
    if (bad) {
      expect(() => matchesOrParentMatches(name, [pattern])).toThrow(BadPatternError);
    } else {
      expect(matchesOrParentMatches(name, [pattern])).toBe(match);
    }
  });
});

describe('compile (TestCompile, slash)', () => {
  it('has the full table', () => expect(compileTests).toHaveLength(21));

  it.each(compileTests)('pattern %j is a %s match %j', (pattern, type, regexp) => {
    const p = new Pattern(pattern, false);
    expect(p.matchType).toBe(type);
    if (type === 'regexp') expect(p.regexpSource).toBe(regexp);
  });
});

describe('small patternmatcher tests', () => {
  it('TestWildcardMatches / TestPatternMatches', () => {
    expect(matchesOrParentMatches('fileutils.go', ['*'])).toBe(true);
    expect(matchesOrParentMatches('fileutils.go', ['*.go'])).toBe(true);
  });

  it('exclusions before and after a pattern', () => {
    expect(matchesOrParentMatches('fileutils.go', ['!fileutils.go', '*.go'])).toBe(true);
    expect(matchesOrParentMatches('fileutils.go', ['*.go', '!fileutils.go'])).toBe(false);
  });

  it('folder patterns followed by an exception', () => {
    expect(matchesOrParentMatches('docs/README.md', ['docs', '!docs/README.md'])).toBe(false);
    expect(matchesOrParentMatches('docs/README.md', ['docs/', '!docs/README.md'])).toBe(false);
    expect(matchesOrParentMatches('docs/README.md', ['docs/*', '!docs/README.md'])).toBe(false);
  });

  it('never excludes the whole context (".")', () => {
    expect(matchesOrParentMatches('.', ['*.go'])).toBe(false);
  });

  it('a lone ! is an error', () => {
    expect(() => matchesOrParentMatches('fileutils.go', ['!'])).toThrow('illegal exclusion pattern: "!"');
    expect(() => new PatternMatcher(['!'])).toThrow('illegal exclusion pattern: "!"');
  });

  it('no patterns match nothing; a malformed one is an error', () => {
    expect(matchesOrParentMatches('/any/path/there', [])).toBe(false);
    expect(() => matchesOrParentMatches('/any/path/there', ['['])).toThrow(BadPatternError);
  });

  it('TestCleanPatterns*: empty patterns dropped, exceptions seen through whitespace', () => {
    expect(new PatternMatcher(['docs', 'config']).patterns).toHaveLength(2);
    expect(new PatternMatcher(['docs', 'config', '']).patterns).toHaveLength(2);
    expect(new PatternMatcher(['docs', '!docs/README.md']).exclusions()).toBe(true);
    expect(new PatternMatcher(['docs', '  !docs/README.md']).exclusions()).toBe(true);
    expect(new PatternMatcher(['docs', '!docs/README.md  ']).exclusions()).toBe(true);
    expect(new PatternMatcher(['docs']).exclusions()).toBe(false);
  });

  it('a pattern that passes validation but cannot compile fails on every match (moby/moby#52203)', () => {
    const pm = new PatternMatcher(['[Local-Only]/']);
    expect(() => pm.matchesOrParentMatches('x')).toThrow(BadPatternError);
    expect(() => pm.matchesOrParentMatches('x')).toThrow(BadPatternError);
    expect(() => pm.validate()).toThrow(BadPatternError);
  });

  it('character classes and escapes', () => {
    const pm = (p: string) => new PatternMatcher([p]);
    expect(pm('file[0-9].txt').matchesOrParentMatches('file7.txt')).toBe(true);
    expect(pm('file[0-9].txt').matchesOrParentMatches('filex.txt')).toBe(false);
    expect(pm('[^a]*').matchesOrParentMatches('abc')).toBe(false);
    expect(pm('[^a]*').matchesOrParentMatches('bc')).toBe(true);
    expect(pm('\\[x\\]').matchesOrParentMatches('[x]')).toBe(true);
    expect(pm('a\\?').matchesOrParentMatches('ab')).toBe(false);
    expect(pm('a\\?').matchesOrParentMatches('a?')).toBe(true);
  });
});

describe('mayReinclude (exception-aware pruning)', () => {
  it('says no without exceptions', () => {
    expect(new PatternMatcher(['dir']).mayReinclude('dir')).toBe(false);
  });

  it('follows literal and wildcard prefixes of exceptions', () => {
    const pm = new PatternMatcher(['dir', '!dir/keep/*.txt', '!other']);
    expect(pm.mayReinclude('dir')).toBe(true);
    expect(pm.mayReinclude('dir/keep')).toBe(true);
    expect(pm.mayReinclude('dir/drop')).toBe(false);
    expect(pm.mayReinclude('dir/keep/deeper')).toBe(false);
    expect(pm.mayReinclude('unrelated')).toBe(false);
  });

  it('is conservative for ** and classes', () => {
    expect(new PatternMatcher(['*', '!**/keep']).mayReinclude('any/where')).toBe(true);
    expect(new PatternMatcher(['*', '!x[0-9]/a']).mayReinclude('anything')).toBe(true);
  });
});

describe('readDockerignore (TestReadAll)', () => {
  it('reads nothing from an empty file', () => {
    expect(readDockerignore('')).toEqual([]);
  });

  it('cleans, strips the leading slash, keeps exceptions, skips comments', () => {
    const content = 'test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ';
    expect(readDockerignore(content)).toEqual([
      'test1', 'test2', 'a/file/here', 'lastfile', '!inverted/abs/path', '!', '!',
    ]);
  });

  it('strips a BOM and CRLF, cleans ./ and trailing slashes, comments only in column 1', () => {
    expect(readDockerignore('\ufeff# c\r\n./foo/\r\n  # not a comment\r\nbar/../baz\r\n')).toEqual(['foo', '# not a comment', 'baz']);
  });

  it('the lone ! it returns is rejected by the matcher', () => {
    expect(() => new PatternMatcher(readDockerignore('a\n!\n'))).toThrow('illegal exclusion pattern: "!"');
  });
});

// Keep the MatchType import used by the table's type annotation.
export type { MatchType };
