// The format of a build cache shared through a registry or an OCI layout folder (issue 13): one OCI
// image manifest per cache ref, whose config (CACHE_CONFIG_MEDIA_TYPE) holds every record in one
// document and whose layers are the records' blobs, each annotated with its diffID. Pure: encodes and
// decodes, checking everything read from outside once, here (as image/decode.ts does for images),
// so a corrupt or foreign cache is refused with one line naming its ref.
import { MediaTypes, layerCompression, type Descriptor } from '../content/types';
import { isDigest, sha256OfBuffer, type Digest } from '../digest';
import { TsbuildError } from '../errors';
import { checkDescriptor, decodeWith, parseDocument } from '../image/decode';
import type { ImageManifest } from '../image/types';
import type { CacheRecord } from './store';
import { createHash } from '@tsbuild/native';

export const CACHE_CONFIG_MEDIA_TYPE = 'application/vnd.tsbuild.cache.config.v1+json';
/**
 * The key of an image config that holds inline cache records (`--cache-to type=inline`), as BuildKit
 * keeps `moby.buildkit.cache.v0` there: the final image's steps (min mode), without blobs, since
 * the blobs are the image's own layers (paired by diffID when the image is read as a cache).
 */
export const INLINE_CACHE_KEY = 'tsbuild.cache.v1';
/** The annotation on each layer of a cache manifest: the diffID of the blob's tar. */
export const CACHE_DIFFID_ANNOTATION = 'dev.tsbuild.cache.diffid';

/** A step's record as a shared cache holds it. */
export interface RemoteCacheRecord extends CacheRecord {
  /** The platform key ({@link platformCacheKey}), not the local key. */
  key: Digest;
  /** The chain the step ran on ('' on scratch); for an empty step, its chainID. */
  parent: string;
  /** The layer's blob (compressed or not); absent for an empty step. */
  blob?: Descriptor;
}

/** A decoded cache ref: its records (one per key) and the manifest naming their blobs. */
export interface RemoteCache {
  records: ReadonlyMap<Digest, RemoteCacheRecord>;
  manifest: ImageManifest;
  /** How it was exported, when it says: min holds the final image's steps only. */
  mode?: CacheMode;
}

export type CacheMode = 'min' | 'max';

/**
 * The key a shared cache files a step under: the local key (engine/cache-keys.ts, unchanged so local
 * caches stay valid) with the platform the step was built for, so two platforms never share a record.
 */
export function platformCacheKey(localKey: string, platform: string): Digest {
  const h = createHash('sha256').update(`tsbuild-remote-cache-v1\n${platform}\n${localKey}`);
  return `sha256:${h.digest('hex')}`;
}

/**
 * The config and manifest of a cache ref holding `records`. Deterministic (records sorted by key,
 * blobs once each in record order), so the same records give the same digests and an export can be
 * skipped when the ref already holds them.
 */
export function encodeCache(records: readonly RemoteCacheRecord[], mode?: CacheMode): { config: Buffer; configDescriptor: Descriptor; manifest: Buffer; manifestDescriptor: Descriptor } {
  const sorted = [...records].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const config = Buffer.from(JSON.stringify({ schemaVersion: 1, ...(mode ? { mode } : {}), records: sorted.map(canonicalRecord) }));
  const configDescriptor: Descriptor = { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: sha256OfBuffer(config), size: config.length };
  const layers: Descriptor[] = [];
  const seen = new Set<string>();
  for (const r of sorted) {
    if (!r.blob || seen.has(r.blob.digest)) continue;
    seen.add(r.blob.digest);
    layers.push({ mediaType: r.blob.mediaType, digest: r.blob.digest, size: r.blob.size, annotations: { [CACHE_DIFFID_ANNOTATION]: r.diffID } });
  }
  const manifestDoc: ImageManifest = { schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: configDescriptor, layers };
  const manifest = Buffer.from(JSON.stringify(manifestDoc));
  return { config, configDescriptor, manifest, manifestDescriptor: { mediaType: MediaTypes.ociManifest, digest: sha256OfBuffer(manifest), size: manifest.length } };
}

/** The inline cache document of `records` (no blobs), sorted as encodeCache sorts them. */
export function encodeInlineCache(records: readonly (Omit<RemoteCacheRecord, 'blob'> & { blob?: Descriptor })[]): { schemaVersion: 1; records: Record<string, unknown>[] } {
  const sorted = [...records].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { schemaVersion: 1, records: sorted.map(({ key, parent, chainID, diffID, size, empty, created }) => canonicalRecord({ key, parent, chainID, diffID, size, empty, created })) };
}

