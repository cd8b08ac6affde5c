// What every exporter needs: resolving the images to save, the uncompressed and gzip forms of each
// layer (reusing kept compressed blobs), and writing an archive file atomically.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { fsyncDir, tmpSibling } from '../atomic';
import { MediaTypes, layerCompression, type Descriptor } from '../content/types';
import { DigestMismatchError, HashingStream, sha256OfBuffer, verifyingStream, type Digest } from '../digest';
import { familiarString, parseReference } from '../image/reference';
import type { ImageLayer, ImageStore, ResolvedImage } from '../image/store';
import type { ImageManifest } from '../image/types';
import { ArchiveWriter } from './archive-writer';
import type { LayerImporter } from './load';
import { decompress } from '../archive/decompress';
import { TsbuildError, quoteName, shortName, userError, withContext } from '../errors';

/**
 * gzip level for blobs we produce. Measured on the busybox layer (2.1 MB tar, node:zlib, this machine):
 * level 1 → 69 MB/s, 52.3% of the input; level 6 (zlib's default) → 31 MB/s, 49.6%; level 9 → 20 MB/s.
 * Level 1 is 2.2× faster for 5% more bytes, and since a compressed blob is kept and reused by later
 * saves and pushes, the wait on the first save matters more than the bytes. Callers may pass another.
 */
export const DEFAULT_GZIP_LEVEL = 1;

/**
 * Image configs larger than this are refused before they are read (they are parsed in memory; a
 * config with a thousand history entries is well under 1 MiB).
 */
export const CONFIG_MAX = 64 << 20;

export type ProgressPhase = 'compress' | 'write' | 'read' | 'import';

export interface Progress {
  phase: ProgressPhase;
  done: number;
  total: number;
  /** The blob, layer or file concerned, when there is one. */
  item?: string;
}

export type ProgressFn = (p: Progress) => void;

export interface SaveOptions {
  onProgress?: ProgressFn;
  /** gzip level for layers compressed on save (OCI outputs). Default DEFAULT_GZIP_LEVEL. */
  gzipLevel?: number;
  /** Layer compression in OCI outputs: gzip (default) or none (uncompressed tars). */
  compression?: 'gzip' | 'none';
  /** mtime of archive members (seconds); default 0 so the same images give the same archive. */
  mtime?: number;
  /** OCI archives: also write docker load's manifest.json (with compression 'none'). */
  dockerManifest?: boolean;
}

export interface ExportImage {
  resolved: ResolvedImage;
  /** Familiar names to record in the archive (`app:latest`); empty when saved by ID. */
  names: string[];
}

/** Resolves the requested images; names given by the user become the archive's tags. */
export async function resolveForExport(store: ImageStore, refs: string[]): Promise<ExportImage[]> {
  if (refs.length === 0) throw userError('no images to save');
  const out: ExportImage[] = [];
  for (const ref of refs) {
    const resolved = await store.resolve(ref);
    const hex = ref.replace(/^sha256:/, '');
    const byId = /^[0-9a-f]{12,64}$/.test(hex) && resolved.id.startsWith(`sha256:${hex}`);
    let name: string | undefined;
    if (!byId) {
      const parsed = parseReference(ref);
      if (!parsed.digest) name = familiarString(parsed);
    }
    const same = out.find((e) => e.resolved.manifestDescriptor.digest === resolved.manifestDescriptor.digest);
    if (same) {
      if (name && !same.names.includes(name)) same.names.push(name);
    } else {
      out.push({ resolved, names: name ? [name] : [] });
    }
  }
  return out;
}

/** Size of a layer's uncompressed tar: known, or measured by decompressing once (then recorded). */
export async function uncompressedSize(store: ImageStore, layer: ImageLayer): Promise<number> {
  if (layer.descriptor.digest === layer.diffID) return layer.descriptor.size;
  const known = (await store.blobInfo.get(layer.diffID))?.size;
  if (known !== undefined) return known;
  if (await store.content.has(layer.diffID)) return (await store.content.info(layer.diffID)).size;
  const stream = await openUncompressedLayer(store, layer);
  let size = 0;
  for await (const chunk of stream) size += (chunk as Buffer).length;
  await store.recordLayerBlob(layer.diffID, layer.descriptor, size);
  return size;
}

/**
 * The uncompressed tar of a layer, verified against its diffID. In order of preference: the stored
 * uncompressed blob; a stored compressed form (the layer's own blob or one recorded for the diffID,
 * e.g. the original blob of an imported base layer that a built image names by diffID), decompressed;
 * else the layer source rebuilds it from the diff directory (materialization).
 */
