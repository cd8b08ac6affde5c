// The image store: tags, manifests and configs on top of the content store's OCI layout.
//
// index.json is the tag table. Each tagged image is one entry whose annotation
// `org.opencontainers.image.ref.name` holds the FAMILIAR reference (`app:latest`,
// `localhost:5000/x/y:v1`), so `skopeo inspect oci:<root>/oci:app:latest` finds it. An image that lost
// its last tag but was not removed (a "dangling" image, like docker's <none>) stays as an entry without
// annotations until prune(). Internally names are compared in normalized form
// (`docker.io/library/app:latest`).
//
// Concurrency: every index.json or blobinfo change runs under the exclusive `<root>/images.lock` and
// is written with writeFileAtomic; reads take it shared. Blob writes take no lock (content-addressed,
// staged then renamed); prune() spares blobs that a live load or pull leases (stageBlobs), and other
// blobs younger than a grace period, so that blobs written just before their manifest is tagged are
// not swept; a failed load or pull deletes what it wrote itself.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { TMP_PREFIX, writeFileAtomic } from '../atomic';
import { LayerBlobInfo, type LayerInfo } from '../content/blobinfo';
import { ContentStore } from '../content/store';
import { MediaTypes, layerCompression, type Descriptor, type LayerBlobSource, type Platform } from '../content/types';
import { chainIDs, parseDigest, type Digest } from '../digest';
import { createLease, readLeases } from '../lease';
import { StoreLock } from '../lock';
import { describePlatforms, formatPlatform, hostPlatform, normalizePlatform, platformMatches, selectPlatform } from './platform';
import { familiarString, formatReference, parseReference, type ImageReference } from './reference';
import { ANNOTATION_REF_NAME, type HistoryEntry, type ImageConfig, type ImageIndex, type ImageManifest } from './types';
import { TsbuildError, shortName, userError } from '../errors';
import { MANIFEST_MEDIA_TYPES, checkConfig, checkIndex, checkManifest, documentMediaType, isIndexDocument, pairLayers } from './decode';

export interface ImageStoreOptions {
  /** Produces built layers' tars for manifests that name a layer blob not yet on disk. */
  layerSource?: LayerBlobSource;
  /**
   * Called after an image's manifest and config were deleted (outside the image lock, see lock.ts),
   * with the image's diffIDs bottom-up, so the layer store can release its layers.
   */
  onImageDeleted?: (diffIDs: Digest[], imageId: Digest) => Promise<void> | void;
  /** Shortest image ID prefix accepted (default 12, docker's short ID). */
  shortIdMinLength?: number;
  /**
   * diffIDs that running operations hold (a build's base layers, until its image is written): their
   * blobs are kept as if an image reached them, since the new image will name them.
   */
  leasedDiffIDs?: () => Promise<Iterable<Digest>> | Iterable<Digest>;
}

export interface ImageLayer {
  diffID: Digest;
  /** The blob the manifest names (compressed, or the uncompressed tar whose digest is the diffID). */
  descriptor: Descriptor;
}

export interface ResolvedImage {
  /** The image ID: the config digest. */
  id: Digest;
  manifest: ImageManifest;
  manifestDescriptor: Descriptor;
  config: ImageConfig;
  configDescriptor: Descriptor;
  layers: ImageLayer[];
  /** Familiar references tagging this manifest (`app:latest`). */
  tags: string[];
  /** The platform its config names (`linux/arm64`). */
  platform: string;
  /** When the reference names an image index: its descriptor and every platform it holds. */
  index?: { descriptor: Descriptor; platforms: string[] };
}

export interface ImageResolveOptions {
  /**
   * The platform wanted: picked from an index, and checked against a single image's config (a
   * mismatch is an error). Without it an index yields this host's platform, else its first image.
   */
  platform?: Platform;
}

/** One platform image of a new image index (`manifest create`, a multi-platform build). */
export interface IndexChild {
  manifest: Descriptor;
  platform: Platform;
}

export interface ImageSummary {
  /** Familiar reference, or null for an untagged image. */
  ref: string | null;
  id: Digest;
  manifestDigest: Digest;
  created: string | null;
  /** Sum of the uncompressed layer sizes (compressed size where unknown). */
  size: number;
  /** The image's platform (`linux/amd64`); an index lists all of its platforms, comma-separated. */
  platform: string;
  /** Of `size`, the bytes of layers held lazily (a shared build cache's hits): known, not fetched. Absent when 0. */
  notFetched?: number;
}

export interface ImageHistoryItem {
  /** The image ID for the newest entry, null for the others (docker prints <missing>). */
  id: Digest | null;
  created: string | null;
  createdBy: string;
  comment: string;
  emptyLayer: boolean;
  /** Uncompressed size of the entry's layer, 0 for empty layers. */
  size: number;
  diffID: Digest | null;
}

export interface RemoveResult {
  untagged: string[];
  deleted: Digest[];
}

export interface PruneResult {
  deletedImages: Digest[];
  deletedBlobs: number;
  reclaimedBytes: number;
}

export interface CreateImageLayer {
  diffID: Digest;
  /** The blob to name in the manifest; when absent, the uncompressed tar (digest = diffID, `size` needed). */
  blob?: Descriptor;
  /** Uncompressed size of the layer tar. */
  size?: number;
}

export interface CreateImageOptions {
  layers: CreateImageLayer[];
  /** The config; `rootfs` is replaced by the layers' diffIDs. */
  config: Partial<ImageConfig> & { architecture: string; os: string };
  /** References to tag the new image with, atomically with its creation. */
  tags?: string[];
  annotations?: Record<string, string>;
}

export interface CreatedImage {
  id: Digest;
  manifest: Descriptor;
  config: Descriptor;
}

