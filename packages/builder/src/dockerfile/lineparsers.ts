// Per-instruction argument forms (bk:parser/line_parsers.go, split_command.go):
// one logical line becomes a Node with flags split off and the arguments in
// the shape the instruction uses (JSON array, whitespace list, raw string,
// key/value triples, nested ONBUILD instruction).

import type { Node } from './ast';
import { goQuote, isGoSpace, trimLeftSpace, trimSpace } from './gostr';

/** A problem with the text of one instruction; the parser adds the line. */
export class LineSyntaxError extends Error {}

/** Go's reWhitespace `[\t\v\f\r ]+` (ASCII only, no newline). */
const reWhitespace = /[\t\v\f\r ]+/;
const reWhitespaceAll = /[\t\v\f\r ]+/g;

/** regexp.Split(s, 2) with reWhitespace. */
function splitOnce(s: string): [string] | [string, string] {
  const m = reWhitespace.exec(s);
  if (!m) return [s];
  return [s.slice(0, m.index), s.slice(m.index + m[0].length)];
}

interface Args {
  args: string[];
  json: boolean;
  subcommand?: Node;
}

const NO_ARGS: Args = { args: [], json: false };

/**
 * Splits the leading `--flag[=value]` words off `line`. Quotes group and are
 * removed, the escape token escapes one character, and a bare `--` ends the
 * flags. Returns the rest of the line and the flags.
 */
export function extractBuilderFlags(line: string, escapeToken: string): [string, string[]] {
  const IN_SPACES = 0, IN_WORD = 1, IN_QUOTE = 2;
  const words: string[] = [];
  let phase = IN_SPACES;
  let word = '';
  let quote = '';
  let blankOK = false;
  const len = line.length;
  for (let pos = 0; pos <= len; pos++) {
    let ch = pos < len ? line[pos]! : '';
    if (phase === IN_SPACES) {
      if (pos === len) break;
      if (isGoSpace(ch)) continue;
      if (ch !== '-' || pos + 1 === len || line[pos + 1] !== '-') return [line.slice(pos), words];
      phase = IN_WORD;
    }
    if (pos === len) {
      if (word !== '--' && (blankOK || word.length > 0)) words.push(word);
      break;
    }
    if (phase === IN_WORD) {
      if (isGoSpace(ch)) {
        phase = IN_SPACES;
        if (word === '--') return [line.slice(pos), words];
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = IN_QUOTE;
        continue;
      }
      if (ch === escapeToken) {
        if (pos + 1 === len) continue; // a trailing escape is dropped
        ch = line[++pos]!;
      }
      word += ch;
      continue;
    }
    // IN_QUOTE
    if (ch === quote) {
      phase = IN_WORD;
      continue;
    }
    if (ch === escapeToken) {
      if (pos + 1 === len) {
        phase = IN_WORD;
        continue;
      }
      ch = line[++pos]!;
    }
    word += ch;
  }
  return ['', words];
}

/** Splits a line into keyword, flags and the argument text. */
export function splitCommand(line: string, escapeToken: string): { cmd: string; flags: string[]; rest: string } {
  const parts = splitOnce(trimSpace(line));
  if (parts.length === 1) return { cmd: parts[0], flags: [], rest: '' };
  const [rest, flags] = extractBuilderFlags(parts[1], escapeToken);
  return { cmd: parts[0], flags, rest: trimSpace(rest) };
}

/**
 * Whitespace-separated words with quotes and escapes kept (they are removed
 * later, during expansion).
 */
export function parseWords(rest: string, escapeToken: string): string[] {
  const IN_SPACES = 0, IN_WORD = 1, IN_QUOTE = 2;
  const chars = Array.from(rest);
  const words: string[] = [];
  let phase = IN_SPACES;
  let quote = '';
  let blankOK = false;
  let word = '';
  const n = chars.length;
  for (let pos = 0; pos <= n; pos++) {
    let ch = pos < n ? chars[pos]! : '';
    if (phase === IN_SPACES) {
      if (pos === n) break;
      if (isGoSpace(ch)) continue;
      phase = IN_WORD;
    }
    if (pos === n) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === IN_WORD) {
      if (isGoSpace(ch)) {
        phase = IN_SPACES;
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = IN_QUOTE;
      }
      if (ch === escapeToken) {
        if (pos + 1 === n) continue; // a trailing escape is dropped
        // Unquoted: keep the escape and the escaped char, even a quote.
        word += ch;
        ch = chars[++pos]!;
      }
      word += ch;
      continue;
    }
    // IN_QUOTE
    if (ch === quote) phase = IN_WORD;
    if (ch === escapeToken && quote !== "'") {
      if (pos + 1 === n) {
        phase = IN_WORD;
        continue;
      }
      word += ch;
      ch = chars[++pos]!;
    }
    word += ch;
  }
  return words;
}