export async function openUncompressedLayer(store: ImageStore, layer: ImageLayer): Promise<Readable> {
  const kind = layerCompression(layer.descriptor.mediaType);
  if (kind === undefined) throw new TsbuildError('EDIGEST', `blob ${layer.descriptor.digest} has media type ${layer.descriptor.mediaType}, not a layer`);
  if (kind === 'none' && layer.descriptor.digest !== layer.diffID) {
    throw new TsbuildError('EDIGEST', `layer ${layer.diffID}: uncompressed blob ${layer.descriptor.digest} does not match its diff_id`);
  }
  if (await store.content.has(layer.diffID)) return store.content.open(layer.diffID);
  const compressed = await storedCompressedForm(store, layer);
  if (!compressed) return store.content.open(layer.diffID); // materializes, or says which blob is missing
  const raw = await store.content.open(compressed.digest, { size: compressed.size });
  const verify = verifyingStream(layer.diffID);
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const described = { diffID: layer.diffID, descriptor: compressed };
  chainInto(out, [decompress(raw), verify], (err) => wrapDiffIDError(err, described));
  return out;
}

async function storedCompressedForm(store: ImageStore, layer: ImageLayer): Promise<Descriptor | undefined> {
  if (layerCompression(layer.descriptor.mediaType) !== 'none' && (await store.content.has(layer.descriptor.digest))) return layer.descriptor;
  for (const c of (await store.blobInfo.get(layer.diffID))?.compressed ?? []) {
    if (await store.content.has(c.digest)) return c;
  }
  return undefined;
}

/**
 * The uncompressed bytes of the layer's own blob (never a substitute such as a stored uncompressed
 * form), verified against its diffID; `onSize` gets the size once every byte was hashed.
 */
export function openLayerBlobVerified(store: ImageStore, layer: ImageLayer, onSize: (n: number) => void): Readable {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  (async () => {
    const raw = await store.content.open(layer.descriptor.digest, { size: layer.descriptor.size });
    // A compressed media type: decompress by the magic bytes (some tools mislabel layers).
    const streams: Readable[] = [(layerCompression(layer.descriptor.mediaType) ?? 'none') === 'none' ? raw : decompress(raw)];
    const verify = verifyingStream(layer.diffID);
    verify.on('end', () => onSize(verify.bytes));
    streams.push(verify);
    chainInto(out, streams, (err) => layerBlobError(err, layer));
  })().catch((err: Error) => out.destroy(layerBlobError(err, layer)));
  return out;
}

/** One line naming the blob and its diffID; every failure here is bad input (EDIGEST). */
function layerBlobError(err: Error, layer: ImageLayer): Error {
  const head = `layer ${layer.descriptor.digest} does not match its diff_id ${layer.diffID}`;
  let message: string;
  if (err instanceof DigestMismatchError && err.expected === layer.diffID) message = `${head}: its content hashes to ${err.actual}`;
  else if ((err as { code?: string }).code === 'EDIGEST' || /^blob sha256:/.test(err.message)) message = `layer ${layer.descriptor.digest}: ${err.message}`;
  else message = `${head}: cannot decompress it: ${err.message}`;
  return new TsbuildError('EDIGEST', message, { cause: err });
}

/**
 * Hands one layer to the importer as its blob's verified uncompressed stream. An importer that
 * already has the chain does not read it; the blob is then decompressed and hashed here all the
 * same, because the caller records it as a form of the diffID, which save and push then ship in
 * place of the layer. Returns the uncompressed size.
 */
export async function importLayerVerified(store: ImageStore, importer: LayerImporter, parent: Digest | null, layer: ImageLayer): Promise<number | undefined> {
  let size: number | undefined;
  const open = () => openLayerBlobVerified(store, layer, (n) => (size = n));
  await importer.importLayer(parent, layer.diffID, open);
  if (size !== undefined || layer.descriptor.digest === layer.diffID) return size; // hashed, or named by its diffID
  // Not even a blob recorded before is trusted: a store written before this check may hold a bad one.
  for await (const _ of open());
  return size;
}

/**
 * Pipes `streams` into `out`; the first error destroys `out` with `wrap(err)` (pipeline() would
 * destroy `out` with the raw error first, losing the context).
 */
