// BuildKit's shell-word lexer (bk:shell/lex.go semantics): quote removal,
// escapes and `$var` / `${var...}` expansion, with or without word splitting.
// Written from the documented behaviour and the conformance vectors.

import { goQuote, isGoDigit, isGoLetter, isGoSpace } from './gostr';
import { TsbuildError } from '@tsbuild/storage';

/** Where variables come from. Names are case-sensitive (Unix semantics). */
export type EnvSource =
  | ((name: string) => string | undefined)
  | ReadonlyMap<string, string>
  | Readonly<Record<string, string>>;

export interface ShellLexOptions {
  /** The Dockerfile escape token: `\` (default) or a backtick. */
  escapeToken?: string;
  /** Keep quote characters in the output (quotes still group words). */
  rawQuotes?: boolean;
  /** Keep escape characters in the output. */
  rawEscapes?: boolean;
  /** Treat `'` and `"` as ordinary characters (used for heredoc bodies). */
  skipProcessQuotes?: boolean;
  /** Leave references to unset variables as written (`$X`, `${X:-y}`). */
  skipUnsetEnv?: boolean;
}

export interface ProcessWordResult {
  /** The expanded word (no splitting). */
  result: string;
  /** The expanded word split into fields (quote-aware). */
  words: string[];
  /** Names that were looked up and found. */
  matched: Set<string>;
  /** Names that were looked up and not set. */
  unmatched: Set<string>;
}

/** An expansion failure, e.g. `failed to process "${X:?}": X: is not allowed to be unset`. */
export class ShellExpansionError extends TsbuildError {
  constructor(
    readonly word: string,
    readonly reason: string,
  ) {
    super('EDOCKERFILE', `failed to process ${goQuote(word)}: ${reason}`);
  }
}

/** Internal: an error raised while scanning, before it is tied to the source word. */
class LexError extends Error {}

const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

export function envLookup(env: EnvSource): (name: string) => string | undefined {
  if (typeof env === 'function') return env;
  if (env instanceof Map) return (name) => env.get(name);
  const rec = env as Readonly<Record<string, string>>;
  return (name) => (hasOwn(rec, name) ? rec[name] : undefined);
}

/** Collects fields for ProcessWords: unquoted whitespace separates words. */
class Fields {
  private buf = '';
  private inWord = false;
  readonly words: string[] = [];

  addChar(ch: string): void {
    if (isGoSpace(ch)) {
      if (this.inWord && this.buf.length !== 0) {
        this.words.push(this.buf);
        this.buf = '';
        this.inWord = false;
      }
    } else {
      this.addRawChar(ch);
    }
  }

  addRawChar(ch: string): void {
    this.buf += ch;
    this.inWord = true;
  }

  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }

  addRawString(s: string): void {
    this.buf += s;
    this.inWord = true;
  }

  finish(): string[] {
    if (this.buf.length > 0) {
      this.words.push(this.buf);
      this.buf = '';
      this.inWord = false;
    }
    return this.words;
  }
}

function isSpecialParam(ch: string): boolean {
  return '@*#?-$!0'.includes(ch);
}

/** One scan of one word. */
class WordScanner {
  private readonly chars: string[];
  private pos = 0;
  private rawEscapes: boolean;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();

  constructor(
    word: string,
    private readonly opts: Required<ShellLexOptions>,
    private readonly lookup: (name: string) => string | undefined,
  ) {
    this.chars = Array.from(word);
    // Go's text/scanner silently skips a leading byte-order mark.
    if (this.chars[0] === '\uFEFF') this.pos = 1;
    this.rawEscapes = opts.rawEscapes;
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }

  private next(): string | undefined {
    const ch = this.chars[this.pos];
    if (ch !== undefined) this.pos++;
    return ch;
  }

  run(): { result: string; words: string[] } {
    return this.processStopOn(undefined, this.opts.rawEscapes);
  }

  private getEnv(name: string): [string, boolean] {
    const v = this.lookup(name);
    if (v !== undefined) {
      this.matched.add(name);
      return [v, true];
    }
    this.unmatched.add(name);
    return ['', false];
  }

