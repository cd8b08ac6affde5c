// The library entry point: build({ context, tags, ... }, { onEvent }) on a storage root.
import { Store, type StoreOptions } from '@tsbuild/storage';
import { build as runBuild, type BuildHooks, type BuildOptions, type BuildResult } from './builder';
import { StoreBackend } from './store-backend';

export type { BuildOptions, BuildHooks, BuildResult } from './builder';
export { BuildError } from './errors';
export type { BuildBackend } from './backend';
export type { CacheExportSpec, CacheImportSpec } from './shared-cache';
export { StoreBackend } from './store-backend';
// The build cache lives in storage (its records are roots of the layer sweep); re-exported for
// callers that reached it here.
export { BuildCache, type CacheRecord } from '@tsbuild/storage';
export { ConfigState, scratchConfig, type ImageConfig, type ContainerConfig, type HistoryEntry } from './image-config';

export interface BuildStoreOptions {
  /** An open store (the caller keeps ownership), or where to open one. */
  store?: Store;
  /** Storage root (default TSBUILD_ROOT or /var/lib/tsbuild). */
  root?: string;
  storageDriver?: StoreOptions['driver'];
}

/** Builds a Dockerfile into an image in the store and tags it; resolves to the image ID and digests. */
export async function build(opts: BuildOptions, hooks: BuildHooks & BuildStoreOptions = {}): Promise<BuildResult> {
  const own = !hooks.store;
  const root = hooks.root ?? process.env.TSBUILD_ROOT ?? '/var/lib/tsbuild';
  const store = hooks.store ?? (await Store.open(root, hooks.storageDriver ? { driver: hooks.storageDriver } : {}));
  try {
    const backend = new StoreBackend(store, opts.registry);
    // The build's registry options reach the lazy layers it fetches too (a step on a cache hit).
    return await (opts.registry ? store.withRemoteAccess({ registry: opts.registry }, () => runBuild(opts, backend, hooks)) : runBuild(opts, backend, hooks));
  } finally {
    if (own) await store.close();
  }
}
