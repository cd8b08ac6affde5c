// tsbuild build (and the shorthand `tsbuild -t app .`): docker build's flags, BuildKit's progress.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { findSink, formatPlatform, mergeTree, mkdirpSync, packDir, sinkNames } from '@tsbuild/storage';
import { build } from '../engine';
import { createRenderer, type ProgressMode } from '../progress';
import { defineCommand } from './command';
import { CommandError, UsageError } from './errors';
import { parseAddHost, parseCsv, parseKeyValues, parsePlatformFlag, parseSize, parseUlimit, sinkUsage } from './parse';
import { parseSecurityOpts } from './security';
import { parseCacheFrom, parseCacheTo } from './cache-spec';
import { withStore } from './store';
import { REGISTRY_OPTIONS, REGISTRY_USAGE, normalizeRegistryArgs, registryOptions } from './registry-flags';

const usage = (): string => `Usage: tsbuild build [OPTIONS] CONTEXT
       tsbuild [OPTIONS] CONTEXT

Build an image from a Dockerfile.

Options:
  -t, --tag NAME[:TAG]       name the image (repeatable)
  -f, --file PATH            the Dockerfile (default CONTEXT/Dockerfile; "-" reads stdin)
      --build-arg K[=V]      set a build argument (a bare K takes its value from the environment)
      --target STAGE         build up to this stage
      --no-cache             do not use the build cache
      --progress MODE        auto | plain | tty | json | quiet (default auto)
  -q, --quiet                print only the image ID
      --iidfile FILE         write the image ID (sha256:...) to FILE
      --label K=V            add a label to the image (repeatable)
      --network MODE         default | host | none, for RUN
      --secret id=ID,src=F   expose a file (or env=VAR) to RUN --mount=type=secret (repeatable)
  -o, --output SPEC          also export: type=TYPE,dest=PATH; TYPE is local (a directory; a bare PATH),
                             tar (the rootfs; -: on stdout), or an image format
                             (type=oci,tar=false: oci-layout, as buildx):
${sinkUsage('                               ')}
      --platform P[,P...]    target platforms (linux/amd64,linux/arm64; default this host's); more
                             than one gives an image index; RUN for another architecture needs
                             binfmt_misc emulation (tsbuild binfmt --install)
      --pull                 pull every base image from its registry first (default: use the local one)
      --add-host HOST:IP     add a line to /etc/hosts in RUN steps (repeatable)
      --ulimit T=SOFT[:HARD] resource limits for RUN steps, e.g. nofile=4096 (repeatable)
      --shm-size SIZE        size of /dev/shm in RUN steps (e.g. 128m; default 64m)
      --cache-from SPEC      read a shared build cache: type=registry,ref=REF or type=local,src=DIR (repeatable)
      --cache-to SPEC        export it: type=registry,ref=REF or type=local,dest=DIR [,mode=min|max][,ignore-error=true] (min: the final
                             image's steps; max: every stage's)
      --security-opt OPT     seccomp=unconfined | seccomp=PROFILE.json for RUN steps (default: Docker's profile)
      --allow ENTITLEMENT    security.insecure: let RUN --security=insecure run privileged (dangerous)
Registry options, for base image pulls, shared caches and the cached layers a step fetches:
${REGISTRY_USAGE}`;

const OPTIONS = {
  tag: { type: 'string', short: 't', multiple: true },
  file: { type: 'string', short: 'f' },
  'build-arg': { type: 'string', multiple: true },
  target: { type: 'string' },
  'no-cache': { type: 'boolean' },
  progress: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  iidfile: { type: 'string' },
  label: { type: 'string', multiple: true },
  network: { type: 'string' },
  secret: { type: 'string', multiple: true },
  output: { type: 'string', short: 'o' },
  platform: { type: 'string' },
  'security-opt': { type: 'string', multiple: true },
  allow: { type: 'string', multiple: true },
  pull: { type: 'boolean' },
  'add-host': { type: 'string', multiple: true },
  ulimit: { type: 'string', multiple: true },
  'shm-size': { type: 'string' },
  'cache-from': { type: 'string', multiple: true },
  'cache-to': { type: 'string', multiple: true },
  ...REGISTRY_OPTIONS,
} as const;