  /** Scans until `stop` (consumed) or the end of the word when `stop` is undefined. */
  private processStopOn(stop: string | undefined, rawEscapes: boolean): { result: string; words: string[] } {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      let result = '';
      const fields = new Fields();
      const esc = this.opts.escapeToken;
      for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
        if (stop !== undefined && ch === stop) {
          this.next();
          return { result, words: fields.finish() };
        }
        const special = this.special(ch);
        if (special) {
          const tmp = special();
          result += tmp;
          // Expanded values split into fields; quoted text stays in one piece.
          if (ch === '$') fields.addString(tmp);
          else fields.addRawString(tmp);
          continue;
        }
        this.next();
        if (ch === esc) {
          if (this.rawEscapes) {
            fields.addRawChar(ch);
            result += ch;
          }
          const escaped = this.next();
          if (escaped === undefined) break; // a trailing escape is dropped
          fields.addRawChar(escaped);
          result += escaped;
          continue;
        }
        fields.addChar(ch);
        result += ch;
      }
      if (stop !== undefined) {
        throw new LexError(`unexpected end of statement while looking for matching ${stop}`);
      }
      return { result, words: fields.finish() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private special(ch: string): (() => string) | undefined {
    switch (ch) {
      case '$':
        return () => this.processDollar();
      case '<':
        return () => this.processPossibleHeredoc();
      case "'":
        return this.opts.skipProcessQuotes ? undefined : () => this.processSingleQuote();
      case '"':
        return this.opts.skipProcessQuotes ? undefined : () => this.processDoubleQuote();
    }
    return undefined;
  }

  private processSingleQuote(): string {
    // Everything up to the next ' is literal; ' itself cannot be escaped.
    let result = '';
    const open = this.next()!;
    if (this.opts.rawQuotes) result += open;
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw new LexError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") {
        if (this.opts.rawQuotes) result += ch;
        return result;
      }
      result += ch;
    }
  }

  private processDoubleQuote(): string {
    // Literal except `$`; the escape token escapes only `"`, `$` and itself.
    let result = '';
    const open = this.next()!;
    if (this.opts.rawQuotes) result += open;
    const esc = this.opts.escapeToken;
    for (;;) {
      const peeked = this.peek();
      if (peeked === undefined) throw new LexError('unexpected end of statement while looking for matching double-quote');
      if (peeked === '"') {
        this.next();
        if (this.opts.rawQuotes) result += '"';
        return result;
      }
      if (peeked === '$') {
        result += this.processDollar();
        continue;
      }
      let ch = this.next()!;
      if (ch === esc) {
        if (this.rawEscapes) result += ch;
        const after = this.peek();
        if (after === undefined) continue; // runs into the missing-quote error
        if (after === '"' || after === '$' || after === esc) ch = this.next()!;
      }
      result += ch;
    }
  }

  private processName(): string {
    let name = '';
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (name === '' && isGoDigit(ch)) {
        // Positional parameter: every digit belongs to it.
        while (this.peek() !== undefined && isGoDigit(this.peek()!)) name += this.next();
        return name;
      }
      if (name === '' && isSpecialParam(ch)) {
        return this.next()!;
      }
      if (!isGoLetter(ch) && !isGoDigit(ch) && ch !== '_') break;
      name += this.next();
    }
    return name;
  }

  private processDollar(): string {
    this.next(); // $
    if (this.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const [value, found] = this.getEnv(name);
      if (!found && this.opts.skipUnsetEnv) return '$' + name;
      return value;
    }
    this.next(); // {
    const first = this.peek();
    if (first === undefined) throw new LexError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new LexError('syntax error: bad substitution');

    const name = this.processName();
    let ch = this.next();
    if (ch === undefined) throw new LexError("syntax error: missing '}'");
    let modifier = ch;

    if (ch === '}') {
      const [value, set] = this.getEnv(name);
      if (!set && this.opts.skipUnsetEnv) return '${' + name + '}';
      return value;
    }
    if (ch === '/') return this.processReplace(name);

    let nullIsUnset = false;
    if (ch === ':') {
      nullIsUnset = true;
      ch = this.next();
      modifier += ch ?? '';
    } else if (!'+-?#%'.includes(ch)) {
      throw new LexError(`unsupported modifier (${modifier}) in substitution`);
    }

    const isPattern = ch === '#' || ch === '%';
    if (nullIsUnset && isPattern) throw new LexError(`unsupported modifier (${modifier}) in substitution`);
    let word: string;
    try {
      word = this.processStopOn('}', isPattern).result;
    } catch (err) {
      if (this.peek() === undefined) throw new LexError("syntax error: missing '}'");
      throw err;
    }

    const [value, set] = this.getEnv(name);
    if (this.opts.skipUnsetEnv && !set) return '${' + name + modifier + word + '}';

    switch (ch) {
      case '-':
        return !set || (nullIsUnset && value === '') ? word : value;
      case '+':
        return !set || (nullIsUnset && value === '') ? '' : word;
      case '?':
        if (!set) throw new LexError(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
        if (nullIsUnset && value === '') throw new LexError(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
        return value;
      case '#':
      case '%': {
        // One char = shortest match, doubled (## / %%) = longest.
        let pattern = word;
        let greedy = false;
        if (pattern.startsWith(ch)) {
          greedy = true;
          pattern = pattern.slice(1);
        }
        return ch === '%' ? trimSuffix(pattern, value, greedy) : trimPrefix(pattern, value, greedy);
      }
    }
    throw new LexError(`unsupported modifier (${modifier}) in substitution`);
  }

  /** `${name/pattern/replacement}` and `${name//pattern/replacement}`. */
  private processReplace(name: string): string {
    const replaceAll = this.peek() === '/';
    if (replaceAll) this.next();
    let pattern: string;
    try {
      pattern = this.processStopOn('/', true).result;
    } catch (err) {
      if (this.peek() === undefined) throw new LexError("syntax error: missing '/' in ${}");
      throw err;
    }
    let replacement: string;
    try {
      replacement = this.processStopOn('}', true).result;
    } catch (err) {
      if (this.peek() === undefined) throw new LexError("syntax error: missing '}'");
      throw err;
    }
    const [value, set] = this.getEnv(name);
    if (this.opts.skipUnsetEnv && !set) return '${' + name + '/' + pattern + '/' + replacement + '}';
    const re = shellPatternToRegex(pattern, true, false);
    if (replaceAll) return goReplaceAll(re, value, replacement);
    const m = new RegExp(re.source, re.flags).exec(value);
    if (!m) return value;
    return value.slice(0, m.index) + replacement + value.slice(m.index + m[0].length);
  }

  private processPossibleHeredoc(): string {
    this.next(); // <
    if (this.peek() !== '<') return '<';
    this.next();
    // Keep `<<  NAME` together so heredoc detection sees one word.
    let space = '';
    for (let ch = this.peek(); ch === ' ' || ch === '\t' || ch === '\r'; ch = this.peek()) {
      space += this.next();
    }
    return '<<' + space;
  }
}

/**
 * Converts a `${v#pattern}`-style pattern (only `*`, `?` and escapes) to a
 * regular expression. Other characters are literal.
 */
function shellPatternToRegex(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  const chars = Array.from(pattern);
  let out = anchored ? '^' : '';
  const star = greedy ? '.*' : '.*?';
  for (let i = 0; i < chars.length; i++) {
    let tok = chars[i]!;
    switch (tok) {
      case '*':
        out += star;
        continue;
      case '?':
        out += '.';
        continue;
      case '\\': {
        const nextCh = chars[i + 1];
        // `\}` and `\/` only protect the ${} syntax; the pattern gets the bare char.
        if (nextCh === '}' || nextCh === '/') continue;
        out += '\\';
        i++;
        if (nextCh !== '*' && nextCh !== '?' && nextCh !== '\\') {
          throw new LexError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${nextCh ?? ''}'`);
        }
        tok = nextCh;
        break;
      }
      case '[': case ']': case '{': case '}': case '.': case '+':
      case '(': case ')': case '|': case '^': case '$':
        out += '\\';
        break;
    }
    out += tok;
  }
  return new RegExp(out, 'u');
}

/** Go's Regexp.ReplaceAllString: no replacement for an empty match right after a match; `$` templates. */
function goReplaceAll(re: RegExp, src: string, template: string): string {
  const g = new RegExp(re.source, 'gu');
  let out = '';
  let lastMatchEnd = 0;
  let searchPos = 0;
  while (searchPos <= src.length) {
    g.lastIndex = searchPos;
    const m = g.exec(src);
    if (!m) break;
    const start = m.index;
    const end = start + m[0].length;
    out += src.slice(lastMatchEnd, start);
    if (end > lastMatchEnd || start === 0) out += expandGoTemplate(template, m[0]);
    lastMatchEnd = end;
    const cp = src.codePointAt(searchPos);
    const width = cp === undefined ? 0 : cp > 0xffff ? 2 : 1;
    if (searchPos + width > end) searchPos += width;
    else if (searchPos + 1 > end) searchPos++;
    else searchPos = end;
  }
  return out + src.slice(lastMatchEnd);
}

/** Go's Regexp.Expand for a pattern without groups: `$$`, `$0`/`${0}` = match, other names = empty. */
function expandGoTemplate(template: string, match: string): string {
  let out = '';
  let i = 0;
  while (i < template.length) {
    const dollar = template.indexOf('$', i);
    if (dollar < 0) break;
    out += template.slice(i, dollar);
    i = dollar + 1;
    if (template[i] === '$') {
      out += '$';
      i++;
      continue;
    }
    let name: string | undefined;
    if (template[i] === '{') {
      const close = template.indexOf('}', i + 1);
      const inner = close < 0 ? '' : template.slice(i + 1, close);
      if (close >= 0 && /^[\p{L}\p{Nd}_]+$/u.test(inner)) {
        name = inner;
        i = close + 1;
      }
    } else {
      const m = /^[\p{L}\p{Nd}_]+/u.exec(template.slice(i));
      if (m) {
        name = m[0];
        i += m[0].length;
      }
    }
    if (name === undefined) {
      out += '$'; // malformed reference: the $ is literal
      continue;
    }
    if (/^[0-9]+$/.test(name) && Number(name) === 0) out += match;
  }
  return out + template.slice(i);
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = shellPatternToRegex(pattern, greedy, true).exec(value);
  return m ? value.slice(m[0].length) : value;
}

/** Reverses a pattern by code point, keeping each `\x` escape pair in order. */
function reversePattern(pattern: string): string {
  const chars = Array.from(pattern);
  const out: string[] = new Array(chars.length);
  const last = chars.length - 1;
  for (let i = 0; i <= last; ) {
    const tok = chars[i]!;
    const at = last - i;
    if (tok === '\\' && i !== last) {
      out[at - 1] = tok;
      out[at] = chars[i + 1]!;
      i += 2;
    } else {
      out[at] = tok;
      i++;
    }
  }
  return out.join('');
}

function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  // Shortest/longest rightmost match = leftmost match on the reversed strings.
  const reversed = trimPrefix(reversePattern(pattern), Array.from(value).reverse().join(''), greedy);
  return Array.from(reversed).reverse().join('');
}