/** Grace period for prune's orphan-blob sweep (blobs written but not yet referenced). */
export const DEFAULT_PRUNE_GRACE_MS = 60 * 60 * 1000;

interface IndexEntry {
  descriptor: Descriptor;
  /** Normalized reference (`docker.io/library/app:latest`), or null when untagged or unparsable. */
  name: string | null;
}

/** See ImageStore.stageBlobs. */
export interface StagedBlobs {
  /** Leases blob `d`; call it before checking that the blob is there and relying on it. */
  hold(d: Digest): Promise<void>;
  /** An OnCreated for the content store's writes: the blob is this operation's (and leased). */
  created(d: Digest): void;
  /** The operation succeeded (its images reach what they need): drops the lease. */
  release(): Promise<void>;
  /** The operation failed: deletes the blobs it created that nothing reaches or leases. */
  abandon(): Promise<void>;
}

export class ImageNotFoundError extends TsbuildError {
  constructor(readonly ref: string) {
    super('ENOIMAGE', `image not found: ${shortName(ref)}`);
  }
}

export class ImageStore {
  readonly lock: StoreLock;
  readonly blobInfo: LayerBlobInfo;

  private constructor(
    readonly root: string,
    readonly content: ContentStore,
    private readonly opts: ImageStoreOptions,
  ) {
    this.lock = new StoreLock(path.join(root, 'images.lock'));
    this.blobInfo = new LayerBlobInfo(path.join(root, 'blobinfo.json'));
  }

  /** Opens the store at `<root>` (layout in `<root>/oci`), creating it if missing. */
  static async open(root: string, opts: ImageStoreOptions = {}): Promise<ImageStore> {
    const abs = path.resolve(root);
    const lock = new StoreLock(path.join(abs, 'images.lock'));
    // Under the lock: index.json and blobinfo.json are only ever written under it, so any
    // writeFileAtomic temporary found now was left by a crash.
    const content = await lock.withExclusive(async () => {
      const cs = await ContentStore.open(path.join(abs, 'oci'), { layerSource: opts.layerSource });
      // Listed inline: two small directories every command opens (a pool round trip each costs more).
      for (const dir of [abs, cs.dir]) {
        for (const name of fs.readdirSync(dir)) {
          if (name.startsWith(TMP_PREFIX)) await fsp.rm(path.join(dir, name), { force: true });
        }
      }
      return cs;
    });
    return new ImageStore(abs, content, opts);
  }

  /** Late binding of the layer store's hooks (it is usually opened after the image store). */
  setHooks(hooks: ImageStoreOptions): void {
    if (hooks.layerSource !== undefined) this.content.setLayerSource(hooks.layerSource);
    Object.assign(this.opts, hooks);
  }

  // ---- index.json ----

  /**
   * index.json's text, or undefined when there is none. Synchronous: it is small and most commands read
   * it several times, and a pool round trip costs more than the read (README, Performance).
   */
  private readIndexText(): string | undefined {
    try {
      return fs.readFileSync(this.content.indexPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async readIndex(): Promise<ImageIndex> {
    const text = this.readIndexText();
    if (text === undefined) return { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] };
    let index: ImageIndex;
    try {
      index = JSON.parse(text);
    } catch (err) {
      throw new Error(`${this.content.indexPath} is not valid JSON: ${(err as Error).message}`);
    }
    if (!index || !Array.isArray(index.manifests)) throw new Error(`${this.content.indexPath}: no "manifests" array`);
    return index;
  }

  private async entries(): Promise<IndexEntry[]> {
    const index = await this.readIndex();
    return index.manifests.map((descriptor) => ({ descriptor, name: entryName(descriptor) }));
  }

  private async writeEntries(entries: IndexEntry[]): Promise<void> {
    const index: ImageIndex = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: entries.map((e) => e.descriptor) };
    const text = JSON.stringify(index);
    // A rebuild that changes nothing (same image, same tags) costs no write and no fsync.
    const current = this.readIndexText();
    if (current === text) return;
    await writeFileAtomic(this.content.indexPath, text);
  }

  // ---- tags ----

  /** Points `ref` at a manifest (a descriptor, or any image `resolve` accepts). */
  async tag(ref: string, target: Descriptor | string): Promise<void> {
    const parsed = parseTagReference(ref);
    // A name of an image index tags the index itself, not the platform image this host would pick.
    const descriptor =
      typeof target === 'string'
        ? manifestEntryDescriptor(await this.lock.withShared(async () => this.findManifest(await this.entries(), target)))
        : manifestEntryDescriptor(target);
    if (!(await this.content.has(descriptor.digest))) throw new Error(`cannot tag ${ref}: manifest ${descriptor.digest} is not in the store`);
    await this.lock.withExclusive(async () => {
      const entries = applyTag(await this.entries(), parsed, descriptor);
      await this.writeEntries(entries);
    });
  }

  /** Removes a tag; the image stays (untagged if it was its last tag). Returns the manifest it named. */
  async untag(ref: string): Promise<Descriptor> {
    const name = formatReference(parseTagReference(ref));
    return this.lock.withExclusive(async () => {
      const entries = await this.entries();
      const i = entries.findIndex((e) => e.name === name);
      if (i < 0) throw new ImageNotFoundError(ref);
      const removed = entries.splice(i, 1)[0]!; // i >= 0
      if (!entries.some((e) => e.descriptor.digest === removed.descriptor.digest)) {
        entries.push({ descriptor: withoutRefName(removed.descriptor), name: null });
      }
      await this.writeEntries(entries);
      return withoutRefName(removed.descriptor);
    });
  }

  // ---- reading ----

  /**
   * Finds an image by `name[:tag]`, `name@digest`, a full image ID (config digest, with or without
   * `sha256:`), or a short ID (≥12 hex digits, unambiguous).
   */
  async resolve(refOrId: string, opts: ImageResolveOptions = {}): Promise<ResolvedImage> {
    return this.lock.withShared(async () => {
      const entries = await this.entries();
      const manifestDesc = await this.findManifest(entries, refOrId);
      const img = await this.load(manifestDesc, entries, opts.platform);
      if (opts.platform && !img.index && !platformMatches(configPlatform(img.config), opts.platform)) {
        throw userError(`image ${shortName(refOrId)} is for ${img.platform}, not ${formatPlatform(opts.platform)}`);
      }
      return img;
    });
  }

  /** The image index a reference names, or undefined when it names a single image. */
  async resolveIndex(refOrId: string): Promise<{ descriptor: Descriptor; index: ImageIndex } | undefined> {
    return this.lock.withShared(async () => {
      const desc = await this.findManifest(await this.entries(), refOrId);
      const raw = await this.content.readJson<unknown>(desc.digest);
      if (!isIndexDocument(raw, desc.mediaType)) return undefined;
      return { descriptor: withoutRefName(desc), index: checkIndex(raw, `image index ${desc.digest}`) };
    });
  }

  /** The platform images a reference names: each of an index's, or the one image with its config's platform. */
  async platformImages(refOrId: string): Promise<IndexChild[]> {
    const found = await this.resolveIndex(refOrId);
    if (found) return found.index.manifests.filter((m) => m.platform).map((m) => ({ manifest: { mediaType: m.mediaType, digest: m.digest, size: m.size }, platform: m.platform! }));
    const img = await this.resolve(refOrId);
    return [{ manifest: img.manifestDescriptor, platform: configPlatform(img.config) }];
  }

  /**
   * Writes an OCI image index over stored platform images and records it under `tags` (the tags
   * point at the index, as docker buildx and podman manifest do). Two images of one platform are refused.
   */
  async createIndex(children: IndexChild[], tags: string[] = []): Promise<Descriptor> {
    const seen = new Set<string>();
    for (const c of children) {
      const p = formatPlatform(c.platform);
      if (seen.has(p)) throw userError(`two images for platform ${p}: an index holds one image per platform`);
      seen.add(p);
      if (!(await this.content.has(c.manifest.digest))) throw new Error(`manifest ${c.manifest.digest} is not in the store`);
    }
    const index: ImageIndex = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: children.map((c) => ({ mediaType: c.manifest.mediaType, digest: c.manifest.digest, size: c.manifest.size, platform: normalizePlatform(c.platform) })),
    };
    const desc = await this.content.putJson(index, MediaTypes.ociIndex);
    await this.addIndex(desc, index, tags);
    return desc;
  }

