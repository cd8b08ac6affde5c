// tsbuild run / ps / rm: containers from images, docker run's flags and exit statuses.
import * as fs from 'node:fs';
// Required where used, not here: loading it is part of every command's start (README, Performance).
import type * as net from 'node:net';
import * as path from 'node:path';
import { pipe } from '@tsbuild/native';
import { Containers, capabilitySet, type RunningContainer, type Store } from '@tsbuild/storage';
import { defineCommand, defineTargetCommand } from './command';
import { CommandError, UsageError } from './errors';
import { forEachRef, parseAddHost, parsePlatformFlag, parseSize, parseUlimit, table, timeAgo } from './parse';
import { parseSecurityOpts, type SecurityOptions } from './security';
import { withStore } from './store';
import { REGISTRY_OPTIONS, REGISTRY_USAGE, remoteAccessOf } from './registry-flags';
import { startDetached } from './cmd-containers';
import { attachTerminal } from './terminal';

const RUN_USAGE = `Usage: tsbuild run [OPTIONS] IMAGE [COMMAND] [ARG...]

Run a command in a new container.

Options:
      --rm                   remove the container when it exits
  -e, --env K=V              set an environment variable (a bare K takes the host's value; repeatable)
  -w, --workdir DIR          working directory inside the container
  -u, --user USER[:GROUP]    user name or uid (resolved in the image's /etc/passwd)
      --entrypoint CMD       override the image's entrypoint
  -m, --memory SIZE          memory limit (e.g. 64m, 1g)
      --cpus N               CPU limit (e.g. 0.5)
      --pids-limit N         process limit
      --network MODE         none (default) | host
      --hostname NAME        container host name
  -v, --volume SRC:DST[:ro]  bind mount a host path (repeatable)
      --name NAME            name the container
  -i, --interactive          keep stdin open
  -t, --tty                  allocate a terminal
      --no-init              run the command as PID 1 without tsbuild's init
      --read-only            mount the root filesystem read-only
  -d, --detach               run in the background and print the container ID (see logs, stop, wait, exec)
      --env-file FILE        read KEY=VALUE lines from FILE (repeatable; # comments)
      --add-host HOST:IP     add a line to /etc/hosts (repeatable)
      --ulimit T=SOFT[:HARD] set a resource limit, e.g. nofile=4096:8192 (repeatable)
      --shm-size SIZE        size of /dev/shm (default 64m)
      --platform P           the image of this platform (linux/arm64) from a multi-platform image;
                             another architecture runs through binfmt_misc (tsbuild binfmt --install)
  -p, --publish            refused: tsbuild has no bridge network (use --network host)
      --security-opt OPT     seccomp=unconfined | seccomp=PROFILE.json (Docker's format) | no-new-privileges
      --cap-add CAP          add a capability to Docker's default set (ALL: every one; repeatable)
      --cap-drop CAP         drop a capability (ALL: every one; repeatable)
      --privileged           DANGEROUS: every capability, no seccomp filter, no masked paths, host devices
Registry options, for the layers of an image built from a shared cache that are fetched now:
${REGISTRY_USAGE.replace('--tls-verify[=BOOL]', '--tls-verify=BOOL  ')}`;

const RUN_OPTIONS = {
  rm: { type: 'boolean' },
  env: { type: 'string', short: 'e', multiple: true },
  workdir: { type: 'string', short: 'w' },
  user: { type: 'string', short: 'u' },
  entrypoint: { type: 'string' },
  memory: { type: 'string', short: 'm' },
  cpus: { type: 'string' },
  'pids-limit': { type: 'string' },
  network: { type: 'string' },
  hostname: { type: 'string' },
  volume: { type: 'string', short: 'v', multiple: true },
  name: { type: 'string' },
  interactive: { type: 'boolean', short: 'i' },
  tty: { type: 'boolean', short: 't' },
  'no-init': { type: 'boolean' },
  'read-only': { type: 'boolean' },
  'security-opt': { type: 'string', multiple: true },
  'cap-add': { type: 'string', multiple: true },
  'cap-drop': { type: 'string', multiple: true },
  privileged: { type: 'boolean' },
  detach: { type: 'boolean', short: 'd' },
  'env-file': { type: 'string', multiple: true },
  'add-host': { type: 'string', multiple: true },
  ulimit: { type: 'string', multiple: true },
  'shm-size': { type: 'string' },
  publish: { type: 'string', short: 'p', multiple: true },
  platform: { type: 'string' },
  ...REGISTRY_OPTIONS,
} as const;

