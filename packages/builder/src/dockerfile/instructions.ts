// Typed instructions from the syntax tree (bk:instructions/parse.go): one
// type per keyword, flags validated, stages split at FROM. Variables are not
// expanded here; the builder calls expandInstruction per step with the live
// environment.

import type { Node, ParseResult } from './ast';
import { FlagSet } from './bflags';
import { DockerfileParseError } from './errors';
import { goQuote, trimSpace, withSuggestion } from './gostr';
import { chompHeredocContent, mustParseHeredoc } from './heredoc';
import { checkMountSpecStatic, parseMountSpec, resolveMounts, type RunMount } from './mounts';
import { parse } from './parser';
import { ShellLexer } from './shell';
import { parseGoDuration } from './units';

export const INSTRUCTION_KEYWORDS = [
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL',
  'MAINTAINER', 'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
] as const;

export interface InstructionBase {
  /** The keyword in upper case, e.g. `RUN`. */
  keyword: string;
  /** The source text, trimmed: `RUN echo hi` (flags included, heredoc bodies not). */
  original: string;
  /** 1-based line range in the Dockerfile (heredoc bodies included). */
  startLine: number;
  endLine: number;
  /** Raw flags as written. */
  flags: string[];
  /** Comment lines directly above. */
  comments: string[];
}

export interface KeyValuePair {
  key: string;
  value: string;
  /** Legacy `ENV k v` form (no `=`). */
  noDelim: boolean;
}

/** A heredoc body used as a RUN/CMD script. */
export interface ShellInlineFile {
  name: string;
  data: string;
  /** `<<-`: strip leading tabs before use. */
  chomp: boolean;
}

/** A heredoc used as a COPY/ADD source. */
export interface SourceContent {
  /** The heredoc name, used as the file name. */
  path: string;
  /** The body (tabs already stripped for `<<-`). */
  data: string;
  /** Expand variables in the body (unquoted name). */
  expand: boolean;
}

interface ShellDependentCmdLine {
  /** Exec form: the argv. Shell form: one string, the command line. */
  cmdLine: string[];
  /** Shell form: run through SHELL (default /bin/sh -c). */
  prependShell: boolean;
  files: ShellInlineFile[];
}

export type NetworkMode = 'default' | 'none' | 'host';
export type SecurityMode = 'sandbox' | 'insecure';

export interface FromInstruction extends InstructionBase {
  kind: 'from';
  /** Image, stage name or `scratch`, unexpanded. */
  baseName: string;
  /** The `AS` name in lower case, '' when unnamed. */
  stageName: string;
  /** `--platform` value, unexpanded; '' when absent. */
  platform: string;
}

export interface RunInstruction extends InstructionBase, ShellDependentCmdLine {
  kind: 'run';
  /** Raw `--mount` values. */
  mountSpecs: string[];
  /**
   * Typed mounts. Computed at parse time when no mount value uses a
   * variable and all are valid; otherwise undefined until expandInstruction
   * (which reports invalid values, as BuildKit does when the step runs).
   */
  mounts: RunMount[] | undefined;
  network: NetworkMode;
  security: SecurityMode;
  /** Names of the flags present (`mount`, `network`, `security`). */
  flagsUsed: string[];
}

export interface CmdInstruction extends InstructionBase, ShellDependentCmdLine {
  kind: 'cmd';
}

export interface EntrypointInstruction extends InstructionBase, ShellDependentCmdLine {
  kind: 'entrypoint';
}

interface SourcesAndDest {
  /** File sources (paths, URLs, git refs), unexpanded. */
  sources: string[];
  /** Heredoc sources. */
  contents: SourceContent[];
  dest: string;
  chown: string;
  chmod: string;
  link: boolean;
  exclude: string[];
}

export interface CopyInstruction extends InstructionBase, SourcesAndDest {
  kind: 'copy';
  /** `--from`: stage name/index, image or named context; never expanded. */
  from: string;
  parents: boolean;
}