  /** Records a stored image index under `tags` (untagged if none); its images need no entries of their own. */
  async addIndex(desc: Descriptor, index: ImageIndex, tags: string[]): Promise<void> {
    const parsed = tags.map(parseTagReference);
    const entry = manifestEntryDescriptor({ ...desc, mediaType: index.mediaType ?? MediaTypes.ociIndex });
    const childDigests = new Set(index.manifests.map((m) => m.digest));
    await this.lock.withExclusive(async () => {
      // Untagged entries of its platform images (a multi-platform build's) are reached through the index now.
      let entries = (await this.entries()).filter((e) => e.name !== null || !childDigests.has(e.descriptor.digest));
      for (const t of parsed) entries = applyTag(entries, t, entry);
      if (!entries.some((e) => e.descriptor.digest === entry.digest)) entries.push({ descriptor: entry, name: null });
      await this.writeEntries(entries);
    });
  }

  private async findManifest(entries: IndexEntry[], input: string): Promise<Descriptor> {
    if (typeof input !== 'string' || input.trim() === '') throw userError('image reference is empty');
    const hex = input.startsWith('sha256:') ? input.slice(7) : input;
    if (/^[0-9a-f]{64}$/.test(hex)) {
      const d = `sha256:${hex}` as Digest;
      const byConfig = await this.manifestsWithConfig(entries, (id) => id === d);
      if (byConfig.length > 0) return byConfig[0]!.descriptor;
      const byManifest = entries.find((e) => e.descriptor.digest === d);
      if (byManifest) return withoutRefName(byManifest.descriptor);
      throw new ImageNotFoundError(input);
    }
    let ref: ImageReference | undefined;
    let refError: Error | undefined;
    try {
      ref = parseReference(input);
    } catch (err) {
      refError = err as Error;
    }
    if (ref?.digest) {
      const d = ref.digest;
      const e = entries.find((x) => x.descriptor.digest === d);
      if (e) return withoutRefName(e.descriptor);
      throw new ImageNotFoundError(input);
    }
    if (ref) {
      const name = formatReference(ref);
      const e = entries.find((x) => x.name === name);
      if (e) return e.descriptor;
    }
    // Docker also accepts an unambiguous prefix of an image ID.
    const isPrefix = /^[0-9a-f]{1,63}$/.test(hex) && hex.length >= (this.opts.shortIdMinLength ?? 12);
    if (isPrefix) {
      const matches = await this.manifestsWithConfig(entries, (id) => id.startsWith(`sha256:${hex}`));
      const ids = new Set(matches.map((m) => m.id));
      if (ids.size > 1) throw userError(`image ID prefix "${input}" is ambiguous: it matches ${ids.size} images; give more digits`);
      if (matches.length > 0) return matches[0]!.descriptor;
    }
    if (refError && !isPrefix) throw refError;
    throw new ImageNotFoundError(input);
  }

