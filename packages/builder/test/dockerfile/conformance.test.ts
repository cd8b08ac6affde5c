// BuildKit's own parser and shell-lexer vectors (../shared/conformance/buildkit).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DockerfileParseError, ShellLexer, dump, parse } from '../../src/dockerfile';
import { thrown } from '../../../../test/helpers/errors';

const repoRoot = path.resolve(__dirname, '../../../..');
const conformance = path.resolve(repoRoot, '..', 'shared', 'conformance', 'buildkit');
const dockerfileDir = path.join(conformance, 'frontend', 'dockerfile');
const present = fs.existsSync(dockerfileDir);
const missing = `skipped: BuildKit conformance vectors not found at ${conformance}`;

const list = (dir: string) => (present ? fs.readdirSync(dir).sort() : []);

describe.skipIf(!present)('BuildKit parser testfiles', () => {
  const dir = path.join(dockerfileDir, 'parser', 'testfiles');
  const cases = list(dir);

  it('has the 33 cases', () => {
    expect(cases).toHaveLength(33);
  });

  it.each(cases)('%s reproduces result', (name) => {
    const text = fs.readFileSync(path.join(dir, name, 'Dockerfile'));
    const expected = fs.readFileSync(path.join(dir, name, 'result'), 'utf8');
    const result = parse(text);
    expect(dump(result.ast) + '\n').toBe(expected);
  });
});

describe.skipIf(!present)('BuildKit parser testfiles-negative', () => {
  const dir = path.join(dockerfileDir, 'parser', 'testfiles-negative');
  const expectedErrors: Record<string, string> = {
    empty_dockerfile: 'file with no instructions',
    only_comments: 'file with no instructions',
    env_no_value: 'ENV must have two arguments',
    'shykes-nested-json': 'when using JSON array syntax, arrays must be comprised of strings only',
  };

  it('has the 4 cases', () => {
    expect(list(dir)).toEqual(Object.keys(expectedErrors).sort());
  });

  it.each(Object.entries(expectedErrors))('%s fails', (name, message) => {
    const text = fs.readFileSync(path.join(dir, name, 'Dockerfile'));
    const error = thrown(() => parse(text));
    expect(error).toBeInstanceOf(DockerfileParseError);
    expect((error as DockerfileParseError).detail).toBe(message);
    expect(error.message).toMatch(/^dockerfile parse error on line \d+: /);
  });
});

describe.skipIf(!present)('BuildKit parser testfile-line', () => {
  it('reports 1-based start and end lines', () => {
    const { ast } = parse(fs.readFileSync(path.join(dockerfileDir, 'parser', 'testfile-line', 'Dockerfile')));
    expect([ast.startLine, ast.endLine]).toEqual([5, 31]);
    expect(ast.children.map((c) => [c.value, c.startLine, c.endLine])).toEqual([
      ['from', 5, 5],
      ['env', 11, 12],
      ['run', 17, 31],
    ]);
  });
});

describe.skipIf(!present)('BuildKit shell envVarTest', () => {
  const lines = present ? fs.readFileSync(path.join(dockerfileDir, 'shell', 'envVarTest'), 'utf8').split('\n') : [];
  const env = new Map([
    ['PWD', '/home'],
    ['SHELL', 'bash'],
    ['KOREAN', '한국어'],
    ['NULL', ''],
  ]);
  const lexer = new ShellLexer({ escapeToken: '\\' });
  const cases: { line: number; platform: string; input: string; expected: string }[] = [];
  lines.forEach((raw, i) => {
    if (raw.startsWith('#')) return;
    const line = raw.trim();
    if (line === '') return;
    const fields = line.split('|');
    if (fields.length !== 3) throw new Error(`envVarTest line ${i + 1}: expected 3 fields`);
    cases.push({ line: i + 1, platform: fields[0]!.trim(), input: fields[1]!.trim(), expected: fields[2]!.trim() });
  });
  // Linux semantics: A (all) and U (unix) lines run, W (windows) lines do not.
  const runnable = cases.filter((c) => c.platform === 'A' || c.platform === 'U');

  it('has 230 cases of which 228 run on Linux (226 A + 2 U; 2 W skipped)', () => {
    expect(cases).toHaveLength(230);
    expect(cases.filter((c) => c.platform === 'A')).toHaveLength(226);
    expect(cases.filter((c) => c.platform === 'U')).toHaveLength(2);
    expect(cases.filter((c) => c.platform === 'W')).toHaveLength(2);
    expect(runnable).toHaveLength(228);
  });

  it('passes every runnable case', () => {
    const failures: string[] = [];
    let ran = 0;
    for (const c of runnable) {
      ran++;
      let got: string;
      try {
        got = lexer.processWord(c.input, env);
      } catch (err) {
        got = 'error';
        if (c.expected !== 'error') failures.push(`line ${c.line}: ${c.input} threw ${(err as Error).message}`);
        continue;
      }
      if (got !== c.expected) failures.push(`line ${c.line}: ${c.input} → ${JSON.stringify(got)}, want ${JSON.stringify(c.expected)}`);
    }
    expect(failures).toEqual([]);
    expect(ran).toBe(228);
  });
});

describe.skipIf(!present)('BuildKit shell wordsTest', () => {
  const lines = present ? fs.readFileSync(path.join(dockerfileDir, 'shell', 'wordsTest'), 'utf8').split('\n') : [];

  it('passes all 24 cases with accumulating ENV lines', () => {
    const lexer = new ShellLexer();
    const env = new Map<string, string>();
    const failures: string[] = [];
    let ran = 0;
    lines.forEach((line, i) => {
      if (line === '' && i === lines.length - 1) return; // the file's final newline
      if (line.startsWith('#')) return;
      if (line.startsWith('ENV ')) {
        const kv = line.slice(3).replace(/^ +/, '');
        const eq = kv.indexOf('=');
        env.set(eq < 0 ? kv : kv.slice(0, eq), eq < 0 ? '' : kv.slice(eq + 1));
        return;
      }
      const fields = line.split('|');
      if (fields.length !== 2) throw new Error(`wordsTest line ${i + 1}: expected exactly one |`);
      const input = fields[0]!.trim();
      const expected = fields[1]!.replace(/^ +/, '').split(',');
      let got: string[];
      try {
        got = lexer.processWords(input, env);
      } catch {
        got = ['error'];
      }
      ran++;
      if (JSON.stringify(got) !== JSON.stringify(expected)) {
        failures.push(`line ${i + 1}: ${input} → ${JSON.stringify(got)}, want ${JSON.stringify(expected)}`);
      }
    });
    expect(failures).toEqual([]);
    expect(ran).toBe(24);
    expect(env.get('trailing')).toBe('ab c   '); // trailing spaces are part of the value
  });
});

if (!present) {
  describe('BuildKit conformance vectors', () => {
    it.skip(missing, () => {});
  });
}