export interface AddInstruction extends InstructionBase, SourcesAndDest {
  kind: 'add';
  /** undefined = not given (default depends on the source). */
  keepGitDir?: boolean;
  checksum: string;
  /** undefined = not given (local archives are unpacked, URLs are not). */
  unpack?: boolean;
}

export interface EnvInstruction extends InstructionBase {
  kind: 'env';
  pairs: KeyValuePair[];
}

export interface ArgDefinition {
  key: string;
  /** undefined for `ARG NAME` without a default. */
  value?: string;
  /** From a `# NAME description` comment above. */
  docComment: string;
}

export interface ArgInstruction extends InstructionBase {
  kind: 'arg';
  args: ArgDefinition[];
}

export interface LabelInstruction extends InstructionBase {
  kind: 'label';
  labels: KeyValuePair[];
}

export interface WorkdirInstruction extends InstructionBase {
  kind: 'workdir';
  path: string;
}

export interface UserInstruction extends InstructionBase {
  kind: 'user';
  user: string;
}

export interface ExposeInstruction extends InstructionBase {
  kind: 'expose';
  /** Sorted, unexpanded; after expansion each entry is one port spec. */
  ports: string[];
}

export interface VolumeInstruction extends InstructionBase {
  kind: 'volume';
  volumes: string[];
}

export interface ShellInstruction extends InstructionBase {
  kind: 'shell';
  shell: string[];
}

export interface StopsignalInstruction extends InstructionBase {
  kind: 'stopsignal';
  signal: string;
}

/** Durations in nanoseconds; 0 means "not set" (the runtime default applies). */
export interface HealthConfig {
  /** `["NONE"]`, `["CMD", ...argv]` or `["CMD-SHELL", cmdline]`. */
  test: string[];
  interval: number;
  timeout: number;
  startPeriod: number;
  startInterval: number;
  retries: number;
}

/** What Docker uses for the fields left at 0. */
export const HEALTHCHECK_DEFAULTS = {
  interval: 30e9,
  timeout: 30e9,
  startPeriod: 0,
  startInterval: 5e9,
  retries: 3,
} as const;

/** The health config with Docker's defaults filled in for unset (0) fields. */
export function effectiveHealthcheck(h: HealthConfig): HealthConfig {
  return {
    test: h.test,
    interval: h.interval || HEALTHCHECK_DEFAULTS.interval,
    timeout: h.timeout || HEALTHCHECK_DEFAULTS.timeout,
    startPeriod: h.startPeriod || HEALTHCHECK_DEFAULTS.startPeriod,
    startInterval: h.startInterval || HEALTHCHECK_DEFAULTS.startInterval,
    retries: h.retries || HEALTHCHECK_DEFAULTS.retries,
  };
}

export interface HealthcheckInstruction extends InstructionBase {
  kind: 'healthcheck';
  health: HealthConfig;
}

export interface OnbuildInstruction extends InstructionBase {
  kind: 'onbuild';
  /** The trigger text stored in the image config (`RUN echo hi`, heredocs appended). */
  expression: string;
}

export interface MaintainerInstruction extends InstructionBase {
  kind: 'maintainer';
  maintainer: string;
}

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CmdInstruction
  | EntrypointInstruction
  | CopyInstruction
  | AddInstruction
  | EnvInstruction
  | ArgInstruction
  | LabelInstruction
  | WorkdirInstruction
  | UserInstruction
  | ExposeInstruction
  | VolumeInstruction
  | ShellInstruction
  | StopsignalInstruction
  | HealthcheckInstruction
  | OnbuildInstruction
  | MaintainerInstruction;

/** Every instruction except FROM (what a stage holds). */
export type Command = Exclude<Instruction, FromInstruction>;

export interface Stage {
  /** 0-based position among the stages. */
  index: number;
  /** Lower-case `AS` name, '' when unnamed. */
  name: string;
  /** Unexpanded base (image, earlier stage name, or `scratch`). */
  baseName: string;
  /** Unexpanded `--platform`, '' when absent. */
  platform: string;
  from: FromInstruction;
  instructions: Command[];
  /** From a `# name description` comment above FROM. */
  docComment: string;
}

