// Image commands: import, images, inspect, history, tag, rmi, save, load, prune.
import type { Command } from './main';
import { CommandError, UsageError } from './errors';
import { humanSize, parseCommandArgs, table, timeAgo } from './parse';
import { progressLine } from './progress-line';
import { withStore } from './store';
import { BuildCache } from '../build/cache';

const IMPORT_USAGE = `Usage: tsbuild import [OPTIONS] TARBALL|- [NAME[:TAG]]

Create an image from a rootfs tarball (plain, gzip, zstd, bzip2 or xz), like docker import.

Options:
  -m, --message TEXT   history comment`;

export const importCommand: Command = {
  summary: 'Create an image from a rootfs tarball',
  usage: IMPORT_USAGE,
  async run(args, globals) {
    const { values, positionals } = parseCommandArgs(args, { message: { type: 'string', short: 'm' } }, IMPORT_USAGE);
    if (positionals.length < 1 || positionals.length > 2) throw new UsageError(`"import" needs a tarball and an optional name\n${IMPORT_USAGE}`);
    const [file, ref] = positionals as [string, string | undefined];
    return withStore(globals, async (store) => {
      const progress = progressLine('Importing');
      const source = file === '-' ? process.stdin : file;
      const result = await store.importTarball(source, ref, {
        ...(values.message ? { message: values.message } : {}),
        onProgress: (n) => progress.update(n),
      });
      progress.done();
      process.stdout.write(`${result.id}\n`);
      return 0;
    });
  },
};

const IMAGES_USAGE = `Usage: tsbuild images [OPTIONS]

List images.

Options:
  -q, --quiet      only image IDs
      --no-trunc   full image IDs
  -a, --all        include untagged images`;

export const imagesCommand: Command = {
  summary: 'List images',
  usage: IMAGES_USAGE,
  async run(args, globals) {
    const { values } = parseCommandArgs(
      args,
      { quiet: { type: 'boolean', short: 'q' }, 'no-trunc': { type: 'boolean' }, all: { type: 'boolean', short: 'a' } },
      IMAGES_USAGE,
    );
    return withStore(globals, async (store) => {
      const list = (await store.images.list()).filter((i) => values.all || i.ref !== null);
      const id = (d: string) => (values['no-trunc'] ? d : d.replace(/^sha256:/, '').slice(0, 12));
      if (values.quiet) {
        process.stdout.write([...new Set(list.map((i) => id(i.id)))].map((x) => `${x}\n`).join(''));
        return 0;
      }
      const rows = [['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE']];
      for (const img of list) {
        const [repo, tag] = splitRef(img.ref);
        rows.push([repo, tag, id(img.id), timeAgo(img.created), humanSize(img.size)]);
      }
      process.stdout.write(table(rows));
      return 0;
    });
  },
};

function splitRef(ref: string | null): [string, string] {
  if (ref === null) return ['<none>', '<none>'];
  const at = ref.indexOf('@');
  const name = at >= 0 ? ref.slice(0, at) : ref;
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/')) return [name.slice(0, colon), name.slice(colon + 1)];
  return [name, at >= 0 ? '<none>' : 'latest'];
}

export const inspectCommand: Command = {
  summary: 'Show an image as JSON',
  usage: 'Usage: tsbuild inspect IMAGE [IMAGE...]',
  async run(args, globals) {
    const { positionals } = parseCommandArgs(args, {}, this.usage);
    if (positionals.length === 0) throw new UsageError(`"inspect" needs at least one image\n${this.usage}`);
    return withStore(globals, async (store) => {
      const out = [];
      for (const ref of positionals) out.push(await store.images.inspect(ref));
      process.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
      return 0;
    });
  },
};