export const runCommand = defineTargetCommand(
  { name: 'run', summary: 'Run a command in a new container', usage: RUN_USAGE, options: RUN_OPTIONS, target: { error: 'needs an image' } },
  // Options stop at the image name: everything after it is the container's command.
  async ({ values, target: image, rest: command }, globals) => {
    const network = values.network ?? 'none';
    if (network !== 'none' && network !== 'host') throw new UsageError(`unknown network "${network}": use none or host`);
    const networkMode: 'none' | 'host' = network;
    const limits = {
      ...(values.memory ? { memory: parseMemory(values.memory) } : {}),
      ...(values.cpus ? { cpus: parsePositive(values.cpus, '--cpus') } : {}),
      ...(values['pids-limit'] ? { pidsLimit: Math.trunc(parsePositive(values['pids-limit'], '--pids-limit')) } : {}),
    };
    if (values.publish) {
      throw new UsageError(`-p ${values.publish[0]}: tsbuild has no bridge network to publish ports from; use --network host (the container then listens on the host's ports)`);
    }
    if (values.detach && (values.tty || values.interactive)) throw new UsageError('-d cannot be combined with -i or -t: a detached container has no terminal');
    const mounts = (values.volume ?? []).map(parseVolume);
    const security = parseSecurityOpts(values['security-opt']);
    const capabilities = { add: values['cap-add'] ?? [], drop: values['cap-drop'] ?? [] };
    try {
      capabilitySet(capabilities); // an unknown name fails before anything is created
    } catch (err) {
      throw new CommandError((err as Error).message, 125);
    }
    // A bare `-e K` takes the host's value, and is left out when the host has none (docker run).
    const env = [...(values['env-file'] ?? []).flatMap(readEnvFile), ...(values.env ?? [])]
      .flatMap((e) => (e.includes('=') ? [e] : process.env[e] !== undefined ? [`${e}=${process.env[e]}`] : []));
    const extraHosts = (values['add-host'] ?? []).map(parseAddHost);
    const rlimits = (values.ulimit ?? []).map(parseUlimit);
    const remoteAccess = remoteAccessOf(values);

    return withStore(globals, (store) => store.withRemoteAccess(remoteAccess, async () => {
      const containers = new Containers(store);
      // docker run reports its own failures (no such image, bad name) with 125.
      const { record, process: proc } = await createOr125(containers, {
        image,
        ...(values.platform ? { platform: parsePlatformFlag(values.platform) } : {}),
        ...(values.name ? { name: values.name } : {}),
        ...(values.rm ? { autoRemove: true } : {}),
        ...(command.length > 0 ? { cmd: command } : {}),
        ...(values.entrypoint !== undefined ? { entrypoint: values.entrypoint === '' ? [] : [values.entrypoint] } : {}),
        env,
        ...(values.workdir ? { workdir: values.workdir } : {}),
        ...(values.user ? { user: values.user } : {}),
      });
      const startOptions = {
        network: networkMode,
        ...limits,
        mounts,
        ...(values.hostname ? { hostname: values.hostname } : {}),
        init: values['no-init'] !== true,
        readonlyRootfs: values['read-only'] === true,
        ...(extraHosts.length ? { extraHosts } : {}),
        ...(rlimits.length ? { rlimits } : {}),
        ...(values['shm-size'] ? { shmSize: parseSize(values['shm-size'], '--shm-size') } : {}),
        ...security,
        capabilities,
        privileged: values.privileged === true,
      };
      if (values.detach) {
        await containers.markDetached(record);
        try {
          await startDetached(globals, containers, { id: record.id, process: proc, options: startOptions, remove: values.rm === true });
        } catch (err) {
          if (values.rm) await containers.remove(record.id, { force: true }).catch(() => {});
          throw err;
        }
        process.stdout.write(`${record.id}\n`);
        return 0;
      }
      // A --rm container that ran is removed as it exits (Containers.start); one that did not start, here.
      const ran = { removed: false };
      try {
        return await runAttached(containers, record, proc, {
          ...startOptions,
          tty: values.tty === true,
          interactive: values.interactive === true,
        }, ran);
      } finally {
        if (values.rm && !ran.removed) await containers.remove(record.id, { force: true }).catch(() => {});
      }
    }));
  },
);

