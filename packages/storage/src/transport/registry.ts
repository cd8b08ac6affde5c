// Push to and pull from an OCI distribution registry (docker-registry, Docker Hub, ghcr, quay, ...).
//
// Push: every layer goes out gzip-compressed: an image's own compressed blobs as they are, a built
// or imported uncompressed layer through the archive transport's gzipLayer (compressed once, then
// kept and reused, so a second push compresses nothing). Each blob is first looked up (HEAD), then
// mounted from another repository of the same registry that the store knows holds it (a local tag
// there, a shared build cache a lazy layer came from, or `mountFrom`), else uploaded, streamed from the store and verified on the way out. The
// manifest goes last: the original bytes when every layer was already compressed (its digest stays),
// else an OCI manifest naming the gzip blobs. A multi-platform image pushes each platform image by
// digest, then an index naming them as they went out, under the tag.
//
// Pull: the manifest (an index is resolved to this host's platform), the config and every missing
// layer blob are stored verified against their digests; the layers are handed bottom-up to the
// layer store (LayerImporter) as verified uncompressed streams, keeping the original blobs; the
// platform manifest is tagged with the reference.
import { Readable } from 'node:stream';
import type { Descriptor, Platform } from '../content/types';
import { DigestMismatchError, sha256OfBuffer, type Digest } from '../digest';
import { MediaTypes } from '../content/types';
import { familiarString, parseReference, type ImageReference } from '../image/reference';
import { hostPlatform, selectPlatform } from '../image/platform';
import { isImageId, storeImage, storeImagesAndIndexes } from '../image/local';
import { withLayers, type Image, type LayerBlob, type MultiPlatformImage } from '../image/model';
import type { ImageStore, StagedBlobs } from '../image/store';
import { checkConfig, checkIndex, checkLayerTypes, checkManifest, decodeWith, isIndexDocument, pairLayers, parseDocument } from '../image/decode';
import { CONFIG_MAX, type ProgressFn, writeProgress } from './common';
import { importImages, type LayerImporter } from './import';
import { userError } from './registry-auth';
import { RegistryClient, RegistryError, subjectOf, type RegistryClientOptions } from './registry-client';

export { RegistryClient, RegistryError, isLoopback, type RegistryClientOptions } from './registry-client';
export { authFilePaths, findCredentials, parseChallenge, type Challenge, type CredentialLookup, type Credentials } from './registry-auth';

export interface PushOptions extends RegistryClientOptions {
  /** Phases: 'compress' (layers, counted), 'write' (bytes sent or found on the registry). */
  onProgress?: ProgressFn;
  /** gzip level for layers compressed for this push (default: the archive transport's). */
  gzipLevel?: number;
  /** Upload in PATCH requests of this many bytes instead of one streamed PUT per blob. */
  chunkSize?: number;
  /** Repositories of the destination registry to try mounting blobs from (`team/base`). */
  mountFrom?: string[];
  /** Blob transfers at once (default 3). */
  concurrency?: number;
}

export interface PushResult {
  /** What was pushed: `localhost:5000/app:latest`. */
  reference: string;
  /** The manifest's digest and size, as the registry stores them. */
  digest: Digest;
  size: number;
  mediaType: string;
  blobs: { uploaded: number; existing: number; mounted: number };
  /** Bytes sent in uploads. */
  bytesUploaded: number;
}

export interface PullOptions extends RegistryClientOptions {
  importer: LayerImporter;
  /** Phases: 'read' (bytes downloaded or already stored), 'import' (layers, counted). */
  onProgress?: ProgressFn;
  /** The platform to pick from an image index (default: this host's). */
  platform?: Platform;
  concurrency?: number;
}

export interface PullResult {
  /** The reference as tagged (`localhost:5000/app:latest`), or `name@digest` for a pull by digest. */
  reference: string;
  /** The image ID (config digest). */
  id: Digest;
  /** The platform manifest stored and tagged. */
  manifestDigest: Digest;
  /** What the reference resolved to on the registry (an index's digest for a multi-platform image). */
  digest: Digest;
  blobs: { downloaded: number; existing: number };
}

const DEFAULT_CONCURRENCY = 3;

/** Runs `fn` over `items`, at most `limit` at a time; the first failure wins, the rest are awaited. */
async function eachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed !== undefined) throw failed;
}

interface BlobToPush {
  digest: Digest;
  size: number;
  open: () => Promise<Readable>;
}

