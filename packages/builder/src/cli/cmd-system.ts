// Store housekeeping with docker's names: system df, system/image/container/builder prune, container
// inspect. CI machines run `builder prune --filter until=24h --keep-storage 5GB` so caches stay bounded.
import { BuildCache, Containers, type Store } from '@tsbuild/storage';
import { defineCommand } from './command';
import type { Command } from './main';
import { UsageError } from './errors';
import { compileTemplate } from './gotemplate';
import { humanSize, parseCommandArgs, parseKeyValues, parseSize, table } from './parse';
import { withStore } from './store';

/** Go durations as docker's `until` filter takes them (`24h`, `1h30m`, `90s`), or a timestamp. */
export function parseUntil(value: string): number {
  const m = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(value);
  if (m && value !== '' && (m[1] || m[2] || m[3])) {
    const ms = (Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0)) * 1000;
    return Date.now() - ms;
  }
  const t = /^\d+$/.test(value) ? Number(value) * 1000 : Date.parse(value);
  if (Number.isNaN(t)) throw new UsageError(`invalid until=${value}: use a duration such as 24h or 90m, or a timestamp`);
  return t;
}

function parseFilters(values: string[] | undefined, allowed: string[]): Record<string, string> {
  const filters = parseKeyValues(values, 'filter');
  for (const k of Object.keys(filters)) {
    if (!allowed.includes(k)) throw new UsageError(`unsupported filter "${k}": use ${allowed.map((a) => `${a}=…`).join(' or ')}`);
  }
  return filters;
}

interface Usage {
  images: { total: number; active: number; size: number; reclaimable: number };
  containers: { total: number; active: number };
  cache: { total: number; size: number };
}

async function usage(store: Store, root: string): Promise<Usage> {
  const list = await store.images.list();
  const containers = new Containers(store).list();
  const used = new Set(containers.map((c) => c.imageId));
  const byId = new Map<string, { size: number; tagged: boolean }>();
  for (const i of list) byId.set(i.id, { size: i.size, tagged: (byId.get(i.id)?.tagged ?? false) || i.ref !== null });
  let size = 0;
  let reclaimable = 0;
  for (const [id, i] of byId) {
    size += i.size;
    if (!used.has(id)) reclaimable += i.size;
  }
  const entries = await new BuildCache(root).list();
  return {
    images: { total: byId.size, active: [...byId.keys()].filter((id) => used.has(id)).length, size, reclaimable },
    containers: { total: containers.length, active: containers.filter((c) => c.state === 'running').length },
    cache: { total: entries.length, size: entries.reduce((n, e) => n + e.record.size, 0) },
  };
}

const DF_USAGE = `Usage: tsbuild system df [OPTIONS]

Show the store's disk usage: images, containers, build cache. Sizes are uncompressed layer bytes;
layers shared by several images count once per image.

Options:
      --format TEMPLATE  Go template per row: {{.Type}} {{.TotalCount}} {{.Active}} {{.Size}} {{.Reclaimable}}
  -v, --verbose          accepted for docker's sake; the summary is all there is`;

const DF_OPTIONS = { format: { type: 'string' }, verbose: { type: 'boolean', short: 'v' } } as const;

export const systemDfCommand = defineCommand(
  { name: 'system df', summary: 'Show disk usage', usage: DF_USAGE, options: DF_OPTIONS },
  async ({ values }, globals) => {
    return withStore(globals, async (store) => {
      const u = await usage(store, globals.root);
      const pct = (part: number, whole: number) => (whole > 0 ? ` (${Math.round((part / whole) * 100)}%)` : '');
      const rows = [
        { Type: 'Images', TotalCount: u.images.total, Active: u.images.active, Size: humanSize(u.images.size), Reclaimable: `${humanSize(u.images.reclaimable)}${pct(u.images.reclaimable, u.images.size)}` },
        { Type: 'Containers', TotalCount: u.containers.total, Active: u.containers.active, Size: '0B', Reclaimable: '0B' },
        { Type: 'Build Cache', TotalCount: u.cache.total, Active: 0, Size: humanSize(u.cache.size), Reclaimable: humanSize(u.cache.size) },
      ];
      if (values.format) {
        const render = compileTemplate(values.format);
        process.stdout.write(rows.map((r) => `${render(r)}\n`).join(''));
      } else {
        process.stdout.write(table([
          ['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'],
          ...rows.map((r) => [r.Type, String(r.TotalCount), String(r.Active), r.Size, r.Reclaimable]),
        ]));
      }
      return 0;
    });
  },
);

const BUILDER_PRUNE_USAGE = `Usage: tsbuild builder prune [OPTIONS]

Remove build cache entries, then the layers nothing uses any more.

Options:
  -a, --all                 every entry (the default when no filter or limit is given)
  -f, --force               do not prompt (tsbuild never prompts)
      --filter until=DUR    only entries made more than DUR ago (24h, 90m) or before a timestamp
      --keep-storage SIZE   then drop the oldest entries until the cache holds at most SIZE (5GB)`;

const BUILDER_PRUNE_OPTIONS = {
  all: { type: 'boolean', short: 'a' },
  force: { type: 'boolean', short: 'f' },
  filter: { type: 'string', multiple: true },
  'keep-storage': { type: 'string' },
} as const;

