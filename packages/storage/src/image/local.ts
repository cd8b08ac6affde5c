// The local store as a source of Images (model.ts): a layer's bytes come from its blob, from another
// stored form of the same diffID (an imported layer's original gzip, a gzip kept by an earlier save),
// or are rebuilt from the layer's diff directory (materialization). Loads and pulls stage their blobs
// in the content store first, so the images they bring in are read through this same source.
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
// Required where used, not here: loading it is part of every command's start (README, Performance).
import type * as zlib from 'node:zlib';
import { decompress } from '../archive/decompress';
import { MediaTypes, layerCompression, type Descriptor, type Platform } from '../content/types';
import { DigestMismatchError, HashingStream, settleQuietly, verifyingStream, type Digest } from '../digest';
import { TsbuildError, userError, withContext } from '../errors';
import type { Image, LayerBlob, MultiPlatformImage } from './model';
import { familiarString, parseReference } from './reference';
import type { ImageLayer, ImageStore, ResolvedImage } from './store';

/**
 * gzip level for blobs we produce. Measured on the busybox layer (2.1 MB tar, node:zlib, this machine):
 * level 1 → 69 MB/s, 52.3% of the input; level 6 (zlib's default) → 31 MB/s, 49.6%; level 9 → 20 MB/s.
 * Level 1 is 2.2× faster for 5% more bytes, and since a compressed blob is kept and reused by later
 * saves and pushes, the wait on the first save matters more than the bytes. Callers may pass another.
 */
export const DEFAULT_GZIP_LEVEL = 1;

/** A layer of an image in the store. */
export class StoreLayer implements LayerBlob {
  constructor(
    private readonly store: ImageStore,
    readonly diffID: Digest,
    readonly descriptor: Descriptor,
  ) {}

  get digest(): Digest {
    return this.descriptor.digest;
  }

  get size(): number {
    return this.descriptor.size;
  }

  get mediaType(): string {
    return this.descriptor.mediaType;
  }

  async compressed(): Promise<Readable> {
    // A lazily held layer's cache blob that is not stored here (a fetch keeps it): streamed from the
    // cache, verified.
    if (this.digest !== this.diffID && !(await this.store.content.has(this.digest))) {
      const remote = this.store.remoteLayerForm(this.diffID);
      // The cache's config pairs the blob with the diffID; only the bytes can confirm it.
      if (remote?.blob.digest === this.digest) return passVerifiedAgainstDiffID(await openNamingLayer(remote, this.diffID), remote.blob, this.diffID);
    }
    return this.store.content.open(this.digest, { size: this.size });
  }

  /**
   * In order of preference: the stored uncompressed blob; a stored compressed form (the layer's own
   * blob or one recorded for the diffID, e.g. the original blob of an imported base layer that a built
   * image names by diffID), decompressed; else the layer source rebuilds it from the diff directory.
   */
  async uncompressed(): Promise<Readable> {
    const kind = layerCompression(this.mediaType);
    if (kind === undefined) throw new TsbuildError('EDIGEST', `blob ${this.digest} has media type ${this.mediaType}, not a layer`);
    if (kind === 'none' && this.digest !== this.diffID) {
      throw new TsbuildError('EDIGEST', `layer ${this.diffID}: uncompressed blob ${this.digest} does not match its diff_id`);
    }
    const content = this.store.content;
    if (await content.has(this.diffID)) return content.open(this.diffID);
    const form = await this.storedCompressedForm();
    if (!form) return content.open(this.diffID); // materializes, or says which blob is missing
    const raw = await content.open(form.digest, { size: form.size });
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    chainInto(out, [decompress(raw), verifyingStream(this.diffID)], (err) => decompressError(err, form, this.diffID));
    return out;
  }

  private async storedCompressedForm(): Promise<Descriptor | undefined> {
    if (layerCompression(this.mediaType) !== 'none' && (await this.store.content.has(this.digest))) return this.descriptor;
    for (const c of (await this.store.blobInfo.get(this.diffID))?.compressed ?? []) {
      if (await this.store.content.has(c.digest)) return c;
    }
    return undefined;
  }

  /** Known, or measured by decompressing once (then recorded). */
  async uncompressedSize(): Promise<number> {
    if (this.digest === this.diffID) return this.size;
    const known = (await this.store.blobInfo.get(this.diffID))?.size;
    if (known !== undefined) return known;
    if (await this.store.content.has(this.diffID)) return (await this.store.content.info(this.diffID)).size;
    let size = 0;
    for await (const chunk of await this.uncompressed()) size += (chunk as Buffer).length;
    await this.store.recordLayerBlob(this.diffID, this.descriptor, size);
    return size;
  }

  async gzipped(level = DEFAULT_GZIP_LEVEL): Promise<LayerBlob> {
    return new StoreLayer(this.store, this.diffID, (await this.gzipForm(level)).descriptor);
  }