/** Pushes image `ref` of the store to `dest` (default: `ref` itself, which then names the registry). */
export async function pushImage(store: ImageStore, ref: string, dest: string | undefined, opts: PushOptions = {}): Promise<PushResult> {
  const { images, indexes } = await storeImagesAndIndexes(store, [ref]);
  const img = images[0];
  if (dest === undefined && img && isImageId(ref, img.id)) throw userError(`push ${ref}: an image ID needs a destination (REGISTRY/REPOSITORY[:TAG])`);
  const target = parseReference(dest ?? ref);
  if (target.digest) throw userError(`cannot push to a digest reference: ${dest ?? ref}; give a tag`);
  const sources = await mountSources(store, target, opts.mountFrom ?? [], img ? [img] : indexes[0]!.images.map((i) => i.image));
  if (img) return pushTo(img, target, sources, opts);
  return pushIndex(indexes[0]!, target, sources, opts);
}

/**
 * Pushes a multi-platform image: each platform image by digest, then the index naming them (as they
 * went out: layers compressed for the push change a manifest's digest) under the tag.
 */
async function pushIndex(multi: MultiPlatformImage, target: ImageReference, sources: MountSources, opts: PushOptions): Promise<PushResult> {
  const manifests: Descriptor[] = [];
  const total: PushResult['blobs'] = { uploaded: 0, existing: 0, mounted: 0 };
  let bytesUploaded = 0;
  for (const { image, platform } of multi.images) {
    const pushed = await pushTo(image, target, sources, opts, 'digest');
    manifests.push({ mediaType: pushed.mediaType, digest: pushed.digest, size: pushed.size, platform });
    total.uploaded += pushed.blobs.uploaded;
    total.existing += pushed.blobs.existing;
    total.mounted += pushed.blobs.mounted;
    bytesUploaded += pushed.bytesUploaded;
  }
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests }));
  const tag = target.tag ?? 'latest';
  const client = new RegistryClient(target.domain, target.path, opts);
  const digest = await client.putManifest(target.path, tag, bytes, MediaTypes.ociIndex, subjectOf(target));
  return { reference: familiarString({ ...target, tag }), digest, size: bytes.length, mediaType: MediaTypes.ociIndex, blobs: total, bytesUploaded };
}

/**
 * Pushes a model Image to `target`; `sources` are the repositories of the same registry to try
 * mounting each blob from.
 */
async function pushTo(img: Image, target: ImageReference, sources: MountSources, opts: PushOptions, as: 'tag' | 'digest' = 'tag'): Promise<PushResult> {
  const repo = target.path;
  const tag = target.tag ?? 'latest';
  const subject = subjectOf(target);

  // Layers as compressed blobs: the image's own compressed ones as they are, the others gzipped
  // (once, then kept by the source).
  const layers: LayerBlob[] = [];
  for (const [i, layer] of img.layers.entries()) {
    layers.push(await layer.gzipped(opts.gzipLevel));
    opts.onProgress?.({ phase: 'compress', done: i + 1, total: img.layers.length, item: layer.diffID });
  }
  // The manifest: the original bytes when every layer already was a compressed blob (its digest stays).
  const original = layers.every((l, i) => l.digest === img.layers[i]!.digest);
  const pushed = original ? img : withLayers(img, layers);
  const manifest = { bytes: await pushed.rawManifest(), mediaType: pushed.manifestDescriptor.mediaType };

  const blobs = new Map<Digest, BlobToPush>();
  for (const l of layers) if (!blobs.has(l.digest)) blobs.set(l.digest, { digest: l.digest, size: l.size, open: () => l.compressed() });
  const cfg = img.configDescriptor;
  if (!blobs.has(cfg.digest)) blobs.set(cfg.digest, { digest: cfg.digest, size: cfg.size, open: async () => Readable.from([await img.rawConfig()]) });
  const client = new RegistryClient(target.domain, repo, opts);
  await client.ping(subject);

  const result: PushResult = { reference: familiarString({ ...target, tag }), digest: '' as Digest, size: manifest.bytes.length, mediaType: manifest.mediaType, blobs: { uploaded: 0, existing: 0, mounted: 0 }, bytesUploaded: 0 };
  const total = [...blobs.values()].reduce((n, b) => n + b.size, 0);
  const advance = writeProgress(opts.onProgress, total);
  await eachLimit([...blobs.values()], opts.concurrency ?? DEFAULT_CONCURRENCY, async (blob) => {
    const blobSubject = `${target.domain}/${repo}@${blob.digest}`;
    if ((await client.headBlob(repo, blob.digest, blobSubject)) !== undefined) {
      result.blobs.existing++;
      advance(blob.size);
      return;
    }
    let session: URL | undefined;
    for (const from of [...(sources.byBlob.get(blob.digest) ?? []), ...sources.always]) {
      if (from === repo) continue;
      const mounted = await client.mountBlob(repo, blob.digest, from, blobSubject).catch((err) => {
        if (err instanceof RegistryError && err.status !== undefined) return undefined; // refused: upload instead
        throw err;
      });
      if (mounted === 'mounted') {
        result.blobs.mounted++;
        advance(blob.size);
        return;
      }
      if (mounted) {
        session = mounted; // the registry opened an ordinary upload instead
        break;
      }
    }
    session ??= await client.startUpload(repo, blobSubject);
    await client.uploadBlob(repo, session, blob, {
      ...(opts.chunkSize ? { chunkSize: opts.chunkSize } : {}),
      subject: blobSubject,
      onBytes: (n) => {
        result.bytesUploaded += n;
        advance(n);
      },
    });
    result.blobs.uploaded++;
  });
  const digest = sha256OfBuffer(manifest.bytes);
  result.digest = await client.putManifest(repo, as === 'tag' ? tag : digest, manifest.bytes, manifest.mediaType, subject);
  return result;
}

