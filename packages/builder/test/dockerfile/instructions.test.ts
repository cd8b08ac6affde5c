// Typed instructions: validation, flags, mounts, healthcheck, expansion.
import { describe, expect, it } from 'vitest';
import {
  DockerfileExpansionError,
  DockerfileParseError,
  HEALTHCHECK_DEFAULTS,
  ShellLexer,
  effectiveHealthcheck,
  expandInstruction,
  parse,
  parseGoDuration,
  parseInstructions,
  parseOnbuildTrigger,
  ramInBytes,
  type AddInstruction,
  type CopyInstruction,
  type EnvInstruction,
  type ExpansionUsage,
  type HealthcheckInstruction,
  type Instruction,
  type RunInstruction,
} from '../../src/dockerfile';
import { thrown } from '../../../../test/helpers/errors';

const typed = (text: string) => parseInstructions(parse(text));
/** The first instruction after `FROM a`. */
const first = <T extends Instruction>(line: string): T => typed('FROM a\n' + line + '\n').stages[0]!.instructions[0] as T;
const typeError = (text: string): DockerfileParseError => {
  const err = thrown(() => typed(text));
  expect(err).toBeInstanceOf(DockerfileParseError);
  return err as DockerfileParseError;
};
const lex = new ShellLexer();

describe('stages and global args', () => {
  it('splits stages at FROM and keeps ARGs before the first FROM as global', () => {
    const df = typed(
      '# VERSION the release\nARG VERSION=1.0 OTHER\nFROM --platform=$BUILDPLATFORM golang:${VERSION} AS Build\nARG VERSION\nRUN make\n# final the runtime image\nFROM scratch AS final\nCOPY --from=build /out /\n',
    );
    expect(df.globalArgs).toHaveLength(1);
    expect(df.globalArgs[0]!.args).toEqual([
      { key: 'VERSION', value: '1.0', docComment: 'the release' },
      { key: 'OTHER', docComment: '' },
    ]);
    expect(df.stages.map((s) => [s.index, s.name, s.baseName, s.platform, s.instructions.map((i) => i.kind)])).toEqual([
      [0, 'build', 'golang:${VERSION}', '$BUILDPLATFORM', ['arg', 'run']],
      [1, 'final', 'scratch', '', ['copy']],
    ]);
    expect(df.stages[1]!.docComment).toBe('the runtime image');
    expect(df.stages[0]!.from).toMatchObject({ kind: 'from', keyword: 'FROM', original: 'FROM --platform=$BUILDPLATFORM golang:${VERSION} AS Build', startLine: 3 });
  });

  it('keeps source text and line ranges for progress and error excerpts', () => {
    const run = typed('FROM a\n\nRUN echo hi \\\n  && echo there\n').stages[0]!.instructions[0]!;
    expect(run).toMatchObject({ keyword: 'RUN', original: 'RUN echo hi   && echo there', startLine: 3, endLine: 4 });
  });

  it('rejects instructions before the first FROM other than ARG', () => {
    expect(typeError('ENV A=1\nFROM a\n').message).toBe('dockerfile parse error on line 1: no build stage in current context');
  });

  it('validates FROM', () => {
    expect(typeError('FROM a AS 1bad\n').detail).toBe('invalid name for build stage: "1bad", name can\'t start with a number or contain symbols');
    expect(typeError('FROM a b\n').detail).toBe('FROM requires either one or three arguments');
  });
});