export interface ParsedDockerfile {
  stages: Stage[];
  /** ARGs before the first FROM (usable in FROM lines only). */
  globalArgs: ArgInstruction[];
}

export interface ParseInstructionsOptions {
  /** Escape token for the static checks; taken from the ParseResult when given one. */
  escapeToken?: string;
}

const EMPTY_ENV = (): undefined => undefined;

function errAtLeastOneArgument(cmd: string): Error {
  return new Error(`${cmd} requires at least one argument`);
}
function errExactlyOneArgument(cmd: string): Error {
  return new Error(`${cmd} requires exactly one argument`);
}
function errNoDestinationArgument(cmd: string): Error {
  return new Error(`${cmd} requires at least two arguments, but only one was provided. Destination could not be determined`);
}
function errBlankCommandNames(cmd: string): Error {
  return new Error(`${cmd} names can not be blank`);
}

function docComment(comments: readonly string[], name: string): string {
  if (name === '') return '';
  for (const line of comments) {
    if (line.startsWith(name + ' ')) return line.slice(name.length + 1);
  }
  return '';
}

function handleJSONArgs(args: string[], json: boolean): string[] {
  if (args.length === 0) return [];
  return json ? [...args] : [args.join(' ')];
}

function parseKvps(args: string[], cmd: string): KeyValuePair[] {
  if (args.length === 0) throw errAtLeastOneArgument(cmd);
  if (args.length % 3 !== 0) throw new Error(`Bad input to ${cmd}, too many arguments`);
  const out: KeyValuePair[] = [];
  for (let i = 0; i < args.length; i += 3) {
    if (args[i]!.length === 0) throw errBlankCommandNames(cmd);
    out.push({ key: args[i]!, value: args[i + 1]!, noDelim: args[i + 2] === '' });
  }
  return out;
}

/** `--interval` etc.: '' → 0, else a Go duration of at least 1ms (or exactly 0). */
function parseOptInterval(name: string, value: string): number {
  if (value === '') return 0;
  const d = parseGoDuration(value);
  if (d === 0) return 0;
  if (d < 1e6) throw new Error(`Interval ${goQuote(name)} cannot be less than 1ms`);
  return d;
}

function parseRetries(value: string): number {
  if (value === '') return 0;
  if (!/^[+-]?[0-9]+$/.test(value)) throw new Error(`strconv.ParseInt: parsing ${goQuote(value)}: invalid syntax`);
  const n = Number(value);
  if (n > 2147483647 || n < -2147483648) throw new Error(`strconv.ParseInt: parsing ${goQuote(value)}: value out of range`);
  if (n < 0) throw new Error(`--retries cannot be negative (${n})`);
  return n;
}

const VALID_STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

class InstructionParser {
  private readonly lexer: ShellLexer;

  constructor(escapeToken: string) {
    this.lexer = new ShellLexer({ escapeToken });
  }

  parse(node: Node): Instruction {
    try {
      return this.parseNode(node);
    } catch (err) {
      if (err instanceof DockerfileParseError) throw err;
      throw new DockerfileParseError(node.startLine, (err as Error).message, node.endLine);
    }
  }

  private base(node: Node, keyword: string): InstructionBase {
    return {
      keyword,
      original: trimSpace(node.original),
      startLine: node.startLine,
      endLine: node.endLine,
      flags: [...node.flags],
      comments: [...node.comments],
    };
  }

