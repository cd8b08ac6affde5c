// ARG scoping with BuildKit's rules: global ARGs (before the first FROM) are visible only to FROM
// unless redeclared in a stage; a stage ARG takes the --build-arg value, else its default (expanded
// with what is visible), else the global value; ENV of the same name wins over an ARG.
import { formatPlatform, hostPlatform, normalizePlatform, type Platform } from '@tsbuild/storage';
import { ShellLexer, type ArgInstruction } from '../dockerfile';

/** Proxy args are usable without declaration and kept out of history and cache keys. */
export const PROXY_ARGS = new Set(
  ['HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'NO_PROXY', 'ALL_PROXY'].flatMap((n) => [n, n.toLowerCase()]),
);

/**
 * BuildKit's automatic platform args: TARGET* for the platform being built (the same in every stage,
 * FROM --platform=$BUILDPLATFORM ones too), BUILD* for the host that builds.
 */
export function platformArgs(target: Platform = hostPlatform(), build: Platform = hostPlatform()): Map<string, string> {
  const args = new Map<string, string>();
  for (const [prefix, p] of [['TARGET', normalizePlatform(target)], ['BUILD', normalizePlatform(build)]] as const) {
    args.set(`${prefix}PLATFORM`, formatPlatform(p));
    args.set(`${prefix}OS`, p.os);
    args.set(`${prefix}ARCH`, p.architecture);
    args.set(`${prefix}VARIANT`, p.variant ?? '');
  }
  return args;
}

export class ArgScope {
  /** Declared args with a value, in declaration order. */
  readonly values = new Map<string, string>();
  /** Every declared name (with or without a value). */
  readonly declared = new Set<string>();

  constructor(
    private readonly buildArgs: ReadonlyMap<string, string>,
    private readonly globals: ReadonlyMap<string, string>,
    private readonly used: Set<string>,
  ) {}

  /** Applies an ARG instruction. `envLookup` is the environment visible to its defaults. */
  declare(instr: ArgInstruction, lexer: ShellLexer, visible: (name: string) => string | undefined): void {
    for (const arg of instr.args) {
      this.declared.add(arg.key);
      let value: string | undefined;
      if (this.buildArgs.has(arg.key)) {
        value = this.buildArgs.get(arg.key);
        this.used.add(arg.key);
      } else if (arg.value !== undefined) {
        value = lexer.processWord(arg.value, (name) => (name === arg.key ? this.values.get(name) : visible(name)));
      } else if (this.globals.has(arg.key)) {
        value = this.globals.get(arg.key);
      }
      if (value !== undefined) this.values.set(arg.key, value);
      else this.values.delete(arg.key);
    }
  }
}

/**
 * Evaluates the global ARGs (those before the first FROM): their values are visible to FROM lines
 * and are the defaults of same-named stage ARGs. Platform args are always there.
 */
export function evaluateGlobalArgs(
  globalArgs: ArgInstruction[],
  buildArgs: ReadonlyMap<string, string>,
  lexer: ShellLexer,
  used: Set<string>,
  target?: Platform,
): Map<string, string> {
  const platform = platformArgs(target);
  const scope = new ArgScope(buildArgs, platform, used);
  for (const instr of globalArgs) {
    scope.declare(instr, lexer, (name) => scope.values.get(name) ?? platform.get(name));
  }
  const all = new Map(platform);
  for (const [k, v] of scope.values) all.set(k, v);
  return all;
}