/**
 * Repositories on the destination registry that likely hold each blob, as far as the store knows
 * (its tags there: their manifests' blobs and the compressed forms of their layers), plus `extra`
 * repositories to try for every blob. A wrong guess costs one refused mount.
 */
interface MountSources {
  byBlob: Map<Digest, string[]>;
  always: string[];
}

async function mountSources(store: ImageStore, target: ImageReference, extra: string[], pushed: readonly Image[]): Promise<MountSources> {
  const byBlob = new Map<Digest, string[]>();
  // Layers held lazily from a shared build cache on this registry: their blobs are in the cache's
  // repository, so a push mounts them from there and moves no layer bytes.
  for (const l of pushed.flatMap((i) => i.layers)) {
    const remote = store.remoteLayerForm(l.diffID);
    if (!remote?.location.startsWith('registry:')) continue;
    const cacheRef = parseReference(remote.location.slice('registry:'.length));
    if (cacheRef.domain === target.domain && cacheRef.path !== target.path) byBlob.set(remote.blob.digest as Digest, [cacheRef.path]);
  }
  const info = await store.blobInfo.read();
  for (const summary of await store.list()) {
    if (!summary.ref) continue;
    let ref: ImageReference;
    try {
      ref = parseReference(summary.ref);
    } catch {
      continue;
    }
    if (ref.domain !== target.domain || ref.path === target.path) continue;
    const img = await store.resolve(summary.ref).catch(() => undefined);
    if (!img) continue;
    // A pushed image's layers went out as the compressed blobs recorded for their diffIDs.
    const compressed = img.layers.flatMap((l) => (info.get(l.diffID)?.compressed ?? []).map((c) => c.digest));
    for (const d of [img.configDescriptor.digest, ...img.manifest.layers.map((l) => l.digest), ...compressed]) {
      const list = byBlob.get(d) ?? [];
      if (!list.includes(ref.path)) list.push(ref.path);
      byBlob.set(d, list);
    }
  }
  return { byBlob, always: extra.filter((r) => r !== target.path) };
}

