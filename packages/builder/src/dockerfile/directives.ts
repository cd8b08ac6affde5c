// Parser directives (bk:parser/directives.go): `# key = value` lines at the
// very top of a Dockerfile. Scanning ends at the first line that is not a
// directive (a blank line, any other comment, an instruction) or at an
// unknown key.

import { parseGoBool, trimLeftSpace } from './gostr';

export const DIRECTIVE_KEYS = ['syntax', 'escape', 'check'] as const;
export type DirectiveKey = (typeof DIRECTIVE_KEYS)[number];

export interface Directive {
  name: DirectiveKey;
  value: string;
  /** 1-based line of the directive. */
  line: number;
}

// Go's \s is [\t\n\f\r ]; `.` never matches a newline.
const directiveRe = /^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*([^\n]+?)[\t\n\f\r ]*$/;

/** Stateful: feed lines in order; it stops looking once the directive block is over. */
export class DirectiveParser {
  private line = 0;
  private done = false;
  private readonly seen = new Set<string>();

  constructor(
    private readonly commentPrefix = '#',
    startLine = 0,
  ) {
    this.line = startLine;
  }

  get finished(): boolean {
    return this.done;
  }

  /** Returns the directive on this line, or undefined. Throws on a repeated key. */
  parseLine(text: string): Directive | undefined {
    this.line++;
    if (this.done) return undefined;
    if (!text.startsWith(this.commentPrefix)) {
      this.done = true;
      return undefined;
    }
    const m = directiveRe.exec(trimLeftSpace(text.slice(this.commentPrefix.length)));
    if (!m) {
      this.done = true;
      return undefined;
    }
    const key = m[1]!.toLowerCase();
    if (!(DIRECTIVE_KEYS as readonly string[]).includes(key)) {
      this.done = true;
      return undefined;
    }
    if (this.seen.has(key)) throw new Error(`only one ${key} parser directive can be used`);
    this.seen.add(key);
    return { name: key as DirectiveKey, value: m[2]!, line: this.line };
  }
}

export function discardBOM(text: string): string {
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}

function splitLinesNoEOL(text: string): string[] {
  return text.split('\n').map((l) => l.replace(/\r$/, ''));
}

/** The directives at the top of `text`, skipping a BOM and a first-line `#!`. */
function scanDirectives(text: string, prefix: string): Directive[] {
  let lines = splitLinesNoEOL(discardBOM(text));
  let start = 0;
  if (lines[0]?.startsWith('#!')) {
    lines = lines.slice(1);
    start = 1;
  }
  const parser = new DirectiveParser(prefix, start);
  const out: Directive[] = [];
  for (const line of lines) {
    if (parser.finished) break;
    try {
      const d = parser.parseLine(line);
      if (d) out.push(d);
    } catch {
      break;
    }
  }
  return out;
}

export interface SyntaxDirective {
  /** The frontend image reference: the value up to the first space. */
  ref: string;
  /** The whole value. */
  cmdline: string;
  /** 1-based line, 0 when it came from a JSON document. */
  line: number;
}

/**
 * BuildKit's DetectSyntax: `# syntax=`, then `// syntax=`, then a JSON
 * document's "syntax" key. A leading `#!` line is skipped.
 */
export function detectSyntax(text: string): SyntaxDirective | undefined {
  return findDirective('syntax', text, true);
}

/** BuildKit's ParseDirective for one key (`#` comments only, shebang skipped). */
export function findDirective(key: DirectiveKey, text: string, anyFormat = false): SyntaxDirective | undefined {
  const prefixes = anyFormat ? ['#', '//'] : ['#'];
  for (const prefix of prefixes) {
    const d = scanDirectives(text, prefix).find((x) => x.name === key);
    if (d) {
      const sp = d.value.indexOf(' ');
      return { ref: sp < 0 ? d.value : d.value.slice(0, sp), cmdline: d.value, line: d.line };
    }
  }
  if (anyFormat) {
    let body = discardBOM(text);
    let line = 0;
    if (body.startsWith('#!')) {
      const nl = body.indexOf('\n');
      body = nl < 0 ? '' : body.slice(nl + 1);
      line = 1;
    }
    try {
      const doc: unknown = JSON.parse(body);
      if (doc && typeof doc === 'object' && !Array.isArray(doc)) {
        const v = (doc as Record<string, unknown>)[key];
        if (typeof v === 'string') return { ref: v, cmdline: v, line };
      }
    } catch {
      // not JSON
    }
  }
  return undefined;
}

export interface CheckConfig {
  skipAll: boolean;
  skipRules: string[];
  experimentalAll: boolean;
  experimentalRules: string[];
  /** Treat lint warnings as errors. */
  error: boolean;
}

/** Parses a `# check=skip=<rules|all>;error=<bool>` value (BuildKit's ParseLintOptions). */
export function parseCheckDirective(value: string): CheckConfig {
  const cfg: CheckConfig = { skipAll: false, skipRules: [], experimentalAll: false, experimentalRules: [], error: false };
  const text = value.trim();
  if (text === '') return cfg;
  const parts = splitN(text, ';', 3);
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new Error(`invalid check option ${JSON.stringify(part)}`);
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    const list = () => v.split(',').map((r) => r.trim());
    switch (k) {
      case 'skip':
        if (v === 'all') cfg.skipAll = true;
        else cfg.skipRules = list();
        break;
      case 'experimental':
        if (v === 'all') cfg.experimentalAll = true;
        else cfg.experimentalRules = list();
        break;
      case 'error': {
        const b = parseGoBool(v);
        if (b === undefined) throw new Error(`failed to parse check option ${JSON.stringify(part)}: invalid syntax`);
        cfg.error = b;
        break;
      }
      default:
        throw new Error(`invalid check option ${JSON.stringify(k)}`);
    }
  }
  return cfg;
}

function splitN(s: string, sep: string, n: number): string[] {
  const out: string[] = [];
  let rest = s;
  while (out.length < n - 1) {
    const i = rest.indexOf(sep);
    if (i < 0) break;
    out.push(rest.slice(0, i));
    rest = rest.slice(i + sep.length);
  }
  out.push(rest);
  return out;
}