/** ENV / LABEL: `k=v ...` (triples with "=") or legacy `k rest` (separator ""). */
function parseNameVal(rest: string, key: string, escapeToken: string): Args {
  const words = parseWords(rest, escapeToken);
  if (words.length === 0) return NO_ARGS;
  if (!words[0]!.includes('=')) {
    const parts = splitOnce(rest);
    if (parts.length < 2) throw new LineSyntaxError(`${key} must have two arguments`);
    return { args: [parts[0], parts[1]!, ''], json: false };
  }
  const args: string[] = [];
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq < 0) {
      throw new LineSyntaxError(`Syntax error - can't find = in ${goQuote(word)}. Must be of the form: name=value`);
    }
    args.push(word.slice(0, eq), word.slice(eq + 1), '=');
  }
  return { args, json: false };
}

/** ARG: words as written (`name` or `name=value`). */
function parseNameOrNameVal(rest: string, escapeToken: string): Args {
  return { args: parseWords(rest, escapeToken), json: false };
}

function parseStringsWhitespaceDelimited(rest: string): Args {
  if (rest === '') return NO_ARGS;
  return { args: rest.split(reWhitespaceAll), json: false };
}

function parseString(rest: string): Args {
  return rest === '' ? NO_ARGS : { args: [rest], json: false };
}

const NOT_STRING_ARRAY = 'when using JSON array syntax, arrays must be comprised of strings only';

/** A JSON array of strings, undefined when the text is not valid JSON. */
function parseJSON(rest: string): Args | undefined {
  const text = trimLeftSpace(rest);
  if (!text.startsWith('[')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  for (const item of parsed) {
    if (typeof item !== 'string') throw new LineSyntaxError(NOT_STRING_ARRAY);
  }
  return { args: parsed as string[], json: true };
}

/** RUN, CMD, ENTRYPOINT, SHELL: a JSON array, else the raw string. */
function parseMaybeJSON(rest: string): Args {
  if (rest === '') return NO_ARGS;
  return parseJSON(rest) ?? { args: [rest], json: false };
}

/** ADD, COPY, VOLUME: a JSON array, else a whitespace list. */
function parseMaybeJSONToList(rest: string): Args {
  return parseJSON(rest) ?? parseStringsWhitespaceDelimited(rest);
}

/** HEALTHCHECK: a type word, then maybe-JSON. */
function parseHealthConfig(rest: string): Args {
  let sep = 0;
  while (sep < rest.length && !isGoSpace(rest[sep]!)) sep++;
  let next = sep;
  while (next < rest.length && isGoSpace(rest[next]!)) next++;
  if (sep === 0) return NO_ARGS;
  const cmd = parseMaybeJSON(rest.slice(next));
  return { args: [rest.slice(0, sep), ...cmd.args], json: cmd.json };
}

type LineParser = (rest: string, escapeToken: string) => Args;

const dispatch: Record<string, LineParser> = {
  add: parseMaybeJSONToList,
  arg: parseNameOrNameVal,
  cmd: parseMaybeJSON,
  copy: parseMaybeJSONToList,
  entrypoint: parseMaybeJSON,
  env: (rest, esc) => parseNameVal(rest, 'ENV', esc),
  expose: parseStringsWhitespaceDelimited,
  from: parseStringsWhitespaceDelimited,
  healthcheck: parseHealthConfig,
  label: (rest, esc) => parseNameVal(rest, 'LABEL', esc),
  maintainer: parseString,
  onbuild: (rest, esc) => (rest === '' ? NO_ARGS : { args: [], json: false, subcommand: newNodeFromLine(rest, esc, []) }),
  run: parseMaybeJSON,
  shell: parseMaybeJSON,
  stopsignal: parseString,
  user: parseString,
  volume: parseMaybeJSONToList,
  workdir: parseString,
};

/** Unknown keywords parse (BuildKit rejects them later) with one empty argument. */
const parseIgnore: LineParser = () => ({ args: [''], json: false });

/** Builds a Node from one logical line. Throws LineSyntaxError. */
export function newNodeFromLine(line: string, escapeToken: string, comments: string[]): Node {
  const { cmd, flags, rest } = splitCommand(line, escapeToken);
  const value = cmd.toLowerCase();
  const fn = Object.prototype.hasOwnProperty.call(dispatch, value) ? dispatch[value]! : parseIgnore;
  const { args, json, subcommand } = fn(rest, escapeToken);
  const node: Node = {
    value,
    original: line,
    flags,
    next: args,
    children: [],
    heredocs: [],
    json,
    startLine: 0,
    endLine: 0,
    comments,
  };
  if (subcommand) node.subcommand = subcommand;
  return node;
}