  /** Index entries (one per manifest digest) whose image's config digest satisfies `pred`. */
  private async manifestsWithConfig(
    entries: IndexEntry[],
    pred: (id: Digest) => boolean,
  ): Promise<{ descriptor: Descriptor; id: Digest }[]> {
    const out: { descriptor: Descriptor; id: Digest }[] = [];
    const seen = new Set<Digest>();
    for (const e of entries) {
      if (seen.has(e.descriptor.digest)) continue;
      seen.add(e.descriptor.digest);
      const m = await this.tryManifest(e.descriptor);
      if (m && pred(m.manifest.config.digest)) out.push({ descriptor: withoutRefName(e.descriptor), id: m.manifest.config.digest });
      // The other platform images of an index are found by their IDs too (run, rmi, inspect by ID).
      for (const child of m?.index?.manifests ?? []) {
        if (seen.has(child.digest) || child.digest === m?.descriptor.digest) continue;
        seen.add(child.digest);
        const c = await this.tryManifest(child);
        if (c && pred(c.manifest.config.digest)) out.push({ descriptor: c.descriptor, id: c.manifest.config.digest });
      }
    }
    return out;
  }

  /** The image manifest behind an index entry (choosing this host's platform from an index). */
  private async tryManifest(desc: Descriptor): Promise<{ manifest: ImageManifest; descriptor: Descriptor; index?: ImageIndex } | null> {
    try {
      return await this.readManifest(desc);
    } catch {
      return null;
    }
  }

  /** Reads the image manifest that `desc` names, descending through image indexes to this platform. */
  async readManifest(desc: Descriptor, depth = 0, platform?: Platform): Promise<{ manifest: ImageManifest; descriptor: Descriptor; index?: ImageIndex }> {
    const raw = await this.content.readJson<unknown>(desc.digest);
    const mediaType = documentMediaType(raw, desc.mediaType);
    if (isIndexDocument(raw, desc.mediaType)) {
      if (depth > 4) throw new TsbuildError('EBADMETA', `image index ${desc.digest} nests too deeply`);
      const index = checkIndex(raw, `image index ${desc.digest}`);
      // Without a wanted platform: this host's, else the first image (so images and inspect show it).
      const child = platform ? selectPlatform(index.manifests, platform) : (selectPlatform(index.manifests, hostPlatform()) ?? index.manifests.find((m) => m.platform));
      if (!child) {
        throw userError(`no image for ${formatPlatform(platform ?? hostPlatform())} in its index (it has ${describePlatforms(index.manifests)})`);
      }
      return { ...(await this.readManifest(child, depth + 1, platform)), index };
    }
    if (!MANIFEST_MEDIA_TYPES.has(mediaType) && !(raw as { config?: unknown } | null)?.config) throw new Error(`blob ${desc.digest} is not an image manifest (${mediaType})`);
    const manifest = checkManifest(raw, `manifest ${desc.digest}`);
    return { manifest, descriptor: { mediaType, digest: desc.digest, size: desc.size } };
  }

  private async load(entryDesc: Descriptor, entries: IndexEntry[], platform?: Platform): Promise<ResolvedImage> {
    const { manifest, descriptor, index } = await this.readManifest(entryDesc, 0, platform);
    const config = checkConfig(await this.content.readJson<unknown>(manifest.config.digest), `image config ${manifest.config.digest}`);
    const layers = pairLayers(manifest, config, (detail) => new TsbuildError('EBADMETA', `manifest ${descriptor.digest}: ${detail}`));
    const tags = entries
      .filter((e) => e.name !== null && (e.descriptor.digest === entryDesc.digest || e.descriptor.digest === descriptor.digest))
      .map((e) => familiarString(parseReference(e.name!)));
    return {
      id: manifest.config.digest,
      manifest,
      manifestDescriptor: descriptor,
      config,
      configDescriptor: manifest.config,
      layers,
      tags,
      platform: formatPlatform(configPlatform(config)),
      ...(index
        ? { index: { descriptor: withoutRefName(entryDesc), platforms: index.manifests.filter((m) => m.platform).map((m) => formatPlatform(m.platform!)) } }
        : {}),
    };
  }

  /**
   * One row per tag, plus one per untagged image. `hideParents`: leave out untagged images other
   * images were built from (docker images shows those with -a only).
   */
  async list(opts: { hideParents?: boolean } = {}): Promise<ImageSummary[]> {
    return this.lock.withShared(async () => {
      const entries = await this.entries();
      const info = await this.blobInfo.read();
      const out: ImageSummary[] = [];
      const cache = new Map<Digest, ResolvedImage | null>();
      for (const e of entries) {
        let img = cache.get(e.descriptor.digest);
        if (img === undefined) {
          img = await this.load(e.descriptor, entries).catch(() => null);
          cache.set(e.descriptor.digest, img);
        }
        if (!img) continue;
        out.push({
          ref: e.name ? familiarString(parseReference(e.name)) : null,
          id: img.id,
          manifestDigest: img.manifestDescriptor.digest,
          created: img.config.created ?? null,
          size: this.imageSize(img, info),
          platform: img.index ? img.index.platforms.join(',') : img.platform,
        });
        const notFetched = this.notFetchedSize(img, info);
        if (notFetched > 0) out[out.length - 1]!.notFetched = notFetched;
      }
      if (!opts.hideParents) return out;
      const parents = parentIds([...cache.values()].filter((x): x is ResolvedImage => x !== null));
      return out.filter((row) => row.ref !== null || !parents.has(row.id));
    });
  }

  /**
   * Each layer's size as docker shows it: the bytes of its files where the layer store counted them,
   * else its uncompressed tar (or blob) size.
   */
  private layerSizes(img: ResolvedImage, info: Map<Digest, LayerInfo>): number[] {
    const chains = chainIDs(img.layers.map((l) => l.diffID));
    return img.layers.map((l, i) => this.opts.layerSource?.contentSize?.(chains[i]!) ?? layerSize(l, info));
  }

