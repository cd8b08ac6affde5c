// The storage root as one object: the layer store (driver + layer metadata), the image store (an OCI
// layout), the build cache's records and the transports, wired together. Layers live as long as a
// root reaches them (see the liveness model in layers/store.ts); removal is a sweep over what is
// unreachable, so no reference count can drift after a crash.
import { AsyncLocalStorage } from 'node:async_hooks';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { decompress } from './archive';
import { TsbuildError, describeSystemError, shortName } from './errors';
import { chainIDs, type Digest } from './digest';
import { MediaTypes } from './content';
import { ImageStore, configPlatform, formatPlatform, hostPlatform, parseReference, type ImageConfig, type RemoveResult, type ImageResolveOptions } from './image';
import type { Platform } from './content';
import { LayerStore, type Layer } from './layers';
import { BuildCache, type CacheMode } from './cache';
import type { DriverChoice } from './drivers';
import { mountsUnder } from './drivers/mountinfo';
import { detach } from './drivers/perform';
import { isAlive, ownedName, ownerOf } from './drivers/proc';
import type { FsckReport } from './fsck';
import { createLease, readLeases } from './lease';
import { inUserNamespace } from './rootless';
import { removeCgroupsNamedIn, removeStaleCgroups } from './runtime/cgroups';
import { Containers } from './containers';
import type { CacheWriteResult, LayerImporter, ExportRecord, LoadedCache, PullOptions, PullResult, PushOptions, PushResult, SaveFormat, SaveOptions } from './transport';

// Loaded when first used: most commands (a cached build, images, run) never move images in or out.
const transport = () => import('./transport/index.js');
import { mkdirpSync } from './atomic';
import type { RegistryClientOptions } from './transport/registry-client';
import { randomBytes } from '@tsbuild/native';

/** Where a shared build cache is kept: an OCI layout folder or a registry reference. */
export type CacheTarget = { dir: string } | { ref: string };

/**
 * A lazy layer's blob read from its shared build cache: fetched because a command needs the layer's
 * files, or streamed by a save or push.
 */
export interface LayerFetch {
  /** The blob's digest (the layer's compressed form). */
  digest: Digest;
  /** Bytes of the blob. */
  size: number;
  /** Where it is read from: the registry reference or the folder. */
  from: string;
}

/**
 * How lazy layers are fetched by what runs inside Store.withRemoteAccess (a command's registry
 * options; a listener for its progress output).
 */
export interface RemoteAccess {
  /** Options for the registry a lazy layer's blob is in (its host given). */
  registry?: RegistryClientOptions | ((host: string) => RegistryClientOptions);
  /** Hears of each lazy layer's blob read from its cache (one line of progress: `fetching layer … from …`). */
  onFetch?: (fetch: LayerFetch) => void;
}

/** The RemoteAccess of the call in progress (Store.withRemoteAccess), for fetches deep below it. */
const currentAccess = new AsyncLocalStorage<RemoteAccess>();

export interface StoreOptions {
  /** overlay2 | vfs | aufs; default: what the root already uses, else overlay2 where it works, else vfs. */
  driver?: DriverChoice;
  /** Receives one-line notices (e.g. the fall back to vfs). */
  onNotice?: (message: string) => void;
  /** Remove what crashed processes left at open (default true; fsck looks first). */
  repair?: boolean;
  /**
   * How lazy layers are fetched when no Store.withRemoteAccess call says otherwise (default: the
   * registries' default options, no progress).
   */
  remoteAccess?: RemoteAccess;
  /**
   * The rootless mode (a user namespace, see rootless.ts) is taken when the process runs in one; `true`
   * insists on it (refused outside a user namespace), `false` refuses it.
   */
  rootless?: boolean;
}

/** The one line a non-root caller gets, from the library and the CLI alike. */
export const ROOT_REQUIRED_MESSAGE =
  'tsbuild needs root or a user namespace: it mounts layers (overlay), creates namespaces and cgroups; ' +
  'run it with sudo, or call reexecInUserNamespace() first (the rootless mode)';

/**
 * Refuses to go on without root (effective uid 0, of the host or of a user namespace), before anything
 * touches a storage root.
 */