/**
 * A pushed image read as a cache (`--cache-from type=registry,ref=IMAGE` of an image built with
 * `--cache-to type=inline`): the records of its config's INLINE_CACHE_KEY, each non-empty one taking
 * the manifest layer whose diff_id is its diffID as its blob. `manifest` is checked already.
 */
export function decodeInlineCache(ref: string, manifest: ImageManifest, configBytes: Buffer): RemoteCache {
  const fail = (detail: string) => badCache(ref, detail);
  const config = parseDocument(configBytes, 'the image config', fail);
  if (!isObject(config)) throw fail('the image config is not a JSON object');
  const inline = config[INLINE_CACHE_KEY];
  if (inline === undefined) throw fail('an image without inline cache records (build it with --cache-to type=inline)');
  if (!isObject(inline) || inline.schemaVersion !== 1 || !Array.isArray(inline.records)) throw fail(`the image config's ${INLINE_CACHE_KEY} is not a tsbuild inline cache of schemaVersion 1`);
  const diffIDs = isObject(config.rootfs) && Array.isArray(config.rootfs.diff_ids) ? config.rootfs.diff_ids : [];
  if (diffIDs.length !== manifest.layers.length) throw fail(`the image has ${manifest.layers.length} layers and ${diffIDs.length} diff_ids`);
  const layerOf = new Map<unknown, Descriptor>();
  manifest.layers.forEach((l, i) => {
    if (!layerOf.has(diffIDs[i])) layerOf.set(diffIDs[i], { mediaType: l.mediaType, digest: l.digest, size: l.size });
  });
  const records = inline.records.map((r, i) => {
    if (!isObject(r) || r.empty !== false) return r;
    const blob = layerOf.get(r.diffID);
    if (!blob) throw fail(`records[${i}]: its layer ${show(r.diffID)} is not one of the image's layers`);
    return { ...r, blob };
  });
  const layers = new Map<string, string>();
  manifest.layers.forEach((l, i) => layers.set(l.digest, String(diffIDs[i])));
  return { records: decodeRecords(records, layers, fail), manifest, mode: 'min' };
}

/** The fields of a record in a fixed order (the config's bytes must not depend on how it was built). */
function canonicalRecord(r: Omit<RemoteCacheRecord, 'blob'> & { blob?: Descriptor }): Record<string, unknown> {
  return {
    key: r.key,
    parent: r.parent,
    chainID: r.chainID,
    diffID: r.diffID,
    size: r.size,
    empty: r.empty,
    created: r.created,
    ...(r.blob ? { blob: { mediaType: r.blob.mediaType, digest: r.blob.digest, size: r.blob.size } } : {}),
  };
}

/** The error of a cache ref that cannot be used: callers warn with it and ignore the ref. */
export function badCache(ref: string, detail: string): TsbuildError {
  return new TsbuildError('EBADCACHE', `cache ${ref}: ${detail}`);
}

/**
 * Decodes a cache ref's manifest and config bytes (already verified against their digests by the
 * caller): refuses a foreign manifest (another config media type), a corrupt config, or records
 * whose blobs the manifest does not list with the same diffID.
 */
export function decodeCache(ref: string, manifestBytes: Buffer, configBytes: Buffer): RemoteCache {
  const fail = (detail: string) => badCache(ref, detail);
  const manifest = decodeCacheManifest(ref, manifestBytes);
  const doc = parseDocument(configBytes, 'the cache config', fail);
  if (!isObject(doc)) throw fail('the cache config is not a JSON object');
  if (doc.schemaVersion !== 1) throw fail(`the cache config has schemaVersion ${JSON.stringify(doc.schemaVersion)?.slice(0, 40)}, not 1 (written by a newer tsbuild?)`);
  if (!Array.isArray(doc.records)) throw fail('the cache config has no "records" array');
  if (doc.mode !== undefined && doc.mode !== 'min' && doc.mode !== 'max') throw fail(`the cache config has mode ${show(doc.mode)}, not min or max`);
  const layers = new Map<string, string>();
  for (const l of manifest.layers) layers.set(l.digest, l.annotations?.[CACHE_DIFFID_ANNOTATION] ?? '');
  return { records: decodeRecords(doc.records, layers, fail), manifest, ...(doc.mode ? { mode: doc.mode } : {}) };
}

