// Fuzzing the Dockerfile front end (fast-check): the parser, the instruction typing and the shell
// lexer take any text and either succeed or refuse it with a TsbuildError (DockerfileParseError,
// ShellExpansionError) — never another exception, never a hang. Inputs are built from the tokens
// that steer the parser (keywords, flags, quotes, escapes, heredocs, JSON forms, variables).
import * as fc from 'fast-check';
import { describe, it } from 'vitest';
import { TsbuildError } from '@tsbuild/storage';
import { parse, parseInstructions, processWord, processWords } from '../../packages/builder/src/dockerfile';
import { fuzz, fuzzTestTimeout } from './budget';

const CI_SECONDS = 6;

function succeedsOrRefuses(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof TsbuildError)) throw err;
  }
}

const KEYWORDS = ['FROM', 'RUN', 'CMD', 'LABEL', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL', 'MAINTAINER', 'from', 'run'];
const TOKENS = [
  ' ', '  ', '\t', '\\', '\\\n', '`', '\n', '\r\n', '"', "'", '[', ']', ',', '=', '--', '--from=', '--mount=', 'type=cache,target=/x', '--chown=', '--chmod=', '--platform=',
  '--network=', '--interval=', 'NONE', 'CMD', '$', '${', '}', ':-', ':+', ':?', '#', '# escape=`', '# syntax=docker/dockerfile:1', '<<EOF', '<<-EOF', "<<'EOF'", 'EOF', '<<', '&&',
  'a', 'b=c', 'x y', '/', '.', '..', '*', '?', '\u00e9', '\u{1f600}', '\0', '%', 'AS', 'as', 'stage', '0', '-1', '99999999999999999999', '"a b"', '["sh","-c"]',
];
const line = fc.tuple(fc.constantFrom(...KEYWORDS, ''), fc.array(fc.constantFrom(...TOKENS), { maxLength: 14 })).map(([k, ts]) => `${k} ${ts.join('')}`);
const dockerfile = fc.oneof(
  { weight: 4, arbitrary: fc.array(line, { maxLength: 10 }).map((ls) => ls.join('\n')) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) },
);

const SHELL_TOKENS = ['$', '${', '}', 'A', 'B', 'UNSET', 'EMPTY', ':-', ':+', ':?', '-', '+', '?', '#', '##', '%', '%%', '/', '//', '\\', '"', "'", ' ', '*', 'x', '\n', '$$', '${#', '[', ']', '}}'];
const word = fc.array(fc.constantFrom(...SHELL_TOKENS), { maxLength: 20 }).map((ts) => ts.join(''));
const env = new Map([
  ['A', 'a value'],
  ['B', '*'],
  ['EMPTY', ''],
]);

describe('fuzz: Dockerfile front end', () => {
  it(
    'parse and parseInstructions: any text is parsed or refused with a TsbuildError',
    async () => {
      await fuzz('dockerfile-parse', fc.property(dockerfile, (text) => {
          succeedsOrRefuses(() => parseInstructions(parse(text)));
        }), CI_SECONDS);
    },
    fuzzTestTimeout(CI_SECONDS),
  );

  it(
    'shell lexer: any word expands or is refused with a TsbuildError',
    async () => {
      await fuzz('shell-lexer', fc.property(word, fc.constantFrom('\\', '`'), (w, escapeToken) => {
          succeedsOrRefuses(() => processWord(w, env, { escapeToken }));
          succeedsOrRefuses(() => processWords(w, env, { escapeToken }));
        }), CI_SECONDS);
    },
    fuzzTestTimeout(CI_SECONDS),
  );
});
