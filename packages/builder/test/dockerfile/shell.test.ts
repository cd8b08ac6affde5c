// The shell-word lexer (REFERENCE 1.6). Table after bk:shell/lex_test.go TestProcessWithMatches.
import { describe, expect, it } from 'vitest';
import { ShellExpansionError, ShellLexer, processWord, processWordWithMatches, processWords } from '../../src/dockerfile';
import { thrown } from '../../../../test/helpers/errors';

interface Case {
  input: string;
  envs: Record<string, string>;
  expected?: string;
  err?: true;
  matches?: string[];
  unmatched?: string[];
}

const cases: Case[] = [
  { input: 'x', envs: { DUMMY: 'dummy' }, expected: 'x' },
  { input: 'x ${UNUSED}', envs: { DUMMY: 'dummy' }, expected: 'x ', unmatched: ['UNUSED'] },
  { input: 'x ${FOO}', envs: { FOO: 'y' }, expected: 'x y', matches: ['FOO'] },
  { input: '${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}', envs: { FOO: 'xxx', BAR: '' }, expected: 'xxx  ccc', matches: ['FOO', 'BAR'], unmatched: ['BAZ'] },
  { input: '${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}', envs: { FOO: 'xxx', BAR: '' }, expected: 'xxx bbb ccc', matches: ['FOO', 'BAR'], unmatched: ['BAZ'] },
  { input: '${FOO:-}', envs: { FOO: 'xxx', BAR: '' }, expected: 'xxx', matches: ['FOO'] },
  { input: '${FOO:-}', envs: {}, expected: '', unmatched: ['FOO'] },
  { input: '${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}', envs: { FOO: 'xxx', BAR: '' }, expected: 'aaa bbb ', matches: ['FOO', 'BAR'], unmatched: ['BAZ'] },
  { input: '${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}', envs: { FOO: 'xxx', BAR: '' }, expected: 'aaa  ', matches: ['FOO', 'BAR'], unmatched: ['BAZ'] },
  { input: '${FOO?aaa}', envs: { FOO: 'xxx', BAR: '' }, expected: 'xxx', matches: ['FOO'] },
  { input: '${BAR?bbb}', envs: { FOO: 'xxx', BAR: '' }, expected: '', matches: ['BAR'] },
  { input: '${BAZ?ccc}', envs: { FOO: 'xxx', BAR: '' }, err: true },
  { input: '${FOO:?aaa}', envs: { FOO: 'xxx', BAR: '' }, expected: 'xxx', matches: ['FOO'] },
  { input: '${BAR:?bbb}', envs: { FOO: 'xxx', BAR: '' }, err: true },
  { input: '${BAZ:?ccc}', envs: { FOO: 'xxx', BAR: '' }, err: true },
  { input: '${BAZ:?}', envs: { FOO: 'xxx', BAR: '' }, err: true },
  { input: '${FOO=aaa}', envs: { FOO: 'xxx', BAR: '' }, err: true },
  { input: '${FOO=:aaa}', envs: { FOO: 'xxx', BAR: '' }, err: true },
  { input: '${FOO=}', envs: {}, err: true },
  { input: '${FOO#()[]{\\}^$.\\*\\?|\\\\}', envs: { FOO: '()[]{}^$.*?|\\x' }, expected: 'x', matches: ['FOO'] },
  { input: '${FOO%%\\**}', envs: { FOO: 'xx**' }, expected: 'xx', matches: ['FOO'] },
  { input: '${FOO#*x*y}', envs: { FOO: 'xxyy' }, expected: 'y', matches: ['FOO'] },
  { input: '${FOO#*}', envs: { FOO: 'xxyy' }, expected: 'xxyy', matches: ['FOO'] },
  { input: '${FOO#$BAR}', envs: { FOO: 'xxyy', BAR: 'x' }, expected: 'xyy', matches: ['FOO', 'BAR'] },
  { input: '${FOO#$BAR}', envs: { FOO: 'xxyy', BAR: '' }, expected: 'xxyy', matches: ['FOO', 'BAR'] },
  { input: '${FOO#}', envs: { FOO: 'xxyy' }, expected: 'xxyy', matches: ['FOO'] },
  { input: '${FOO##*x}', envs: { FOO: 'xxyy' }, expected: 'yy', matches: ['FOO'] },
  { input: '${FOO##}', envs: { FOO: 'xxyy' }, expected: 'xxyy', matches: ['FOO'] },
  { input: '${FOO#?\\?}', envs: { FOO: '???y' }, expected: '?y', matches: ['FOO'] },
  { input: '${ABC:-.}${FOO%x}${ABC:-.}', envs: { FOO: 'xxyy' }, expected: '.xxyy.', matches: ['FOO'], unmatched: ['ABC'] },
  { input: '${FOO%%\\**\\*}', envs: { FOO: 'a***yy*' }, expected: 'a', matches: ['FOO'] },
  { input: '${FOO%}', envs: { FOO: 'xxyy' }, expected: 'xxyy', matches: ['FOO'] },
  { input: '${FOO%%$BAR}', envs: { FOO: 'xxyy', BAR: '' }, expected: 'xxyy', matches: ['FOO', 'BAR'] },
  { input: '${FOO:#}', envs: {}, err: true },
  { input: '${FOO:##}', envs: {}, err: true },
  { input: '${FOO:%}', envs: {}, err: true },
  { input: '${FOO:%%}', envs: {}, err: true },
  { input: '${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}', envs: { FOO: '/foo*/*/*.txt', NEEDLE: '\\*/' }, expected: '/foo.*/*.txt - /foo..*.txt', matches: ['FOO', 'NEEDLE'] },
  { input: '${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}', envs: { FOO: '/tmp/tmp/bar.txt', NEEDLE: '/tmp' }, expected: '/tmp/bar.txt - /bar.txt', matches: ['FOO', 'NEEDLE'] },
  { input: '${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}', envs: { FOO: '/a/foo/b/c.txt', NEEDLE: '/?/', REPLACEMENT: '/' }, expected: '/foo/b/c.txt - /foo/c.txt', matches: ['FOO', 'NEEDLE', 'REPLACEMENT'] },
  { input: '${FOO/$NEEDLE/$REPLACEMENT}', envs: { FOO: 'http://google.de', NEEDLE: 'http://', REPLACEMENT: 'https://' }, expected: 'https://google.de', matches: ['FOO', 'NEEDLE', 'REPLACEMENT'] },
  { input: '${FOO//\\//\\/}', envs: { FOO: '/tmp/foo.txt' }, expected: '\\/tmp\\/foo.txt', matches: ['FOO'] },
  { input: '${FOO/$BAR/ww}', envs: { FOO: 'xxyy', BAR: '' }, expected: 'wwxxyy', matches: ['FOO', 'BAR'] },
  { input: '${FOO//ww}', envs: { FOO: 'xxyy' }, err: true },
  { input: '${FOO//}', envs: { FOO: 'xxyy' }, err: true },
  { input: '${FOO///}', envs: { FOO: 'xxyy' }, expected: 'xxyy', matches: ['FOO'] },
  { input: '${FOO///}', envs: {}, expected: '', unmatched: ['FOO'] },
];

