// Directives, continuations, limits and dump formatting (REFERENCE 1.4, 1.5, 2.1).
import { describe, expect, it } from 'vitest';
import {
  DockerfileParseError,
  MAX_LINE_BYTES,
  detectSyntax,
  dump,
  parse,
  parseCheckDirective,
} from '../../src/dockerfile';
import { thrown } from '../../../../test/helpers/errors';

const parseError = (text: string | Uint8Array): DockerfileParseError => {
  const err = thrown(() => parse(text));
  expect(err).toBeInstanceOf(DockerfileParseError);
  return err as DockerfileParseError;
};

describe('directives', () => {
  it('escape = backtick switches the continuation and escape token', () => {
    const r = parse('# escape=`\nFROM image\nRUN echo a `\n  b\nCOPY --chown=a`:b x y\n');
    expect(r.directives.escape).toBe('`');
    expect(dump(r.ast)).toBe('(from "image")\n(run "echo a   b")\n(copy ["--chown=a:b"] "x" "y")');
  });

  it('accepts spaces around = and keys in any case; values keep their case', () => {
    const r = parse('#  ESCAPE  =  `  \n# Syntax=Docker/Dockerfile:1\nFROM a\n');
    expect(r.directives).toEqual({ escape: '`', syntax: 'Docker/Dockerfile:1' });
  });

  it('records syntax and check', () => {
    const r = parse('# syntax=docker/dockerfile:1.7\n# check=skip=JSONArgsRecommended;error=true\nFROM a\n');
    expect(r.directives).toEqual({ escape: '\\', syntax: 'docker/dockerfile:1.7', check: 'skip=JSONArgsRecommended;error=true' });
    expect(parseCheckDirective(r.directives.check!)).toEqual({
      skipAll: false,
      skipRules: ['JSONArgsRecommended'],
      experimentalAll: false,
      experimentalRules: [],
      error: true,
    });
    expect(parseCheckDirective('skip=all')).toMatchObject({ skipAll: true });
    expect(() => parseCheckDirective('bogus')).toThrow('invalid check option "bogus"');
  });

  it('a repeated directive is an error on its line', () => {
    const err = parseError('# escape=`\n# escape=\\\nFROM a\n');
    expect(err.message).toBe('dockerfile parse error on line 2: only one escape parser directive can be used');
    expect(err.line).toBe(2);
    expect(parseError('#syntax=a\n#SYNTAX=b\nFROM a\n').detail).toBe('only one syntax parser directive can be used');
  });

  it('an invalid escape token is an error', () => {
    const err = parseError('# escape=x\nFROM a\n');
    expect(err.message).toBe("dockerfile parse error on line 1: invalid escape token 'x' does not match ` or \\");
  });

  it('an unknown key ends the directive block', () => {
    const r = parse('# foo=bar\n# escape=`\nFROM a\nENV X a\\\nb\n');
    expect(r.directives.escape).toBe('\\');
    expect(dump(r.ast)).toBe('(from "a")\n(env "X" "ab" "")');
  });

  it('a blank line, a plain comment or an instruction ends the block', () => {
    expect(parse('\n# escape=`\nFROM a\n').directives.escape).toBe('\\');
    expect(parse('# hello\n# escape=`\nFROM a\n').directives.escape).toBe('\\');
    expect(parse('FROM a\n# escape=`\nRUN b\n').directives.escape).toBe('\\');
  });

  it('a BOM is stripped before directives and instructions', () => {
    const withDirective = parse(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('# escape=`\nFROM a\n')]));
    expect(withDirective.directives.escape).toBe('`');
    const plain = parse('\uFEFFFROM busybox\n');
    expect(dump(plain.ast)).toBe('(from "busybox")');
  });

  it('a shebang ends directive parsing but syntax is still detected below it', () => {
    const r = parse('#!/usr/bin/env tsbuild\n# syntax=docker/dockerfile:1\n# escape=`\nFROM a\n');
    expect(r.directives.escape).toBe('\\');
    expect(r.directives.syntax).toBe('docker/dockerfile:1');
  });

  it('detectSyntax also reads // comments and JSON', () => {
    expect(detectSyntax('# syntax = dockerfile:experimental // opts\nFROM busybox\n')).toEqual({
      ref: 'dockerfile:experimental',
      cmdline: 'dockerfile:experimental // opts',
      line: 1,
    });
    expect(detectSyntax('//syntax=foo\n//key=value')?.ref).toBe('foo');
    expect(detectSyntax('{"syntax": "foo", "bar": ["abc"]}')?.ref).toBe('foo');
    expect(detectSyntax('#!/bin/sh\n\n# syntax = x\n')).toBeUndefined();
    expect(detectSyntax('FROM busybox\n')).toBeUndefined();
  });

  it('directive lines are not kept as instruction comments', () => {
    const r = parse('# escape=\\\n# about a\nFROM a\n');
    expect(r.ast.children[0]!.comments).toEqual(['about a']);
    const r2 = parse('FROM a\n# first\n# second\nRUN x\n\n#\nRUN y\n');
    expect(r2.ast.children[1]!.comments).toEqual(['first', 'second']);
    expect(r2.ast.children[2]!.comments).toEqual([]);
  });
});

