// Shape checks for image metadata read from outside (archives, registries): an image index, an image
// manifest and an image config are JSON that anyone can write. Everything the store later relies on
// (descriptors with a digest and a size, a config descriptor, arrays of layers and diff_ids) is checked
// here once, so a malformed document is refused with a one-line TsbuildError naming what is wrong
// instead of failing later with a TypeError. Checks that need a caller's context (an archive file, a
// registry reference) take a DecodeFailure that words the error as that caller does.
import { isDigest } from '../digest';
import { TsbuildError } from '../errors';
import { MediaTypes, layerCompression, type Descriptor } from '../content/types';
import type { ImageLayer } from './store';
import type { ImageConfig, ImageIndex, ImageManifest } from './types';

function malformed(what: string, detail: string): TsbuildError {
  return new TsbuildError('EBADMETA', `${what} is malformed: ${detail}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A descriptor: mediaType a string, digest a sha256 digest, size a non-negative integer. */
export function checkDescriptor(d: unknown, what: string): Descriptor {
  if (!isObject(d)) throw malformed(what, 'a descriptor must be an object');
  if (typeof d.mediaType !== 'string') throw malformed(what, 'mediaType must be a string');
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) throw malformed(what, `invalid digest ${JSON.stringify(d.digest)?.slice(0, 100)}`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw malformed(what, `invalid size ${JSON.stringify(d.size)?.slice(0, 40)}`);
  if (d.annotations !== undefined && !isObject(d.annotations)) throw malformed(what, 'annotations must be an object');
  return d as unknown as Descriptor;
}

/** An image index (OCI index or docker manifest list): an object with an array of descriptors. */
export function checkIndex(doc: unknown, what: string): ImageIndex {
  if (!isObject(doc)) throw malformed(what, 'not a JSON object');
  if (!Array.isArray(doc.manifests)) throw malformed(what, 'no "manifests" array');
  doc.manifests.forEach((m, i) => checkDescriptor(m, `${what}: manifests[${i}]`));
  return doc as unknown as ImageIndex;
}

/** An image manifest: schemaVersion 2, a config descriptor, an array of layer descriptors. */
export function checkManifest(doc: unknown, what: string): ImageManifest {
  if (!isObject(doc)) throw malformed(what, 'not a JSON object');
  if (doc.schemaVersion !== 2) throw malformed(what, `schemaVersion ${JSON.stringify(doc.schemaVersion)?.slice(0, 40)} is not 2`);
  checkDescriptor(doc.config, `${what}: config`);
  if (!Array.isArray(doc.layers)) throw malformed(what, 'no "layers" array');
  doc.layers.forEach((l, i) => checkDescriptor(l, `${what}: layers[${i}]`));
  return doc as unknown as ImageManifest;
}

/** An image config: rootfs.diff_ids an array of digests; config and history of the right kinds when present. */
export function checkConfig(doc: unknown, what: string): ImageConfig {
  if (!isObject(doc)) throw malformed(what, 'not a JSON object');
  if (!isObject(doc.rootfs) || !Array.isArray(doc.rootfs.diff_ids)) throw malformed(what, 'no rootfs.diff_ids array');
  for (const d of doc.rootfs.diff_ids) if (typeof d !== 'string' || !isDigest(d)) throw malformed(what, `invalid diff_id ${JSON.stringify(d)?.slice(0, 100)}`);
  if (doc.config !== undefined && doc.config !== null && !isObject(doc.config)) throw malformed(what, '"config" must be an object');
  if (doc.history !== undefined && doc.history !== null && !Array.isArray(doc.history)) throw malformed(what, '"history" must be an array');
  return doc as unknown as ImageConfig;
}

/** Turns a detail into the caller's error (naming the archive file, the registry reference, ...). */
export type DecodeFailure = (detail: string) => Error;

/** Parses a document read from outside; text that is not JSON fails naming `what`. */
export function parseDocument(bytes: Buffer | string, what: string, fail: DecodeFailure): unknown {
  try {
    return JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch (err) {
    throw fail(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

export const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaTypes.ociIndex, MediaTypes.dockerManifestList]);
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaTypes.ociManifest, MediaTypes.dockerManifest]);

/** A document's media type: its own `mediaType`, else the one its descriptor (or HTTP response) gave. */
export function documentMediaType(doc: unknown, declared: string): string {
  return isObject(doc) && typeof doc.mediaType === 'string' ? doc.mediaType : declared;
}

/** Whether a document is an image index (else an image manifest): by media type, or by its shape. */
export function isIndexDocument(doc: unknown, declared: string): boolean {
  return INDEX_MEDIA_TYPES.has(documentMediaType(doc, declared)) || (isObject(doc) && Array.isArray(doc.manifests) && !doc.config);
}

/** Every layer a manifest names must be an image layer (an artifact's blobs are not). */
export function checkLayerTypes(manifest: ImageManifest, fail: DecodeFailure): void {
  for (const l of manifest.layers) {
    if (layerCompression(l.mediaType) === undefined) throw fail(`blob ${l.digest} has media type ${l.mediaType}, not an image layer (an artifact, not an image?)`);
  }
}

/**
 * An image's layers: the manifest's layer blobs paired with the config's diff_ids, which must be as
 * many; every blob is an image layer, and an uncompressed one is its diff_id.
 */
export function pairLayers(manifest: ImageManifest, config: ImageConfig, fail: DecodeFailure): ImageLayer[] {
  const diffIDs = config.rootfs.diff_ids;
  if (diffIDs.length !== manifest.layers.length) {
    throw fail(`image ${manifest.config.digest} lists ${diffIDs.length} diff_ids for ${manifest.layers.length} layers`);
  }
  checkLayerTypes(manifest, fail);
  const layers = manifest.layers.map((descriptor, i) => ({ diffID: diffIDs[i]!, descriptor }));
  for (const l of layers) {
    if (layerCompression(l.descriptor.mediaType) === 'none' && l.descriptor.digest !== l.diffID) {
      throw fail(`uncompressed layer ${l.descriptor.digest} does not match its diff_id ${l.diffID}`);
    }
  }
  return layers;
}

/** Runs a shape check, rewording its EBADMETA failure as the caller's error (`fail`). */
export function decodeWith<T>(check: () => T, fail: DecodeFailure): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof TsbuildError && err.code === 'EBADMETA') throw fail(err.message);
    throw err;
  }
}
