// Image commands: import, images, inspect, history, tag, rmi, save, load, prune.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { IMAGE_SINKS, findSink, formatPlatform, hostPlatform, sinkNames } from '@tsbuild/storage';
import { defineCommand } from './command';
import { CommandError, UsageError } from './errors';
import { compileTemplate, formatList } from './gotemplate';
import { forEachRef, humanSize, parseKeyValues, parsePlatformFlag, sinkUsage, table, timeAgo } from './parse';
import { progressLine } from './progress-line';
import { withStore } from './store';
import { REGISTRY_OPTIONS, REGISTRY_USAGE, normalizeRegistryArgs, remoteAccessOf } from './registry-flags';

const IMPORT_USAGE = `Usage: tsbuild import [OPTIONS] TARBALL|- [NAME[:TAG]]

Create an image from a rootfs tarball (plain, gzip, zstd, bzip2 or xz), like docker import.

Options:
  -m, --message TEXT   history comment
      --platform P     the platform the rootfs is for (default: this host's), e.g. linux/arm64`;

export const importCommand = defineCommand(
  { name: 'import', summary: 'Create an image from a rootfs tarball', usage: IMPORT_USAGE, options: { message: { type: 'string', short: 'm' }, platform: { type: 'string' } }, positionals: { min: 1, max: 2, error: 'needs a tarball and an optional name' } },
  async ({ values, positionals }, globals) => {
    const [file, ref] = positionals as [string, string | undefined];
    if (values.platform) parsePlatformFlag(values.platform); // a bad value is a usage error before any read
    return withStore(globals, async (store) => {
      const progress = progressLine('Importing');
      const source = file === '-' ? process.stdin : file;
      const result = await store.importTarball(source, ref, {
        ...(values.message ? { message: values.message } : {}),
        ...(values.platform ? { platform: parsePlatformFlag(values.platform) } : {}),
        onProgress: (n) => progress.update(n),
      });
      progress.done();
      process.stdout.write(`${result.id}\n`);
      return 0;
    });
  },
);

const IMAGES_USAGE = `Usage: tsbuild images [OPTIONS] [REPOSITORY[:TAG]]

List images (untagged "dangling" images too, as docker images does).

Options:
  -q, --quiet           only image IDs
      --no-trunc        full image IDs
  -a, --all             also untagged images that other images were built from (hidden, as docker does)
  -f, --filter K=V      dangling=true|false, reference=PATTERN (repeatable)
      --format TEMPLATE Go template: {{.Repository}} {{.Tag}} {{.ID}} {{.Digest}} {{.CreatedSince}}
                        {{.CreatedAt}} {{.Size}} {{.Platform}}; "table …" adds a header; "json" one JSON object a line
      --digests         show the manifest digest`;

const IMAGES_OPTIONS = {
  quiet: { type: 'boolean', short: 'q' },
  'no-trunc': { type: 'boolean' },
  all: { type: 'boolean', short: 'a' },
  filter: { type: 'string', short: 'f', multiple: true },
  format: { type: 'string' },
  digests: { type: 'boolean' },
} as const;