/** Pulls `ref` into the store: blobs verified, layers imported through `opts.importer`, tagged. */
export async function pullImage(store: ImageStore, ref: string, opts: PullOptions): Promise<PullResult> {
  const parsed = parseReference(ref);
  const repo = parsed.path;
  const subject = subjectOf(parsed);
  const client = new RegistryClient(parsed.domain, repo, opts);
  const top = await client.getManifest(repo, parsed.digest ?? parsed.tag ?? 'latest', subject);

  // Down through indexes to the platform's image manifest.
  const fail = (what: string) => (detail: string) => new RegistryError(`${detail}: ${what}`);
  let current = top;
  let doc = parseDocument(current.bytes, 'the manifest', fail(subject));
  for (let depth = 0; isIndexDocument(doc, current.mediaType); depth++) {
    if (depth >= 4) throw new RegistryError(`image index nests too deeply: ${subject}`);
    const index = decodeWith(() => checkIndex(doc, 'the image index'), fail(subject));
    const want = opts.platform ?? hostPlatform();
    const child = selectPlatform(index.manifests, want);
    if (!child) {
      const have = index.manifests.map((m) => (m.platform ? `${m.platform.os}/${m.platform.architecture}${m.platform.variant ? `/${m.platform.variant}` : ''}` : '?'));
      throw new RegistryError(`no image for ${want.os}/${want.architecture} in the index (it has ${have.join(', ') || 'none'}): ${subject}`);
    }
    const childSubject = `${parsed.domain}/${repo}@${child.digest}`;
    current = await client.getManifest(repo, child.digest, childSubject);
    doc = parseDocument(current.bytes, 'the manifest', fail(childSubject));
  }
  const manifestSubject = `${parsed.domain}/${repo}@${current.digest}`;
  const manifest = decodeWith(() => checkManifest(doc, 'the manifest'), fail(manifestSubject));
  if (!(manifest.config.size <= CONFIG_MAX)) throw new RegistryError(`config ${manifest.config.digest} of ${manifest.config.size} bytes is too large (over ${CONFIG_MAX}): ${manifestSubject}`);
  checkLayerTypes(manifest, fail(manifestSubject));

  // What a failed pull wrote is deleted at once, not left to prune's grace period.
  const staged = await store.stageBlobs();
  try {
    // Blobs: config and layers, each digest once; the stored ones are not fetched again.
    const wanted = new Map<Digest, Descriptor>();
    for (const d of [manifest.config, ...manifest.layers]) if (!wanted.has(d.digest)) wanted.set(d.digest, d);
    const result: PullResult = { reference: '', id: manifest.config.digest, manifestDigest: current.digest, digest: top.digest, blobs: { downloaded: 0, existing: 0 } };
    const missing: Descriptor[] = [];
    for (const d of wanted.values()) {
      await staged.hold(d.digest);
      if (await store.content.has(d.digest)) result.blobs.existing++;
      else missing.push(d);
    }
    const total = [...wanted.values()].reduce((n, d) => n + d.size, 0);
    let done = total - missing.reduce((n, d) => n + d.size, 0);
    const advance = (n: number) => {
      done += n;
      opts.onProgress?.({ phase: 'read', done, total });
    };
    await eachLimit(missing, opts.concurrency ?? DEFAULT_CONCURRENCY, async (d) => {
      await downloadBlob(client, store, repo, d, `${parsed.domain}/${repo}@${d.digest}`, advance, staged);
      result.blobs.downloaded++;
    });

    const configDoc = await store.content.readJson<unknown>(manifest.config.digest);
    const config = decodeWith(() => checkConfig(configDoc, `config ${manifest.config.digest}`), fail(manifestSubject));
    const layers = pairLayers(manifest, config, fail(manifestSubject));

    const manifestDesc = await store.content.putBytes(current.bytes, current.mediaType, current.digest, staged.created);
    const tags = parsed.digest ? [] : [familiarString(parsed)];
    const image = storeImage(store, { id: manifest.config.digest, manifest, manifestDescriptor: manifestDesc, config, configDescriptor: manifest.config, layers }, tags);
    await importImages(store, opts.importer, [image], opts.onProgress);
    result.reference = parsed.digest ? familiarString({ domain: parsed.domain, path: parsed.path, digest: parsed.digest }) : tags[0]!;
    await staged.release();
    return result;
  } catch (err) {
    await staged.abandon().catch(() => {});
    throw err;
  }
}

/** Streams one blob into the content store, verified against its digest and size. */
async function downloadBlob(client: RegistryClient, store: ImageStore, repo: string, d: Descriptor, subject: string, onBytes: (n: number) => void, staged: StagedBlobs): Promise<void> {
  const body = await client.getBlob(repo, d.digest, subject);
  async function* sized(): AsyncGenerator<Buffer> {
    let n = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > d.size) throw new RegistryError(`blob is larger than the ${d.size} bytes the manifest says: ${subject}`);
      onBytes(chunk.length);
      yield chunk;
    }
    if (n !== d.size) throw new RegistryError(`blob has ${n} bytes, the manifest says ${d.size}: ${subject}`);
  }
  try {
    await store.content.putStream(sized(), d.digest, d.mediaType, staged.created);
  } catch (err) {
    body.destroy();
    if (err instanceof DigestMismatchError) throw new RegistryError(`blob is corrupt: its bytes hash to ${err.actual}: ${subject}`);
    if (err instanceof RegistryError) throw err;
    throw new RegistryError(`download failed: ${(err as Error).message}: ${subject}`);
  }
}