describe('errors and flag validation (after bk:instructions TestErrorCases)', () => {
  it.each([
    ['COPY\t\n\t\tquux \\\n      bar', 1, 'COPY requires at least two arguments, but only one was provided. Destination could not be determined'],
    ['ONBUILD FROM scratch', 1, "FROM isn't allowed as an ONBUILD trigger"],
    ['ONBUILD MAINTAINER me', 1, "MAINTAINER isn't allowed as an ONBUILD trigger"],
    ['MAINTAINER --boo joe@example.com', 1, 'unknown flag: --boo'],
    ['ONBUILD ONBUILD RUN touch foobar', 1, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"],
    ['FOO bar', 1, 'unknown instruction: FOO (did you mean FROM?)'],
    ['foo bar', 1, 'unknown instruction: foo (did you mean from?)'],
    ['FROM a\n\nRUNN echo', 3, 'unknown instruction: RUNN (did you mean RUN?)'],
    ['FROM a\nentrypont ["x"]', 2, 'unknown instruction: entrypont (did you mean entrypoint?)'],
    ['FROM a\nBOGUSWORD x', 2, 'unknown instruction: BOGUSWORD'],
    // flags
    ['FROM a\nRUN true\nCOPY --chwon=1:1 a /b', 3, 'unknown flag: --chwon (did you mean chown?)'],
    ['FROM a\nCOPY --from=a --from=b x /y', 2, 'duplicate flag specified: --from'],
    ['FROM a\nCOPY --chown x /y', 2, 'missing a value on flag: --chown'],
    ['FROM a\nCOPY --link= x /y', 2, 'missing a value on flag: --link'],
    ['FROM a\nCOPY --link=maybe x /y', 2, 'expecting boolean value for flag --link, not: maybe'],
    ['FROM a\nCOPY --exclude x /y', 2, 'missing a value on flag: --exclude'],
    ['FROM a\nADD --from=x a /b', 2, 'unknown flag: --from'],
    ['FROM a\nADD --parents a /b', 2, 'unknown flag: --parents'],
    ['FROM --platfrom=linux/arm64 a', 1, 'unknown flag: --platfrom (did you mean platform?)'],
    ['FROM a\n\nRUN --network=bridge \\\n  true', 3, 'invalid network mode "bridge"'],
    ['FROM a\nRUN --security=privileged true', 2, 'security "privileged" is not valid'],
    ['FROM a\nRUN --device=/dev/fuse true', 2, 'unknown flag: --device'],
    ['FROM a\nCMD --doit echo', 2, 'unknown flag: --doit'],
    ['FROM a\nWORKDIR --x /a', 2, 'unknown flag: --x'],
    ['FROM a\nHEALTHCHECK --intervall=1s CMD true', 2, 'unknown flag: --intervall (did you mean interval?)'],
  ])('%j', (text, line, message) => {
    const err = typeError(text);
    expect(err.line).toBe(line);
    expect(err.message).toBe(`dockerfile parse error on line ${line}: ${message}`);
  });

  it.each(['MAINTAINER', 'WORKDIR', 'USER', 'STOPSIGNAL'])('%s requires exactly one argument', (cmd) => {
    expect(typeError(`FROM a\n${cmd}`).detail).toBe(`${cmd} requires exactly one argument`);
  });

  it.each(['ENV', 'LABEL', 'ONBUILD', 'HEALTHCHECK', 'EXPOSE', 'VOLUME', 'ARG'])('%s requires at least one argument', (cmd) => {
    expect(typeError(`FROM a\n${cmd}`).detail).toBe(`${cmd} requires at least one argument`);
  });

  it.each([
    ['SHELL /bin/bash -c', 'SHELL requires the arguments to be in JSON form'],
    ['SHELL []', 'SHELL requires at least one argument'],
    ['VOLUME [" "]', 'VOLUME specified can not be an empty string'],
    ['ARG =x', 'ARG names can not be blank'],
    ['LABEL =x', 'LABEL names can not be blank'],
    ['HEALTHCHECK NONE x', 'HEALTHCHECK NONE takes no arguments'],
    ['HEALTHCHECK CONNECT TCP 7000', 'Unknown type "CONNECT" in HEALTHCHECK (try CMD)'],
    ['HEALTHCHECK CMD', 'Missing command after HEALTHCHECK CMD'],
    ['HEALTHCHECK --interval=50us CMD x', 'Interval "interval" cannot be less than 1ms'],
    ['HEALTHCHECK --timeout=5 CMD x', 'time: missing unit in duration "5"'],
    ['HEALTHCHECK --timeout=5y CMD x', 'time: unknown unit "y" in duration "5y"'],
    ['HEALTHCHECK --retries=-1 CMD x', '--retries cannot be negative (-1)'],
    ['HEALTHCHECK --retries=x CMD x', 'strconv.ParseInt: parsing "x": invalid syntax'],
  ])('%j: %s', (line, detail) => {
    expect(typeError(`FROM a\n${line}`).detail).toBe(detail);
  });
});

describe('flag validation', () => {
  it('RUN records the flags it was given', () => {
    const run = first<RunInstruction>('RUN --mount=type=tmpfs,target=/foo/ --network=none echo hello');
    expect(run.flagsUsed.sort()).toEqual(['mount', 'network']);
    expect(run.network).toBe('none');
    expect(run.security).toBe('sandbox');
    expect(first<RunInstruction>('RUN --security=insecure --network=host x')).toMatchObject({ security: 'insecure', network: 'host' });
  });
});

describe('COPY and ADD', () => {
  it('COPY flags', () => {
    const c = first<CopyInstruction>('COPY --from=build --chown=app:app --chmod=0644 --link --exclude=*.md --exclude=.git --parents a b/ /dst/');
    expect(c).toMatchObject({
      kind: 'copy',
      from: 'build',
      chown: 'app:app',
      chmod: '0644',
      link: true,
      parents: true,
      exclude: ['*.md', '.git'],
      sources: ['a', 'b/'],
      dest: '/dst/',
      contents: [],
    });
    expect(first<CopyInstruction>('COPY a b')).toMatchObject({ from: '', chown: '', chmod: '', link: false, parents: false, exclude: [] });
    expect(first<CopyInstruction>('COPY --link=false ["x y", "/z"]')).toMatchObject({ link: false, sources: ['x y'], dest: '/z' });
  });

  it('COPY --from is never expanded', () => {
    expect(typeError('FROM a\nCOPY --from=$STAGE x /y').message).toBe(
      'dockerfile parse error on line 2: variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround',
    );
    const c = first<CopyInstruction>('COPY --from=build $SRC /y');
    expect(expandInstruction(c, { SRC: 'out', build: 'nope' }, lex)).toMatchObject({ from: 'build', sources: ['out'] });
  });

  it('ADD flags; keep-git-dir and unpack stay undefined unless given', () => {
    const a = first<AddInstruction>('ADD --checksum=sha256:abc --keep-git-dir --unpack=false --chmod=755 https://x/y.tar /z');
    expect(a).toMatchObject({ kind: 'add', checksum: 'sha256:abc', keepGitDir: true, unpack: false, chmod: '755', sources: ['https://x/y.tar'] });
    const plain = first<AddInstruction>('ADD a /b');
    expect('keepGitDir' in plain).toBe(false);
    expect('unpack' in plain).toBe(false);
  });
});

describe('RUN --mount', () => {
  const mountsOf = (flags: string) => first<RunInstruction>(`RUN ${flags} true`).mounts;

  it('bind is the default type and is read-only by default', () => {
    expect(mountsOf('--mount=target=/src')).toEqual([{ type: 'bind', target: '/src', source: '', from: '', readOnly: true }]);
    expect(mountsOf('--mount=type=bind,from=build,src=/out,dst=/in,rw')).toEqual([
      { type: 'bind', target: '/in', source: '/out', from: 'build', readOnly: false },
    ]);
  });

  it('cache defaults: id = cleaned target, shared, 0755, root, writable', () => {
    expect(mountsOf('--mount=type=cache,target=/root/.cache/./go/')).toEqual([
      { type: 'cache', target: '/root/.cache/./go/', id: '/root/.cache/go', sharing: 'shared', from: '', source: '', readOnly: false, mode: 0o755, uid: 0, gid: 0 },
    ]);
    expect(mountsOf('--mount=type=cache,id=gomod,target=/go,sharing=LOCKED,mode=0700,uid=1000,gid=100')![0]).toMatchObject({
      id: 'gomod',
      sharing: 'locked',
      mode: 0o700,
      uid: 1000,
      gid: 100,
    });
  });

  it('tmpfs, secret and ssh defaults', () => {
    expect(mountsOf('--mount=type=tmpfs,target=/t,size=64m')).toEqual([{ type: 'tmpfs', target: '/t', size: 64 * 1024 * 1024, readOnly: false }]);
    expect(mountsOf('--mount=type=secret,id=npmrc')).toEqual([
      { type: 'secret', id: 'npmrc', target: '/run/secrets/npmrc', required: false, mode: 0o400, uid: 0, gid: 0 },
    ]);
    expect(mountsOf('--mount=type=secret,target=/etc/token,required')![0]).toMatchObject({ id: 'token', target: '/etc/token', required: true });
    expect(mountsOf('--mount=type=secret,id=tok,env=TOKEN')).toEqual([
      { type: 'secret', id: 'tok', env: 'TOKEN', required: false, mode: 0o400, uid: 0, gid: 0 },
    ]);
    expect(mountsOf('--mount=type=ssh --mount=type=ssh,id=gh,target=/ssh.sock,required=true')).toEqual([
      { type: 'ssh', id: 'default', target: '/run/buildkit/ssh_agent.0', required: false, mode: 0o600, uid: 0, gid: 0 },
      { type: 'ssh', id: 'gh', target: '/ssh.sock', required: true, mode: 0o600, uid: 0, gid: 0 },
    ]);
  });

  it('flag quoting happens first; CSV quotes then group commas; escapes are removed like an expansion', () => {
    // The flag word loses its outer single quotes (and one level of escapes) before the CSV is read.
    expect(mountsOf(`--mount='"target=/a,b",source=x\\\\y'`)![0]).toMatchObject({ target: '/a,b', source: 'xy' });
    expect(first<RunInstruction>('RUN --mount="type=cache,target=/a b" x').mountSpecs).toEqual(['type=cache,target=/a b']);
  });

  it.each([
    ['--mount=type=cahce,target=/x', 'unsupported mount type "cahce" (did you mean cache?)'],
    ['--mount=type=bind,targte=/x', "unexpected key 'targte' in 'targte=/x' (did you mean target?)"],
    ['--mount=type=bind,target=/x,mode=0700', 'mode not allowed for "bind" type mounts'],
    ['--mount=type=cache,target=/x,uid=-1', 'invalid value -1 for uid'],
    ['--mount=type=cache,target=/x,mode=999', 'invalid value 999 for mode'],
    ['--mount=type=cache,target=/x,sharing=everyone', 'unsupported sharing value "everyone"'],
    ['--mount=type=bind,target=/x,sharing=shared', 'invalid cache sharing set for bind mount'],
    ['--mount=target=/x,required', "unexpected key 'required' for mount type 'bind'"],
    ['--mount=type=bind,size=1m,target=/x', "unexpected key 'size' for mount type 'bind'"],
    ['--mount=type=tmpfs,size=lots,target=/x', 'invalid value for size: lots'],
    ['--mount=type=bind,ro=maybe,target=/x', 'invalid value for ro: maybe'],
    ['--mount=type=secret,id=a,from=b', 'secret mount should not have a from'],
    ['--mount=type=secret', 'invalid secret mount. one of source, target required'],
    ['--mount=type=secret,id=a,source=b', "both source and id can't be set"],
    ['--mount=type=ssh,source=/x', 'ssh does not support source'],
    ['--mount=type=bind,target=/x,junk', "invalid field 'junk' must be a key=value pair"],
  ])('%s → error when the step is expanded', (flags, message) => {
    // Like BuildKit, a bad mount fails the step that uses it (not a stage that is never built).
    const run = typed(`FROM a\nRUN true\nRUN ${flags} true\n`).stages[0]!.instructions[1] as RunInstruction;
    expect(run.mounts).toBeUndefined();
    const err = thrown(() => expandInstruction(run, {}, lex));
    expect(err).toBeInstanceOf(DockerfileExpansionError);
    expect(err.message).toBe(message);
    expect([(err as DockerfileExpansionError).startLine, (err as DockerfileExpansionError).endLine]).toEqual([3, 3]);
  });

  it.each([
    ['--mount=from=$STAGE,target=/x', "'from' doesn't support variable expansion, define alias stage instead"],
    ['--mount=type=bind,target=\\"/x\\"', 'failed to parse csv mounts: parse error on line 1, column 18: bare " in non-quoted-field'],
    ['--mount=type=bind,\\"target=/x', 'failed to parse csv mounts: parse error on line 1, column 12: extraneous or missing " in quoted-field'],
  ])('%s → parse error', (flags, message) => {
    const err = typeError(`FROM a\nRUN true\nRUN ${flags} true\n`);
    expect(err.message).toBe(`dockerfile parse error on line 3: ${message}`);
  });

  it('mounts that use variables are typed by expandInstruction', () => {
    const run = first<RunInstruction>('RUN --mount=type=cache,target=$CACHE_DIR,id=${ID:-default-id} go build');
    expect(run.mountSpecs).toEqual(['type=cache,target=$CACHE_DIR,id=${ID:-default-id}']);
    expect(run.mounts).toBeUndefined();
    const usage: ExpansionUsage = { matched: new Set(), unmatched: new Set() };
    const expanded = expandInstruction(run, { CACHE_DIR: '/root/.cache' }, lex, usage);
    expect(expanded.mounts).toEqual([
      expect.objectContaining({ type: 'cache', target: '/root/.cache', id: 'default-id' }),
    ]);
    expect([...usage.matched]).toEqual(['CACHE_DIR']);
    expect([...usage.unmatched]).toEqual(['ID']);
    // An expansion that yields a bad value fails at expansion time, with the lines.
    const err = thrown(() => expandInstruction(first<RunInstruction>('RUN --mount=type=$T,target=/x true'), { T: 'nfs' }, lex));
    expect(err).toBeInstanceOf(DockerfileExpansionError);
    expect(err.message).toBe('unsupported mount type "nfs"');
    expect((err as DockerfileExpansionError).startLine).toBe(2);
  });
});

describe('HEALTHCHECK', () => {
  const hc = (line: string) => first<HealthcheckInstruction>(line).health;

  it('unset options stay 0 and the Docker defaults are available', () => {
    const h = hc('HEALTHCHECK CMD curl -f http://localhost/');
    expect(h).toEqual({ test: ['CMD-SHELL', 'curl -f http://localhost/'], interval: 0, timeout: 0, startPeriod: 0, startInterval: 0, retries: 0 });
    expect(effectiveHealthcheck(h)).toEqual({ test: h.test, interval: 30e9, timeout: 30e9, startPeriod: 0, startInterval: 5e9, retries: 3 });
    expect(HEALTHCHECK_DEFAULTS.retries).toBe(3);
  });

  it('parses Go durations and retries', () => {
    expect(hc('HEALTHCHECK --interval=1m30s --timeout=1.5s --start-period=2h --start-interval=500ms --retries=5 CMD ["/check", "-q"]')).toEqual({
      test: ['CMD', '/check', '-q'],
      interval: 90e9,
      timeout: 1.5e9,
      startPeriod: 7200e9,
      startInterval: 500e6,
      retries: 5,
    });
    expect(hc('HEALTHCHECK --interval=0s CMD x').interval).toBe(0);
  });

  it('NONE (its error cases are with the other argument errors)', () => {
    expect(hc('HEALTHCHECK NONE').test).toEqual(['NONE']);
  });

  it('parseGoDuration and ramInBytes match Go', () => {
    expect(parseGoDuration('1h2m3.5s')).toBe(3723.5e9);
    expect(parseGoDuration('-1.5ms')).toBe(-1.5e6);
    expect(parseGoDuration('10µs')).toBe(10e3);
    expect(() => parseGoDuration('')).toThrow('time: invalid duration ""');
    expect(() => parseGoDuration('.s')).toThrow('time: invalid duration ".s"');
    expect(ramInBytes('1.5GiB')).toBe(1.5 * 1024 ** 3);
    expect(ramInBytes('512')).toBe(512);
    expect(ramInBytes('10 kb')).toBe(10240);
    expect(() => ramInBytes('1x')).toThrow("invalid suffix: 'x'");
  });
});

describe('expandInstruction', () => {
  it('ENV: every pair sees the environment from before the instruction', () => {
    const env = first<EnvInstruction>('ENV a=1 b=$a c=${a:-unset}');
    expect(expandInstruction(env, {}, lex).pairs).toEqual([
      { key: 'a', value: '1', noDelim: false },
      { key: 'b', value: '', noDelim: false },
      { key: 'c', value: 'unset', noDelim: false },
    ]);
    expect(expandInstruction(env, { a: 'old' }, lex).pairs.map((p) => p.value)).toEqual(['1', 'old', 'old']);
    // The input is not modified.
    expect(env.pairs[1]!.value).toBe('$a');
  });

  it('ENV and LABEL remove quotes and expand keys too', () => {
    const env = first<EnvInstruction>('ENV $K="a b" legacy=\'$x\'');
    expect(expandInstruction(env, { K: 'KEY', x: 'X' }, lex).pairs).toEqual([
      { key: 'KEY', value: 'a b', noDelim: false },
      { key: 'legacy', value: '$x', noDelim: false },
    ]);
    const label = typed('FROM a\nLABEL "com.example.ver"="${V}"\n').stages[0]!.instructions[0]!;
    expect(expandInstruction(label, { V: '2' }, lex)).toMatchObject({ labels: [{ key: 'com.example.ver', value: '2' }] });
  });

  it('COPY: sources, destination, --chown and --chmod; heredoc bodies only when the name is unquoted', () => {
    const c = typed("FROM a\nCOPY --chown=$U:$G --chmod=$M <<A <<'B' ${SRC}/* $DEST\nhello $U \"q\"\nA\nraw $U\nB\n").stages[0]!.instructions[0] as CopyInstruction;
    const out = expandInstruction(c, { U: 'app', G: 'staff', M: '600', SRC: 'dist', DEST: '/srv/' }, lex);
    expect(out).toMatchObject({ chown: 'app:staff', chmod: '600', sources: ['dist/*'], dest: '/srv/' });
    expect(out.contents).toEqual([
      { path: 'A', data: 'hello app "q"\n', expand: true },
      { path: 'B', data: 'raw $U\n', expand: false },
    ]);
  });

  it('ADD --checksum is expanded', () => {
    const a = first<AddInstruction>('ADD --checksum=sha256:${SUM} https://x/y /y');
    expect(expandInstruction(a, { SUM: 'abc' }, lex).checksum).toBe('sha256:abc');
  });

  it('WORKDIR, USER, STOPSIGNAL, VOLUME, FROM; EXPOSE splits into fields', () => {
    const df = typed('ARG TAG\nFROM --platform=$P img:$TAG\nWORKDIR $HOME/app\nUSER ${U}:${G}\nSTOPSIGNAL $S\nVOLUME $V /data\nEXPOSE $PORTS 22\n');
    const env = { HOME: '/home/me', U: '1000', G: '100', S: 'SIGTERM', V: '/cache', PORTS: '80/tcp  443', TAG: '3.19', P: 'linux/amd64' };
    expect(expandInstruction(df.stages[0]!.from, env, lex)).toMatchObject({ baseName: 'img:3.19', platform: 'linux/amd64' });
    const out = df.stages[0]!.instructions.map((i) => expandInstruction(i, env, lex));
    expect(out).toMatchObject([
      { kind: 'workdir', path: '/home/me/app' },
      { kind: 'user', user: '1000:100' },
      { kind: 'stopsignal', signal: 'SIGTERM' },
      { kind: 'volume', volumes: ['/cache', '/data'] },
      { kind: 'expose', ports: ['80/tcp', '443', '22'] },
    ]);
  });

  it('RUN, CMD, ONBUILD and ARG are left to the shell / later steps', () => {
    const df = typed('FROM a\nRUN echo $HOME\nCMD echo $HOME\nONBUILD RUN echo $HOME\nARG X=$HOME\n');
    for (const i of df.stages[0]!.instructions) {
      expect(expandInstruction(i, { HOME: '/root' }, lex)).toEqual(i);
    }
  });

  it('uses the lexer escape token and reports errors with the instruction lines', () => {
    const df = parse('# escape=`\nFROM a\nWORKDIR C:`\\x`$y\n');
    const w = parseInstructions(df).stages[0]!.instructions[0]!;
    expect(expandInstruction(w, { y: 'Y' }, new ShellLexer({ escapeToken: df.directives.escape }))).toMatchObject({ path: 'C:\\x$y' });
    const err = thrown(() => expandInstruction(first('WORKDIR ${DIR:?set DIR}'), {}, lex));
    expect(err).toBeInstanceOf(DockerfileExpansionError);
    expect(err.message).toBe('failed to process "${DIR:?set DIR}": DIR: set DIR');
    expect([(err as DockerfileExpansionError).startLine, (err as DockerfileExpansionError).endLine]).toEqual([2, 2]);
  });
});

describe('ONBUILD', () => {
  it('stores the trigger expression and parses it back in a child build', () => {
    const onb = first('ONBUILD  COPY --chown=1:1 . /app  ');
    expect(onb).toMatchObject({ kind: 'onbuild', expression: 'COPY --chown=1:1 . /app  ' });
    const trigger = parseOnbuildTrigger((onb as { expression: string }).expression, { startLine: 7, endLine: 7 });
    expect(trigger).toMatchObject({ kind: 'copy', chown: '1:1', sources: ['.'], dest: '/app', startLine: 7 });
    expect(() => parseOnbuildTrigger('RUN a\nRUN b')).toThrow('onbuild trigger should be a single expression');
  });
});