  private notFetchedSize(img: ResolvedImage, info: Map<Digest, LayerInfo>): number {
    const source = this.opts.layerSource;
    if (!source?.isPresent) return 0;
    const chains = chainIDs(img.layers.map((l) => l.diffID));
    const sizes = this.layerSizes(img, info);
    return sizes.reduce((sum, size, i) => (source.isPresent!(chains[i]!) ? sum : sum + size), 0);
  }

  private imageSize(img: ResolvedImage, info: Map<Digest, LayerInfo>): number {
    return this.layerSizes(img, info).reduce((a, b) => a + b, 0);
  }

  /** Build history, newest first (like `docker history`). */
  async history(refOrId: string): Promise<ImageHistoryItem[]> {
    const img = await this.resolve(refOrId);
    const info = await this.blobInfo.read();
    const sizes = this.layerSizes(img, info);
    const history: HistoryEntry[] = img.config.history ?? [];
    const items: ImageHistoryItem[] = [];
    let layer = 0;
    for (const h of history) {
      const empty = h.empty_layer === true;
      const l = empty ? undefined : img.layers[layer++];
      items.push({
        id: null,
        created: h.created ?? null,
        createdBy: h.created_by ?? '',
        comment: h.comment ?? '',
        emptyLayer: empty,
        size: l ? sizes[layer - 1]! : 0,
        diffID: l?.diffID ?? null,
      });
    }
    // Layers the history does not account for (configs without history).
    for (; layer < img.layers.length; layer++) {
      const l = img.layers[layer]!;
      items.push({ id: null, created: null, createdBy: '', comment: '', emptyLayer: false, size: sizes[layer]!, diffID: l.diffID });
    }
    items.reverse();
    if (items.length > 0) items[0]!.id = img.id;
    return items;
  }

  /** A docker-inspect-like description of an image. */
  async inspect(refOrId: string, opts: ImageResolveOptions = {}): Promise<Record<string, unknown>> {
    const img = await this.resolve(refOrId, opts);
    const info = await this.blobInfo.read();
    const c = img.config;
    const out: Record<string, unknown> = {
      Id: img.id,
      RepoTags: img.tags,
      RepoDigests: [],
      Parent: '',
      Comment: c.history?.[c.history.length - 1]?.comment ?? '',
      Created: c.created ?? '',
      Author: c.author ?? '',
      Config: c.config ?? {},
      Architecture: c.architecture,
      Os: c.os,
      Size: this.imageSize(img, info),
      RootFS: { Type: 'layers', Layers: img.layers.map((l) => l.diffID) },
      Metadata: { ManifestDigest: img.manifestDescriptor.digest, ManifestMediaType: img.manifestDescriptor.mediaType },
    };
    if (c.variant) out.Variant = c.variant;
    if (c['os.version']) out.OsVersion = c['os.version'];
    if (img.index) out.Platforms = img.index.platforms;
    if (img.index) (out.Metadata as Record<string, unknown>).IndexDigest = img.index.descriptor.digest;
    return out;
  }

  // ---- writing ----