  /** The gzip blob: the layer's own if already compressed, a kept one, or a new one (kept). */
  async gzipForm(level = DEFAULT_GZIP_LEVEL): Promise<{ descriptor: Descriptor; created: boolean }> {
    const kind = layerCompression(this.mediaType);
    if (kind === 'gzip' || kind === 'zstd') {
      // Keep original compressed blobs; translate docker media types to OCI.
      const mediaType = kind === 'gzip' ? MediaTypes.ociLayerGzip : MediaTypes.ociLayerZstd;
      return { descriptor: { ...this.descriptor, mediaType }, created: false };
    }
    const kept = await this.store.findLayerBlob(this.diffID, MediaTypes.ociLayerGzip);
    if (kept) return { descriptor: kept, created: false };
    // A lazy layer from a shared build cache: its blob there is its gzip form (the store that built it
    // pushed the same bytes), so a push names and mounts it without fetching anything. Once fetched,
    // the fetch kept that blob (found above); else the layer is compressed from its files like a built one.
    const remote = this.store.remoteLayerForm(this.diffID, { lazyOnly: true });
    if (remote && layerCompression(remote.blob.mediaType) === 'gzip') return { descriptor: { ...remote.blob, mediaType: MediaTypes.ociLayerGzip }, created: false };
    const src = await this.uncompressed();
    const counter = new HashingStream();
    const w = await this.store.content.ingest();
    try {
      await pipeline(src, counter, (require('node:zlib') as typeof zlib).createGzip({ level }), w.stream);
    } catch (err) {
      await w.abort();
      throw err;
    }
    const descriptor = await w.commit(undefined, MediaTypes.ociLayerGzip);
    await this.store.recordLayerBlob(this.diffID, descriptor, counter.bytes);
    return { descriptor, created: true };
  }
}

/**
 * The uncompressed bytes of the layer's own blob (never a substitute such as a stored uncompressed
 * form), verified against its diffID; `onSize` gets the size once every byte was hashed. What a load
 * or pull imports, and what fsck checks a blob with.
 */
export function openOwnBlobVerified(layer: LayerBlob, onSize: (n: number) => void): Readable {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  (async () => {
    const raw = await layer.compressed();
    // A compressed media type: decompress by the magic bytes (some tools mislabel layers).
    const verify = verifyingStream(layer.diffID);
    verify.on('end', () => onSize(verify.bytes));
    chainInto(out, [(layerCompression(layer.mediaType) ?? 'none') === 'none' ? raw : decompress(raw), verify], (err) => ownBlobError(err, layer));
  })().catch((err: Error) => out.destroy(ownBlobError(err, layer)));
  return out;
}

/** One line naming the blob and its diffID; every failure here is bad input (EDIGEST). */
function ownBlobError(err: Error, layer: LayerBlob): Error {
  const head = `layer ${layer.digest} does not match its diff_id ${layer.diffID}`;
  let message: string;
  if (err instanceof DigestMismatchError && err.expected === layer.diffID) message = `${head}: its content hashes to ${err.actual}`;
  else if ((err as { code?: string }).code === 'EDIGEST' || /^blob sha256:/.test(err.message)) message = `layer ${layer.digest}: ${err.message}`;
  else message = `${head}: cannot decompress it: ${err.message}`;
  return new TsbuildError('EDIGEST', message, { cause: err });
}

function decompressError(err: Error, blob: Descriptor, diffID: Digest): Error {
  if ((err as { code?: string }).code === 'EDIGEST') {
    return withContext(`layer ${blob.digest} does not decompress to its diff_id ${diffID}`, err);
  }
  if (/blob sha256/.test(err.message)) return err;
  return withContext(`layer ${blob.digest}: cannot decompress`, err);
}

/**
 * Pipes `streams` into `out`; the first error destroys `out` with `wrap(err)` (pipeline() would
 * destroy `out` with the raw error first, losing the context).
 */
export function chainInto(out: PassThrough, streams: Readable[], wrap: (err: Error) => Error = (e) => e): void {
  settleQuietly(out);
  let failed = false;
  const fail = (err: Error) => {
    if (failed) return;
    failed = true;
    for (const s of streams) s.destroy();
    out.destroy(wrap(err));
  };
  for (const s of streams) s.on('error', fail);
  out.on('close', () => {
    if (!out.readableEnded) for (const s of streams) s.destroy();
  });
  let prev: Readable | undefined;
  for (const s of streams) prev = prev ? (prev.pipe(s as unknown as NodeJS.WritableStream) as unknown as Readable) : s;
  prev?.pipe(out);
}