describe('lines and continuations', () => {
  it.each([
    ['joins continuation lines verbatim, keeping their indentation', 'FROM a\nRUN echo hello\\\n  world\n', '(from "a")\n(run "echo hello  world")'],
    ['allows spaces and tabs after the escape token', 'FROM a\nRUN a \\ \t\nb\n', '(from "a")\n(run "a b")'],
    ['a comment ending in the escape token does not continue', 'FROM a\n# note \\\nRUN b\n', '(from "a")\n(run "b")'],
    ['a doubled escape at the end of a line is literal', 'FROM a\nENV C x\\\\\nENV D y\n', '(from "a")\n(env "C" "x\\\\\\\\" "")\n(env "D" "y" "")'],
  ])('%s', (_name, text, ast) => {
    expect(dump(parse(text).ast)).toBe(ast);
  });

  it('skips blank lines inside a continuation with a warning', () => {
    const r = parse('FROM a\nRUN something \\\n\n    following \\\n\n    more\n\nRUN valid \\\n    continuation\n');
    expect(r.warnings).toEqual(['Empty continuation line found in: RUN something     following     more']);
    expect(dump(r.ast)).toContain('(run "something     following     more")');
  });

  it('drops comment lines inside a continuation (no warning)', () => {
    const r = parse('FROM a\nRUN indented \\\n    # an indented comment\n    comment\n');
    expect(r.warnings).toEqual([]);
    expect(r.ast.children[1]!.next).toEqual(['indented     comment']);
  });

  it('EOF inside a continuation ends the instruction', () => {
    const r = parse('FROM a\nRUN one \\');
    expect(r.ast.children[1]).toMatchObject({ next: ['one'], original: 'RUN one ', startLine: 2, endLine: 2 });
  });

  it('a line holding only the escape adds nothing', () => {
    expect(parse('FROM a\nENV E hello\\\n\\\nworld\n').ast.children[1]!.next).toEqual(['E', 'helloworld', '']);
  });

  it('handles CRLF line endings', () => {
    const r = parse('FROM a\r\nRUN echo \\\r\n  hi\r\n');
    expect(dump(r.ast)).toBe('(from "a")\n(run "echo   hi")');
    expect(r.ast.children[1]!.endLine).toBe(3);
  });

  it('keeps the original line (flags included) on each node', () => {
    const r = parse('FROM a\n   COPY --chown=1:1 x /y  \n');
    expect(r.ast.children[1]!.original).toBe('COPY --chown=1:1 x /y  ');
  });

  it(`accepts a line of ${MAX_LINE_BYTES} bytes and rejects one byte more`, () => {
    const ok = parse(`FROM a\nLABEL x=${'a'.repeat(MAX_LINE_BYTES - 8)}\n`);
    expect(ok.ast.children).toHaveLength(2);
    const err = parseError(`FROM a\nLABEL x=${'a'.repeat(MAX_LINE_BYTES - 7)}\n`);
    expect(err.message).toBe('dockerfile parse error on line 2: dockerfile line greater than max allowed size of 65535');
  });

  it('counts the limit in UTF-8 bytes', () => {
    // 'é' is 2 bytes: 32768 of them exceed the limit although the string is shorter.
    expect(parseError(`FROM a\nLABEL x=${'é'.repeat(32768)}\n`).detail).toMatch(/max allowed size/);
  });

  it('a file with only comments and blank lines has no instructions', () => {
    expect(parseError('# a\n\n   \n# b\n').detail).toBe('file with no instructions');
    expect(parseError('').detail).toBe('file with no instructions');
  });

  it('unknown keywords parse (they are rejected when typing)', () => {
    expect(dump(parse('FROM a\nFOO bar baz\n').ast)).toBe('(from "a")\n(foo "")');
  });
});