  private parseNode(node: Node): Instruction {
    const args = node.next;
    const flags = new FlagSet(node.flags);
    const kw = node.value.toUpperCase();
    const base = () => this.base(node, kw);

    switch (node.value) {
      case 'env':
        flags.parse();
        return { kind: 'env', ...base(), pairs: parseKvps(args, 'ENV') };

      case 'label':
        flags.parse();
        return { kind: 'label', ...base(), labels: parseKvps(args, 'LABEL') };

      case 'maintainer':
        if (args.length !== 1) throw errExactlyOneArgument('MAINTAINER');
        flags.parse();
        return { kind: 'maintainer', ...base(), maintainer: args[0]! };

      case 'add':
      case 'copy':
        return this.parseCopyOrAdd(node, flags, base());

      case 'from': {
        let stageName = '';
        if (args.length === 3 && args[1]!.toLowerCase() === 'as') {
          stageName = args[2]!.toLowerCase();
          if (!VALID_STAGE_NAME.test(stageName)) {
            throw new Error(`invalid name for build stage: ${goQuote(args[2]!)}, name can't start with a number or contain symbols`);
          }
        } else if (args.length !== 1) {
          throw new Error('FROM requires either one or three arguments');
        }
        flags.addString('platform').parse();
        return { kind: 'from', ...base(), baseName: args[0]!, stageName, platform: flags.string('platform') };
      }

      case 'onbuild':
        return this.parseOnbuild(node, flags, base());

      case 'workdir':
        if (args.length !== 1) throw errExactlyOneArgument('WORKDIR');
        flags.parse();
        return { kind: 'workdir', ...base(), path: args[0]! };

      case 'run':
        return this.parseRun(node, flags, base());

      case 'cmd':
        flags.parse();
        return { kind: 'cmd', ...base(), ...this.cmdLine(node) };

      case 'entrypoint':
        flags.parse();
        return { kind: 'entrypoint', ...base(), ...this.cmdLine(node) };

      case 'healthcheck':
        return { kind: 'healthcheck', ...base(), health: this.parseHealthcheck(node, flags) };

      case 'expose':
        if (args.length === 0) throw errAtLeastOneArgument('EXPOSE');
        flags.parse();
        return { kind: 'expose', ...base(), ports: [...args].sort() };

      case 'user':
        if (args.length !== 1) throw errExactlyOneArgument('USER');
        flags.parse();
        return { kind: 'user', ...base(), user: args[0]! };

      case 'volume': {
        if (args.length === 0) throw errAtLeastOneArgument('VOLUME');
        flags.parse();
        const volumes = args.map((v) => {
          const t = trimSpace(v);
          if (t === '') throw new Error('VOLUME specified can not be an empty string');
          return t;
        });
        return { kind: 'volume', ...base(), volumes };
      }

      case 'stopsignal':
        if (args.length !== 1) throw errExactlyOneArgument('STOPSIGNAL');
        flags.parse();
        return { kind: 'stopsignal', ...base(), signal: args[0]! };

      case 'arg': {
        if (args.length < 1) throw errAtLeastOneArgument('ARG');
        flags.parse();
        const defs = args.map((arg): ArgDefinition => {
          const eq = arg.indexOf('=');
          if (eq < 0) return { key: arg, docComment: docComment(node.comments, arg) };
          const key = arg.slice(0, eq);
          if (key === '') throw errBlankCommandNames('ARG');
          return { key, value: arg.slice(eq + 1), docComment: docComment(node.comments, key) };
        });
        return { kind: 'arg', ...base(), args: defs };
      }

      case 'shell': {
        flags.parse();
        const shell = handleJSONArgs(args, node.json);
        if (shell.length === 0) throw errAtLeastOneArgument('SHELL');
        if (!node.json) throw new Error('SHELL requires the arguments to be in JSON form');
        return { kind: 'shell', ...base(), shell };
      }
    }

    const written = trimSpace(node.original).split(/[\t\v\f\r ]+/, 1)[0] ?? node.value;
    throw new Error(withSuggestion(`unknown instruction: ${written}`, written, INSTRUCTION_KEYWORDS, false));
  }

  private cmdLine(node: Node): ShellDependentCmdLine {
    return {
      cmdLine: handleJSONArgs(node.next, node.json),
      prependShell: !node.json,
      files: node.heredocs.map((h) => ({ name: h.name, data: h.content, chomp: h.chomp })),
    };
  }

