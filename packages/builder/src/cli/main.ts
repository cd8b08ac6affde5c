// The tsbuild command line: global options, subcommand dispatch, one-line errors and exit codes.
import { parseArgs } from 'node:util';
import * as path from 'node:path';
import { asTsbuildError, runInUserNamespace } from '@tsbuild/storage';
import { UsageError, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE } from './errors';
import type { GlobalOptions } from './globals';
import { resolveGlobals, GLOBAL_USAGE } from './globals';
import { envForOwnCli } from './extra-ca-certs';

/** For bin/tsbuild.js: see extra-ca-certs.ts. */
export { takeMovedExtraCaCerts } from './extra-ca-certs';

export interface Command {
  summary: string;
  usage: string;
  /** The command's flags (node:util parseArgs options): every one must appear in `usage`. */
  options?: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;
  run(args: string[], globals: GlobalOptions): Promise<number>;
  /** The arguments that belong to tsbuild (for `run`, those before the image: the rest is the container's). */
  ownArgs?(args: string[]): string[];
}

type CommandLoader = () => Command;

// Loaded on demand so `tsbuild --help` and simple commands start fast.
const commands: Record<string, CommandLoader> = {};

export function registerCommand(name: string, loader: CommandLoader): void {
  commands[name] = loader;
}

/** Commands that exist for scripts or internal use but are not listed in the usage. */
const HIDDEN = new Set<string>();

export function hideCommand(name: string): void {
  HIDDEN.add(name);
}

function usage(): string {
  const lines = Object.keys(commands)
    .filter((name) => !HIDDEN.has(name))
    .sort()
    .map((name) => `  ${name.padEnd(10)} ${commands[name]!().summary}`);
  return [
    'Usage: tsbuild [GLOBAL OPTIONS] COMMAND [ARGS...]',
    '       tsbuild -t NAME[:TAG] [BUILD OPTIONS] CONTEXT     (shorthand for "tsbuild build")',
    '',
    'Daemonless container image builder: Dockerfile in, OCI image out.',
    '',
    'Commands:',
    ...lines,
    '',
    GLOBAL_USAGE,
    '',
    'Run "tsbuild COMMAND --help" for a command\'s options.',
  ].join('\n');
}

/** Splits global options (before the command) from the command and its arguments. */
function splitGlobals(argv: string[]): { globalArgs: string[]; command: string | undefined; rest: string[] } {
  const globalArgs: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i]!;
    if (arg === '--root' || arg === '--storage-driver') {
      globalArgs.push(arg, argv[i + 1] ?? '');
      i += 2;
    } else if (arg.startsWith('--root=') || arg.startsWith('--storage-driver=') || arg === '--debug') {
      globalArgs.push(arg);
      i += 1;
    } else {
      break;
    }
  }
  const first = argv[i];
  if (first !== undefined && commands[first]) return { globalArgs, command: first, rest: argv.slice(i + 1) };
  // `tsbuild -t app .`, `tsbuild .` and `tsbuild ./dir` are builds; a bare word is a command, so a
  // mistyped or docker-only command never starts a build of a directory that happens to share its name.
  if (first !== undefined && first !== '--help' && first !== '-h' && first !== '--version' && commands.build && looksLikeBuild(first)) {
    return { globalArgs, command: 'build', rest: argv.slice(i) };
  }
  return { globalArgs, command: first, rest: argv.slice(i + 1) };
}

/** A build shorthand starts with build flags or a path-like context (`.`, `..`, or containing `/`). */
function looksLikeBuild(first: string): boolean {
  return first.startsWith('-') || first === '.' || first === '..' || first.includes('/');
}

/** The known command closest to `word` (edit distance ≤ 2), for "did you mean". */
export function closest(word: string, names: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const name of names) {
    const d = editDistance(word, name);
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** `unknown command "X"`, with the closest command when there is one. */
export function unknownCommand(word: string, names: string[], scope = 'tsbuild'): UsageError {
  const hint = closest(word, names);
  return new UsageError(`unknown command "${word}" for "${scope}"${hint ? `; did you mean "${hint}"?` : ''}; see "${scope} --help"`);
}

/** Every registered command name (for suggestions and the docker-compatibility test). */
export function commandNames(): string[] {
  loadCommands();
  return Object.keys(commands);
}

/** The command registered under `name` (groups dispatch through this). */
export function lookupCommand(name: string): Command | undefined {
  loadCommands();
  return commands[name]?.();
}

export async function main(argv: string[]): Promise<number> {
  loadCommands();
  let debug = false;
  try {
    const { globalArgs, command, rest } = splitGlobals(argv);
    const { values } = parseArgs({
      args: globalArgs,
      options: {
        root: { type: 'string' },
        'storage-driver': { type: 'string' },
        debug: { type: 'boolean' },
      },
      strict: true,
    });
    debug = values.debug === true;
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(`${usage()}\n`);
      return command === undefined ? EXIT_USAGE : EXIT_OK;
    }
    if (command === '--version') {
      process.stdout.write(`tsbuild ${require('../../package.json').version}\n`);
      return EXIT_OK;
    }
    const loader = commands[command];
    if (!loader) throw unknownCommand(command, Object.keys(commands).filter((n) => !HIDDEN.has(n)));
    const cmd = loader();
    const own = cmd.ownArgs ? cmd.ownArgs(rest) : rest;
    if (own.includes('--help') || own.includes('-h')) {
      process.stdout.write(`${cmd.usage}\n`);
      return EXIT_OK;
    }
    const globals = resolveGlobals({ root: values.root, storageDriver: values['storage-driver'], debug });
    // An ordinary user: the same command again, as root of a user namespace (the rootless mode).
    if (typeof process.geteuid === 'function' && process.geteuid() !== 0) {
      return await runInUserNamespace({ file: process.execPath, args: [...process.execArgv, path.join(__dirname, '..', '..', 'bin', 'tsbuild.js'), ...argv], env: envForOwnCli() });
    }
    return await cmd.run(rest, globals);
  } catch (err) {
    return reportError(err, debug);
  }
}

/**
 * Prints an error in one line. A TsbuildError (or a system error the machine explains, such as ENOSPC)
 * is the input's or the environment's fault: its own exit code, 1 by default. Anything else is a bug: 125.
 */
export function reportError(err: unknown, debug: boolean): number {
  if (err instanceof TypeError && 'code' in err && String((err as { code: unknown }).code).startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`tsbuild: ${(err as Error).message}\n`);
    return EXIT_USAGE;
  }
  const known = asTsbuildError(err);
  if (known) {
    process.stderr.write(`tsbuild: ${known.message}\n`);
    if (debug && known.stack) process.stderr.write(`${known.stack}\n`);
    return known.exitCode;
  }
  const e = err as Error | undefined;
  process.stderr.write(`tsbuild: internal error: ${e && e.message ? e.message : String(err)}\n`);
  if (debug && e && e.stack) process.stderr.write(`${e.stack}\n`);
  return EXIT_INTERNAL;
}

let loaded = false;
function loadCommands(): void {
  if (loaded) return;
  loaded = true;
  require('./commands');
}
