// Multi-platform images: `manifest create/inspect` (podman's and docker's verbs) assemble an image
// index from local images, and `binfmt` shows or registers the binfmt_misc handlers that run other
// architectures' binaries (RUN for linux/arm64 on an amd64 host).
import { binfmtHandlers, emulationFor, formatPlatform, installBinfmt, parsePlatform, uninstallBinfmt, type IndexChild } from '@tsbuild/storage';
import { defineCommand } from './command';
import { CommandError, UsageError } from './errors';
import { parsePlatformFlag, table } from './parse';
import { withStore } from './store';

const CREATE_USAGE = `Usage: tsbuild manifest create [OPTIONS] NAME IMAGE [IMAGE...]

Make NAME an image index (a multi-platform image) of local images, one per platform: each image's
config names its platform; an image that is an index brings all of its platforms.`;

export const manifestCreateCommand = defineCommand(
  { name: 'manifest create', summary: 'Make an image index of local images', usage: CREATE_USAGE, options: {}, positionals: { min: 2, error: 'needs a name and at least one image' } },
  async ({ positionals }, globals) => {
    const [name, ...images] = positionals as [string, ...string[]];
    return withStore(globals, async (store) => {
      const children: IndexChild[] = [];
      for (const image of images) children.push(...(await store.images.platformImages(image)));
      const index = await store.images.createIndex(children, [name]);
      process.stdout.write(`${index.digest}\n`);
      return 0;
    });
  },
);

const INSPECT_USAGE = `Usage: tsbuild manifest inspect NAME

Print the image index NAME names (or its image manifest when it is a single image) as JSON.`;

export const manifestInspectCommand = defineCommand(
  { name: 'manifest inspect', summary: 'Show an image index', usage: INSPECT_USAGE, options: {}, positionals: { min: 1, max: 1, error: 'needs exactly one image' } },
  async ({ positionals }, globals) =>
    withStore(globals, async (store) => {
      const ref = positionals[0]!;
      const found = await store.images.resolveIndex(ref);
      const doc = found ? found.index : (await store.images.resolve(ref)).manifest;
      process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
      return 0;
    }),
);

const BINFMT_USAGE = `Usage: tsbuild binfmt [OPTIONS]

Show which platforms this host runs, natively or through binfmt_misc emulation (qemu-user-static).

Options:
      --install           register an F-flag handler for every architecture whose qemu-*-static is
                          installed (apt-get install qemu-user-static); root. HOST-WIDE: every process
                          on this machine (other containers too) then runs those binaries through qemu,
                          until reboot or --uninstall
      --uninstall         remove the handlers --install registered
      --platform P[,P...] only these platforms (with --install)`;

const PLATFORMS_SHOWN = ['linux/amd64', 'linux/arm64', 'linux/arm/v7', 'linux/386', 'linux/ppc64le', 'linux/s390x', 'linux/riscv64'];

export const binfmtCommand = defineCommand(
  {
    name: 'binfmt',
    summary: 'Show or register emulation for other platforms',
    usage: BINFMT_USAGE,
    options: { install: { type: 'boolean' }, uninstall: { type: 'boolean' }, platform: { type: 'string' } },
    positionals: { max: 0, error: 'takes no arguments' },
  },
  async ({ values }) => {
    if (values.install && values.uninstall) throw new UsageError('--install and --uninstall cannot be combined');
    const only = values.platform?.split(',').filter(Boolean).map(parsePlatformFlag);
    if (only && !values.install) throw new UsageError('--platform goes with --install');
    try {
      if (values.install) {
        const r = await installBinfmt(only ? { only } : {});
        for (const p of r.registered) process.stdout.write(`registered ${p}\n`);
        for (const p of r.present) process.stdout.write(`${p}: a handler is already registered\n`);
        for (const p of r.missing) process.stdout.write(`${p}: no qemu-user-static emulator installed\n`);
        return 0;
      }
      if (values.uninstall) {
        for (const name of uninstallBinfmt()) process.stdout.write(`removed ${name}\n`);
        return 0;
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') throw new CommandError('registering binfmt_misc handlers needs root');
      throw err;
    }
    const handlers = binfmtHandlers();
    const rows = [['PLATFORM', 'RUNS', 'HANDLER']];
    for (const text of PLATFORMS_SHOWN) {
      const e = emulationFor(parsePlatform(text));
      const handler = e.kind === 'binfmt' ? `${e.handler.name} (${e.handler.interpreter})` : e.kind === 'none' ? e.reason : '';
      rows.push([formatPlatform(parsePlatform(text)), e.kind === 'native' ? 'native' : e.kind === 'binfmt' ? 'emulated' : 'no', handler]);
    }
    process.stdout.write(table(rows));
    if (handlers.length === 0) process.stdout.write('no binfmt_misc handlers are registered\n');
    return 0;
  },
);