  /** Writes config and manifest (OCI media types) and records the image in index.json. */
  async createImage(opts: CreateImageOptions): Promise<CreatedImage> {
    const layerDescs: Descriptor[] = [];
    for (const l of opts.layers) {
      parseDigest(l.diffID);
      if (l.blob) {
        layerDescs.push({ mediaType: l.blob.mediaType, digest: l.blob.digest, size: l.blob.size, ...(l.blob.annotations ? { annotations: l.blob.annotations } : {}) });
        continue;
      }
      let size = l.size;
      if (size === undefined) {
        if (!(await this.content.has(l.diffID))) {
          throw new Error(`createImage: layer ${l.diffID} needs a blob descriptor or its uncompressed size`);
        }
        size = (await this.content.info(l.diffID)).size;
      }
      layerDescs.push({ mediaType: MediaTypes.ociLayer, digest: l.diffID, size });
    }
    // Keep the conventional key order: created/author/architecture/os/config..., then rootfs, history.
    const ordered: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(opts.config)) if (k !== 'rootfs' && k !== 'history') ordered[k] = v;
    ordered.rootfs = { type: 'layers', diff_ids: opts.layers.map((l) => l.diffID) };
    if (opts.config.history) ordered.history = opts.config.history;
    const configDesc = await this.content.putJson(ordered, MediaTypes.ociConfig);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: configDesc,
      layers: layerDescs,
      ...(opts.annotations ? { annotations: opts.annotations } : {}),
    };
    const manifestDesc = await this.content.putJson(manifest, MediaTypes.ociManifest);
    const sizes = opts.layers
      .filter((l) => l.size !== undefined)
      .map((l) => ({ diffID: l.diffID, blob: l.blob ?? { mediaType: MediaTypes.ociLayer, digest: l.diffID, size: l.size! }, size: l.size! }));
    await this.addImage(manifestDesc, opts.tags ?? [], sizes);
    return { id: configDesc.digest, manifest: manifestDesc, config: configDesc };
  }

  /**
   * Records a stored manifest in index.json with `tags` (untagged if none), atomically, plus what is
   * known about its layers' blobs.
   */
  async addImage(
    manifest: Descriptor,
    tags: string[],
    layerBlobs: { diffID: Digest; blob: Descriptor; size?: number }[] = [],
  ): Promise<void> {
    const parsed = tags.map(parseTagReference);
    if (!(await this.content.has(manifest.digest))) throw new Error(`manifest ${manifest.digest} is not in the store`);
    const desc = manifestEntryDescriptor(manifest);
    await this.lock.withExclusive(async () => {
      let entries = await this.entries();
      for (const t of parsed) entries = applyTag(entries, t, desc);
      if (!entries.some((e) => e.descriptor.digest === desc.digest)) entries.push({ descriptor: desc, name: null });
      await this.writeEntries(entries);
      if (layerBlobs.length > 0) {
        await this.blobInfo.update((layers) => {
          for (const l of layerBlobs) LayerBlobInfo.addCompressed(layers, l.diffID, l.blob, l.size);
        });
      }
    });
  }

  /**
   * The blob in a shared build cache of a lazily held layer with this diffID: a compressed form that
   * pushes name and mount, and that saves stream, without the layer's files. Fetched or not, unless
   * `lazyOnly` (what serves a save or push: a fetched layer is served from the store).
   */
  remoteLayerForm(diffID: Digest, opts: { lazyOnly?: boolean } = {}): { location: string; blob: Descriptor; open: () => Promise<Readable> } | undefined {
    const source = this.opts.layerSource;
    const remote = source?.remoteForm?.(diffID, opts);
    if (!remote || !source?.openRemote) return undefined;
    return { ...remote, open: () => source.openRemote!(remote) };
  }

  /** Records a compressed blob for a layer (and its uncompressed size), for reuse by later saves. */
  async recordLayerBlob(diffID: Digest, blob: Descriptor, uncompressedSize?: number): Promise<void> {
    await this.lock.withExclusive(() => this.blobInfo.update((layers) => LayerBlobInfo.addCompressed(layers, diffID, blob, uncompressedSize)));
  }

  /** A stored compressed blob for `diffID` in `mediaType`, if one was recorded and is still present. */
  async findLayerBlob(diffID: Digest, mediaType: string): Promise<Descriptor | undefined> {
    const info = await this.blobInfo.get(diffID);
    const kind = layerCompression(mediaType);
    for (const c of info?.compressed ?? []) {
      // Docker and OCI media types of one compression are interchangeable.
      if (layerCompression(c.mediaType) === kind && (await this.content.has(c.digest))) return { ...c, mediaType };
    }
    return undefined;
  }

  /**
   * fsck's repair: drops the index entries naming these manifests (an image that cannot be trusted
   * or used); returns what they were called (tags, or digests of untagged entries).
   */
  async forgetEntries(manifests: Set<Digest>): Promise<string[]> {
    return this.lock.withExclusive(async () => {
      const entries = await this.entries();
      const gone = entries.filter((e) => manifests.has(e.descriptor.digest));
      if (gone.length === 0) return [];
      await this.writeEntries(entries.filter((e) => !manifests.has(e.descriptor.digest)));
      return gone.map((e) => (e.name ? familiarString(parseReference(e.name)) : e.descriptor.digest));
    });
  }

  /** fsck's repair: forgets that `blob` is a form of `diffID`. */
  async forgetLayerBlob(diffID: Digest, blob: Digest): Promise<void> {
    await this.lock.withExclusive(() =>
      this.blobInfo.update((layers) => {
        const info = layers.get(diffID);
        if (info?.compressed) info.compressed = info.compressed.filter((c) => c.digest !== blob);
      }),
    );
  }

  /** Writes every blob of an image to disk (materializing built layers), so external tools can copy it. */
  async materializeImage(refOrId: string): Promise<ResolvedImage> {
    const img = await this.resolve(refOrId);
    for (const l of img.layers) {
      if (await this.content.has(l.descriptor.digest)) continue;
      if (layerCompression(l.descriptor.mediaType) !== 'none' || !(await this.content.materialize(l.descriptor.digest))) {
        throw new Error(`image ${refOrId}: layer blob ${l.descriptor.digest} is missing and cannot be rebuilt`);
      }
    }
    return img;
  }

  /**
   * Tracks the blobs an operation (load, pull) relies on before an image names them. They are leased
   * while this process lives, so prune and other operations' clean-up leave them alone; when the
   * operation fails, `abandon` deletes those it wrote that nothing else reaches or leases.
   */
  async stageBlobs(): Promise<StagedBlobs> {
    const lease = await createLease(this.blobLeaseDir);
    const created = new Set<Digest>();
    let failed: unknown;
    return {
      hold: (d) => lease.add(d),
      created: (d) => {
        created.add(d);
        lease.add(d).catch((err) => (failed ??= err));
      },
      release: async () => {
        await lease.release();
        if (failed !== undefined) throw failed;
      },
      abandon: async () => {
        await lease.release();
        await this.lock.withExclusive(async () => {
          const { blobs } = await this.reachable(await this.entries());
          const { live } = await readLeases(this.blobLeaseDir);
          const leased = new Set(live);
          for (const d of created) if (!blobs.has(d) && !leased.has(d)) await this.content.delete(d);
        });
      },
    };
  }

  private get blobLeaseDir(): string {
    return path.join(this.root, 'blob-leases');
  }

  // ---- removing ----

  /**
   * Docker-like rmi: a tag that is not the image's last is just untagged; otherwise (or for an ID)
   * the image is deleted. Deleting by ID an image with several tags needs `force`. A container made
   * from it keeps its layers: its RW layer is a root of the layer sweep (layers/store.ts).
   */
  async remove(refOrId: string, opts: { force?: boolean } = {}): Promise<RemoveResult> {
    const result: RemoveResult = { untagged: [], deleted: [] };
    let released: { diffIDs: Digest[]; id: Digest }[] = [];
    await this.lock.withExclusive(async () => {
      let entries = await this.entries();
      const target = await this.findManifest(entries, refOrId);
      const img = await this.load(target, entries);
      const byName = isNameReference(refOrId) && entries.some((e) => e.name === formatReference(parseReference(refOrId)));
      // Every manifest of this image (same config), e.g. a built one and a re-imported one.
      const sameImage = await this.manifestsWithConfig(entries, (id) => id === img.id);
      const manifestDigests = new Set(sameImage.map((m) => m.descriptor.digest));
      const tagged = entries.filter((e) => e.name !== null && manifestDigests.has(e.descriptor.digest));
      if (byName) {
        const name = formatReference(parseReference(refOrId));
        entries = entries.filter((e) => e.name !== name);
        result.untagged.push(familiarString(parseReference(name)));
        if (tagged.length > 1) {
          await this.writeEntries(keepDangling(entries, target));
          return;
        }
      } else if (tagged.length > 1 && !opts.force) {
        throw userError(
          `unable to delete image ${shortImageId(img.id)} (must be forced): it is tagged as ${tagged
            .map((e) => familiarString(parseReference(e.name!)))
            .join(', ')}`,
        );
      }
      // A parent of other images (they were built FROM it) is only untagged, as docker does: its
      // layers and blobs are the children's too. By ID it needs force (the children keep their layers).
      if (!opts.force && parentIds([img, ...(await this.loadAll(entries))]).has(img.id)) {
        if (!byName) throw userError(`unable to delete ${shortImageId(img.id)} (must be forced): image has dependent child images`);
        await this.writeEntries(keepDangling(entries, target));
        return;
      }
      for (const e of tagged) {
        const f = familiarString(parseReference(e.name!));
        if (!result.untagged.includes(f)) result.untagged.push(f);
      }
      entries = entries.filter((e) => !manifestDigests.has(e.descriptor.digest));
      await this.writeEntries(entries);
      const images = [{ img, entryDigests: [...manifestDigests] }];
      // An index's other platform images go with it (unless something else still reaches them).
      for (const child of (await this.readManifest(target)).index?.manifests ?? []) {
        const other = await this.load(child, entries).catch(() => null);
        if (other && other.id !== img.id) images.push({ img: other, entryDigests: [child.digest] });
      }
      released = await this.deleteUnreferenced(entries, images, result);
    });
    await this.release(released);
    return result;
  }

  /** Every image `entries` name, loaded (unreadable ones left out). */
  private async loadAll(entries: IndexEntry[]): Promise<ResolvedImage[]> {
    const out: ResolvedImage[] = [];
    for (const e of entries) {
      const img = await this.load(e.descriptor, entries).catch(() => null);
      if (img) out.push(img);
    }
    return out;
  }

  /** Removes untagged images (not parents of others) and blobs nothing references (older than `graceMs`). */
  async prune(opts: { graceMs?: number } = {}): Promise<PruneResult> {
    const grace = opts.graceMs ?? DEFAULT_PRUNE_GRACE_MS;
    const result: PruneResult = { deletedImages: [], deletedBlobs: 0, reclaimedBytes: 0 };
    let released: { diffIDs: Digest[]; id: Digest }[] = [];
    await this.lock.withExclusive(async () => {
      let entries = await this.entries();
      const dangling: { img: ResolvedImage; entryDigests: Digest[] }[] = [];
      const keep: IndexEntry[] = [];
      const parents = parentIds(await this.loadAll(entries));
      for (const e of entries) {
        if (e.name !== null) {
          keep.push(e);
          continue;
        }
        const img = await this.load(e.descriptor, entries).catch(() => null);
        if (img && parents.has(img.id)) keep.push(e); // a parent: docker keeps it too
        else if (img) dangling.push({ img, entryDigests: [e.descriptor.digest] });
      }
      entries = keep;
      await this.writeEntries(entries);
      const removed: RemoveResult = { untagged: [], deleted: [] };
      released = await this.deleteUnreferenced(entries, dangling, removed);
      result.deletedImages = removed.deleted;
      // Orphans: blobs reachable from no entry, except those a live operation leases and recent ones
      // not known to belong to an operation that died (see the header).
      const { blobs } = await this.reachable(entries);
      const leases = await readLeases(this.blobLeaseDir);
      const leased = new Set(leases.live);
      const abandoned = new Set(leases.dead);
      const now = Date.now();
      for (const d of await this.content.list()) {
        if (blobs.has(d) || leased.has(d)) continue;
        try {
          const st = await fsp.stat(this.content.blobPath(d));
          if (now - st.mtimeMs < grace && !abandoned.has(d)) continue;
          await fsp.unlink(this.content.blobPath(d));
          result.deletedBlobs++;
          result.reclaimedBytes += st.size;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
      await this.forgetUnreachableLayerInfo(blobs);
    });
    await this.release(released);
    return result;
  }

  /**
   * The diffIDs of every image the tags and untagged entries reach, each platform image of an index
   * included (the layer sweep's roots).
   */
  async allImageLayers(): Promise<Digest[][]> {
    return this.lock.withShared(async () => (await this.reachable(await this.entries())).images);
  }

  /** Every blob reachable from `entries`, and the diffIDs of every reachable image. */
  private async reachable(entries: IndexEntry[]): Promise<{ blobs: Set<Digest>; diffIDs: Set<Digest>; images: Digest[][] }> {
    const blobs = new Set<Digest>();
    const diffIDs = new Set<Digest>();
    const images: Digest[][] = [];
    const visit = async (desc: Descriptor, depth: number): Promise<void> => {
      if (blobs.has(desc.digest) || depth > 4) return;
      blobs.add(desc.digest);
      let doc: ImageManifest & ImageIndex;
      try {
        doc = await this.content.readJson(desc.digest);
      } catch {
        return;
      }
      if (Array.isArray(doc.manifests)) for (const m of doc.manifests) await visit(m, depth + 1);
      if (doc.config?.digest) {
        blobs.add(doc.config.digest);
        for (const l of doc.layers ?? []) blobs.add(l.digest);
        try {
          const config = await this.content.readJson<ImageConfig>(doc.config.digest);
          for (const d of config.rootfs?.diff_ids ?? []) diffIDs.add(d);
          images.push(config.rootfs?.diff_ids ?? []);
        } catch {
          // A missing config: nothing more is reachable through it.
        }
      }
    };
    for (const e of entries) await visit(e.descriptor, 0);
    for (const d of (await this.opts.leasedDiffIDs?.()) ?? []) diffIDs.add(d);
    // Compressed alternatives of layers still in use are kept for reuse.
    const info = await this.blobInfo.read();
    for (const d of diffIDs) {
      const li = info.get(d);
      blobs.add(d);
      for (const c of li?.compressed ?? []) blobs.add(c.digest);
    }
    return { blobs, diffIDs, images };
  }

  /** Deletes the manifests, configs and layer blobs of `images` that `entries` no longer reach. */
  private async deleteUnreferenced(
    entries: IndexEntry[],
    images: { img: ResolvedImage; entryDigests: Digest[] }[],
    result: RemoveResult,
  ): Promise<{ diffIDs: Digest[]; id: Digest }[]> {
    const { blobs, diffIDs } = await this.reachable(entries);
    const info = await this.blobInfo.read();
    const released: { diffIDs: Digest[]; id: Digest }[] = [];
    for (const { img, entryDigests } of images) {
      const candidates = new Set<Digest>([...entryDigests, img.manifestDescriptor.digest, img.id]);
      for (const l of img.layers) {
        candidates.add(l.descriptor.digest);
        if (!diffIDs.has(l.diffID)) {
          candidates.add(l.diffID);
          for (const c of info.get(l.diffID)?.compressed ?? []) candidates.add(c.digest);
        }
      }
      for (const d of candidates) if (!blobs.has(d)) await this.content.delete(d);
      if (!blobs.has(img.id)) {
        if (!result.deleted.includes(img.id)) result.deleted.push(img.id);
        released.push({ diffIDs: img.layers.map((l) => l.diffID), id: img.id });
      }
    }
    await this.forgetUnreachableLayerInfo(blobs);
    return released;
  }

  private async forgetUnreachableLayerInfo(reachableBlobs: Set<Digest>): Promise<void> {
    const info = await this.blobInfo.read();
    if ([...info.keys()].every((d) => reachableBlobs.has(d))) return;
    await this.blobInfo.update((layers) => {
      for (const d of [...layers.keys()]) if (!reachableBlobs.has(d)) layers.delete(d);
    });
  }

  private async release(released: { diffIDs: Digest[]; id: Digest }[]): Promise<void> {
    if (!this.opts.onImageDeleted) return;
    for (const r of released) await this.opts.onImageDeleted(r.diffIDs, r.id);
  }
}

// ---- helpers ----

/** The platform an image config names. */
export function configPlatform(config: ImageConfig): Platform {
  return { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
}

function entryName(desc: Descriptor): string | null {
  const raw = desc.annotations?.[ANNOTATION_REF_NAME];
  if (!raw) return null;
  try {
    const ref = parseReference(raw);
    return ref.digest ? null : formatReference(ref);
  } catch {
    return null;
  }
}

function parseTagReference(ref: string): ImageReference {
  const parsed = parseReference(ref);
  if (parsed.digest) throw userError(`cannot tag with a digest reference: ${ref}`);
  return parsed;
}

function withoutRefName(desc: Descriptor): Descriptor {
  const { annotations, ...rest } = desc;
  if (!annotations) return rest;
  const { [ANNOTATION_REF_NAME]: _drop, ...others } = annotations;
  return Object.keys(others).length > 0 ? { ...rest, annotations: others } : rest;
}

function manifestEntryDescriptor(desc: Descriptor): Descriptor {
  parseDigest(desc.digest);
  return withoutRefName({ mediaType: desc.mediaType, digest: desc.digest, size: desc.size, ...(desc.annotations ? { annotations: desc.annotations } : {}) });
}

/** Moves `ref` to `desc`; the manifest it leaves stays as an untagged entry if nothing else names it. */
function applyTag(entries: IndexEntry[], ref: ImageReference, desc: Descriptor): IndexEntry[] {
  const name = formatReference(ref);
  const old = entries.find((e) => e.name === name);
  let out = entries.filter((e) => e.name !== name && !(e.name === null && e.descriptor.digest === desc.digest));
  const base = withoutRefName(desc);
  out.push({
    descriptor: { ...base, annotations: { ...(base.annotations ?? {}), [ANNOTATION_REF_NAME]: familiarString(ref) } },
    name,
  });
  if (old && old.descriptor.digest !== desc.digest) out = keepDangling(out, old.descriptor);
  return out;
}

/** Re-adds `desc` as an untagged entry if no entry names its digest any more. */
/**
 * IDs of the images whose layers another image's layers extend: images built FROM them (docker's
 * parents). One pass over every proper prefix of every image's layer list.
 */
function parentIds(images: ResolvedImage[]): Set<Digest> {
  const prefixes = new Set<string>();
  for (const img of images) {
    let key = '';
    for (let n = 0; n < img.layers.length - 1; n++) prefixes.add((key += `${img.layers[n]!.diffID},`));
  }
  const out = new Set<Digest>();
  for (const img of images) {
    if (img.layers.length > 0 && prefixes.has(img.layers.map((l) => `${l.diffID},`).join(''))) out.add(img.id);
  }
  return out;
}

function keepDangling(entries: IndexEntry[], desc: Descriptor): IndexEntry[] {
  if (entries.some((e) => e.descriptor.digest === desc.digest)) return entries;
  return [...entries, { descriptor: withoutRefName(desc), name: null }];
}

function isNameReference(input: string): boolean {
  const hex = input.startsWith('sha256:') ? input.slice(7) : input;
  if (/^[0-9a-f]{64}$/.test(hex)) return false;
  try {
    return !parseReference(input).digest;
  } catch {
    return false;
  }
}

export function shortImageId(id: Digest): string {
  return id.slice(7, 19);
}

function layerSize(l: ImageLayer, info: Map<Digest, LayerInfo>): number {
  const known = info.get(l.diffID)?.size;
  if (known !== undefined) return known;
  return l.descriptor.size;
}