  private parseRun(node: Node, flags: FlagSet, base: InstructionBase): RunInstruction {
    flags.addStrings('mount').addString('network', 'default').addString('security', 'sandbox').parse();
    const mountSpecs = flags.strings('mount');
    for (const spec of mountSpecs) checkMountSpecStatic(spec);
    const mounts = mountSpecs.some((s) => s.includes('$')) ? undefined : this.staticMounts(mountSpecs);
    const network = flags.string('network');
    if (network !== 'default' && network !== 'none' && network !== 'host') {
      throw new Error(`invalid network mode ${goQuote(network)}`);
    }
    const security = flags.string('security');
    if (security !== 'sandbox' && security !== 'insecure') {
      throw new Error(`security ${goQuote(security)} is not valid`);
    }
    return {
      kind: 'run',
      ...base,
      ...this.cmdLine(node),
      mountSpecs,
      mounts,
      network,
      security,
      flagsUsed: flags.used(),
    };
  }

  /**
   * Without variables, expansion only removes quotes and escapes, so the
   * mounts can be typed now. An invalid value is left for expandInstruction
   * to report: like BuildKit, only a stage that is built fails on it.
   */
  private staticMounts(specs: string[]): RunMount[] | undefined {
    try {
      return resolveMounts(specs.map((s) => parseMountSpec(s, (v) => this.lexer.processWord(v, EMPTY_ENV))));
    } catch {
      return undefined;
    }
  }

  private parseCopyOrAdd(node: Node, flags: FlagSet, base: InstructionBase): CopyInstruction | AddInstruction {
    const isAdd = node.value === 'add';
    const cmd = isAdd ? 'ADD' : 'COPY';
    if (node.next.length < 2) throw errNoDestinationArgument(cmd);
    flags.addString('chown').addString('chmod').addBool('link').addStrings('exclude');
    if (isAdd) flags.addBool('keep-git-dir').addString('checksum').addBool('unpack');
    else flags.addString('from').addBool('parents');
    flags.parse();

    const dest = node.next[node.next.length - 1]!;
    if (mustParseHeredoc(dest)) throw new Error(`${cmd} cannot accept a heredoc as a destination`);
    const byName = new Map(node.heredocs.map((h) => [h.name, h]));
    const sources: string[] = [];
    const contents: SourceContent[] = [];
    for (const src of node.next.slice(0, -1)) {
      const doc = mustParseHeredoc(src);
      if (!doc) {
        sources.push(src);
        continue;
      }
      let data = byName.get(doc.name)?.content ?? '';
      if (doc.chomp) data = chompHeredocContent(data);
      contents.push({ path: doc.name, data, expand: doc.expand });
    }
    const common = {
      ...base,
      sources,
      contents,
      dest,
      chown: flags.string('chown'),
      chmod: flags.string('chmod'),
      link: flags.bool('link'),
      exclude: flags.strings('exclude'),
    };
    if (isAdd) {
      const add: AddInstruction = { kind: 'add', ...common, checksum: flags.string('checksum') };
      if (flags.isUsed('keep-git-dir')) add.keepGitDir = flags.bool('keep-git-dir');
      if (flags.isUsed('unpack')) add.unpack = flags.bool('unpack');
      return add;
    }
    const from = flags.string('from');
    if (from !== '' && this.lexer.processWord(from, EMPTY_ENV) !== from) {
      throw new Error('variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround');
    }
    return { kind: 'copy', ...common, from, parents: flags.bool('parents') };
  }

