// Heredoc detection (bk:parser/parser.go): a word matching
// `digits? << -? spaces? name`, found by lexing the line in raw mode.

import type { Heredoc } from './ast';
import { ShellLexer } from './shell';

// Go's \s is [\t\n\f\r ].
const reHeredoc = /^(\d*)<<(-?)[\t\n\f\r ]*([^<]*)$/;

const NO_ENV = (): undefined => undefined;

const plainLexer = new ShellLexer({ skipUnsetEnv: true });
const rawQuoteLexer = new ShellLexer({ skipUnsetEnv: true, rawQuotes: true });
const lineLexer = new ShellLexer({ skipUnsetEnv: true, rawQuotes: true, rawEscapes: true });

function countQuotes(s: string): number {
  let n = 0;
  for (const ch of s) if (ch === "'" || ch === '"') n++;
  return n;
}

/**
 * The heredoc that `word` opens, or undefined when it is not one. Throws
 * when the name is malformed (an unclosed quote).
 */
export function parseHeredoc(word: string): Omit<Heredoc, 'content'> | undefined {
  const m = reHeredoc.exec(word);
  if (!m) return undefined;
  const rest = m[3]!;
  if (rest === '') return undefined;
  // Lex the name with and without quote removal: if they differ, some part
  // was quoted and the body is not expanded.
  const words = plainLexer.processWords(rest, NO_ENV);
  if (words.length !== 1) return undefined;
  const rawWords = rawQuoteLexer.processWords(rest, NO_ENV);
  if (rawWords.length !== words.length) {
    throw new Error(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  }
  const name = words[0]!;
  return {
    name,
    fileDescriptor: m[1] === '' ? 0 : Number(m[1]),
    expand: countQuotes(name) === countQuotes(rawWords[0]!),
    chomp: m[2] === '-',
  };
}

/** parseHeredoc without errors (BuildKit's MustParseHeredoc). */
export function mustParseHeredoc(word: string): Omit<Heredoc, 'content'> | undefined {
  try {
    return parseHeredoc(word);
  } catch {
    return undefined;
  }
}

/** All heredocs opened on a line, in order. */
export function heredocsFromLine(line: string): Omit<Heredoc, 'content'>[] {
  let words: string[];
  try {
    words = lineLexer.processWords(line, NO_ENV);
  } catch {
    return []; // an unlexable line opens no heredoc
  }
  const docs: Omit<Heredoc, 'content'>[] = [];
  for (const word of words) {
    const doc = parseHeredoc(word);
    if (doc) docs.push(doc);
  }
  return docs;
}

/** Strips the leading tabs of every line (`<<-`). */
export function chompHeredocContent(content: string): string {
  return content.replace(/(^|\n)\t+/g, '$1');
}