export function requireRoot(opts: { rootless?: boolean | undefined } = {}): void {
  if (typeof process.geteuid === 'function' && process.geteuid() !== 0) throw new TsbuildError('EPERM', ROOT_REQUIRED_MESSAGE);
  if (opts.rootless === true && !inUserNamespace()) {
    throw new TsbuildError('EPERM', 'rootless: true needs a user namespace: call reexecInUserNamespace() first');
  }
  if (opts.rootless === false && inUserNamespace()) {
    throw new TsbuildError('EPERM', 'rootless: false, but this process runs in a user namespace');
  }
}

export interface ImportOptions {
  /** The history comment (docker import -m). */
  message?: string;
  /** Config changes (a subset of docker import -c): CMD/ENTRYPOINT/ENV/WORKDIR/USER as JSON or text. */
  config?: Partial<ImageConfig['config']>;
  onProgress?: (bytes: number) => void;
  /** The platform the rootfs is for (import --platform); default this host's. */
  platform?: Platform;
}

export interface Lease {
  add(chain: string | null): Promise<void>;
  release(): Promise<void>;
}

export class Store {
  private constructor(
    readonly root: string,
    readonly layers: LayerStore,
    readonly images: ImageStore,
    /** The build cache: its records are roots of the layer sweep. */
    readonly cache: BuildCache,
    private readonly defaultAccess: RemoteAccess,
  ) {}

  /**
   * Runs `fn` with `access` for every lazy layer it fetches or streams (a `run`, a save, a push, a
   * build step): the registry options of the command that needs the bytes, and its progress listener.
   * Nested calls see the innermost access, merged over the outer one.
   */
  withRemoteAccess<T>(access: RemoteAccess, fn: () => Promise<T>): Promise<T> {
    return currentAccess.run({ ...this.remoteAccess(), ...access }, fn);
  }

  private remoteAccess(): RemoteAccess {
    return currentAccess.getStore() ?? this.defaultAccess;
  }

  /**
   * Lazily held layers (shared build cache hits) are read through the transports with the caller's
   * registry options, and a fetch keeps the blob as the layer's own compressed form: once fetched,
   * saves and pushes serve the layer from the store, whether or not its cache is still there.
   */
  private wireRemoteLayers(): void {
    this.layers.setRemoteHooks({
      open: async (remote) => {
        const { registry, onFetch } = this.remoteAccess();
        const from = remote.location.replace(/^(registry|local):/, '');
        const host = remote.location.startsWith('registry:') ? parseReference(from).domain : '';
        onFetch?.({ digest: remote.blob.digest as Digest, size: remote.blob.size, from });
        return (await transport()).openRemoteBlob(remote, typeof registry === 'function' ? registry(host) : (registry ?? {}));
      },
      keep: async (layer, open) => {
        const blob = layer.remote!.blob;
        // Staged before the blob is opened: its errors have a reader from the first byte on.
        const writer = await this.images.content.ingest();
        try {
          await pipeline(await open(), writer.stream);
        } catch (err) {
          await writer.abort();
          throw err;
        }
        let created = false;
        const kept = await writer.commit(blob.digest, blob.mediaType, () => (created = true));
        return {
          open: () => this.images.content.open(kept.digest, { size: kept.size }),
          record: () => this.images.recordLayerBlob(layer.diffID, kept, layer.size),
          discard: async () => {
            if (created) await this.images.content.delete(kept.digest);
          },
        };
      },
    });
  }

  static async open(root: string, opts: StoreOptions = {}): Promise<Store> {
    requireRoot(opts);
    const abs = prepareRoot(root);
    const layers = await LayerStore.open(abs, { driver: opts.driver ?? 'auto', repair: opts.repair !== false });
    if (layers.notice) opts.onNotice?.(layers.notice);
    const images = await ImageStore.open(abs, { layerSource: layers });
    const store = new Store(abs, layers, images, new BuildCache(abs), opts.remoteAccess ?? {});
    store.wireRemoteLayers();
    images.setHooks({
      onImageDeleted: () => store.collectLayers().then(() => undefined),
      leasedDiffIDs: () => store.leasedDiffIDs(),
    });
    if (opts.repair !== false) await store.repairLeftovers();
    return store;
  }