export const builderPruneCommand = defineCommand(
  { name: 'builder prune', summary: 'Remove build cache', usage: BUILDER_PRUNE_USAGE, options: BUILDER_PRUNE_OPTIONS, positionals: { max: 0, error: 'takes no arguments' } },
  async ({ values }, globals) => {
    const filters = parseFilters(values.filter, ['until']);
    const opts = {
      ...(filters.until !== undefined ? { before: parseUntil(filters.until) } : {}),
      ...(values['keep-storage'] !== undefined ? { keepBytes: parseSize(values['keep-storage'], '--keep-storage') } : {}),
    };
    return withStore(globals, async (store) => {
      const r = await new BuildCache(globals.root).prune(opts);
      const layers = await store.collectLayers();
      process.stdout.write(`Deleted ${r.entries} build cache entries, ${layers} layers\nTotal reclaimed space: ${humanSize(r.bytes)}\n`);
      return 0;
    });
  },
);

const IMAGE_PRUNE_USAGE = `Usage: tsbuild image prune [OPTIONS]

Remove dangling (untagged) images, and with -a every image no container uses; then orphan blobs
and the layers nothing uses. The build cache stays (see "tsbuild builder prune").

Options:
  -a, --all     remove every image no container uses, not only dangling ones
  -f, --force   do not prompt (tsbuild never prompts)`;

const IMAGE_PRUNE_OPTIONS = { all: { type: 'boolean', short: 'a' }, force: { type: 'boolean', short: 'f' } } as const;

/** Untags every image no container uses (image prune -a, system prune -a). */
async function untagUnused(store: Store): Promise<number> {
  const used = new Set(new Containers(store).list().map((c) => c.imageId));
  let n = 0;
  for (const img of await store.images.list()) {
    if (img.ref === null || used.has(img.id)) continue;
    await store.removeImage(img.ref);
    n++;
  }
  return n;
}

export const imagePruneCommand = defineCommand(
  { name: 'image prune', summary: 'Remove unused images', usage: IMAGE_PRUNE_USAGE, options: IMAGE_PRUNE_OPTIONS, positionals: { max: 0, error: 'takes no arguments' } },
  async ({ values }, globals) => {
    return withStore(globals, async (store) => {
      const untagged = values.all ? await untagUnused(store) : 0;
      const r = await store.prune();
      process.stdout.write(`Deleted ${r.images + untagged} images, ${r.layers} layers, ${r.blobs} blobs\nTotal reclaimed space: ${humanSize(r.bytes)}\n`);
      return 0;
    });
  },
);

const SYSTEM_PRUNE_USAGE = `Usage: tsbuild prune [OPTIONS]   (= tsbuild system prune)

Remove stopped containers, dangling images, the build cache, orphan blobs and unused layers.

Options:
  -a, --all     also every image no container uses
  -f, --force   do not prompt (tsbuild never prompts)`;

export const systemPruneCommand = defineCommand(
  { name: 'prune', summary: 'Remove stopped containers, untagged images, the build cache, unused layers and orphan blobs', usage: SYSTEM_PRUNE_USAGE, options: IMAGE_PRUNE_OPTIONS, positionals: { max: 0, error: 'takes no arguments' } },
  async ({ values }, globals) => {
    return withStore(globals, async (store) => {
      const containers = await removeStopped(store);
      const untagged = values.all ? await untagUnused(store) : 0;
      await new BuildCache(globals.root).clear();
      const r = await store.prune();
      process.stdout.write(
        `Deleted ${containers} containers, ${r.images + untagged} images, ${r.layers} layers, ${r.blobs} blobs\nTotal reclaimed space: ${humanSize(r.bytes)}\n`,
      );
      return 0;
    });
  },
);

async function removeStopped(store: Store): Promise<number> {
  const containers = new Containers(store);
  let n = 0;
  for (const c of containers.list()) {
    if (c.state === 'running') continue;
    await containers.remove(c.id);
    n++;
  }
  return n;
}

const CONTAINER_PRUNE_USAGE = `Usage: tsbuild container prune [-f|--force]

Remove every stopped container.`;

export const containerPruneCommand: Command = {
  summary: 'Remove stopped containers',
  usage: CONTAINER_PRUNE_USAGE,
  options: { force: { type: 'boolean', short: 'f' } },
  async run(args, globals) {
    parseCommandArgs(args, { force: { type: 'boolean', short: 'f' } }, CONTAINER_PRUNE_USAGE);
    return withStore(globals, async (store) => {
      const n = await removeStopped(store);
      process.stdout.write(`Deleted ${n} containers\n`);
      return 0;
    });
  },
};

const CONTAINER_INSPECT_USAGE = `Usage: tsbuild container inspect [OPTIONS] CONTAINER [CONTAINER...]

Show containers as JSON.

Options:
  -f, --format TEMPLATE  Go template per container, e.g. '{{.State.Status}}' or '{{.State.ExitCode}}'`;

export const containerInspectCommand = defineCommand(
  { name: 'container inspect', summary: 'Show a container as JSON', usage: CONTAINER_INSPECT_USAGE, options: { format: { type: 'string', short: 'f' } }, positionals: { min: 1, error: 'needs a container' } },
  async ({ values, positionals }, globals) => {
    const render = values.format ? compileTemplate(values.format) : undefined;
    return withStore(globals, async (store) => {
      const containers = new Containers(store);
      const out = positionals.map((ref) => {
        const c = containers.find(ref);
        return {
          Id: c.id,
          Name: `/${c.name}`,
          Created: c.created,
          Image: c.imageId,
          Config: { Image: c.image, Cmd: c.args },
          State: {
            Status: c.state,
            Running: c.state === 'running',
            Pid: c.state === 'running' ? (c.pid ?? 0) : 0,
            ExitCode: c.exitCode ?? 0,
            FinishedAt: c.finished ?? '',
          },
        };
      });
      if (render) process.stdout.write(out.map((o) => `${render(o)}\n`).join(''));
      else process.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
      return 0;
    });
  },
);