async function createOr125(containers: Containers, opts: Parameters<Containers['create']>[0]) {
  try {
    return await containers.create(opts);
  } catch (err) {
    throw new CommandError((err as Error).message, 125);
  }
}

interface AttachOptions extends SecurityOptions {
  capabilities: { add: string[]; drop: string[] };
  privileged: boolean;
  network: 'none' | 'host';
  extraHosts?: { host: string; ip: string }[];
  rlimits?: { type: string; soft: number; hard: number }[];
  shmSize?: number;
  memory?: number;
  cpus?: number;
  pidsLimit?: number;
  mounts: { source: string; target: string; readonly: boolean }[];
  hostname?: string;
  init: boolean;
  readonlyRootfs: boolean;
  tty: boolean;
  interactive: boolean;
}

interface OutputRelay {
  /** Settles once everything the container wrote has been copied out. */
  done: Promise<void>;
  /** Closes tsbuild's copy of the write end (idempotent): the container holds its own. */
  closeWriteEnd(): void;
}

/**
 * The fd the container writes its stdout (1) or stderr (2) to: tsbuild's own, unless that is a socket
 * (a parent that spawned tsbuild with socketpairs, as Node does, or journald). Opening /dev/stdout
 * (/proc/self/fd/1) fails with ENXIO on a socket, so images that link their logs to /dev/stdout, as
 * nginx's do, would fail where Docker, whose containers always write to pipes, works: a socket gets a
 * pipe whose output tsbuild copies through.
 */
function outputFd(fd: 1 | 2, relays: OutputRelay[]): number {
  const isSocket = (() => {
    try {
      return fs.fstatSync(fd).isSocket();
    } catch {
      return false; // closed: the container gets the same closed fd, as before
    }
  })();
  if (!isSocket) return fd;
  const [readFd, writeFd] = pipe();
  const source = new (require('node:net') as typeof net).Socket({ fd: readFd, readable: true, writable: false });
  const target = fd === 1 ? process.stdout : process.stderr;
  let open = true;
  relays.push({
    done: new Promise((resolve, reject) => {
      source.on('error', reject);
      source.on('end', () => resolve());
      source.pipe(target, { end: false });
    }),
    closeWriteEnd() {
      if (open) fs.closeSync(writeFd);
      open = false;
    },
  });
  return writeFd;
}

/** Starts the container with the terminal's stdio and forwards Ctrl-C / SIGTERM to it. */
async function runAttached(
  containers: Containers,
  record: Parameters<Containers['start']>[0],
  proc: Parameters<Containers['start']>[1],
  o: AttachOptions,
  ran: { removed: boolean },
): Promise<number> {
  const devnull = o.interactive ? -1 : fs.openSync('/dev/null', 'r');
  // Handlers go in before the container starts: a signal that arrives while it starts is delivered
  // once it exists instead of killing tsbuild (and, through PDEATHSIG, the container) outright.
  let container: RunningContainer | undefined;
  const queued: NodeJS.Signals[] = [];
  const forward = (signal: NodeJS.Signals) => (container ? container.kill(signal) : queued.push(signal));
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  for (const s of signals) process.on(s, forward);
  let restoreRaw = () => {};
  const relays: OutputRelay[] = [];
  try {
    const { interactive, tty, ...rest } = o;
    const stdio = (): [number, number, number] => [interactive ? 0 : devnull, outputFd(1, relays), outputFd(2, relays)];
    const started = await containers.start(record, proc, { ...rest, ...(tty ? { tty: true } : { stdio: stdio() }) });
    for (const relay of relays) relay.closeWriteEnd();
    container = started.container;
    for (const s of queued.splice(0)) container.kill(s);
    if (tty && container.terminal) restoreRaw = attachTerminal(container.terminal, interactive);
    const exit = await started.finished;
    ran.removed = exit.removed === true;
    await Promise.all(relays.map((relay) => relay.done));
    if (exit.oomKilled) process.stderr.write('tsbuild: the container was OOM killed (memory limit reached)\n');
    return exit.exitCode;
  } catch (err) {
    const e = err as Error & { exitCode?: number };
    throw new CommandError(e.message, typeof e.exitCode === 'number' ? e.exitCode : 125);
  } finally {
    restoreRaw();
    for (const s of signals) process.off(s, forward);
    if (devnull >= 0) fs.closeSync(devnull);
    for (const relay of relays) relay.closeWriteEnd();
  }
}