/** docker's reference filter: a glob over the familiar name, e.g. app* or library/app:1.* */
function referenceMatches(pattern: string, ref: string | null): boolean {
  if (ref === null) return false;
  const escaped = pattern.replace(/[.+^$(){}|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  const re = new RegExp('^' + escaped + '$');
  const [repo] = splitRef(ref);
  return re.test(ref) || re.test(repo);
}

export const imagesCommand = defineCommand(
  { name: 'images', summary: 'List images', usage: IMAGES_USAGE, options: IMAGES_OPTIONS, positionals: { max: 1, error: 'takes at most one repository' } },
  async ({ values, positionals }, globals) => {
    const filters = parseKeyValues(values.filter, 'filter');
    for (const k of Object.keys(filters)) {
      if (k !== 'dangling' && k !== 'reference') throw new UsageError(`unsupported filter "${k}": use dangling=true|false or reference=PATTERN`);
    }
    if (filters.dangling !== undefined && filters.dangling !== 'true' && filters.dangling !== 'false') {
      throw new UsageError(`invalid filter dangling=${filters.dangling}: use true or false`);
    }
    const template = values.format;
    const render = template && template !== 'json' && !template.startsWith('table') ? compileTemplate(template) : undefined;
    return withStore(globals, async (store) => {
      let list = await store.images.list({ hideParents: values.all !== true });
      if (filters.dangling !== undefined) list = list.filter((i) => (i.ref === null) === (filters.dangling === 'true'));
      if (filters.reference !== undefined) list = list.filter((i) => referenceMatches(filters.reference!, i.ref));
      if (positionals[0] !== undefined) {
        const want = positionals[0];
        list = list.filter((i) => i.ref !== null && (i.ref === want || splitRef(i.ref)[0] === want || referenceMatches(want, i.ref)));
      }
      const id = (d: string) => (values['no-trunc'] ? d : d.replace(/^sha256:/, '').slice(0, 12));
      if (values.quiet) {
        process.stdout.write([...new Set(list.map((i) => id(i.id)))].map((x) => `${x}\n`).join(''));
        return 0;
      }
      const items = list.map((img) => {
        const [repo, tag] = splitRef(img.ref);
        return {
          Repository: repo, Tag: tag, ID: id(img.id), Digest: img.manifestDigest,
          CreatedSince: timeAgo(img.created), CreatedAt: img.created ?? '', Size: humanSize(img.size), Platform: img.platform,
          // Layers from a shared build cache are held lazily: their size is known, their files are not here.
          ...(img.notFetched ? { NotFetched: humanSize(img.notFetched) } : {}),
        };
      });
      if (template === 'json') {
        process.stdout.write(items.map((i) => `${JSON.stringify(i)}\n`).join(''));
      } else if (render) {
        process.stdout.write(items.map((i) => `${render(i)}\n`).join(''));
      } else if (template) {
        process.stdout.write(formatList(template, items, IMAGE_HEADERS));
      } else {
        // The platform column appears once the store holds an image that is not just this host's.
        const host = formatPlatform(hostPlatform());
        const platforms = items.some((i) => i.Platform !== host);
        const head = ['REPOSITORY', 'TAG', ...(values.digests ? ['DIGEST'] : []), 'IMAGE ID', ...(platforms ? ['PLATFORM'] : []), 'CREATED', 'SIZE'];
        const rows = [head, ...items.map((i) => [i.Repository, i.Tag, ...(values.digests ? [i.Digest] : []), i.ID, ...(platforms ? [i.Platform] : []), i.CreatedSince, i.NotFetched ? `${i.Size} (${i.NotFetched} not fetched)` : i.Size])];
        process.stdout.write(table(rows));
      }
      return 0;
    });
  },
);

const IMAGE_HEADERS: Record<string, string> = {
  Repository: 'REPOSITORY', Tag: 'TAG', ID: 'IMAGE ID', Digest: 'DIGEST', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', Size: 'SIZE', Platform: 'PLATFORM',
};

function splitRef(ref: string | null): [string, string] {
  if (ref === null) return ['<none>', '<none>'];
  const at = ref.indexOf('@');
  const name = at >= 0 ? ref.slice(0, at) : ref;
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/')) return [name.slice(0, colon), name.slice(colon + 1)];
  return [name, at >= 0 ? '<none>' : 'latest'];
}

const INSPECT_USAGE = `Usage: tsbuild inspect [OPTIONS] IMAGE [IMAGE...]

Show images as JSON (docker image inspect's fields).

Options:
  -f, --format TEMPLATE  Go template per image, e.g. '{{.Id}}', '{{json .Config.Env}}',
                         '{{index .Config.Labels "version"}}', '{{range .RepoTags}}{{.}} {{end}}'`;

const INSPECT_OPTIONS = { format: { type: 'string', short: 'f' } } as const;

export const inspectCommand = defineCommand(
  { name: 'inspect', summary: 'Show an image as JSON', usage: INSPECT_USAGE, options: INSPECT_OPTIONS, positionals: { min: 1, error: 'needs at least one image' } },
  async ({ values, positionals }, globals) => {
    const render = values.format ? compileTemplate(values.format) : undefined;
    return withStore(globals, async (store) => {
      const out = [];
      for (const ref of positionals) out.push(await store.images.inspect(ref));
      if (render) process.stdout.write(out.map((o) => `${render(o)}\n`).join(''));
      else process.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
      return 0;
    });
  },
);

export const historyCommand = defineCommand(
  { name: 'history', summary: 'Show the history of an image', usage: 'Usage: tsbuild history [--no-trunc] IMAGE', options: { 'no-trunc': { type: 'boolean' } }, positionals: { min: 1, max: 1, error: 'needs exactly one image' } },
  async ({ values, positionals }, globals) => {
    return withStore(globals, async (store) => {
      const items = await store.images.history(positionals[0]!);
      const rows = [['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT']];
      for (const h of items) {
        const by = h.createdBy ?? '';
        rows.push([
          h.id ? (values['no-trunc'] ? h.id : h.id.replace(/^sha256:/, '').slice(0, 12)) : '<missing>',
          timeAgo(h.created),
          values['no-trunc'] || by.length <= 45 ? by : `${by.slice(0, 44)}…`,
          humanSize(h.size ?? 0),
          h.comment ?? '',
        ]);
      }
      process.stdout.write(table(rows));
      return 0;
    });
  },
);

export const tagCommand = defineCommand(
  { name: 'tag', summary: 'Tag an image with another name', usage: 'Usage: tsbuild tag SOURCE_IMAGE TARGET_IMAGE[:TAG]', options: {}, positionals: { min: 2, max: 2, error: 'needs a source and a target' } },
  async ({ positionals }, globals) => {
    return withStore(globals, async (store) => {
      await store.images.tag(positionals[1]!, positionals[0]!);
      return 0;
    });
  },
);

export const rmiCommand = defineCommand(
  { name: 'rmi', summary: 'Remove images', usage: 'Usage: tsbuild rmi [-f|--force] IMAGE [IMAGE...]', options: { force: { type: 'boolean', short: 'f' } }, positionals: { min: 1, error: 'needs at least one image' } },
  async ({ values, positionals }, globals) => {
    return withStore(globals, async (store) => {
      return forEachRef(positionals, async (ref) => {
        const r = await store.removeImage(ref, { force: values.force === true });
        for (const t of r.untagged) process.stdout.write(`Untagged: ${t}\n`);
        for (const d of r.deleted) process.stdout.write(`Deleted: ${d}\n`);
      });
    });
  },
);

const defaultSaveFormat = (): string => IMAGE_SINKS[0]!.name;

const saveUsage = (): string => `Usage: tsbuild save [OPTIONS] IMAGE [IMAGE...]

Save images to an archive (to stdout when -o is absent and stdout is not a terminal).

Options:
  -o, --output PATH    the archive (or directory) to write
      --format FORMAT  one of (default ${defaultSaveFormat()}):
${sinkUsage('                         ')}
  -q, --quiet          no progress
Registry options, for the layers of an image built from a shared cache that are read from it:
${REGISTRY_USAGE}`;

const SAVE_OPTIONS = { output: { type: 'string', short: 'o' }, format: { type: 'string' }, quiet: { type: 'boolean', short: 'q' }, ...REGISTRY_OPTIONS } as const;

export const saveCommand = defineCommand(
  { name: 'save', summary: 'Save images to an archive docker load, podman load and OCI tools read', usage: saveUsage, options: SAVE_OPTIONS, positionals: { min: 1, error: 'needs at least one image' }, normalize: normalizeRegistryArgs },
  async ({ values, positionals }, globals) => {
    const sink = findSink(values.format ?? defaultSaveFormat());
    if (!sink) throw new UsageError(`unknown format "${values.format}": use ${sinkNames().join(', ')}`);
    const format = sink.name;
    const toStdout = values.output === undefined || values.output === '-';
    if (toStdout && sink.dest === 'directory') throw new UsageError(`format ${format} writes a directory: give -o DIR`);
    if (toStdout && process.stdout.isTTY) {
      throw new UsageError('refusing to write an archive to a terminal: use -o FILE or redirect stdout');
    }
    if (!toStdout) {
      const dir = path.dirname(path.resolve(values.output!));
      if (!fs.existsSync(dir)) throw new CommandError(`cannot write ${values.output}: the directory ${dir} does not exist`);
    }
    const remoteAccess = remoteAccessOf(values, values.quiet === true);
    return withStore(globals, async (store) => {
      const progress = progressLine('Saving');
      // stdout may be a pipe: the archive is staged in the store's scratch, then streamed.
      const scratch = toStdout ? await store.scratch('save') : undefined;
      const out = scratch ? path.join(scratch, 'archive.tar') : values.output!;
      try {
        await store.save(positionals, out, format, { ...(values.quiet ? {} : { onProgress: (p) => progress.update(p.done, p.total) }), remoteAccess });
        progress.done();
        if (scratch) await pipeline(fs.createReadStream(out), process.stdout, { end: false });
      } finally {
        if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
      }
      return 0;
    });
  },
);

const LOAD_USAGE = 'Usage: tsbuild load -i|--input FILE';

export const loadCommand = defineCommand(
  { name: 'load', summary: 'Load images from an OCI or docker archive', usage: LOAD_USAGE, options: { input: { type: 'string', short: 'i' } } },
  async ({ values }, globals) => {
    if (!values.input) throw new UsageError(`"load" needs -i FILE\n${LOAD_USAGE}`);
    return withStore(globals, async (store) => {
      const progress = progressLine('Loading');
      const result = await store.load(values.input!, (p) => progress.update(p.done, p.total));
      progress.done();
      for (const ref of result.images) process.stdout.write(`Loaded image: ${ref}\n`);
      if (result.images.length === 0) for (const id of result.ids) process.stdout.write(`Loaded image ID: ${id}\n`);
      return 0;
    });
  },
);

export { CommandError };
