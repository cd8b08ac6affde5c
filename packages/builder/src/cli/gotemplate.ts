// The part of Go's text/template that docker users pass to --format: field paths (`.Config.Env`),
// `json`, `index`, `join`, `upper`, `lower`, `len`, `println`, `range … end`, `if … else … end`, and
// Go's way of printing values (`[a b]`, `map[k:v]`, `<no value>`). Anything else is a clear error.
import { UsageError } from './errors';

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipeline: string[] }
  | { kind: 'range'; pipeline: string[]; body: Node[]; otherwise: Node[] }
  | { kind: 'if'; pipeline: string[]; body: Node[]; otherwise: Node[] };

const NO_VALUE = Symbol('no value');

/** Splits an action into words, keeping "quoted strings" whole. */
function words(action: string, template: string): string[] {
  const out: string[] = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|`[^`]*`|[^\s"`]+)/gy;
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = re.exec(action)) !== null) {
    out.push(m[1]!);
    last = re.lastIndex;
  }
  if (action.slice(last).trim() !== '') throw new UsageError(`template ${JSON.stringify(template)}: cannot parse "${action}"`);
  return out;
}

function parse(template: string): Node[] {
  const tokens: ({ text: string } | { action: string })[] = [];
  let rest = template;
  while (rest.length > 0) {
    const open = rest.indexOf('{{');
    if (open < 0) {
      tokens.push({ text: rest });
      break;
    }
    if (open > 0) tokens.push({ text: rest.slice(0, open) });
    const close = rest.indexOf('}}', open);
    if (close < 0) throw new UsageError(`template ${JSON.stringify(template)}: unclosed action`);
    let action = rest.slice(open + 2, close);
    // {{- and -}} trim the whitespace next to the action.
    if (action.startsWith('-')) {
      action = action.slice(1);
      const prev = tokens[tokens.length - 1];
      if (prev && 'text' in prev) prev.text = prev.text.trimEnd();
    }
    let trimNext = false;
    if (action.endsWith('-')) {
      action = action.slice(0, -1);
      trimNext = true;
    }
    tokens.push({ action: action.trim() });
    rest = rest.slice(close + 2);
    if (trimNext) rest = rest.trimStart();
  }
  let i = 0;
  const block = (inside: string | null): { body: Node[]; otherwise: Node[] } => {
    const body: Node[] = [];
    let otherwise: Node[] | null = null;
    while (i < tokens.length) {
      const t = tokens[i++]!;
      const target = otherwise ?? body;
      if ('text' in t) {
        target.push({ kind: 'text', text: t.text });
        continue;
      }
      const w = words(t.action, template);
      if (w.length === 0 || w[0]!.startsWith('/*')) continue;
      if (w[0] === 'end') {
        if (inside === null) throw new UsageError(`template ${JSON.stringify(template)}: unexpected {{end}}`);
        return { body, otherwise: otherwise ?? [] };
      }
      if (w[0] === 'else') {
        if (inside === null || otherwise !== null) throw new UsageError(`template ${JSON.stringify(template)}: unexpected {{else}}`);
        otherwise = [];
        continue;
      }
      if (w[0] === 'range' || w[0] === 'if') {
        const inner = block(w[0]);
        target.push({ kind: w[0], pipeline: w.slice(1), ...inner });
        continue;
      }
      target.push({ kind: 'action', pipeline: w });
    }
    if (inside !== null) throw new UsageError(`template ${JSON.stringify(template)}: {{${inside}}} has no {{end}}`);
    return { body, otherwise: otherwise ?? [] };
  };
  return block(null).body;
}

function field(value: unknown, pathText: string): unknown {
  let v: unknown = value;
  for (const name of pathText.split('.').filter(Boolean)) {
    if (v === null || v === undefined || v === NO_VALUE || typeof v !== 'object' || Array.isArray(v)) return NO_VALUE;
    const obj = v as Record<string, unknown>;
    v = name in obj ? obj[name] : NO_VALUE;
  }
  return v;
}

function literal(word: string, dot: unknown, template: string): unknown {
  if (word === '.') return dot;
  if (word.startsWith('.')) return field(dot, word);
  if (word.startsWith('"')) return JSON.parse(word) as string;
  if (word.startsWith('`')) return word.slice(1, -1);
  if (/^-?\d+$/.test(word)) return Number(word);
  if (word === 'true' || word === 'false') return word === 'true';
  throw new UsageError(`template ${JSON.stringify(template)}: unknown value "${word}"`);
}

