// Heredocs (REFERENCE 1.3; cases after bk:parser/parser_heredoc_test.go and
// bk:instructions/parse_heredoc_test.go).
import { describe, expect, it } from 'vitest';
import {
  DockerfileParseError,
  chompHeredocContent,
  dump,
  parse,
  parseHeredoc,
  parseInstructions,
  planRun,
  type CopyInstruction,
  type Heredoc,
  type RunInstruction,
} from '../../src/dockerfile';
import { thrown } from '../../../../test/helpers/errors';

type Doc = Partial<Heredoc> & { name: string };
const doc = (d: Doc): Heredoc => ({ fileDescriptor: 0, expand: true, chomp: false, content: '', ...d });

const heredocsOf = (line: string): Heredoc[] => parse('FROM alpine\n' + line).ast.children[1]!.heredocs;

describe('heredoc extraction', () => {
  const cases: [string, string, Heredoc[]][] = [
    ['empty body', 'RUN <<EMPTY\nEMPTY\n', [doc({ name: 'EMPTY' })]],
    ['fd prefix', 'RUN 3<<EMPTY2\nEMPTY2\n', [doc({ name: 'EMPTY2', fileDescriptor: 3 })]],
    ['quoted word is not a heredoc', 'RUN "<<NOHEREDOC"\n', []],
    ['indented body kept', 'RUN <<INDENT\n\tfoo\n\tbar\nINDENT\n', [doc({ name: 'INDENT', content: '\tfoo\n\tbar\n' })]],
    ['<<- marks chomp, body stays raw', 'RUN <<-UNINDENT\n\tbaz\n\tquux\nUNINDENT\n', [doc({ name: 'UNINDENT', content: '\tbaz\n\tquux\n', chomp: true })]],
    ['<<- terminator may be tab-indented', 'RUN <<-UNINDENT2\n\tbaz\n\tquux\n\tUNINDENT2\n', [doc({ name: 'UNINDENT2', content: '\tbaz\n\tquux\n', chomp: true })]],
    ['unquoted name expands', 'RUN <<-EXPAND\n\texpand $NAME\nEXPAND\n', [doc({ name: 'EXPAND', content: '\texpand $NAME\n', chomp: true })]],
    ["'quoted' name disables expansion", "RUN <<-'NOEXPAND'\n\tdon't expand $NAME\nNOEXPAND\n", [doc({ name: 'NOEXPAND', content: "\tdon't expand $NAME\n", chomp: true, expand: false })]],
    ['keyword-like terminator', 'RUN <<COPY\necho hello world\necho foo bar\nCOPY\n', [doc({ name: 'COPY', content: 'echo hello world\necho foo bar\n' })]],
    ['comments inside the body are kept', 'RUN <<COMMENT\n# internal comment\necho hi # trailing\nCOMMENT\n', [doc({ name: 'COMMENT', content: '# internal comment\necho hi # trailing\n' })]],
    ['after flags', 'RUN --mount=type=cache,target=/foo <<MOUNT\necho hello\nMOUNT\n', [doc({ name: 'MOUNT', content: 'echo hello\n' })]],
    ['two on one line', 'COPY <<FILE1 <<FILE2 /dest\ncontent 1\nFILE1\ncontent 2\nFILE2\n', [doc({ name: 'FILE1', content: 'content 1\n' }), doc({ name: 'FILE2', content: 'content 2\n' })]],
    ['quotes in the body', 'COPY <<EOF /quotes\n"foo"\n\'bar\'\nEOF\n', [doc({ name: 'EOF', content: '"foo"\n\'bar\'\n' })]],
    ['crossed terminators', 'COPY <<X <<Y /dest\nY\nX\nX\nY\n', [doc({ name: 'X', content: 'Y\n' }), doc({ name: 'Y', content: 'X\n' })]],
    ['command after the heredoc', "RUN <<COMPLEX python3\nprint('hello world')\nCOMPLEX\n", [doc({ name: 'COMPLEX', content: "print('hello world')\n" })]],
    ['dotted name', 'COPY <<file.txt /dest\nhello world\nfile.txt\n', [doc({ name: 'file.txt', content: 'hello world\n' })]],
    ["partly quoted E'O'F", "RUN <<eo'f'\necho foo\neof\n", [doc({ name: 'eof', content: 'echo foo\n', expand: false })]],
    ['escaped quote in name still expands', "RUN <<eo\\'f\necho foo\neo'f\n", [doc({ name: "eo'f", content: 'echo foo\n' })]],
    ['quoted and escaped', "RUN <<'e'o\\'f\necho foo\neo'f\n", [doc({ name: "eo'f", content: 'echo foo\n', expand: false })]],
    ['quoted name with a space', "RUN <<'one two'\necho bar\none two\n", [doc({ name: 'one two', content: 'echo bar\n', expand: false })]],
    ['$ in name is literal', 'RUN <<$EOF\n$EOF\n', [doc({ name: '$EOF' })]],
    ['space after <<', 'RUN <<  EOF\nEOF\n', [doc({ name: 'EOF' })]],
    ["space after << with quoted name (<< 'EOF')", "RUN << 'EOF'\nx $Y\nEOF\n", [doc({ name: 'EOF', content: 'x $Y\n', expand: false })]],
    ['redirect after', 'RUN <<  EOF  > foo\nEOF\n', [doc({ name: 'EOF' })]],
    ['double-quoted name', 'RUN <<"EOF"\nx\nEOF\n', [doc({ name: 'EOF', content: 'x\n', expand: false })]],
    ['CRLF body lines keep their line endings', 'RUN <<EOF\r\nline\r\nEOF\r\n', [doc({ name: 'EOF', content: 'line\r\n' })]],
    ['body at EOF without final newline', 'RUN <<EOF\na\nEOF', [doc({ name: 'EOF', content: 'a\n' })]],
  ];

  it.each(cases)('%s', (_name, line, expected) => {
    expect(heredocsOf(line)).toEqual(expected);
  });

  it('USER cannot hold a heredoc, so its body lines become instructions', () => {
    const { ast } = parse('FROM a\nUSER <<INVALID\nINVALID\n');
    expect(ast.children.map((c) => [c.value, c.heredocs.length])).toEqual([['from', 0], ['user', 0], ['invalid', 0]]);
  });

  it('the JSON form never holds heredocs', () => {
    const { ast } = parse('FROM a\nRUN ["whoami"]\nRUN ["<<EOF"]\nRUN ["<<\'EOF\'"]\n');
    expect(ast.children.slice(1).map((c) => c.heredocs)).toEqual([[], [], []]);
  });

  it('ONBUILD RUN/COPY triggers hold heredocs, appended to the stored expression', () => {
    const parsed = parse('FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\n');
    expect(parsed.ast.children[1]!.heredocs).toEqual([doc({ name: 'EOF', content: 'echo hi\n' })]);
    expect(dump(parsed.ast)).toBe('(from "a")\n(onbuild (run "<<EOF"))');
    const stage = parseInstructions(parsed).stages[0]!;
    expect(stage.instructions[0]).toMatchObject({ kind: 'onbuild', expression: 'RUN <<EOF\necho hi\nEOF' });
  });

  it('line numbers include the heredoc body', () => {
    const { ast } = parse('FROM a\nRUN <<EOF\none\ntwo\nEOF\nRUN b\n');
    expect(ast.children.map((c) => [c.startLine, c.endLine])).toEqual([[1, 1], [2, 5], [6, 6]]);
  });

  it('an unterminated heredoc is an error on the opening line', () => {
    const err = thrown(() => parse('FROM a\nRUN <<EOF\necho hi\n'));
    expect(err).toBeInstanceOf(DockerfileParseError);
    expect(err.message).toBe('dockerfile parse error on line 2: unterminated heredoc');
    expect([(err as DockerfileParseError).line, (err as DockerfileParseError).endLine]).toEqual([2, 3]);
  });
});