  /** Removes what dead processes left: work layers, scratch directories, empty cgroups. */
  async repairLeftovers(): Promise<void> {
    await this.removeOrphanWorkLayers();
    await this.removeOrphanScratch();
    await new Containers(this).settleOrphans();
    removeStaleCgroups();
  }

  /**
   * A name for a throwaway RW layer (a build step's) that records its owner process, so that a
   * `kill -9` in the middle of a step leaves nothing the next open does not remove.
   */
  static workLayerName(kind: string): string {
    return ownedName(`${kind}-${randomBytes(6).toString('hex')}`);
  }

  /**
   * A new scratch directory under `<root>/tmp`, named after this process: what a killed process leaves
   * there is removed by the next open.
   */
  async scratch(kind: string): Promise<string> {
    const dir = path.join(this.root, 'tmp', ownedName(`${kind}-${randomBytes(6).toString('hex')}`));
    mkdirpSync(dir, 0o700); // one mkdir: inline, not a pool round trip
    return dir;
  }

  private async removeOrphanScratch(): Promise<void> {
    const dir = path.join(this.root, 'tmp');
    let names: string[];
    try {
      names = fs.readdirSync(dir); // inline: usually empty, and a pool round trip costs more
    } catch {
      names = [];
    }
    for (const name of names) {
      const owner = ownerOf(name);
      if (owner !== null && isAlive(owner)) continue;
      // A mount the dead process left inside (a bind of a host directory) goes first: rm must never
      // delete through it.
      for (const m of mountsUnder(path.join(dir, name))) await detach(m);
      removeCgroupsNamedIn(path.join(dir, name)); // a container's state dir: its groups stayed too
      await fs.promises.rm(path.join(dir, name), { recursive: true, force: true });
    }
  }

  private async removeOrphanWorkLayers(): Promise<void> {
    for (const rw of this.layers.listRW()) {
      const owner = ownerOf(rw.name);
      if (owner === null || isAlive(owner)) continue;
      await this.layers.removeRW(rw.name).catch(() => {
        // Still mounted by a live process (a bind of it elsewhere): the next open retries.
      });
    }
  }

  get driverName(): string {
    return this.layers.driver.name;
  }