export const command = defineCommand(
  { name: 'build', summary: 'Build an image from a Dockerfile', usage, options: OPTIONS, positionals: { min: 1, max: 1, error: 'needs exactly one context directory' }, normalize: normalizeRegistryArgs },
  async ({ values, positionals }, globals) => {
    const context = positionals[0]!;
    const progress = (values.quiet ? 'quiet' : (values.progress ?? 'auto')) as ProgressMode;
    if (!['auto', 'plain', 'tty', 'json', 'rawjson', 'quiet'].includes(progress)) {
      throw new UsageError(`unknown progress mode "${progress}": use auto, plain, tty, json or quiet`);
    }
    const network = values.network ?? 'default';
    if (network !== 'default' && network !== 'host' && network !== 'none') {
      throw new UsageError(`unknown network mode "${network}": use default, host or none`);
    }
    const output = values.output ? parseOutput(values.output) : undefined;
    const platforms = (values.platform ?? '').split(',').map((p) => p.trim()).filter(Boolean);
    for (const p of platforms) parsePlatformFlag(p);
    if (output && new Set(platforms.map((p) => formatPlatform(parsePlatformFlag(p)))).size > 1 && !findSink(output.type)?.indexes) {
      throw new UsageError(
        `--output type=${output.type} cannot hold a multi-platform image${findSink(output.type) ? ' (docker load takes one platform)' : ''}: use type=oci or type=oci-layout, or build one --platform`,
      );
    }
    const security = parseSecurityOpts(values['security-opt'], ['seccomp']);
    const allow = parseAllow(values.allow);
    const cacheFrom = (values['cache-from'] ?? []).map(parseCacheFrom);
    const cacheTo = (values['cache-to'] ?? []).map(parseCacheTo);
    const registry = registryOptions(values);
    const runtime = {
      ...(values['add-host'] ? { extraHosts: values['add-host'].map(parseAddHost) } : {}),
      ...(values.ulimit ? { rlimits: values.ulimit.map(parseUlimit) } : {}),
      ...(values['shm-size'] ? { shmSize: parseSize(values['shm-size'], '--shm-size') } : {}),
    };
    const dockerfileContent = values.file === '-' ? fs.readFileSync(0, 'utf8') : undefined;
    if (!fs.existsSync(context) || !fs.statSync(context).isDirectory()) {
      throw new CommandError(`unable to prepare context: path "${context}" not found or not a directory`);
    }

    return withStore(globals, async (store) => {
      const renderer = createRenderer(progress);
      // Ctrl-C or SIGTERM cancel the build: running steps are killed and nothing is committed or tagged.
      const cancel = new AbortController();
      let interrupted: NodeJS.Signals | undefined;
      const onSignal = (signal: NodeJS.Signals) => {
        interrupted ??= signal;
        cancel.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      let result;
      try {
        result = await build(
          {
            context,
            ...(values.file && values.file !== '-' ? { dockerfile: values.file } : {}),
            ...(dockerfileContent !== undefined ? { dockerfileContent } : {}),
            tags: values.tag ?? [],
            buildArgs: parseKeyValues(values['build-arg'], 'build argument', true),
            ...(values.target ? { target: values.target } : {}),
            noCache: values['no-cache'] === true,
            labels: parseKeyValues(values.label, 'label'),
            network,
            secrets: parseSecrets(values.secret),
            ...(platforms.length ? { platforms } : {}),
            ...(security.seccomp !== undefined ? { seccomp: security.seccomp } : {}),
            allow,
            ...sourceDateEpoch(),
            ...(values.pull ? { pull: 'always' as const } : {}),
            ...(Object.keys(runtime).length ? { runtime } : {}),
            ...(cacheFrom.length ? { cacheFrom } : {}),
            ...(cacheTo.length ? { cacheTo } : {}),
            ...(Object.keys(registry).length ? { registry } : {}),
          },
          { store, onEvent: (e) => renderer.handle(e), signal: cancel.signal },
        );
      } catch (err) {
        if (interrupted) throw new CommandError(`build canceled (${interrupted})`, interrupted === 'SIGINT' ? 130 : 143);
        throw err;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        renderer.finish();
      }
      if (values.iidfile) fs.writeFileSync(values.iidfile, result.imageId);
      // A local or tar output mounts the image: its lazy layers are fetched with the build's options.
      if (output) await store.withRemoteAccess({ registry }, () => exportOutput(store, result.tags.length > 0 ? result.tags : [result.imageId], output));
      // stdout carries the tar with `-o -`: the ID would corrupt it.
      if (progress === 'quiet' && output?.dest !== '-') process.stdout.write(`${result.imageId}\n`);
      return 0;
    });
  },
);

/** BuildKit's entitlements (buildx --allow, comma-separated or repeated); only security.insecure exists here. */
function parseAllow(values: string[] | undefined): string[] {
  const out = (values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  for (const e of out) {
    if (e !== 'security.insecure') throw new UsageError(`invalid --allow entitlement "${e}": use security.insecure`);
  }
  return out;
}

/** The exports that are not image sinks: the result's rootfs as a directory or a tar. */
const ROOTFS_OUTPUTS = ['local', 'tar'];

interface OutputSpec {
  /** local, tar, or the name of an image sink (transport/sinks in @tsbuild/storage). */
  type: string;
  dest: string;
}

function parseOutput(spec: string): OutputSpec {
  // A bare path is a local directory and `-` a tar of the result on stdout, as with buildx.
  const fields = spec.includes('=') ? parseCsv(spec, '--output') : spec === '-' ? { type: 'tar', dest: '-' } : { type: 'local', dest: spec };
  // buildx spells an OCI layout directory type=oci,tar=false.
  const type = fields.type === 'oci' && fields.tar === 'false' ? 'oci-layout' : (fields.type ?? 'local');
  if (!ROOTFS_OUTPUTS.includes(type) && !findSink(type)) {
    throw new UsageError(`unknown output type "${type}": use ${[...sinkNames(), ...ROOTFS_OUTPUTS].join(', ')}`);
  }
  if (!fields.dest) throw new UsageError(`--output ${spec}: dest=PATH is required`);
  if (fields.dest === '-' && findSink(type)?.dest === 'directory') throw new UsageError(`--output ${spec}: type=${type} writes a directory: give dest=DIR`);
  return { type, dest: fields.dest };
}

function parseSecrets(specs: string[] | undefined): Record<string, { src?: string; env?: string }> {
  const out: Record<string, { src?: string; env?: string }> = {};
  for (const spec of specs ?? []) {
    const f = parseCsv(spec, '--secret');
    const id = f.id;
    if (!id) throw new UsageError(`--secret ${spec}: id=ID is required`);
    const src = f.src ?? f.source;
    if (src) {
      if (!fs.existsSync(src)) throw new UsageError(`--secret ${spec}: ${src} does not exist`);
      out[id] = { src: path.resolve(src) };
    } else if (f.env) out[id] = { env: f.env };
    else if (process.env[id] !== undefined) out[id] = { env: id };
    else throw new UsageError(`--secret ${spec}: give src=FILE or env=VAR`);
  }
  return out;
}

function sourceDateEpoch(): { sourceDateEpoch?: number } {
  const v = process.env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return {};
  if (!/^\d+$/.test(v)) throw new UsageError(`invalid SOURCE_DATE_EPOCH "${v}": expected seconds since 1970`);
  return { sourceDateEpoch: Number(v) };
}

/**
 * The directory of a local export, created if missing. A DEST that is a symlink is refused: the export
 * would land wherever it points (BuildKit writes into DEST; nothing in it is followed either).
 */
function prepareLocalDest(dest: string): void {
  const st = fs.lstatSync(dest, { throwIfNoEntry: false });
  if (st?.isSymbolicLink()) throw new CommandError(`--output ${dest}: the destination is a symlink; give the directory it points to`);
  if (st && !st.isDirectory()) throw new CommandError(`--output ${dest}: the destination exists and is not a directory`);
  if (!st) mkdirpSync(dest);
}

/** Exports the built image under its tags (or its ID when untagged). */
async function exportOutput(store: import('@tsbuild/storage').Store, refs: string[], out: OutputSpec): Promise<void> {
  if (findSink(out.type)) {
    await store.save(refs, out.dest, out.type);
    return;
  }
  const { chainID } = await store.imageChain(refs[0]!);
  if (out.type === 'local') prepareLocalDest(out.dest);
  if (chainID === null) return;
  const rootfs = await store.layers.mount(chainID);
  try {
    if (out.type === 'local') {
      mergeTree(rootfs, out.dest);
    } else {
      const sink = out.dest === '-' ? process.stdout : fs.createWriteStream(out.dest);
      await pipeline(packDir(rootfs, { whiteouts: 'none' }), sink, { end: out.dest !== '-' });
    }
  } finally {
    await store.layers.unmount(chainID);
  }
}
