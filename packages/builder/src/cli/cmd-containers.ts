// Detached containers and what docker users do with them: run -d (a supervisor process that owns the
// container and writes its output to a log file), logs, stop, kill, wait, exec.
import * as fs from 'node:fs';
// Required where used, not here: loading it is part of every command's start (README, Performance).
import type * as childProcess from 'node:child_process';
import { Containers, execInContainer, type ContainerRecord, type StartOptions } from '@tsbuild/storage';
import { defineCommand, defineTargetCommand } from './command';
import type { Command } from './main';
import { CommandError, UsageError } from './errors';
import { forEachRef } from './parse';
import { withStore } from './store';
import type { GlobalOptions } from './globals';
import { attachTerminal } from './terminal';
import { envForOwnCli } from './extra-ca-certs';

const CLI_ENTRY = require.resolve('../../bin/tsbuild.js');
const SUPERVISOR = '__supervise';

interface DetachedStart {
  id: string;
  process: { args: string[]; env: string[]; cwd: string; user: string };
  options: StartOptions;
  remove: boolean;
}

/**
 * `run -d`: a supervisor in its own session owns the container (its death kills the container, as
 * with an attached run) and appends the container's output to the log file. Resolves once the
 * container has started, or rejects with why it could not.
 */
export async function startDetached(globals: GlobalOptions, containers: Containers, start: DetachedStart): Promise<void> {
  const log = fs.openSync(containers.logPath(start.id), 'a', 0o600);
  const child = (require('node:child_process') as typeof childProcess).spawn(
    process.execPath,
    [CLI_ENTRY, '--root', globals.root, ...(globals.storageDriver ? ['--storage-driver', globals.storageDriver] : []), SUPERVISOR, JSON.stringify(start)],
    { detached: true, stdio: ['ignore', log, log, 'pipe'], env: envForOwnCli() },
  );
  fs.closeSync(log);
  const report = child.stdio[3] as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of report) text += chunk.toString();
  if (text.startsWith('started')) {
    child.unref(); // the supervisor goes on alone
    return;
  }
  const failed = /^failed (\d+) (.*)$/s.exec(text.trim());
  if (failed) throw new CommandError(failed[2]!, Number(failed[1]));
  await new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', () => resolve())));
  throw new CommandError(`the container's supervisor exited (${child.exitCode ?? child.signalCode}) before it started`, 125);
}

/** The hidden supervisor command a detached run re-executes. */
export const superviseCommand: Command = {
  summary: 'internal: supervises a detached container',
  usage: `Usage: tsbuild ${SUPERVISOR} JSON (internal: the supervisor run -d starts; it does not take flags)`,
  options: {},
  async run(args, globals) {
    const start = JSON.parse(args[0] ?? '{}') as DetachedStart;
    // fd 3 is the pipe the starting `run -d` reads: one line, written synchronously before any exit.
    const report = (line: string) => {
      fs.writeSync(3, `${line.replace(/\n/g, ' ')}\n`);
      fs.closeSync(3);
    };
    process.on('SIGHUP', () => {}); // a closed terminal does not stop a detached container
    return withStore(globals, async (store) => {
      const containers = new Containers(store);
      const record = containers.find(start.id);
      const devnull = fs.openSync('/dev/null', 'r');
      let started;
      try {
        started = await containers.start(record, start.process, { ...start.options, stdio: [devnull, 1, 2] });
      } catch (err) {
        const code = (err as { exitCode?: unknown }).exitCode;
        // Removed before the report: `run -d --rm` returns once nothing of the container is left.
        if (start.remove) await containers.remove(record.id, { force: true }).catch(() => {});
        report(`failed ${typeof code === 'number' ? code : 125} ${(err as Error).message}`);
        return 125;
      } finally {
        fs.closeSync(devnull);
      }
      report(`started ${started.container.pid}`);
      const exit = await started.finished;
      if (start.remove && !exit.removed) await containers.remove(record.id, { force: true }).catch(() => {});
      return exit.exitCode;
    });
  },
};

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls until the container is no longer running; its record then carries the exit code. */
async function waitExited(containers: Containers, ref: string, timeoutMs = Infinity): Promise<ContainerRecord | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let c: ContainerRecord;
    try {
      c = containers.find(ref);
    } catch {
      return undefined; // removed (--rm)
    }
    if (c.state !== 'running') return c;
    if (Date.now() >= deadline) return c;
    await sleep(50);
  }
}

