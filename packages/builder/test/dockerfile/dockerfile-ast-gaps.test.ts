// Why dockerfile-ast (0.7.1) is not our parser: each test pins what the
// library really does on an input where BuildKit's semantics differ, next to
// what our parser does (BuildKit's answer).
import { DockerfileParser } from 'dockerfile-ast';
import { describe, expect, it } from 'vitest';
import { ShellLexer, dump, expandInstruction, parse, parseInstructions, type WorkdirInstruction } from '../../src/dockerfile';

const keywordsAndLines = (text: string) =>
  DockerfileParser.parse(text)
    .getInstructions()
    .map((i) => [i.getKeyword(), i.getRange().start.line + 1, i.getRange().end.line + 1]);

describe('dockerfile-ast gaps', () => {
  it('trailing-backslash: an escaped backslash at EOL is literal, not a continuation', () => {
    const text = 'FROM hello-world\nENV C trailing\\\\backslash\\\\\nENV D This should not be appended to C\n';
    // dockerfile-ast continues the line: ENV C swallows the next instruction.
    expect(keywordsAndLines(text)).toEqual([
      ['FROM', 1, 1],
      ['ENV', 2, 3],
    ]);
    expect(DockerfileParser.parse(text).getInstructions()[1]!.getArgumentsContent()).toBe(
      'C trailing\\\\backslash\\\\\nENV D This should not be appended to C',
    );
    // BuildKit: two ENV instructions, the backslashes kept.
    expect(dump(parse(text).ast)).toBe(
      '(from "hello-world")\n(env "C" "trailing\\\\\\\\backslash\\\\\\\\" "")\n(env "D" "This should not be appended to C" "")',
    );
  });

  it('continueIndent: a line holding " \\" contributes its space', () => {
    const text = 'FROM x\nRUN echo hi \\\n \\\n world\n';
    expect(DockerfileParser.parse(text).getInstructions()[1]!.getArgumentsContent()).toBe('echo hi  world');
    expect(parse(text).ast.children[1]!.next).toEqual(['echo hi   world']);
  });

  it('3<<EOF: a heredoc with a file-descriptor prefix', () => {
    const text = 'FROM x\nRUN 3<<EOF cat <&3\nhello\nEOF\n';
    // dockerfile-ast finds no heredoc and reads the body as instructions.
    const lib = DockerfileParser.parse(text).getInstructions();
    expect(lib.map((i) => i.getKeyword())).toEqual(['FROM', 'RUN', 'HELLO', 'EOF']);
    const run = lib[1] as unknown as { getHeredocs(): unknown[] };
    expect(run.getHeredocs()).toEqual([]);
    // BuildKit: one RUN whose heredoc is on fd 3.
    const { ast } = parse(text);
    expect(ast.children).toHaveLength(2);
    expect(ast.children[1]!.heredocs).toEqual([{ name: 'EOF', fileDescriptor: 3, expand: true, chomp: false, content: 'hello\n' }]);
  });

  it("<< 'EOF': a space after << and a quoted name (rcjsuen/dockerfile-ast#120)", () => {
    const text = "FROM x\nRUN << 'EOF'\nhello $X\nEOF\n";
    const lib = DockerfileParser.parse(text).getInstructions();
    expect(lib.map((i) => i.getKeyword())).toEqual(['FROM', 'RUN', 'HELLO', 'EOF']);
    const run = lib[1] as unknown as { getHeredocs(): { getName(): string }[] };
    expect(run.getHeredocs().map((h) => h.getName())).toEqual(['']);
    const { ast } = parse(text);
    expect(ast.children[1]!.heredocs).toEqual([{ name: 'EOF', fileDescriptor: 0, expand: false, chomp: false, content: 'hello $X\n' }]);
  });

  it('expansion: plain $VAR from ARG/ENV defaults only; no ${v:-w} modifiers, no quote removal', () => {
    // What the library does expand: a bare reference to an ARG default.
    const simple = DockerfileParser.parse('ARG BASE=alpine\nFROM ${BASE}\n').getFROMs()[0]!;
    expect(simple.getExpandedArguments().map((a) => a.getValue())).toEqual(['alpine']);
    expect(simple.getImageName()).toBe('${BASE}');
    // What it does not: modifiers stay literal ...
    const withDefault = DockerfileParser.parse('FROM ${BASE:-alpine}\n').getFROMs()[0]!;
    expect(withDefault.getExpandedArguments().map((a) => a.getValue())).toEqual(['${BASE:-alpine}']);
    // ... and quotes are neither removed nor respected when splitting.
    const workdir = DockerfileParser.parse('FROM x\nWORKDIR "/a b"\n').getInstructions()[1]!;
    expect(workdir.getExpandedArguments().map((a) => a.getValue())).toEqual(['"/a', 'b"']);

    // BuildKit semantics through our lexer.
    const lex = new ShellLexer();
    const df = parseInstructions(parse('FROM ${BASE:-alpine}\nWORKDIR "/a b"\n'));
    expect(expandInstruction(df.stages[0]!.from, {}, lex).baseName).toBe('alpine');
    expect(expandInstruction(df.stages[0]!.instructions[0] as WorkdirInstruction, {}, lex).path).toBe('/a b');
  });
});