  /**
   * A rootfs tarball (plain or compressed) becomes a one-layer image, like `docker import`. The
   * uncompressed bytes are kept as the layer blob (their digest is the diffID), since our own tar of
   * the extracted tree would hash differently.
   */
  async importTarball(source: string | Readable, ref: string | undefined, opts: ImportOptions = {}): Promise<{ id: Digest; diffID: Digest }> {
    const input = typeof source === 'string' ? openTarball(source) : source;
    const tar = decompress(input);
    let bytes = 0;
    const toLayer = new PassThrough({ highWaterMark: 1 << 20 });
    const ingest = await this.images.content.ingest();
    tar.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      opts.onProgress?.(bytes);
    });
    tar.pipe(toLayer);
    tar.pipe(ingest.stream);
    let layer: Layer;
    try {
      const [registered] = await Promise.all([this.layers.register(null, toLayer), finished(ingest.stream)]);
      layer = registered;
      await ingest.commit(layer.diffID, MediaTypes.ociLayer);
    } catch (err) {
      tar.destroy();
      await ingest.abort();
      throw err;
    }
    const now = new Date().toISOString();
    const platform = opts.platform ?? hostPlatform();
    const config: ImageConfig = {
      created: now,
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { ...(opts.config ?? {}) },
      rootfs: { type: 'layers', diff_ids: [layer.diffID] },
      history: [{ created: now, created_by: 'tsbuild import', ...(opts.message ? { comment: opts.message } : {}) }],
    };
    const created = await this.images.createImage({
      layers: [{ diffID: layer.diffID, size: layer.size }],
      config,
      tags: ref ? [ref] : [],
    });
    return { id: created.id, diffID: layer.diffID };
  }

  /** Loads a docker-archive or OCI archive (plain or compressed); returns the references it tagged. */
  async load(file: string, onProgress?: SaveOptions['onProgress']): Promise<{ images: string[]; ids: string[] }> {
    const t = await transport();
    return this.withLeasedImporter((importer) => t.loadArchive(this.images, file, { importer, ...(onProgress ? { onProgress } : {}) }));
  }

  /**
   * Saves images through the sink registered as `format` (transport/sinks): `docker-oci` (what docker
   * save writes since Docker 25, read by docker load, podman load and OCI tools), `oci`, `docker`, or
   * `oci-layout` (`out` is then a directory).
   */
  async save(images: string[], out: string, format: SaveFormat, opts: SaveOptions & { remoteAccess?: RemoteAccess } = {}): Promise<void> {
    const { remoteAccess, ...save } = opts;
    const t = await transport();
    await this.withRemoteAccess(remoteAccess ?? {}, () => t.saveImages(this.images, images, format, out, save));
  }

  /**
   * Pushes an image to a registry (`dest` defaults to `ref`, which then names the registry). Lazy
   * layers read for it use the push's auth file; its credentials and TLS setting only on the
   * destination's registry (a cache elsewhere gets its own defaults).
   */
  async push(ref: string, dest?: string, opts: PushOptions & { remoteAccess?: RemoteAccess } = {}): Promise<PushResult> {
    const { remoteAccess, ...push } = opts;
    const t = await transport();
    const target = parseReference(dest ?? ref).domain;
    const outer = this.remoteAccess().registry;
    const registry = (host: string): RegistryClientOptions => {
      const base = typeof outer === 'function' ? outer(host) : (outer ?? {});
      const { credentials, tlsVerify, authFile, env, userAgent } = push;
      return { ...base, ...pickRegistryOptions({ authFile, env, userAgent }), ...(host === target ? pickRegistryOptions({ credentials, tlsVerify }) : {}) };
    };
    return this.withRemoteAccess({ registry, ...remoteAccess }, () => t.pushImage(this.images, ref, dest, push));
  }

  /**
   * Writes build-cache records and their layers' gzip blobs as a shared cache (`build --cache-to`):
   * to an OCI layout folder (`{ dir }`) or a registry reference (`{ ref }`).
   */
  async exportBuildCache(to: CacheTarget, records: readonly ExportRecord[], opts: RegistryClientOptions & { mode?: CacheMode } = {}): Promise<CacheWriteResult> {
    const t = await transport();
    return t.writeCache(this.images, 'dir' in to ? t.layoutCacheLocation(to.dir) : t.registryCacheLocation(to.ref, opts), records, opts.mode);
  }

  /** A shared build cache (`build --cache-from`); undefined when there is none. */
  async readBuildCache(from: CacheTarget, opts: RegistryClientOptions = {}): Promise<LoadedCache | undefined> {
    const t = await transport();
    return t.readCache('dir' in from ? t.layoutCacheLocation(from.dir) : t.registryCacheLocation(from.ref, opts));
  }

  /** Pulls an image from a registry into the layer store and tags it. */
  async pull(ref: string, opts: Omit<PullOptions, 'importer'> = {}): Promise<PullResult> {
    // `pull --platform` of a name that holds other platforms keeps them: the name becomes an index.
    const before = opts.platform ? await this.images.platformImages(ref).catch(() => []) : [];
    const t = await transport();
    const result = await this.withLeasedImporter((importer) => t.pullImage(this.images, ref, { ...opts, importer }));
    const pulled = await this.images.resolve(result.manifestDigest);
    const platform = configPlatform(pulled.config);
    const others = before.filter((c) => formatPlatform(c.platform) !== formatPlatform(platform));
    if (others.length > 0 && !parseReference(ref).digest) {
      await this.images.createIndex([...others, { manifest: pulled.manifestDescriptor, platform }], [result.reference]);
    }
    return result;
  }

  /**
   * Runs an import (load, pull) whose layers stay leased until it returns: between one layer and the
   * next, and until the image is written, no root reaches the layers imported so far.
   */
  private async withLeasedImporter<T>(run: (importer: LayerImporter) => Promise<T>): Promise<T> {
    const lease = await this.lease();
    try {
      return await run(this.layers.leasedImporter(lease));
    } finally {
      await lease.release();
    }
  }

  /**
   * Keeps chains alive for as long as this process runs (a build between committing a layer and
   * writing its image): the sweep treats a live owner's lease as a root, a dead owner's as garbage.
   */
  async lease(): Promise<Lease> {
    const file = await createLease(path.join(this.root, 'leases'));
    return {
      add: (chain: string | null) => (chain === null ? Promise.resolve() : file.add(chain)),
      release: () => file.release(),
    };
  }

  /** Chains held by the leases of live processes; leases of dead processes are removed. */
  private async leasedChains(): Promise<string[]> {
    return (await readLeases(path.join(this.root, 'leases'))).live;
  }

  /**
   * The diffIDs of every layer under a leased chain: the image store keeps their blobs, so that an
   * image a build writes later can still be saved from a base whose image was removed meanwhile
   * (an imported layer's tar cannot be rebuilt from its diff directory byte for byte).
   */
  private async leasedDiffIDs(): Promise<Set<Digest>> {
    const out = new Set<Digest>();
    const seen = new Set<string>();
    for (const chain of await this.leasedChains()) {
      let cur: Digest | null = chain as Digest;
      while (cur && !seen.has(cur) && this.layers.has(cur)) {
        seen.add(cur);
        const layer = this.layers.get(cur);
        out.add(layer.diffID);
        cur = layer.parent;
      }
    }
    return out;
  }

  /** The chain ID of an image's top layer, or null for an image without layers. */
  async imageChain(refOrId: string, opts: ImageResolveOptions = {}): Promise<{ id: Digest; chainID: Digest | null; config: ImageConfig }> {
    const img = await this.images.resolve(refOrId, opts);
    const chains = chainIDs(img.config.rootfs?.diff_ids ?? []);
    const top = chains.length > 0 ? chains[chains.length - 1]! : null;
    if (top !== null && !this.layers.has(top)) {
      throw new Error(`image ${refOrId}: its layers are missing from the store (chain ${top})`);
    }
    return { id: img.id, chainID: top, config: img.config };
  }

  async removeImage(refOrId: string, opts: { force?: boolean } = {}): Promise<RemoveResult> {
    return this.images.remove(refOrId, opts);
  }

  /**
   * Removes committed layers no root reaches any more: not in an image, not under a RW layer, not
   * named by a build-cache record, not leased. Children go before parents. Returns how many layers
   * were removed.
   */
  async collectLayers(): Promise<number> {
    // Mark and sweep under the layer lock: no layer can be committed (and leased) in between.
    return this.layers.lock.withExclusive(() => this.sweepLayers());
  }

  private async sweepLayers(): Promise<number> {
    const live = new Set<string>();
    const markChain = (chain: string | null) => {
      let cur = chain;
      while (cur && !live.has(cur) && this.layers.has(cur as Digest)) {
        live.add(cur);
        cur = this.layers.get(cur as Digest).parent;
      }
    };
    // Every platform image of an index too, not only the one this host would pick.
    for (const diffIDs of await this.images.allImageLayers()) {
      const chains = chainIDs(diffIDs);
      markChain(chains[chains.length - 1] ?? null);
    }
    for (const rw of this.layers.listRW()) markChain(rw.parent);
    for (const chain of await this.cache.liveChains()) markChain(chain);
    for (const chain of await this.leasedChains()) markChain(chain);
    const dead = this.layers.list().filter((l) => !live.has(l.chainID));
    const depth = new Map<string, number>();
    const depthOf = (l: Layer): number => {
      const known = depth.get(l.chainID);
      if (known !== undefined) return known;
      const d = l.parent && this.layers.has(l.parent) ? depthOf(this.layers.get(l.parent)) + 1 : 0;
      depth.set(l.chainID, d);
      return d;
    };
    dead.sort((a, b) => depthOf(b) - depthOf(a));
    let removed = 0;
    for (const layer of dead) {
      try {
        await this.layers.remove(layer.chainID);
        removed++;
      } catch {
        // Mounted or still has a child being created by another process: the next sweep gets it.
      }
    }
    return removed;
  }

  /**
   * `tsbuild fsck`: checks blobs, layer blobs, images, layers, mounts and leftovers; with `repair`
   * removes what is wrong or orphaned. Open the store with `repair: false` to see what crashed
   * processes left before open removes it.
   */
  async fsck(opts: { repair?: boolean } = {}): Promise<FsckReport> {
    return (await import('./fsck.js')).fsck(this, opts);
  }

  /** `tsbuild prune`: untagged images, orphan blobs, then unreachable layers. */
  async prune(): Promise<{ images: number; blobs: number; layers: number; bytes: number }> {
    // Blobs younger than the grace period may belong to a pull or load still under way.
    const r = await this.images.prune();
    const layers = await this.collectLayers();
    return { images: r.deletedImages.length, blobs: r.deletedBlobs, layers, bytes: r.reclaimedBytes };
  }

  async close(): Promise<void> {
    await this.layers.close();
  }
}