describe('argument forms', () => {
  const one = (line: string) => parse('FROM a\n' + line).ast.children[1]!;

  it('JSON arrays decode; anything else stays a string', () => {
    expect(one('CMD ["a", "b c"]')).toMatchObject({ next: ['a', 'b c'], json: true });
    expect(one("CMD ['a']")).toMatchObject({ next: ["['a']"], json: false });
    expect(one('CMD []')).toMatchObject({ next: [], json: true });
  });

  it('a non-string inside a JSON array is an error with the line', () => {
    const err = parseError('FROM a\n\nRUN ["echo", 1]\n');
    expect(err.message).toBe('dockerfile parse error on line 3: when using JSON array syntax, arrays must be comprised of strings only');
  });

  it('ENV/LABEL k=v without = in a later word is an error', () => {
    expect(parseError('FROM a\nENV a=1 b\n').detail).toBe('Syntax error - can\'t find = in "b". Must be of the form: name=value');
  });

  it('ENV with a single word is an error', () => {
    expect(parseError('FROM a\nENV PATH\n').message).toBe('dockerfile parse error on line 2: ENV must have two arguments');
  });

  it('flags are split for every instruction and `--` ends them', () => {
    expect(one('CMD --doit -- [ ]')).toMatchObject({ flags: ['--doit'], next: [], json: true });
    expect(one('COPY --from="my stage" -- --weird /x')).toMatchObject({ flags: ['--from=my stage'], next: ['--weird', '/x'] });
  });

  it('HEALTHCHECK splits the type word from a maybe-JSON command', () => {
    expect(one('HEALTHCHECK --retries=2 CMD ["x", "y"]')).toMatchObject({ flags: ['--retries=2'], next: ['CMD', 'x', 'y'], json: true });
    expect(one('HEALTHCHECK NONE')).toMatchObject({ next: ['NONE'] });
  });

  it('ONBUILD nests the trigger node', () => {
    const n = one('ONBUILD ADD --chown=1 . /app');
    expect(n.subcommand).toMatchObject({ value: 'add', flags: ['--chown=1'], next: ['.', '/app'] });
    expect(dump(parse('FROM a\nONBUILD ONBUILD RUN x\n').ast)).toBe('(from "a")\n(onbuild (onbuild (run "x")))');
  });
});

describe('dump quoting (Go strconv.Quote)', () => {
  it.each([
    ['RUN ["a\\tb"]', '(run "a\\tb")'],
    ['RUN ["\\u0000\\u0007\\u001b\\u007f"]', '(run "\\x00\\a\\x1b\\x7f")'],
    ['RUN ["♥ é 😀"]', '(run "♥ é 😀")'],
    ['RUN ["\\u00a0\\u200b\\ufeff"]', '(run "\\u00a0\\u200b\\ufeff")'],
    ['RUN ["it\'s \\"q\\" \\\\"]', '(run "it\'s \\"q\\" \\\\")'],
    ['COPY --a=\t1 x y', '(copy ["--a="] "1" "x" "y")'],
  ])('%s', (line, expected) => {
    const { ast } = parse('FROM a\n' + line + '\n');
    expect(dump(ast.children[1]!)).toBe(expected.slice(1, -1));
    expect(dump(ast).split('\n')[1]).toBe(expected);
  });
});