export function chainInto(out: PassThrough, streams: Readable[], wrap: (err: Error) => Error = (e) => e): void {
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
  let prev = streams[0]!; // callers pass at least the source
  for (const s of streams.slice(1)) prev = prev.pipe(s as unknown as NodeJS.WritableStream) as unknown as Readable;
  prev.pipe(out);
}

function wrapDiffIDError(err: Error, layer: ImageLayer): Error {
  if ((err as { code?: string }).code === 'EDIGEST') {
    return withContext(`layer ${layer.descriptor.digest} does not decompress to its diff_id ${layer.diffID}`, err);
  }
  if (/blob sha256/.test(err.message)) return err;
  return withContext(`layer ${layer.descriptor.digest}: cannot decompress`, err);
}

/** A gzip blob for `layer`: the layer's own if already compressed, a kept one, or a new one (kept). */
export async function gzipLayer(
  store: ImageStore,
  layer: ImageLayer,
  level = DEFAULT_GZIP_LEVEL,
): Promise<{ descriptor: Descriptor; created: boolean }> {
  const kind = layerCompression(layer.descriptor.mediaType);
  if (kind === 'gzip' || kind === 'zstd') {
    // Keep original compressed blobs; translate docker media types to OCI.
    const mediaType = kind === 'gzip' ? MediaTypes.ociLayerGzip : MediaTypes.ociLayerZstd;
    return { descriptor: { ...layer.descriptor, mediaType }, created: false };
  }
  const kept = await store.findLayerBlob(layer.diffID, MediaTypes.ociLayerGzip);
  if (kept) return { descriptor: kept, created: false };
  const src = await openUncompressedLayer(store, layer);
  const counter = new HashingStream();
  const w = await store.content.ingest();
  try {
    await pipeline(src, counter, zlib.createGzip({ level }), w.stream);
  } catch (err) {
    await w.abort();
    throw err;
  }
  const descriptor = await w.commit(undefined, MediaTypes.ociLayerGzip);
  await store.recordLayerBlob(layer.diffID, descriptor, counter.bytes);
  return { descriptor, created: true };
}

/** The manifest to export for `img` with `layers` as its layer blobs (unchanged if nothing changed). */
export async function exportManifest(
  store: ImageStore,
  img: ResolvedImage,
  layers: Descriptor[],
): Promise<{ descriptor: Descriptor; bytes: Buffer }> {
  const same =
    layers.length === img.manifest.layers.length &&
    layers.every((l, i) => l.digest === img.manifest.layers[i]?.digest && l.mediaType === img.manifest.layers[i]?.mediaType);
  if (same) {
    return { descriptor: img.manifestDescriptor, bytes: await store.content.readBytes(img.manifestDescriptor.digest) };
  }
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, digest: img.configDescriptor.digest, size: img.configDescriptor.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size, ...(l.annotations ? { annotations: l.annotations } : {}) })),
    ...(img.manifest.annotations ? { annotations: img.manifest.annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  return { descriptor: { mediaType: MediaTypes.ociManifest, digest: sha256OfBuffer(bytes), size: bytes.length }, bytes };
}

/** Writes an archive to `out` atomically (tmp next to it, fsync, rename). */
export async function writeArchiveFile(out: string, mtime: number, fill: (w: ArchiveWriter) => Promise<void>): Promise<void> {
  const target = path.resolve(out);
  // As docker save: the directory must exist (no directories made on a typo).
  const dir = path.dirname(target);
  if (!(await fsp.stat(dir).catch(() => undefined))?.isDirectory()) {
    throw userError(`invalid output path: directory ${quoteName(dir)} does not exist`);
  }
  const tmp = tmpSibling(target);
  const fh = await fsp.open(tmp, 'wx', 0o644).catch((err: unknown) => {
    throw withContext(`cannot write ${shortName(out)}`, err);
  });
  try {
    const w = new ArchiveWriter(fh, mtime);
    await fill(w);
    await w.finish();
    await fh.sync();
    await fh.close();
    await fsp.rename(tmp, target);
    await fsyncDir(path.dirname(target));
  } catch (err) {
    await fh.close().catch(() => {});
    await fsp.rm(tmp, { force: true });
    // The machine's failures (a full disk) name the output; anything else keeps its own message.
    throw (err as NodeJS.ErrnoException).syscall ? withContext(`cannot write ${shortName(out)}`, err) : err;
  }
}

export function blobMember(d: Digest): string {
  return `blobs/sha256/${d.slice(7)}`;
}