export const historyCommand: Command = {
  summary: 'Show the history of an image',
  usage: 'Usage: tsbuild history [--no-trunc] IMAGE',
  async run(args, globals) {
    const { values, positionals } = parseCommandArgs(args, { 'no-trunc': { type: 'boolean' } }, this.usage);
    if (positionals.length !== 1) throw new UsageError(`"history" needs exactly one image\n${this.usage}`);
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
};

export const tagCommand: Command = {
  summary: 'Tag an image with another name',
  usage: 'Usage: tsbuild tag SOURCE_IMAGE TARGET_IMAGE[:TAG]',
  async run(args, globals) {
    const { positionals } = parseCommandArgs(args, {}, this.usage);
    if (positionals.length !== 2) throw new UsageError(`"tag" needs a source and a target\n${this.usage}`);
    return withStore(globals, async (store) => {
      await store.images.tag(positionals[1]!, positionals[0]!);
      return 0;
    });
  },
};

export const rmiCommand: Command = {
  summary: 'Remove images',
  usage: 'Usage: tsbuild rmi [-f] IMAGE [IMAGE...]',
  async run(args, globals) {
    const { values, positionals } = parseCommandArgs(args, { force: { type: 'boolean', short: 'f' } }, this.usage);
    if (positionals.length === 0) throw new UsageError(`"rmi" needs at least one image\n${this.usage}`);
    return withStore(globals, async (store) => {
      let failed = 0;
      for (const ref of positionals) {
        try {
          const r = await store.removeImage(ref, { force: values.force === true });
          for (const t of r.untagged) process.stdout.write(`Untagged: ${t}\n`);
          for (const d of r.deleted) process.stdout.write(`Deleted: ${d}\n`);
        } catch (err) {
          process.stderr.write(`tsbuild: ${(err as Error).message}\n`);
          failed++;
        }
      }
      return failed > 0 ? 1 : 0;
    });
  },
};

const SAVE_USAGE = `Usage: tsbuild save [OPTIONS] -o FILE IMAGE [IMAGE...]

Save images to an archive.

Options:
  -o, --output FILE    the archive to write (required)
      --format FORMAT  oci (default) or docker (docker-archive, what docker load and podman load read)`;

export const saveCommand: Command = {
  summary: 'Save images to an OCI or docker archive',
  usage: SAVE_USAGE,
  async run(args, globals) {
    const { values, positionals } = parseCommandArgs(args, { output: { type: 'string', short: 'o' }, format: { type: 'string' } }, SAVE_USAGE);
    if (!values.output) throw new UsageError(`"save" needs -o FILE\n${SAVE_USAGE}`);
    if (positionals.length === 0) throw new UsageError(`"save" needs at least one image\n${SAVE_USAGE}`);
    const format = values.format ?? 'oci';
    if (format !== 'oci' && format !== 'docker') throw new UsageError(`unknown format "${format}": use oci or docker`);
    return withStore(globals, async (store) => {
      const progress = progressLine('Saving');
      await store.save(positionals, values.output!, format, { onProgress: (p) => progress.update(p.done, p.total) });
      progress.done();
      return 0;
    });
  },
};

export const loadCommand: Command = {
  summary: 'Load images from an OCI or docker archive',
  usage: 'Usage: tsbuild load -i FILE',
  async run(args, globals) {
    const { values } = parseCommandArgs(args, { input: { type: 'string', short: 'i' } }, this.usage);
    if (!values.input) throw new UsageError(`"load" needs -i FILE\n${this.usage}`);
    return withStore(globals, async (store) => {
      const progress = progressLine('Loading');
      const result = await store.load(values.input!, (p) => progress.update(p.done, p.total));
      progress.done();
      for (const ref of result.images) process.stdout.write(`Loaded image: ${ref}\n`);
      if (result.images.length === 0) for (const id of result.ids) process.stdout.write(`Loaded image ID: ${id}\n`);
      return 0;
    });
  },
};

export const pruneCommand: Command = {
  summary: 'Remove untagged images, the build cache, unused layers and orphan blobs',
  usage: 'Usage: tsbuild prune',
  async run(args, globals) {
    parseCommandArgs(args, {}, this.usage);
    return withStore(globals, async (store) => {
      await new BuildCache(globals.root).clear();
      const r = await store.prune();
      process.stdout.write(`Deleted ${r.images} images, ${r.layers} layers, ${r.blobs} blobs\nTotal reclaimed space: ${humanSize(r.bytes)}\n`);
      return 0;
    });
  },
};

export { CommandError };