describe('processWordWithMatches (bk:shell TestProcessWithMatches)', () => {
  it('has the 47 cases', () => {
    expect(cases).toHaveLength(47);
  });

  it.each(cases)('$input', (c) => {
    const lex = new ShellLexer();
    if (c.err) {
      expect(thrown(() => lex.processWordWithMatches(c.input, c.envs))).toBeInstanceOf(ShellExpansionError);
      return;
    }
    const r = lex.processWordWithMatches(c.input, c.envs);
    expect(r.result).toBe(c.expected);
    expect([...r.matched].sort()).toEqual([...(c.matches ?? [])].sort());
    expect([...r.unmatched].sort()).toEqual([...(c.unmatched ?? [])].sort());
  });
});

describe('lexer details', () => {
  it('${VAR:?msg} / ${VAR?msg} carry the expanded message', () => {
    const noEmpty = '${VAR:?message here$ARG}';
    const noUnset = '${VAR?message here$ARG}';
    expect(processWord(noEmpty, { VAR: 'plain', ARG: 'x' })).toBe('plain');
    expect(thrown(() => processWord(noEmpty, { VAR: '', ARG: 'x' })).message).toBe(
      'failed to process "${VAR:?message here$ARG}": VAR: message herex',
    );
    expect(thrown(() => processWord(noEmpty, { ARG: 'x' })).message).toContain('message herex');
    expect(processWord(noUnset, { VAR: '', ARG: 'x' })).toBe('');
    expect(thrown(() => processWord(noUnset, { ARG: 'x' })).message).toContain('VAR: message herex');
    expect(thrown(() => processWord('${X:?}', {})).message).toContain('X: is not allowed to be unset');
    expect(thrown(() => processWord('${X:?}', { X: '' })).message).toContain('X: is not allowed to be empty');
  });

  it('syntax errors name the problem', () => {
    expect(thrown(() => processWord('${PWD', {})).message).toContain("syntax error: missing '}'");
    expect(thrown(() => processWord('${}', {})).message).toContain('syntax error: bad substitution');
    expect(thrown(() => processWord('${X:=1}', {})).message).toContain('unsupported modifier (:=) in substitution');
    expect(thrown(() => processWord('"abc', {})).message).toContain('matching double-quote');
    expect(thrown(() => processWord("'abc", {})).message).toContain('matching single-quote');
    expect(thrown(() => processWord('${X#\\x}', { X: 'a' })).message).toContain("invalid escape '\\x'");
  });

  it('env may be a function, a Map or a record; names are case-sensitive', () => {
    expect(processWord('$a-$A', (n) => (n === 'a' ? 'lower' : undefined))).toBe('lower-');
    expect(processWord('$a-$A', new Map([['A', 'upper']]))).toBe('-upper');
    expect(processWord('$a-$A', { a: '1', A: '2' })).toBe('1-2');
    // Inherited object properties are not variables.
    expect(processWord('[$constructor][$toString]', {})).toBe('[][]');
  });

  it('the backtick escape token', () => {
    const lex = new ShellLexer({ escapeToken: '`' });
    expect(lex.processWord('a`$b\\c', { b: 'B' })).toBe('a$b\\c');
    expect(lex.processWord('"x`"y"', {})).toBe('x"y');
    expect(() => new ShellLexer({ escapeToken: '!' })).toThrow("invalid escape token '!'");
  });

  it('processWords splits unquoted expansions only', () => {
    expect(processWords('80/tcp ${PORTS}', { PORTS: '443  8080/udp' })).toEqual(['80/tcp', '443', '8080/udp']);
    expect(processWords('"${PORTS}"', { PORTS: '1 2' })).toEqual(['1 2']);
    expect(processWords('a${E}b', { E: '' })).toEqual(['ab']);
    expect(processWords('""', {})).toEqual([]);
  });

  it('keeps words before a ${v:-default} in processWords', () => {
    expect(processWords('hello${X:-foo}bye', {})).toEqual(['hellofoobye']);
    expect(processWords('a ${X:-b c} d', {})).toEqual(['a', 'b', 'c', 'd']);
  });

  it('skipUnsetEnv + rawQuotes keep unresolved text as written', () => {
    const lex = new ShellLexer({ skipUnsetEnv: true, rawQuotes: true });
    expect(lex.processWord('"$A" ${B:-x} ${C/a/b} $D', { D: 'd' })).toBe('"$A" ${B:-x} ${C/a/b} d');
  });

  it('the module-level helpers accept options', () => {
    expect(processWordWithMatches('`$X', { X: '1' }, { escapeToken: '`' }).result).toBe('$X');
    expect(processWords("a 'b c'", {}, { rawQuotes: true })).toEqual(['a', "'b c'"]);
  });

  it('replace-all follows Go semantics for empty matches and $ templates', () => {
    expect(processWord('${X//*/-}', { X: 'abc' })).toBe('-');
    // An unescaped $0 is a (unset) variable; an escaped one reaches the template as the match.
    expect(processWord('${X//b/[$0]}', { X: 'abc' })).toBe('a[]c');
    expect(processWord('${X//b/[\\$0]}', { X: 'abc' })).toBe('a[\\b]c');
    expect(processWord('${X/b/[\\$0]}', { X: 'abc' })).toBe('a[\\$0]c');
  });
});