const FUNCTIONS: Record<string, (args: unknown[]) => unknown> = {
  json: ([v]) => (v === NO_VALUE ? 'null' : JSON.stringify(v)),
  index: ([v, ...keys]) => {
    let cur = v;
    for (const k of keys) {
      if (cur === null || cur === undefined || cur === NO_VALUE || typeof cur !== 'object') return NO_VALUE;
      cur = (cur as Record<string, unknown>)[String(k)];
      if (cur === undefined) return NO_VALUE;
    }
    return cur;
  },
  join: ([v, sep]) => (Array.isArray(v) ? v.map((x) => format(x)).join(String(sep)) : format(v)),
  upper: ([v]) => format(v).toUpperCase(),
  lower: ([v]) => format(v).toLowerCase(),
  title: ([v]) => format(v).replace(/\b\w/g, (c) => c.toUpperCase()),
  len: ([v]) => (Array.isArray(v) || typeof v === 'string' ? v.length : v && typeof v === 'object' ? Object.keys(v).length : 0),
  println: (args) => `${args.map((a) => format(a)).join(' ')}\n`,
  print: (args) => args.map((a) => format(a)).join(''),
  truncate: ([v, n]) => format(v).slice(0, Number(n)),
};

function evaluate(pipeline: string[], dot: unknown, template: string): unknown {
  // `a | b c` passes a's value as b's last argument.
  const stages: string[][] = [[]];
  for (const w of pipeline) {
    if (w === '|') stages.push([]);
    else stages[stages.length - 1]!.push(w);
  }
  let value: unknown = NO_VALUE;
  stages.forEach((stage, n) => {
    if (stage.length === 0) throw new UsageError(`template ${JSON.stringify(template)}: empty pipeline stage`);
    const [head, ...rest] = stage as [string, ...string[]];
    const fn = FUNCTIONS[head];
    if (fn) {
      const args = rest.map((w) => literal(w, dot, template));
      if (n > 0) args.push(value);
      value = fn(args);
    } else {
      if (rest.length > 0 || n > 0) throw new UsageError(`template ${JSON.stringify(template)}: unknown function "${head}"`);
      value = literal(head, dot, template);
    }
  });
  return value;
}

/** A value as Go's fmt prints it with %v. */
export function format(v: unknown): string {
  if (v === NO_VALUE || v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(format).join(' ')}]`;
  if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `map[${entries.map(([k, x]) => `${k}:${format(x)}`).join(' ')}]`;
  }
  return String(v);
}

function truthy(v: unknown): boolean {
  if (v === NO_VALUE || v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

function render(nodes: Node[], dot: unknown, template: string): string {
  let out = '';
  for (const node of nodes) {
    if (node.kind === 'text') out += node.text;
    else if (node.kind === 'action') out += format(evaluate(node.pipeline, dot, template));
    else if (node.kind === 'if') out += render(truthy(evaluate(node.pipeline, dot, template)) ? node.body : node.otherwise, dot, template);
    else {
      const v = evaluate(node.pipeline, dot, template);
      const items = Array.isArray(v) ? v : v && typeof v === 'object' ? Object.values(v) : [];
      if (items.length === 0) out += render(node.otherwise, dot, template);
      for (const item of items) out += render(node.body, item, template);
    }
  }
  return out;
}

/** Compiles a --format template once; the result renders one value. */
export function compileTemplate(template: string): (value: unknown) => string {
  // Docker's escapes in --format: \t and \n written literally on the command line.
  const text = template.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const nodes = parse(text);
  return (value) => render(nodes, value, template);
}

/**
 * docker's --format for lists: `table …` prints a header row (the field names, upper-cased and split
 * at capitals) then a row per item; otherwise one rendered line per item.
 */
export function formatList(template: string, items: Record<string, unknown>[], headers: Record<string, string>): string {
  const isTable = template.startsWith('table');
  const body = isTable ? template.slice(5).trimStart() || Object.keys(headers).map((k) => `{{.${k}}}`).join('\t') : template;
  const render1 = compileTemplate(body);
  const lines = items.map((i) => render1(i));
  if (!isTable) return lines.map((l) => `${l}\n`).join('');
  const header = compileTemplate(body)(Object.fromEntries(Object.entries(headers)));
  const rows = [header, ...lines].map((l) => l.split('\t'));
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, n) => (widths[n] = Math.max(widths[n] ?? 0, c.length)));
  return rows.map((r) => r.map((c, n) => (n === r.length - 1 ? c : c.padEnd(widths[n]! + 3))).join('').trimEnd() + '\n').join('');
}
