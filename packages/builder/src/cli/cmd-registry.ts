// Registry commands: push and pull (OCI distribution API). Credentials come from the auth files
// (podman's auth.json, docker's ~/.docker/config.json), --authfile or --creds.
import type { Progress } from '@tsbuild/storage';
import type { Command } from './main';
import { UsageError } from './errors';
import { parseCommandArgs, parsePlatformFlag } from './parse';
import { progressLine } from './progress-line';
import { withStore } from './store';
import { REGISTRY_OPTIONS, REGISTRY_USAGE, normalizeRegistryArgs, registryOptions, remoteAccessOf } from './registry-flags';

const COMMON_OPTIONS = `${REGISTRY_USAGE}
  -q, --quiet              no progress`;
const PUSH_USAGE = `Usage: tsbuild push [OPTIONS] IMAGE [DESTINATION]

Push an image to a registry. Without DESTINATION, IMAGE names the registry (localhost:5000/app:v1).

Options:
${COMMON_OPTIONS}
      --chunk-size BYTES   upload blobs in chunks of this size (default: one request per blob)`;

const PULL_USAGE = `Usage: tsbuild pull [OPTIONS] IMAGE

Pull an image from a registry and tag it; prints the image ID.

Options:
${COMMON_OPTIONS}
      --platform P         the platform to pull from a multi-platform image (default: this host's);
                           a name that holds other platforms keeps them (it becomes an index)`;

const OPTIONS = {
  ...REGISTRY_OPTIONS,
  quiet: { type: 'boolean', short: 'q' },
} as const;

/** One progress line per byte phase (compress and import are counted in items, not shown). */
function progressFor(label: string, phase: Progress['phase'], quiet: boolean) {
  const line = progressLine(label);
  return {
    onProgress: (p: Progress) => {
      if (!quiet && p.phase === phase) line.update(p.done, p.total);
    },
    done: () => line.done(),
  };
}

export const pushCommand: Command = {
  summary: 'Push an image to a registry',
  usage: PUSH_USAGE,
  options: { ...OPTIONS, 'chunk-size': { type: 'string' } },
  async run(args, globals) {
    const { values, positionals } = parseCommandArgs(normalizeRegistryArgs(args), { ...OPTIONS, 'chunk-size': { type: 'string' } }, PUSH_USAGE);
    if (positionals.length < 1 || positionals.length > 2) throw new UsageError(`"push" needs an image and an optional destination\n${PUSH_USAGE}`);
    let chunkSize: number | undefined;
    if (values['chunk-size'] !== undefined) {
      chunkSize = Number(values['chunk-size']);
      if (!Number.isInteger(chunkSize) || chunkSize <= 0) throw new UsageError(`invalid --chunk-size "${values['chunk-size']}": a positive number of bytes`);
    }
    const [image, dest] = positionals as [string, string | undefined];
    const opts = registryOptions(values);
    return withStore(globals, async (store) => {
      const progress = progressFor('Pushing', 'write', values.quiet === true);
      // The progress line is cleared before anything else is printed, on success or failure.
      // A lazy layer pushed to another registry is read from its cache: said on stderr unless -q.
      const { onFetch } = remoteAccessOf(values, values.quiet === true);
      const res = await store
        .push(image, dest, { ...opts, ...(chunkSize ? { chunkSize } : {}), onProgress: progress.onProgress, ...(onFetch ? { remoteAccess: { onFetch } } : {}) })
        .finally(() => progress.done());
      process.stdout.write(`${res.reference}: digest: ${res.digest} size: ${res.size}\n`);
      return 0;
    });
  },
};

const PULL_OPTIONS = { ...OPTIONS, platform: { type: 'string' } } as const;

export const pullCommand: Command = {
  summary: 'Pull an image from a registry',
  usage: PULL_USAGE,
  options: PULL_OPTIONS,
  async run(args, globals) {
    const { values, positionals } = parseCommandArgs(normalizeRegistryArgs(args), PULL_OPTIONS, PULL_USAGE);
    if (positionals.length !== 1) throw new UsageError(`"pull" needs exactly one image\n${PULL_USAGE}`);
    const opts = { ...registryOptions(values), ...(values.platform ? { platform: parsePlatformFlag(values.platform) } : {}) };
    return withStore(globals, async (store) => {
      const progress = progressFor('Pulling', 'read', values.quiet === true);
      // The progress line is cleared before anything else is printed, on success or failure.
      const res = await store.pull(positionals[0]!, { ...opts, onProgress: progress.onProgress }).finally(() => progress.done());
      process.stdout.write(`${res.id}\n`);
      return 0;
    });
  },
};