  private parseOnbuild(node: Node, flags: FlagSet, base: InstructionBase): OnbuildInstruction {
    const sub = node.subcommand;
    if (!sub) throw errAtLeastOneArgument('ONBUILD');
    flags.parse();
    const trigger = sub.value.toUpperCase();
    if (trigger === 'ONBUILD') throw new Error('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
    if (trigger === 'MAINTAINER' || trigger === 'FROM') throw new Error(`${trigger} isn't allowed as an ONBUILD trigger`);
    let expression = node.original.replace(/^[\t\n\f\r ]*ONBUILD[\t\n\f\r ]*/i, '');
    for (const h of node.heredocs) expression += '\n' + h.content + h.name;
    return { kind: 'onbuild', ...base, expression };
  }

  private parseHealthcheck(node: Node, flags: FlagSet): HealthConfig {
    const args = node.next;
    if (args.length === 0) throw errAtLeastOneArgument('HEALTHCHECK');
    const typ = args[0]!.toUpperCase();
    const rest = args.slice(1);
    flags.addString('interval').addString('timeout').addString('start-period').addString('start-interval').addString('retries');
    if (typ === 'NONE') {
      if (rest.length !== 0) throw new Error('HEALTHCHECK NONE takes no arguments');
      flags.parse();
      return { test: ['NONE'], interval: 0, timeout: 0, startPeriod: 0, startInterval: 0, retries: 0 };
    }
    flags.parse();
    if (typ !== 'CMD') throw new Error(`Unknown type ${goQuote(typ)} in HEALTHCHECK (try CMD)`);
    const cmd = handleJSONArgs(rest, node.json);
    if (cmd.length === 0) throw new Error('Missing command after HEALTHCHECK CMD');
    return {
      test: [node.json ? 'CMD' : 'CMD-SHELL', ...cmd],
      interval: parseOptInterval('interval', flags.string('interval')),
      timeout: parseOptInterval('timeout', flags.string('timeout')),
      startPeriod: parseOptInterval('start-period', flags.string('start-period')),
      startInterval: parseOptInterval('start-interval', flags.string('start-interval')),
      retries: parseRetries(flags.string('retries')),
    };
  }
}

/** Types one instruction node (FROM included). Throws DockerfileParseError. */
export function parseInstruction(node: Node, options: ParseInstructionsOptions = {}): Instruction {
  return new InstructionParser(options.escapeToken ?? '\\').parse(node);
}

function isParseResult(x: ParseResult | Node): x is ParseResult {
  return (x as ParseResult).ast !== undefined;
}

/**
 * Splits a parsed Dockerfile into stages of typed instructions. ARGs before
 * the first FROM become global args; any other instruction there is an error.
 */
export function parseInstructions(input: ParseResult | Node, options: ParseInstructionsOptions = {}): ParsedDockerfile {
  const ast = isParseResult(input) ? input.ast : input;
  const escapeToken = options.escapeToken ?? (isParseResult(input) ? input.directives.escape : '\\');
  const parser = new InstructionParser(escapeToken);
  const stages: Stage[] = [];
  const globalArgs: ArgInstruction[] = [];
  for (const node of ast.children) {
    const instr = parser.parse(node);
    if (instr.kind === 'from') {
      stages.push({
        index: stages.length,
        name: instr.stageName,
        baseName: instr.baseName,
        platform: instr.platform,
        from: instr,
        instructions: [],
        docComment: docComment(instr.comments, instr.stageName),
      });
      continue;
    }
    const stage = stages[stages.length - 1];
    if (!stage) {
      if (instr.kind === 'arg') {
        globalArgs.push(instr);
        continue;
      }
      throw new DockerfileParseError(node.startLine, 'no build stage in current context', node.endLine);
    }
    stage.instructions.push(instr);
  }
  return { stages, globalArgs };
}

/**
 * Parses an ONBUILD trigger from a base image's config (one instruction,
 * default escape). Its lines are set to `at` (the child's FROM), as BuildKit does.
 */
export function parseOnbuildTrigger(trigger: string, at?: { startLine: number; endLine: number }): Command {
  const { ast } = parse(trigger);
  if (ast.children.length !== 1) {
    throw new DockerfileParseError(at?.startLine ?? 1, 'onbuild trigger should be a single expression', at?.endLine);
  }
  const node = ast.children[0]!;
  if (at) {
    node.startLine = at.startLine;
    node.endLine = at.endLine;
  }
  const instr = parseInstruction(node);
  if (instr.kind === 'from') {
    throw new DockerfileParseError(node.startLine, 'FROM isn\'t allowed as an ONBUILD trigger', node.endLine);
  }
  return instr;
}