function signalOf(value: string): NodeJS.Signals {
  const name = /^\d+$/.test(value) ? undefined : (value.toUpperCase().startsWith('SIG') ? value.toUpperCase() : `SIG${value.toUpperCase()}`);
  if (name && name in (require('node:os') as typeof import('node:os')).constants.signals) return name as NodeJS.Signals;
  const byNumber = Object.entries((require('node:os') as typeof import('node:os')).constants.signals).find(([, n]) => String(n) === value);
  if (byNumber) return byNumber[0] as NodeJS.Signals;
  throw new UsageError(`invalid signal "${value}"`);
}

function signalContainer(c: ContainerRecord, signal: NodeJS.Signals): void {
  if (c.state !== 'running' || !c.pid) throw new CommandError(`container ${c.name} is not running`);
  try {
    process.kill(c.pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

const LOGS_USAGE = `Usage: tsbuild logs [OPTIONS] CONTAINER

Print the output of a detached container (run -d).

Options:
  -f, --follow      keep printing until the container exits
  -n, --tail N      only the last N lines`;

const LOGS_OPTIONS = { follow: { type: 'boolean', short: 'f' }, tail: { type: 'string', short: 'n' } } as const;

export const logsCommand = defineCommand(
  { name: 'logs', summary: 'Print the output of a detached container', usage: LOGS_USAGE, options: LOGS_OPTIONS, positionals: { min: 1, max: 1, error: 'needs exactly one container' } },
  async ({ values, positionals }, globals) => {
    return withStore(globals, async (store) => {
      const containers = new Containers(store);
      const c = containers.find(positionals[0]!);
      if (!c.detached) throw new CommandError(`container ${c.name} was not started with -d: its output went to the terminal that ran it`);
      const file = containers.logPath(c.id);
      let offset = 0;
      const text = fs.existsSync(file) ? fs.readFileSync(file) : Buffer.alloc(0);
      let out = text;
      if (values.tail !== undefined && values.tail !== 'all') {
        const n = Number(values.tail);
        if (!Number.isInteger(n) || n < 0) throw new UsageError(`invalid --tail "${values.tail}": a number of lines or all`);
        const lines = text.toString('latin1').split('\n');
        if (lines[lines.length - 1] === '') lines.pop();
        const kept = n === 0 ? [] : lines.slice(-n);
        out = Buffer.from(kept.length ? `${kept.join('\n')}\n` : '', 'latin1');
      }
      process.stdout.write(out);
      offset = text.length;
      if (!values.follow) return 0;
      for (;;) {
        const running = (await waitExited(containers, c.id, 100))?.state === 'running';
        const size = fs.existsSync(file) ? fs.statSync(file).size : offset;
        if (size > offset) {
          const fd = fs.openSync(file, 'r');
          const buf = Buffer.alloc(size - offset);
          fs.readSync(fd, buf, 0, buf.length, offset);
          fs.closeSync(fd);
          process.stdout.write(buf);
          offset = size;
        }
        if (!running) return 0;
      }
    });
  },
);

const STOP_USAGE = `Usage: tsbuild stop [OPTIONS] CONTAINER [CONTAINER...]

Stop running containers: SIGTERM, then SIGKILL after the grace period.

Options:
  -t, --time SECONDS   grace period before SIGKILL (default 10)
  -s, --signal SIG     the signal sent first (default SIGTERM)`;

const STOP_OPTIONS = { time: { type: 'string', short: 't' }, signal: { type: 'string', short: 's' } } as const;

export const stopCommand = defineCommand(
  { name: 'stop', summary: 'Stop running containers', usage: STOP_USAGE, options: STOP_OPTIONS, positionals: { min: 1, error: 'needs at least one container' } },
  async ({ values, positionals }, globals) => {
    const grace = values.time === undefined ? 10 : Number(values.time);
    if (!Number.isFinite(grace) || grace < 0) throw new UsageError(`invalid --time "${values.time}": seconds`);
    const first = signalOf(values.signal ?? 'SIGTERM');
    return withStore(globals, async (store) => {
      const containers = new Containers(store);
      return forEachRef(positionals, async (ref) => {
        const c = containers.find(ref);
        if (c.state === 'running') {
          signalContainer(c, first);
          const after = await waitExited(containers, c.id, grace * 1000);
          if (after?.state === 'running') signalContainer(after, 'SIGKILL');
          await waitExited(containers, c.id, 10_000);
        }
        process.stdout.write(`${ref}\n`);
      }, true);
    });
  },
);

const KILL_USAGE = `Usage: tsbuild kill [OPTIONS] CONTAINER [CONTAINER...]

Send a signal to running containers.

Options:
  -s, --signal SIG   the signal (default SIGKILL)`;

const KILL_OPTIONS = { signal: { type: 'string', short: 's' } } as const;

export const killCommand = defineCommand(
  { name: 'kill', summary: 'Send a signal to running containers', usage: KILL_USAGE, options: KILL_OPTIONS, positionals: { min: 1, error: 'needs at least one container' } },
  async ({ values, positionals }, globals) => {
    const signal = signalOf(values.signal ?? 'SIGKILL');
    return withStore(globals, async (store) => {
      const containers = new Containers(store);
      return forEachRef(positionals, (ref) => {
        signalContainer(containers.find(ref), signal);
        process.stdout.write(`${ref}\n`);
      });
    });
  },
);

export const waitCommand = defineCommand(
  { name: 'wait', summary: 'Wait for containers to stop and print their exit codes', usage: 'Usage: tsbuild wait CONTAINER [CONTAINER...]\n\nBlock until the containers stop, then print each exit code.', options: {}, positionals: { min: 1, error: 'needs at least one container' } },
  async ({ positionals }, globals) => {
    return withStore(globals, async (store) => {
      const containers = new Containers(store);
      for (const ref of positionals) containers.find(ref); // unknown names fail before any waiting
      for (const ref of positionals) {
        const c = await waitExited(containers, ref);
        process.stdout.write(`${c?.exitCode ?? 0}\n`);
      }
      return 0;
    });
  },
);

const EXEC_USAGE = `Usage: tsbuild exec [OPTIONS] CONTAINER COMMAND [ARG...]

Run a command in a running container (its namespaces and cgroups).

Options:
  -i, --interactive        keep stdin open
  -t, --tty                allocate a terminal
  -e, --env K=V            set an environment variable (repeatable)
  -w, --workdir DIR        working directory inside the container
  -u, --user USER[:GROUP]  user name or uid (default: the container's user)`;

const EXEC_OPTIONS = {
  interactive: { type: 'boolean', short: 'i' },
  tty: { type: 'boolean', short: 't' },
  env: { type: 'string', short: 'e', multiple: true },
  workdir: { type: 'string', short: 'w' },
  user: { type: 'string', short: 'u' },
} as const;

export const execCommand = defineTargetCommand(
  { name: 'exec', summary: 'Run a command in a running container', usage: EXEC_USAGE, options: EXEC_OPTIONS, target: { error: 'needs a container and a command', needsCommand: true } },
  // Options stop at the container name: the rest is the command.
  async ({ values, target: container, rest: command }, globals) => {
    return withStore(globals, async (store) => {
      const c = new Containers(store).find(container);
      if (c.state !== 'running' || !c.pid) throw new CommandError(`container ${c.name} is not running`);
      const devnull = fs.openSync('/dev/null', 'r+');
      try {
        const stdin = values.interactive ? 0 : devnull;
        const proc = await execInContainer({
          pid: c.pid,
          args: command,
          baseEnv: c.env ?? [],
          env: (values.env ?? []).flatMap((e) => (e.includes('=') ? [e] : process.env[e] !== undefined ? [`${e}=${process.env[e]}`] : [])),
          ...(values.workdir ? { cwd: values.workdir } : {}),
          ...(values.user ?? c.user ? { user: values.user ?? c.user } : {}),
          ...(values.tty ? { tty: true } : { stdio: [stdin, 1, 2] as [number, number, number] }),
          ...(c.security ?? {}), // the container's capabilities and seccomp filter, as docker exec
        }).catch((err: Error & { exitCode?: number }) => {
          throw new CommandError(err.message, typeof err.exitCode === 'number' ? err.exitCode : 126);
        });
        const detach = proc.terminal ? attachTerminal(proc.terminal, values.interactive === true) : () => {};
        try {
          return (await proc.wait()).exitCode;
        } finally {
          detach();
        }
      } finally {
        fs.closeSync(devnull);
      }
    });
  },
);
