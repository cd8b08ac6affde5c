// Docker's grouped command forms (`image ls`, `container rm`, `builder prune`, `system df`, `buildx
// build`) as aliases of the flat commands, and docker commands tsbuild does not have, each with the
// reason and what to use instead, so a docker user's muscle memory gets an answer, never a build.
import type { Command } from './main';
import { lookupCommand, unknownCommand } from './main';
import { UsageError } from './errors';

/** group → subcommand → the flat command it runs. */
export const GROUPS: Record<string, Record<string, string>> = {
  image: {
    ls: 'images', list: 'images', rm: 'rmi', remove: 'rmi', inspect: 'inspect', history: 'history', tag: 'tag',
    prune: 'image-prune', save: 'save', load: 'load', import: 'import', push: 'push', pull: 'pull', build: 'build',
  },
  container: {
    ls: 'ps', list: 'ps', ps: 'ps', rm: 'rm', remove: 'rm', run: 'run', inspect: 'container-inspect', prune: 'container-prune',
    logs: 'logs', stop: 'stop', kill: 'kill', wait: 'wait', exec: 'exec',
  },
  builder: { prune: 'builder-prune', build: 'build' },
  buildx: { build: 'build', prune: 'builder-prune', du: 'system-df' },
  system: { df: 'system-df', prune: 'system-prune', info: 'version' },
  manifest: { create: 'manifest-create', inspect: 'manifest-inspect', push: 'push' },
};

/** Docker commands tsbuild does not have: what a user should do instead. */
export const UNSUPPORTED: Record<string, string> = {
  login: 'tsbuild reads registry credentials from ~/.docker/config.json and containers auth.json: log in with docker login or podman login',
  logout: 'tsbuild reads registry credentials from ~/.docker/config.json and containers auth.json: log out with docker logout or podman logout',
  network: 'tsbuild has no networks: containers use --network none or host',
  volume: 'tsbuild has no named volumes: bind a host directory with -v /host/path:/path',
  compose: 'tsbuild has no compose',
  swarm: 'tsbuild has no swarm',
  service: 'tsbuild has no services',
  stack: 'tsbuild has no stacks',
  node: 'tsbuild has no swarm nodes',
  secret: 'tsbuild has no secret store: pass build secrets with build --secret id=ID,src=FILE',
  plugin: 'tsbuild has no plugins',
  context: 'tsbuild has no contexts: choose the store with --root',
  trust: 'tsbuild does not sign images',
  commit: 'tsbuild does not commit containers: write a Dockerfile step instead',
  cp: 'tsbuild has no cp: bind a host directory with -v, or COPY in a Dockerfile',
  export: 'tsbuild has no container export: build -o type=tar,dest=FILE exports an image\'s filesystem',
  attach: 'tsbuild has no attach: run -i -t attaches at start',
  pause: 'tsbuild has no pause',
  unpause: 'tsbuild has no unpause',
  restart: 'tsbuild has no restart',
  start: 'tsbuild has no start of a stopped container: run a new one',
  create: 'tsbuild has no create: use run',
  rename: 'tsbuild has no rename: name containers with run --name',
  update: 'tsbuild has no update of a running container\'s limits',
  port: 'tsbuild has no port mappings: use --network host',
  top: 'tsbuild has no top: use exec CONTAINER ps',
  stats: 'tsbuild has no stats',
  events: 'tsbuild has no events: it has no daemon',
  diff: 'tsbuild has no diff',
  search: 'tsbuild has no registry search',
  init: 'tsbuild has no init',
  info: 'tsbuild has no daemon to describe: see "tsbuild version" and "tsbuild system df"',
};

/** The flat command a grouped form names. */
function resolve(group: string, sub: string | undefined): string {
  const table = GROUPS[group]!;
  if (sub === undefined) throw new UsageError(groupUsage(group));
  const target = table[sub];
  if (!target) throw unknownCommand(sub, Object.keys(table), `tsbuild ${group}`);
  return target;
}

function groupUsage(group: string): string {
  const rows = Object.entries(GROUPS[group]!).map(([sub, flat]) => `  ${sub.padEnd(10)} = tsbuild ${flat}`);
  return [`Usage: tsbuild ${group} COMMAND`, '', 'Commands:', ...rows].join('\n');
}

export function groupCommand(group: string): Command {
  return {
    summary: `Docker's "${group} …" forms (${Object.keys(GROUPS[group]!).slice(0, 4).join(', ')}, …)`,
    usage: groupUsage(group),
    // Only the subcommand is ours: its own parser sees the rest, --help included.
    ownArgs: () => [],
    async run(args, globals) {
      if (args[0] === '--help' || args[0] === '-h') {
        process.stdout.write(`${groupUsage(group)}\n`);
        return 0;
      }
      const target = resolve(group, args[0]);
      const cmd = lookupCommand(target);
      if (!cmd) throw new UsageError(`"${group} ${args[0]}" is not available`);
      const rest = args.slice(1);
      const own = cmd.ownArgs ? cmd.ownArgs(rest) : rest;
      if (own.includes('--help') || own.includes('-h')) {
        process.stdout.write(`${cmd.usage}\n`);
        return 0;
      }
      return cmd.run(rest, globals);
    },
  };
}

export function unsupportedCommand(name: string): Command {
  return {
    summary: UNSUPPORTED[name]!,
    usage: `tsbuild ${name}: a docker command tsbuild does not have: ${UNSUPPORTED[name]}`,
    ownArgs: () => [],
    async run() {
      throw new UsageError(`"${name}" is a docker command tsbuild does not have: ${UNSUPPORTED[name]}`);
    },
  };
}