/** A lazy layer's blob opened where it is; a failure names the layer and the cache. */
async function openNamingLayer(remote: { location: string; blob: Descriptor; open: () => Promise<Readable> }, diffID: Digest): Promise<Readable> {
  try {
    return await remote.open();
  } catch (err) {
    throw withContext(`layer ${diffID}: cannot read blob ${remote.blob.digest} from ${remote.location}`, err as Error);
  }
}

/**
 * A compressed layer blob passed through as it is, ending only once its decompressed bytes hashed to
 * `diffID` (else it fails naming the layer): what a save or push serves of a blob it did not import.
 */
function passVerifiedAgainstDiffID(raw: Readable, blob: Descriptor, diffID: Digest): Readable {
  const side = new PassThrough({ highWaterMark: 1 << 20 });
  const verify = verifyingStream(diffID);
  const verified = new Promise<void>((resolve) => verify.on('finish', resolve));
  const out = settleQuietly(new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (side.write(chunk)) done(null, chunk);
      else side.once('drain', () => done(null, chunk));
    },
    flush(done) {
      side.end();
      void verified.then(() => done());
    },
  }));
  // A mismatch or a broken blob fails the output at once (the side chain stops draining then).
  const fail = (err: Error) => out.destroy(decompressError(err, blob, diffID));
  const decompressed = decompress(side);
  for (const s of [side, decompressed, verify]) s.on('error', fail);
  decompressed.pipe(verify).resume();
  raw.on('error', (err) => out.destroy(err));
  out.on('close', () => {
    if (!out.writableFinished) for (const s of [raw, side, decompressed, verify]) s.destroy();
  });
  return raw.pipe(out);
}

/** The layers of a resolved image, as model layers over the store. */
export function storeLayers(store: ImageStore, layers: readonly ImageLayer[]): StoreLayer[] {
  return layers.map((l) => new StoreLayer(store, l.diffID, l.descriptor));
}

/** A stored image (resolved, or just staged by a load or pull) as a model Image under `names`. */
export function storeImage(store: ImageStore, img: Omit<ResolvedImage, 'tags' | 'platform'>, names: readonly string[]): Image {
  return {
    id: img.id,
    names,
    manifest: img.manifest,
    manifestDescriptor: img.manifestDescriptor,
    config: img.config,
    configDescriptor: img.configDescriptor,
    layers: storeLayers(store, img.layers),
    rawManifest: () => store.content.readBytes(img.manifestDescriptor.digest),
    rawConfig: () => store.content.readBytes(img.configDescriptor.digest),
  };
}

/**
 * The images `refs` name in the store, each once; a name the user gave (not an ID or a digest)
 * becomes one of its names, as `docker save` records them.
 */
export async function storeImages(store: ImageStore, refs: readonly string[]): Promise<Image[]> {
  if (refs.length === 0) throw userError('no images to save');
  const out: { resolved: ResolvedImage; names: string[] }[] = [];
  for (const ref of refs) {
    const resolved = await store.resolve(ref);
    const name = isImageId(ref, resolved.id) ? undefined : nameOf(ref);
    const same = out.find((e) => e.resolved.manifestDescriptor.digest === resolved.manifestDescriptor.digest);
    if (same) {
      if (name && !same.names.includes(name)) same.names.push(name);
    } else {
      out.push({ resolved, names: name ? [name] : [] });
    }
  }
  return out.map(({ resolved, names }) => storeImage(store, resolved, names));
}

/**
 * Splits `refs` into single images and image indexes (each index with every platform image it holds);
 * an index of one platform counts as that image.
 */
export async function storeImagesAndIndexes(store: ImageStore, refs: readonly string[]): Promise<{ images: Image[]; indexes: MultiPlatformImage[] }> {
  const single: string[] = [];
  const indexes: MultiPlatformImage[] = [];
  for (const ref of refs) {
    const found = await store.resolveIndex(ref);
    if (!found || found.index.manifests.length < 2) {
      single.push(ref);
      continue;
    }
    const name = isImageId(ref, found.descriptor.digest) ? undefined : nameOf(ref);
    const images: { image: Image; platform: Platform }[] = [];
    for (const m of found.index.manifests) {
      if (!m.platform) continue;
      const resolved = await store.resolve(ref, { platform: m.platform });
      images.push({ image: storeImage(store, resolved, []), platform: m.platform });
    }
    indexes.push({ names: name ? [name] : [], images });
  }
  return { images: single.length > 0 ? await storeImages(store, single) : [], indexes };
}

/** Whether `ref` is (a prefix of) the image ID `id` rather than a name. */
export function isImageId(ref: string, id: Digest): boolean {
  const hex = ref.replace(/^sha256:/, '');
  return /^[0-9a-f]{12,64}$/.test(hex) && id.startsWith(`sha256:${hex}`);
}

function nameOf(ref: string): string | undefined {
  const parsed = parseReference(ref);
  return parsed.digest ? undefined : familiarString(parsed);
}
