// The build backend on a real storage root: work layers are RW layers of the layer store, RUN goes
// through the container runtime, images are written into the OCI-layout image store.
import * as fsp from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { MediaTypes, Store, runContainer, type Platform, type BuildCache, type CacheWriteResult, type Digest, type Descriptor, type ExportRecord, type Lease, type RegistryClientOptions } from '@tsbuild/storage';
import type { BuildBackend, LayerView, ResolvedImage, RunRequest, RunResult, SharedCacheSource, WorkLayer } from './backend';
import type { CacheDestination, CacheExportSpec, CacheImportSpec } from './shared-cache';
import type { ImageConfig } from './image-config';

export class StoreBackend implements BuildBackend {
  /** Original blobs of base-image layers, reused in the built manifest (diffID → descriptor). */
  private readonly baseBlobs = new Map<string, Descriptor>();

  constructor(
    readonly store: Store,
    /** For pulls and shared caches (lazy fetches get them from Store.withRemoteAccess). */
    private readonly registry: RegistryClientOptions = {},
  ) {}

  get root(): string {
    return this.store.root;
  }

  get cache(): BuildCache {
    return this.store.cache;
  }

  scratch(kind: string): Promise<string> {
    return this.store.scratch(kind);
  }

  async resolveImage(ref: string, platform?: Platform): Promise<ResolvedImage> {
    const opts = platform ? { platform } : {};
    const img = await this.store.images.resolve(ref, opts);
    const { chainID } = await this.store.imageChain(img.id);
    // Leased at once: an rmi of the base from now on keeps its layers and blobs for our image. One
    // that ran before the lease was written has deleted the image, which resolving again tells.
    await this.hold(chainID);
    await this.store.images.resolve(img.id);
    for (const l of img.layers) this.baseBlobs.set(l.diffID, l.descriptor);
    return { id: img.id, ref, config: img.config as unknown as ImageConfig, chainID };
  }

  async pullImage(ref: string, platform?: Platform): Promise<void> {
    await this.store.pull(ref, { ...this.registry, ...(platform ? { platform } : {}) });
  }

  async writeIndex(images: { manifestDigest: string; platform: Platform }[]): Promise<string> {
    const children = [];
    for (const i of images) {
      const info = await this.store.images.content.info(i.manifestDigest as Digest);
      children.push({ manifest: { mediaType: MediaTypes.ociManifest, digest: i.manifestDigest as Digest, size: info.size }, platform: i.platform });
    }
    return (await this.store.images.createIndex(children)).digest;
  }

  async readSharedCache(spec: CacheImportSpec): Promise<SharedCacheSource | undefined> {
    const cache = await this.store.readBuildCache(spec.type === 'local' ? { dir: spec.src } : { ref: spec.ref }, this.registry);
    if (!cache) return undefined;
    return {
      ref: cache.ref,
      records: cache.records,
      ...(cache.mode ? { mode: cache.mode } : {}),
      // Lazily: the layer's files are fetched only when something needs them (ensurePresent). Leased
      // before it is visible: a sweep between this and the cache record must not take the layer.
      holdLayer: (record) => cache.holdLayer(this.store.layers, record, { lease: { add: (chain) => this.hold(chain) } }),
    };
  }

  writeSharedCache(spec: CacheExportSpec & CacheDestination, records: readonly ExportRecord[]): Promise<CacheWriteResult> {
    return this.store.exportBuildCache(spec.type === 'local' ? { dir: spec.dest } : { ref: spec.ref }, records, { ...this.registry, mode: spec.mode ?? 'min' });
  }

  async hasLayer(chainID: string): Promise<boolean> {
    return this.store.layers.has(chainID as Digest);
  }

