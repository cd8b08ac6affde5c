// A command from its declaration: flags parsed (usage errors name the flag), the count of positional
// arguments checked against what the command takes, then the command's own work.
import type { GlobalOptions } from './globals';
import type { Command } from './main';
import { parseCommandArgs, splitAtFirstPositional, type Options, type ParsedArgs } from './parse';
import { UsageError } from './errors';

/** Flags as parseArgs takes them and as `--help` lists them. */
type CommandOptions = Options & NonNullable<Command['options']>;

export interface CommandSpec<O extends CommandOptions> {
  /** As users type it, for usage errors: "image prune". */
  name: string;
  summary: string;
  /** A function when the text is costly to build (the sink list loads the transports): called when shown. */
  usage: string | (() => string);
  options: O;
  /** How many positional arguments the command takes (default any) and the error otherwise: `"NAME" ERROR`. */
  positionals?: { min?: number; max?: number; error: string };
  /** Rewrites the arguments before parsing (podman's bare boolean flags: `--tls-verify`). */
  normalize?: (args: string[]) => string[];
}

export function defineCommand<O extends CommandOptions>(spec: CommandSpec<O>, run: (args: ParsedArgs<O>, globals: GlobalOptions) => Promise<number>): Command {
  const { name, options, positionals: count } = spec;
  const usage = usageText(spec.usage);
  // Assigned onto the head, not spread: a spread would call the usage getter now.
  return Object.assign(commandHead(spec, usage), {
    async run(args: string[], globals: GlobalOptions) {
      const parsed = parseCommandArgs(spec.normalize ? spec.normalize(args) : args, options, usage);
      const n = parsed.positionals.length;
      if (count && (n < (count.min ?? 0) || n > (count.max ?? Infinity))) throw new UsageError(`"${name}" ${count.error}\n${usage()}`);
      return run(parsed, globals);
    },
  });
}

/**
 * `run IMAGE CMD…`, `exec CONTAINER CMD…`: the command's flags stop at the first positional (the
 * target); what follows it is the container's command (`rest`), flags included.
 */
export function defineTargetCommand<O extends CommandOptions>(
  spec: Omit<CommandSpec<O>, 'positionals'> & { target: { error: string; needsCommand?: boolean } },
  run: (args: { values: ParsedArgs<O>['values']; target: string; rest: string[] }, globals: GlobalOptions) => Promise<number>,
): Command {
  const { name, options, target } = spec;
  const usage = usageText(spec.usage);
  return Object.assign(commandHead(spec, usage), {
    ownArgs: (args: string[]) => splitAtFirstPositional(args, options).options,
    async run(args: string[], globals: GlobalOptions) {
      const { options: own, first, rest } = splitAtFirstPositional(args, options);
      const { values, positionals } = parseCommandArgs(own, options, usage);
      if (positionals.length > 0 || first === undefined || (target.needsCommand && rest.length === 0)) throw new UsageError(`"${name}" ${target.error}\n${usage()}`);
      return run({ values, target: first, rest }, globals);
    },
  });
}

/** What `--help` and the command list read: the usage text is built only when shown. */
function commandHead(spec: Pick<CommandSpec<CommandOptions>, 'summary' | 'options'>, usage: () => string): Pick<Command, 'summary' | 'usage' | 'options'> {
  return {
    summary: spec.summary,
    get usage() {
      return usage();
    },
    options: spec.options,
  };
}

function usageText(usage: string | (() => string)): () => string {
  return typeof usage === 'function' ? usage : () => usage;
}