/** Checked records by key; `layers` maps each blob the manifest lists to its diffID. */
function decodeRecords(raw: unknown[], layers: ReadonlyMap<string, string>, fail: (detail: string) => Error): Map<Digest, RemoteCacheRecord> {
  const records = new Map<Digest, RemoteCacheRecord>();
  raw.forEach((item, i) => {
    const record = checkRecord(item, `records[${i}]`, fail);
    if (record.blob && layers.get(record.blob.digest) !== record.diffID) {
      throw fail(`records[${i}]: blob ${record.blob.digest} is not a layer of the manifest with diffID ${record.diffID}`);
    }
    if (records.has(record.key)) throw fail(`records[${i}]: key ${record.key} appears twice`);
    records.set(record.key, record);
  });
  return records;
}

/** A cache manifest: an OCI image manifest whose config is a tsbuild cache config. */
export function decodeCacheManifest(ref: string, bytes: Buffer): ImageManifest {
  const fail = (detail: string) => badCache(ref, detail);
  const doc = parseDocument(bytes, 'the cache manifest', fail);
  if (!isObject(doc)) throw fail('the cache manifest is not a JSON object');
  if (doc.schemaVersion !== 2) throw fail(`the cache manifest has schemaVersion ${JSON.stringify(doc.schemaVersion)?.slice(0, 40)}, not 2`);
  const config = decodeWith(() => checkDescriptor(doc.config, 'the cache manifest: config'), fail);
  if (config.mediaType !== CACHE_CONFIG_MEDIA_TYPE) {
    throw fail(`not a tsbuild cache: its config has media type ${config.mediaType} (an image, or another tool's cache?)`);
  }
  if (!Array.isArray(doc.layers)) throw fail('the cache manifest has no "layers" array');
  doc.layers.forEach((l, i) => {
    const d = decodeWith(() => checkDescriptor(l, `the cache manifest: layers[${i}]`), fail);
    if (layerCompression(d.mediaType) === undefined) throw fail(`layers[${i}] has media type ${d.mediaType}, not an image layer`);
    if (!isDigest(d.annotations?.[CACHE_DIFFID_ANNOTATION])) throw fail(`layers[${i}] has no valid ${CACHE_DIFFID_ANNOTATION} annotation`);
  });
  return doc as unknown as ImageManifest;
}

function checkRecord(raw: unknown, what: string, fail: (detail: string) => Error): RemoteCacheRecord {
  if (!isObject(raw)) throw fail(`${what} is not an object`);
  const { key, parent, chainID, diffID, size, empty, created, blob } = raw;
  if (!isDigest(key)) throw fail(`${what}: invalid key ${show(key)}`);
  if (parent !== '' && !isDigest(parent)) throw fail(`${what}: invalid parent ${show(parent)}`);
  if (typeof empty !== 'boolean') throw fail(`${what}: "empty" must be a boolean`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw fail(`${what}: invalid size ${show(size)}`);
  if (typeof created !== 'string' || Number.isNaN(Date.parse(created))) throw fail(`${what}: invalid time ${show(created)}`);
  const base = { key, parent, size, empty, created };
  if (empty) {
    if (chainID !== parent || diffID !== '' || blob !== undefined) throw fail(`${what}: an empty step must keep its parent's chain and have no diffID or blob`);
    return { ...base, chainID: parent, diffID: '' };
  }
  if (!isDigest(diffID)) throw fail(`${what}: invalid diffID ${show(diffID)}`);
  const expected = parent === '' ? diffID : sha256OfBuffer(`${parent} ${diffID}`);
  if (chainID !== expected) throw fail(`${what}: chain ${show(chainID)} does not follow from its parent and diffID ${diffID}`);
  const descriptor = decodeWith(() => checkDescriptor(blob, `${what}: blob`), fail);
  const compression = layerCompression(descriptor.mediaType);
  if (compression === undefined) throw fail(`${what}: blob media type ${descriptor.mediaType} is not an image layer`);
  if (compression === 'none' && descriptor.digest !== diffID) throw fail(`${what}: uncompressed blob ${descriptor.digest} is not its diffID ${diffID}`);
  const checkedBlob: Descriptor = { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size };
  return { ...base, chainID: expected, diffID, blob: checkedBlob };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  return JSON.stringify(v)?.slice(0, 100) ?? String(v);
}