/** Pseudo filesystems a storage root must never be on: mkdir there fails or, worse, loops. */
const PSEUDO_FS_ROOTS = ['/proc', '/sys'];

/**
 * The storage root as an absolute path, created if missing. Refused with a one-line TsbuildError: a
 * root under /proc or /sys (checked on the real path of its nearest existing ancestor, so a symlink
 * into /proc is caught too), an existing non-directory, a path that cannot be created.
 */
export function prepareRoot(root: string): string {
  const abs = path.resolve(root);
  // Every existing prefix, resolved: a symlink through /proc (`/proc/self/root` is "/") shows on the way.
  let prefix = '/';
  for (const part of abs.split('/').filter(Boolean)) {
    prefix = path.join(prefix, part);
    let real: string;
    try {
      real = fs.realpathSync(prefix);
    } catch {
      break; // missing from here on: created below
    }
    const pseudo = PSEUDO_FS_ROOTS.find((p) => prefix === p || prefix.startsWith(`${p}/`) || real === p || real.startsWith(`${p}/`));
    if (pseudo) throw new TsbuildError('EINVALIDROOT', `storage root ${shortName(root)} is under ${pseudo}: use a directory on a real filesystem`);
    if (real === '/') throw new TsbuildError('EINVALIDROOT', `storage root ${shortName(root)} resolves to /: use a directory of its own`);
  }
  if (abs === '/') throw new TsbuildError('EINVALIDROOT', 'storage root / is not allowed: use a directory of its own');
  const st = fs.statSync(abs, { throwIfNoEntry: false });
  if (st && !st.isDirectory()) throw new TsbuildError('EINVALIDROOT', `storage root ${shortName(root)} is not a directory`);
  try {
    mkdirpSync(abs, 0o711);
  } catch (err) {
    throw new TsbuildError('EINVALIDROOT', `cannot create storage root ${shortName(root)}: ${describeSystemError(err as NodeJS.ErrnoException)}`, { cause: err });
  }
  return abs;
}

function openTarball(file: string): Readable {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    throw new TsbuildError('ENOENT', `cannot import ${shortName(file)}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : describeSystemError(err as NodeJS.ErrnoException)}`, { cause: err });
  }
  if (!st.isFile()) throw new TsbuildError('EINVAL', `cannot import ${shortName(file)}: not a regular file`);
  return fs.createReadStream(file, { highWaterMark: 1 << 20 });
}

/** The registry settings among a call's options (set ones only). */
function pickRegistryOptions(opts: { [K in keyof RegistryClientOptions]?: RegistryClientOptions[K] | undefined }): RegistryClientOptions {
  const out: RegistryClientOptions = {};
  if (opts.tlsVerify !== undefined) out.tlsVerify = opts.tlsVerify;
  if (opts.credentials !== undefined) out.credentials = opts.credentials;
  if (opts.authFile !== undefined) out.authFile = opts.authFile;
  if (opts.env !== undefined) out.env = opts.env;
  if (opts.userAgent !== undefined) out.userAgent = opts.userAgent;
  return out;
}
