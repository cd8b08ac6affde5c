// Dockerfile text → syntax tree, with BuildKit's rules for directives, line
// continuations, comments, heredocs and line numbers (bk:parser/parser.go).

import type { Directives, Node, ParseResult } from './ast';
import { DirectiveParser, findDirective } from './directives';
import { DockerfileParseError } from './errors';
import { trimLeftSpace, trimSpace } from './gostr';
import { heredocsFromLine } from './heredoc';
import { LineSyntaxError, newNodeFromLine } from './lineparsers';

export type { Directives, Heredoc, Node, ParseResult } from './ast';

/** bufio.Scanner's limit: a line may hold at most this many bytes. */
export const MAX_LINE_BYTES = 65535;

const HEREDOC_KEYWORDS = new Set(['add', 'copy', 'run']);

/** Lines with their newline kept, like BuildKit's scanLines. */
function splitLines(text: string): { lines: string[]; tooLongAt: number } {
  const lines: string[] = [];
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    const end = nl < 0 ? text.length : nl + 1;
    const contentLength = (nl < 0 ? text.length : nl) - start;
    // A UTF-16 unit is at most 3 UTF-8 bytes: only measure lines that might be too long.
    if (contentLength > MAX_LINE_BYTES / 3 && Buffer.byteLength(text.slice(start, start + contentLength)) > MAX_LINE_BYTES) {
      return { lines, tooLongAt: lines.length };
    }
    lines.push(text.slice(start, end));
    start = end;
  }
  return { lines, tooLongAt: -1 };
}

/** bytes.TrimRight(s, "\r\n") */
function trimNewline(s: string): string {
  let end = s.length;
  while (end > 0 && (s[end - 1] === '\n' || s[end - 1] === '\r')) end--;
  return s.slice(0, end);
}

function isComment(line: string): boolean {
  return trimLeftSpace(line).startsWith('#');
}

function isEmptyContinuationLine(line: string): boolean {
  return trimLeftSpace(trimNewline(line)).length === 0;
}