/** A configured lexer, like BuildKit's shell.Lex. */
export class ShellLexer {
  readonly options: Readonly<Required<ShellLexOptions>>;

  constructor(options: ShellLexOptions = {}) {
    const escapeToken = options.escapeToken ?? '\\';
    if (escapeToken !== '\\' && escapeToken !== '`') {
      throw new Error(`invalid escape token '${escapeToken}' does not match \` or \\`);
    }
    this.options = {
      escapeToken,
      rawQuotes: options.rawQuotes ?? false,
      rawEscapes: options.rawEscapes ?? false,
      skipProcessQuotes: options.skipProcessQuotes ?? false,
      skipUnsetEnv: options.skipUnsetEnv ?? false,
    };
  }

  get escapeToken(): string {
    return this.options.escapeToken;
  }

  /** Expands and returns the word plus the variable names used. Throws ShellExpansionError. */
  processWordWithMatches(word: string, env: EnvSource): ProcessWordResult {
    const scanner = new WordScanner(word, this.options, envLookup(env));
    try {
      const { result, words } = scanner.run();
      return { result, words, matched: scanner.matched, unmatched: scanner.unmatched };
    } catch (err) {
      if (err instanceof LexError) throw new ShellExpansionError(word, err.message);
      throw err;
    }
  }

