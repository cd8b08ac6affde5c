// Per-step variable expansion (dockerfile2llb's dispatch): which words of
// which instruction the builder expands, with one env snapshot per
// instruction. Also how a RUN with heredocs becomes an argv.

import { DockerfileExpansionError } from './errors';
import { chompHeredocContent, mustParseHeredoc } from './heredoc';
import type { AddInstruction, CopyInstruction, Instruction, RunInstruction, SourceContent } from './instructions';
import { parseMountSpec, resolveMounts } from './mounts';
import { ShellLexer, envLookup, type EnvSource } from './shell';

/** Instructions whose arguments get builder expansion (RUN: only its --mount values). */
export const EXPANDED_INSTRUCTIONS: ReadonlySet<Instruction['kind']> = new Set<Instruction['kind']>([
  'add', 'copy', 'env', 'expose', 'from', 'label', 'stopsignal', 'user', 'volume', 'workdir', 'run',
]);

/** Filled by expandInstruction: variable names found / referenced but unset. */
export interface ExpansionUsage {
  matched: Set<string>;
  unmatched: Set<string>;
}

// Heredoc bodies: quotes are ordinary text, the escape is always `\`.
const heredocLexer = new ShellLexer({ skipProcessQuotes: true });

/**
 * Returns a copy of `instr` with variables expanded against `env`, the
 * environment *before* this instruction: in `ENV a=1 b=$a`, `b` sees the old
 * `a`. Expanded: ENV/LABEL keys and values; COPY/ADD sources, destination,
 * --chown, --chmod, ADD --checksum and unquoted-heredoc bodies (COPY --from
 * never); WORKDIR, USER, STOPSIGNAL, VOLUME; EXPOSE (split into fields);
 * FROM base and --platform; RUN --mount values (mounts are then final).
 * ARG, ONBUILD, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER are returned
 * unchanged (the shell, the child build or the ARG logic handles them).
 * Throws DockerfileExpansionError.
 */
export function expandInstruction<T extends Instruction>(instr: T, env: EnvSource, lexer: ShellLexer, usage?: ExpansionUsage): T {
  const lookup = envLookup(env);
  const record = (matched: Set<string>, unmatched: Set<string>) => {
    if (!usage) return;
    for (const n of matched) usage.matched.add(n);
    for (const n of unmatched) usage.unmatched.add(n);
  };
  const word = (w: string): string => {
    const r = lexer.processWordWithMatches(w, lookup);
    record(r.matched, r.unmatched);
    return r.result;
  };
  const words = (w: string): string[] => {
    const r = lexer.processWordWithMatches(w, lookup);
    record(r.matched, r.unmatched);
    return r.words;
  };
  const contents = (list: SourceContent[]): SourceContent[] =>
    list.map((c) => {
      if (!c.expand) return { ...c };
      const r = heredocLexer.processWordWithMatches(c.data, lookup);
      record(r.matched, r.unmatched);
      return { ...c, data: r.result };
    });

  // What COPY and ADD share; exclude patterns are never expanded.
  const copyFields = (c: CopyInstruction | AddInstruction) => ({
    chown: word(c.chown),
    chmod: word(c.chmod),
    sources: c.sources.map(word),
    dest: word(c.dest),
    contents: contents(c.contents),
    exclude: [...c.exclude],
  });

  try {
    const i = instr as Instruction;
    let out: Instruction;
    switch (i.kind) {
      case 'env':
        out = { ...i, pairs: i.pairs.map((p) => ({ key: word(p.key), value: word(p.value), noDelim: p.noDelim })) };
        break;
      case 'label':
        out = { ...i, labels: i.labels.map((p) => ({ key: word(p.key), value: word(p.value), noDelim: p.noDelim })) };
        break;
      case 'copy':
        out = { ...i, ...copyFields(i) };
        break;
      case 'add':
        out = { ...i, ...copyFields(i), checksum: word(i.checksum) };
        break;
      case 'workdir':
        out = { ...i, path: word(i.path) };
        break;
      case 'user':
        out = { ...i, user: word(i.user) };
        break;
      case 'stopsignal':
        out = { ...i, signal: word(i.signal) };
        break;
      case 'volume':
        out = { ...i, volumes: i.volumes.map(word) };
        break;
      case 'expose':
        out = { ...i, ports: i.ports.flatMap(words) };
        break;
      case 'from':
        out = { ...i, baseName: word(i.baseName), platform: word(i.platform) };
        break;
      case 'run':
        out = { ...i, mounts: resolveMounts(i.mountSpecs.map((spec) => parseMountSpec(spec, word))) };
        break;
      default:
        out = { ...i };
    }
    return out as T;
  } catch (err) {
    const message = (err as Error).message;
    throw new DockerfileExpansionError(instr.startLine, instr.endLine, message, { cause: err });
  }
}

/** How to execute a RUN. */
export interface RunPlan {
  /** The argv (SHELL prepended for the shell form). */
  args: string[];
  /**
   * A heredoc starting with `#!`: provide it read-only as an executable
   * (0755) file at `path`; `args` runs it.
   */
  scriptFile?: { path: string; name: string; data: string };
  /** The step name for progress: `RUN <<EOF (first line...)`. */
  displayName: string;
}

function summarizeHeredoc(doc: string): string {
  const lines = doc.trim().replace(/\r\n/g, '\n').split('\n');
  return lines[0]! + (lines.length > 1 ? '...' : '');
}

/**
 * Turns a RUN into an argv the way BuildKit does: a lone heredoc runs its
 * body (or, with a shebang, a file holding it); several heredocs are
 * appended to the command line for the shell to read.
 */
export function planRun(run: RunInstruction, shell: readonly string[] = ['/bin/sh', '-c']): RunPlan {
  let args = [...run.cmdLine];
  let displayName = run.original;
  let scriptFile: RunPlan['scriptFile'];
  if (run.files.length > 0) {
    if (args.length !== 1 || !run.prependShell) {
      throw new DockerfileExpansionError(run.startLine, run.endLine, `parsing produced an invalid run command: [${args.join(' ')}]`);
    }
    const first = run.files[0]!;
    if (mustParseHeredoc(args[0]!)) {
      const data = first.chomp ? chompHeredocContent(first.data) : first.data;
      if (data.startsWith('#!')) {
        const path = '/dev/pipes/' + first.name;
        scriptFile = { path, name: first.name, data };
        args = [path];
      } else {
        args = [data];
      }
      displayName += ` (${summarizeHeredoc(first.data)})`;
    } else {
      let script = args[0]!;
      for (const f of run.files) script += '\n' + f.data + f.name;
      args = [script];
    }
  }
  if (run.prependShell) args = [...shell, args.join(' ')];
  const plan: RunPlan = { args, displayName };
  if (scriptFile) plan.scriptFile = scriptFile;
  return plan;
}