  async createWorkLayer(parent: string | null, opts: { onFetch?: (line: string) => void } = {}): Promise<WorkLayer> {
    const layers = this.store.layers;
    // A parent held lazily (a shared cache hit) is fetched now: said, so a CI log shows what moved.
    await layers.ensurePresent(parent as Digest | null, {
      onFetch: (l) => opts.onFetch?.(`fetching layer ${l.chainID} (${l.remote?.blob.size ?? '?'} bytes) from ${l.remote?.location.replace(/^(registry|local):/, '')}`),
    });
    const name = Store.workLayerName('build');
    const rw = await layers.createRW(parent as Digest | null, name);
    let rootfs: string;
    try {
      rootfs = await rw.mount();
    } catch (err) {
      await layers.removeRW(name).catch(() => {});
      throw err;
    }
    const lease = { add: (chain: string) => this.hold(chain) };
    let state: 'mounted' | 'unmounted' | 'gone' = 'mounted';
    const unmount = async () => {
      if (state === 'mounted') {
        await rw.unmount();
        state = 'unmounted';
      }
    };
    return {
      rootfs,
      ...(this.store.driverName === 'overlay2' ? { upper: rw.diffPath } : {}),
      async commit(opts) {
        await unmount();
        if (!(await layers.hasChanges(name))) {
          await layers.removeRW(name);
          state = 'gone';
          return { chainID: parent ?? '', diffID: '', size: 0, empty: true };
        }
        const layer = await layers.commitRW(name, { lease, ...(opts.clampMtime !== undefined ? { clampMtime: opts.clampMtime } : {}) });
        state = 'gone';
        return { chainID: layer.chainID, diffID: layer.diffID, size: layer.size, empty: false };
      },
      async discard() {
        if (state === 'gone') return;
        await unmount().catch(() => {});
        await layers.removeRW(name).catch(() => {});
        state = 'gone';
      },
    };
  }

  async viewLayer(chainID: string | null): Promise<LayerView> {
    if (chainID === null) {
      const dir = await this.store.scratch('scratch');
      return { rootfs: dir, release: () => fsp.rm(dir, { recursive: true, force: true }) };
    }
    const rootfs = await this.store.layers.mount(chainID as Digest);
    let released = false;
    return {
      rootfs,
      release: async () => {
        if (released) return;
        released = true;
        await this.store.layers.unmount(chainID as Digest);
      },
    };
  }

  async run(req: RunRequest): Promise<RunResult> {
    const scratch: string[] = [];
    const mounts = [];
    for (const m of req.mounts) {
      if (m.type === 'bind') mounts.push({ source: m.source, target: m.target, readonly: m.readonly });
      else {
        // A private directory stands in for a tmpfs: it is never part of the layer either.
        const dir = await this.store.scratch('tmpfs');
        await fsp.chmod(dir, 0o1777); // like a fresh tmpfs: writable by the step's USER too
        scratch.push(dir);
        mounts.push({ source: dir, target: m.target, readonly: false });
      }
    }
    try {
      const container = await runContainer({
        stateDir: await this.store.scratch('ctr'),
        rootfs: req.rootfs,
        args: req.args,
        env: req.env,
        cwd: req.cwd,
        ...(req.user ? { user: req.user } : {}),
        network: req.network,
        mounts,
        stdio: 'pipe',
        noNewPrivileges: false,
        ...req.runtime,
        ...(req.privileged ? { privileged: true } : {}),
        ...(req.seccomp !== undefined ? { seccomp: req.seccomp } : {}),
      });
      const cancel = () => container.kill('SIGKILL');
      if (req.signal?.aborted) cancel();
      req.signal?.addEventListener('abort', cancel, { once: true });
      const copies = [
        container.stdout ? pipeline(container.stdout, req.stdout, { end: false }) : Promise.resolve(),
        container.stderr ? pipeline(container.stderr, req.stderr, { end: false }) : Promise.resolve(),
      ];
      const exit = await container.wait();
      req.signal?.removeEventListener('abort', cancel);
      await Promise.allSettled(copies);
      return { exitCode: exit.exitCode, signal: exit.signal, oomKilled: exit.oomKilled };
    } finally {
      for (const dir of scratch) await fsp.rm(dir, { recursive: true, force: true });
    }
  }

  async writeImage(config: ImageConfig, layers: { diffID: string; chainID: string }[]): Promise<{ imageId: string; manifestDigest: string }> {
    const entries = layers.map((l) => {
      const blob = this.baseBlobs.get(l.diffID);
      if (blob) return { diffID: l.diffID as Digest, blob };
      return { diffID: l.diffID as Digest, size: this.store.layers.get(l.chainID as Digest).size };
    });
    const created = await this.store.images.createImage({
      layers: entries,
      config: config as unknown as Parameters<Store['images']['createImage']>[0]['config'],
    });
    return { imageId: created.id, manifestDigest: created.manifest.digest };
  }

  private lease: Promise<Lease> | undefined;

  async hold(chainID: string | null): Promise<void> {
    if (chainID === null) return;
    this.lease ??= this.store.lease();
    await (await this.lease).add(chainID);
  }

  async releaseHolds(): Promise<void> {
    if (this.lease) await (await this.lease).release();
    this.lease = undefined;
  }

  async tag(ref: string, imageId: string): Promise<string> {
    await this.store.images.tag(ref, imageId);
    return ref;
  }
}
