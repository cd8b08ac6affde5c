// A command from its declaration: flags parsed (usage errors name the flag), the count of positional
// arguments checked against what the command takes, then the command's own work.
import type { GlobalOptions } from './globals';
import type { Command } from './main';
import { parseCommandArgs, type Options, type ParsedArgs } from './parse';
import { UsageError } from './errors';

/** Flags as parseArgs takes them and as `--help` lists them. */
type CommandOptions = Options & NonNullable<Command['options']>;

export interface CommandSpec<O extends CommandOptions> {
  /** As users type it, for usage errors: "image prune". */
  name: string;
  summary: string;
  usage: string;
  options: O;
  /** How many positional arguments the command takes (default any) and the error otherwise: `"NAME" ERROR`. */
  positionals?: { min?: number; max?: number; error: string };
}

export function defineCommand<O extends CommandOptions>(spec: CommandSpec<O>, run: (args: ParsedArgs<O>, globals: GlobalOptions) => Promise<number>): Command {
  const { name, summary, usage, options, positionals: count } = spec;
  return {
    summary,
    usage,
    options,
    async run(args, globals) {
      const parsed = parseCommandArgs(args, options, usage);
      const n = parsed.positionals.length;
      if (count && (n < (count.min ?? 0) || n > (count.max ?? Infinity))) throw new UsageError(`"${name}" ${count.error}\n${usage}`);
      return run(parsed, globals);
    },
  };
}