function continuationRegex(escape: string): RegExp {
  const e = '\\' + escape;
  // The escape token at the end (spaces/tabs allowed after it), unless it is
  // itself escaped; or a line holding only the token.
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

class EscapeState {
  token = '\\';
  continuation = continuationRegex('\\');

  set(value: string): void {
    if (value !== '`' && value !== '\\') {
      throw new Error(`invalid escape token '${value}' does not match \` or \\`);
    }
    this.token = value;
    this.continuation = continuationRegex(value);
  }

  /** Removes a trailing continuation token; `continues` tells whether one was there. */
  trimContinuation(line: string): { text: string; continues: boolean } {
    if (!this.continuation.test(line)) return { text: line, continues: false };
    return { text: line.replace(this.continuation, '$1'), continues: true };
  }
}

/**
 * Parses a Dockerfile. Throws DockerfileParseError for directive errors,
 * malformed instructions (`ENV PATH`, non-string JSON arrays), unterminated
 * heredocs, over-long lines and files without instructions. Unknown
 * keywords are accepted here and rejected by parseInstructions.
 */
export function parse(input: string | Uint8Array): ParseResult {
  const text = typeof input === 'string' ? input : new TextDecoder('utf-8', { ignoreBOM: true }).decode(input);
  const { lines, tooLongAt } = splitLines(text);
  const escape = new EscapeState();
  const directiveParser = new DirectiveParser();
  const directives: Directives = { escape: '\\' };
  const warnings: string[] = [];
  const root: Node = {
    value: '',
    original: '',
    flags: [],
    next: [],
    children: [],
    heredocs: [],
    json: false,
    startLine: -1,
    endLine: -1,
    comments: [],
  };

  let index = 0; // next physical line to read
  let currentLine = 0; // lines consumed so far = 1-based number of the last one
  const read = (): string | undefined => (index < lines.length ? lines[index++] : undefined);

  /** Trims the newline (and leading space), records a directive, drops a comment. */
  const processLine = (raw: string, stripLeft: boolean): { text: string; directive: boolean } => {
    let token = trimNewline(raw);
    if (stripLeft) token = trimLeftSpace(token);
    let directive = false;
    try {
      const d = directiveParser.parseLine(token);
      if (d) {
        directive = true;
        if (d.name === 'escape') {
          escape.set(d.value);
          directives.escape = d.value;
        } else {
          directives[d.name] = d.value;
        }
      }
    } catch (err) {
      throw new DockerfileParseError(currentLine + 1, (err as Error).message);
    }
    return { text: isComment(token) ? '' : token, directive };
  };

  let comments: string[] = [];
  for (let raw = read(); raw !== undefined; raw = read()) {
    if (currentLine === 0 && raw.startsWith('\uFEFF')) raw = raw.slice(1);
    if (isComment(raw)) {
      // BuildKit drops the first character of the raw line, not the `#` itself.
      const comment = trimSpace(raw.slice(1));
      comments = comment === '' ? [] : [...comments, comment];
    }
    const first = processLine(raw, true);
    if (first.directive) comments = comments.slice(0, -1);
    currentLine++;

    const startLine = currentLine;
    let { text, continues } = escape.trimContinuation(first.text);
    if (!continues && text.length === 0) continue;
    let logical = text;

    let emptyContinuation = false;
    while (continues) {
      const next = read();
      if (next === undefined) break; // EOF inside a continuation is fine
      const processed = processLine(next, false);
      currentLine++;
      if (isComment(next)) continue;
      if (isEmptyContinuationLine(processed.text)) {
        emptyContinuation = true;
        continue;
      }
      ({ text, continues } = escape.trimContinuation(processed.text));
      logical += text;
    }

    if (emptyContinuation) warnings.push('Empty continuation line found in: ' + logical);

    let child: Node;
    try {
      child = newNodeFromLine(logical, escape.token, comments);
    } catch (err) {
      if (err instanceof LineSyntaxError) throw new DockerfileParseError(startLine, err.message, currentLine);
      throw err;
    }

    if (canContainHeredoc(child) && logical.includes('<<')) {
      let docs;
      try {
        docs = heredocsFromLine(logical);
      } catch (err) {
        throw new DockerfileParseError(startLine, (err as Error).message, currentLine);
      }
      for (const doc of docs) {
        let content = '';
        let terminated = false;
        for (let body = read(); body !== undefined; body = read()) {
          currentLine++;
          let candidate = trimNewline(body);
          if (doc.chomp) candidate = candidate.replace(/^\t+/, '');
          if (candidate === doc.name) {
            terminated = true;
            break;
          }
          content += body;
        }
        if (!terminated) throw new DockerfileParseError(startLine, 'unterminated heredoc', currentLine);
        child.heredocs.push({ ...doc, content });
      }
    }

    child.startLine = startLine;
    child.endLine = currentLine;
    if (child.subcommand) {
      child.subcommand.startLine = startLine;
      child.subcommand.endLine = currentLine;
    }
    if (root.startLine < 0) root.startLine = startLine;
    root.endLine = currentLine;
    root.children.push(child);
    comments = [];
  }

  if (root.startLine < 0) {
    throw new DockerfileParseError(Math.max(currentLine, 1), 'file with no instructions');
  }
  if (tooLongAt >= 0) {
    throw new DockerfileParseError(tooLongAt + 1, `dockerfile line greater than max allowed size of ${MAX_LINE_BYTES}`);
  }

  // A `#!` first line ends the directive block for parsing, but BuildKit
  // still finds `syntax` and `check` below it.
  if (directives.syntax === undefined) {
    const s = findDirective('syntax', text);
    if (s) directives.syntax = s.cmdline;
  }
  if (directives.check === undefined) {
    const c = findDirective('check', text);
    if (c) directives.check = c.cmdline;
  }

  return { ast: root, directives, warnings };
}

/** RUN/COPY/ADD (also as an ONBUILD trigger) in shell form may carry heredocs. */
function canContainHeredoc(node: Node): boolean {
  const target = node.value === 'onbuild' && node.subcommand ? node.subcommand : node;
  return HEREDOC_KEYWORDS.has(target.value) && !target.json;
}