  /** ProcessWord: expansion without splitting. */
  processWord(word: string, env: EnvSource): string {
    return this.processWordWithMatches(word, env).result;
  }

  /** ProcessWords: expansion, then quote-aware splitting on whitespace. */
  processWords(word: string, env: EnvSource): string[] {
    return this.processWordWithMatches(word, env).words;
  }
}

const defaultLexers = new Map<string, ShellLexer>();

function lexerFor(opts?: ShellLexOptions): ShellLexer {
  if (opts && (opts.rawQuotes || opts.rawEscapes || opts.skipProcessQuotes || opts.skipUnsetEnv)) {
    return new ShellLexer(opts);
  }
  const esc = opts?.escapeToken ?? '\\';
  let lex = defaultLexers.get(esc);
  if (!lex) {
    lex = new ShellLexer({ escapeToken: esc });
    defaultLexers.set(esc, lex);
  }
  return lex;
}

/** Expands one word without splitting (COPY paths, WORKDIR, USER, --chown, ...). */
export function processWord(word: string, env: EnvSource, opts?: ShellLexOptions): string {
  return lexerFor(opts).processWord(word, env);
}

/** Expands and splits a word into fields (EXPOSE). */
export function processWords(word: string, env: EnvSource, opts?: ShellLexOptions): string[] {
  return lexerFor(opts).processWords(word, env);
}

/** Expands one word and reports which variable names were used (set) and referenced but unset. */
export function processWordWithMatches(word: string, env: EnvSource, opts?: ShellLexOptions): ProcessWordResult {
  return lexerFor(opts).processWordWithMatches(word, env);
}