/** docker's --env-file: KEY=VALUE lines, a bare KEY takes the host's value, # starts a comment. */
function readEnvFile(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--env-file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  return text
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'))
    .map((l) => l.trimStart());
}

export function parseMemory(v: string): number {
  const bytes = parseSize(v, '--memory');
  if (bytes < 6 * 1024 * 1024) throw new UsageError(`memory limit ${v} is too small: the minimum is 6m`);
  return bytes;
}

function parsePositive(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`invalid ${flag} value "${v}": expected a positive number`);
  return n;
}

function parseVolume(spec: string): { source: string; target: string; readonly: boolean } {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) throw new UsageError(`invalid volume "${spec}": use /host/path:/container/path[:ro]`);
  const [source, target, mode] = parts as [string, string, string | undefined];
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw') throw new UsageError(`invalid volume mode "${mode}" in "${spec}": use ro or rw`);
  if (!path.isAbsolute(source)) throw new UsageError(`invalid volume "${spec}": the host path must be absolute`);
  if (!fs.existsSync(source)) throw new UsageError(`invalid volume "${spec}": ${source} does not exist`);
  if (!target.startsWith('/')) throw new UsageError(`invalid volume "${spec}": the container path must be absolute`);
  return { source, target, readonly: mode === 'ro' };
}

export const psCommand = defineCommand(
  { name: 'ps', summary: 'List containers', usage: 'Usage: tsbuild ps [-a|--all] [-q|--quiet]', options: { all: { type: 'boolean', short: 'a' }, quiet: { type: 'boolean', short: 'q' } } },
  async ({ values }, globals) => {
    return withStore(globals, async (store: Store) => {
      const list = new Containers(store).list().filter((c) => values.all || c.state === 'running');
      if (values.quiet) {
        process.stdout.write(list.map((c) => `${c.id.slice(0, 12)}\n`).join(''));
        return 0;
      }
      const rows = [['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'NAMES']];
      for (const c of list) {
        const cmd = JSON.stringify(c.args.join(' '));
        const status = c.state === 'running' ? 'Up' : c.state === 'created' ? 'Created' : `Exited (${c.exitCode ?? 0}) ${timeAgo(c.finished)}`;
        rows.push([c.id.slice(0, 12), c.image, cmd.length > 22 ? `${cmd.slice(0, 20)}…"` : cmd, timeAgo(c.created), status, c.name]);
      }
      process.stdout.write(table(rows));
      return 0;
    });
  },
);

export const rmCommand = defineCommand(
  { name: 'rm', summary: 'Remove containers', usage: 'Usage: tsbuild rm [-f|--force] CONTAINER [CONTAINER...]', options: { force: { type: 'boolean', short: 'f' } }, positionals: { min: 1, error: 'needs at least one container' } },
  async ({ values, positionals }, globals) => {
    return withStore(globals, async (store) => {
      const containers = new Containers(store);
      return forEachRef(positionals, async (ref) => {
        await containers.remove(ref, { force: values.force === true });
        process.stdout.write(`${ref}\n`);
      });
    });
  },
);