describe('parseHeredoc', () => {
  it.each(['<<EOF', "<<'EOF'", '<<"EOF"', '<<-EOF', "<<-'EOF'", '<<-"EOF"', '<<EO"F"', '<< EOF', '<<- EOF'])(
    'accepts %s',
    (src) => {
      expect(parseHeredoc(src)?.name).toBe('EOF');
    },
  );

  it.each(['', 'EOF', '<<', '<<-', '<EOF', '<<<EOF', '<<EOF sh'])('%j is not a heredoc', (src) => {
    expect(parseHeredoc(src)).toBeUndefined();
  });

  it.each(["<<'EOF", '<<"EOF', "<<EOF'", '<<EOF"'])('rejects %s', (src) => {
    expect(() => parseHeredoc(src)).toThrow(/unexpected end of statement/);
  });

  it('reads the fd, chomp and expand parts', () => {
    expect(parseHeredoc("12<<-'X'")).toEqual({ name: 'X', fileDescriptor: 12, chomp: true, expand: false });
  });

  it('chompHeredocContent strips leading tabs of every line', () => {
    expect(chompHeredocContent('\thello\n\t\tworld\n  spaced\n')).toBe('hello\nworld\n  spaced\n');
  });
});

describe('heredocs in typed instructions', () => {
  const copyOf = (text: string) => parseInstructions(parse('FROM a\n' + text)).stages[0]!.instructions[0] as CopyInstruction;
  const runOf = (text: string) => parseInstructions(parse('FROM a\n' + text)).stages[0]!.instructions[0] as RunInstruction;

  it('COPY sources mix files and heredocs; <<- bodies are chomped', () => {
    const c = copyOf('COPY <<EOF foo.txt <<-TABS /bar\ninline\nEOF\n\tx\n\tTABS\n');
    expect(c.sources).toEqual(['foo.txt']);
    expect(c.dest).toBe('/bar');
    expect(c.contents).toEqual([
      { path: 'EOF', data: 'inline\n', expand: true },
      { path: 'TABS', data: 'x\n', expand: true },
    ]);
  });

  it('COPY rejects a heredoc destination', () => {
    expect(() => parseInstructions(parse('FROM a\nCOPY /foo <<EOF\nEOF'))).toThrow(
      'dockerfile parse error on line 2: COPY cannot accept a heredoc as a destination',
    );
  });

  it('RUN keeps the shell line and the bodies as files', () => {
    const r = runOf("RUN <<'EOF' | python\nprint(\"hello\")\nEOF\n");
    expect(r.cmdLine).toEqual(["<<'EOF' | python"]);
    expect(r.prependShell).toBe(true);
    expect(r.files).toEqual([{ name: 'EOF', data: 'print("hello")\n', chomp: false }]);
  });

  it('planRun: a lone heredoc runs its body through the shell', () => {
    const plan = planRun(runOf('RUN <<-EOF\n\techo one\n\techo two\nEOF\n'));
    expect(plan.args).toEqual(['/bin/sh', '-c', 'echo one\necho two\n']);
    expect(plan.displayName).toBe('RUN <<-EOF (echo one...)');
  });

  it('planRun: a shebang heredoc becomes an executable file', () => {
    const plan = planRun(runOf('RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n'), ['/bin/bash', '-c']);
    expect(plan.scriptFile).toEqual({ path: '/dev/pipes/EOF', name: 'EOF', data: '#!/usr/bin/env python3\nprint(1)\n' });
    expect(plan.args).toEqual(['/bin/bash', '-c', '/dev/pipes/EOF']);
  });

  it('planRun: other heredoc lines are handed to the shell whole', () => {
    const plan = planRun(runOf('RUN cat <<A <<B\none\nA\ntwo\nB\n'));
    expect(plan.args).toEqual(['/bin/sh', '-c', 'cat <<A <<B\none\nA\ntwo\nB']);
  });
});
