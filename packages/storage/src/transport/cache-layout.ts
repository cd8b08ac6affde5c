// A shared build cache (remote-format.ts) where it is kept: an OCI layout folder (`--cache-to
// type=local,dest=DIR`, `--cache-from type=local,src=DIR`, usable as a CI cache directory) or a
// registry ref (`type=registry,ref=…`). Both are a CacheLocation (blobs by digest plus one manifest);
// reading and writing a cache is the same over both. Every document is checked against its digest
// before it is decoded. A hit registers its layer lazily (LayerStore.registerRemote) with the blob's
// location (`registry:REF` or `local:DIR`); the layer store fetches it through openRemoteBlob when its
// files are needed, verified against the blob's digest and the diffID before it is marked present.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { mkdirp, writeFileAtomic } from '../atomic';
import { INDEX_FILE, OCI_LAYOUT_FILE, OCI_LAYOUT_VERSION } from '../content/store';
import { MediaTypes, type Descriptor } from '../content/types';
import { digestHex, sha256OfBuffer, verifyingStream, type Digest } from '../digest';
import { checkIndex, checkManifest, decodeWith, parseDocument } from '../image/decode';
import { CONFIG_MAX } from './common';
import { StoreLayer } from '../image/local';
import type { LayerBlob } from '../image/model';
import type { ImageStore } from '../image/store';
import { ANNOTATION_REF_NAME } from '../image/types';
import type { CommitOptions, LayerStore } from '../layers';
import { TsbuildError } from '../errors';
import { parseReference } from '../image/reference';
import { RegistryClient, RegistryError, subjectOf, type RegistryClientOptions } from './registry-client';
import { writeLayoutBlob } from './sinks/oci-layout';
import { badCache, type CacheMode, decodeCache, decodeCacheManifest, decodeInlineCache, encodeCache, type RemoteCache, type RemoteCacheRecord } from '../cache/remote-format';

/** The index.json name of the cache manifest in a layout folder. */
const CACHE_REF_NAME = 'tsbuild-cache';

/** Where a cache's blobs and its manifest are kept. Blob reads are not verified here. */
export interface CacheLocation {
  /** How messages name it (the folder, the registry reference). */
  readonly ref: string;
  /** How a lazy layer records it: `registry:REF` or `local:DIR` (absolute). */
  readonly location: string;
  /** The manifest's bytes and the digest it was found by; undefined when there is no cache there. */
  readManifest(): Promise<{ bytes: Buffer; digest?: Digest } | undefined>;
  openBlob(d: Descriptor): Promise<Readable>;
  hasBlob(d: Descriptor): Promise<boolean>;
  putBlob(d: Descriptor, open: () => Promise<Readable>): Promise<void>;
  putManifest(bytes: Buffer, d: Descriptor): Promise<void>;
}

/** What an export did: the manifest digest, the bytes of the blobs it wrote, whether it skipped it all. */
export interface CacheWriteResult {
  digest: Digest;
  bytes: number;
  /** The location held the same records: nothing was written. */
  unchanged: boolean;
}

/** A step to export: a record without its blob (the export picks the blob). */
export type ExportRecord = Omit<RemoteCacheRecord, 'blob'>;

/**
 * Writes `records` and their layers' gzip blobs (made once and kept by the image store) to `to`:
 * blobs it lacks, then the manifest, so a reader sees the old cache or the new; nothing when the
 * location holds the same records already.
 */
export async function writeCache(images: ImageStore, to: CacheLocation, records: readonly ExportRecord[], mode?: CacheMode): Promise<CacheWriteResult> {
  const full: RemoteCacheRecord[] = [];
  const layers = new Map<Digest, LayerBlob>();
  for (const r of records) {
    if (r.empty) {
      full.push(r);
      continue;
    }
    const diffID = r.diffID as Digest;
    const layer = await new StoreLayer(images, diffID, { mediaType: MediaTypes.ociLayer, digest: diffID, size: r.size }).gzipped();
    layers.set(layer.digest, layer);
    full.push({ ...r, blob: { mediaType: layer.mediaType, digest: layer.digest, size: layer.size } });
  }
  const encoded = encodeCache(full, mode);
  // Nothing changed: the location holds these records already (the encoding is deterministic).
  const current = await to.readManifest().catch(() => undefined);
  if (current && sha256OfBuffer(current.bytes) === encoded.manifestDescriptor.digest) return { digest: encoded.manifestDescriptor.digest, bytes: 0, unchanged: true };
  let bytes = 0;
  const put = async (d: Descriptor, open: () => Promise<Readable>) => {
    if (await to.hasBlob(d)) return;
    await to.putBlob(d, open);
    bytes += d.size;
  };
  for (const layer of layers.values()) await put(layer.descriptor, () => layer.compressed());
  await put(encoded.configDescriptor, async () => Readable.from([encoded.config]));
  await to.putManifest(encoded.manifest, encoded.manifestDescriptor);
  return { digest: encoded.manifestDescriptor.digest, bytes, unchanged: false };
}

/** A cache read from a location: its records, and how to hold a record's layer in a store. */
export interface LoadedCache extends RemoteCache {
  readonly ref: string;
  /** Where its blobs are, as a lazy layer records it: `registry:REF` or `local:DIR`. */
  readonly location: string;
  /** Records the record's layer on its parent chain lazily (its files are fetched when needed). */
  holdLayer(layers: LayerStore, record: RemoteCacheRecord, opts?: { lease?: CommitOptions['lease'] }): Promise<void>;
}

/** Reads the cache at `from`: undefined when there is none; EBADCACHE naming its ref when corrupt or foreign. */
export async function readCache(from: CacheLocation): Promise<LoadedCache | undefined> {
  const fail = (detail: string) => badCache(from.ref, detail);
  const found = await from.readManifest();
  if (!found) return undefined;
  if (found.digest && sha256OfBuffer(found.bytes) !== found.digest) throw fail(`the manifest ${found.digest} does not match its digest`);
  const readConfig = async (config: Descriptor): Promise<Buffer> => {
    if (!(config.size <= CONFIG_MAX)) throw fail(`its config ${config.digest} of ${config.size} bytes is too large`);
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of (await from.openBlob(config)).pipe(verifyingStream(config.digest as Digest, config.size))) chunks.push(chunk as Buffer);
    } catch (err) {
      throw fail(`cannot read the config ${config.digest}: ${(err as Error).message}`);
    }
    return Buffer.concat(chunks);
  };
  // A pushed image built with --cache-to type=inline: its config holds the records, its layers the blobs.
  const image = imageManifestOf(found.bytes);
  // The manifest is checked (a tsbuild cache, a well-formed config descriptor) before its config is read.
  const cache = image
    ? decodeInlineCache(from.ref, decodeWith(() => checkManifest(image, 'the image manifest'), fail), await readConfig(image.config))
    : decodeCache(from.ref, found.bytes, await readConfig(decodeCacheManifest(from.ref, found.bytes).config));
  return {
    ...cache,
    ref: from.ref,
    location: from.location,
    async holdLayer(layers, record, opts = {}) {
      if (!record.blob) return;
      await layers.registerRemote(record.parent === '' ? null : (record.parent as Digest), record.diffID as Digest, record.size, { location: from.location, blob: record.blob }, opts);
    },
  };
}

/** The manifest as a document when it is an image's (its config an image config), else undefined. */
function imageManifestOf(bytes: Buffer): { config: Descriptor } | undefined {
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { config?: { mediaType?: unknown } };
    const type = doc?.config?.mediaType;
    return type === MediaTypes.ociConfig || type === MediaTypes.dockerConfig ? (doc as { config: Descriptor }) : undefined;
  } catch {
    return undefined; // decodeCacheManifest says what is wrong with it
  }
}

/** The location a lazy layer names (`registry:REF`, `local:DIR`). */
export function cacheLocationOf(location: string, opts: RegistryClientOptions = {}): CacheLocation {
  if (location.startsWith('registry:')) return registryCacheLocation(location.slice('registry:'.length), opts);
  if (location.startsWith('local:')) return layoutCacheLocation(location.slice('local:'.length));
  throw new TsbuildError('EBADCACHE', `unknown cache location ${location}`);
}

/** A lazy layer's blob (compressed), verified against its digest and size. */
export async function openRemoteBlob(remote: { location: string; blob: Descriptor }, opts: RegistryClientOptions = {}): Promise<Readable> {
  const { blob } = remote;
  const verify = verifyingStream(blob.digest as Digest, blob.size);
  const source = await cacheLocationOf(remote.location, opts).openBlob(blob);
  source.on('error', (err) => verify.destroy(badCache(remote.location, `cannot read the layer ${blob.digest}: ${err.message}`)));
  return source.pipe(verify);
}

/** An OCI layout folder holding one cache: its manifest is the index.json entry CACHE_REF_NAME. */
export function layoutCacheLocation(dir: string): CacheLocation {
  const blobPath = (d: Descriptor) => path.join(dir, 'blobs', 'sha256', digestHex(d.digest as Digest));
  const fail = (detail: string) => badCache(dir, detail);
  return {
    ref: dir,
    location: `local:${path.resolve(dir)}`,
    async readManifest() {
      let indexText: string;
      try {
        indexText = await fsp.readFile(path.join(dir, INDEX_FILE), 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw fail(`cannot read ${INDEX_FILE}: ${(err as Error).message}`);
      }
      const index = checkIndex(parseDocument(indexText, INDEX_FILE, fail), `cache ${dir}: ${INDEX_FILE}`);
      const entry = index.manifests.find((m) => m.annotations?.[ANNOTATION_REF_NAME] === CACHE_REF_NAME) ?? index.manifests[0];
      if (!entry) throw fail(`${INDEX_FILE} names no manifest`);
      const bytes = await fsp.readFile(blobPath(entry)).catch((err: Error) => {
        throw fail(`cannot read the manifest ${entry.digest}: ${err.message}`);
      });
      return { bytes, digest: entry.digest as Digest };
    },
    async openBlob(d) {
      const file = fs.createReadStream(blobPath(d));
      await new Promise<void>((resolve, reject) => file.once('open', () => resolve()).once('error', reject));
      return file;
    },
    async hasBlob(d) {
      return fs.existsSync(blobPath(d));
    },
    async putBlob(d, open) {
      await mkdirp(path.dirname(blobPath(d)));
      await writeLayoutBlob(blobPath(d), { digest: d.digest as Digest, size: d.size, open });
    },
    async putManifest(bytes, d) {
      await this.putBlob(d, async () => Readable.from([bytes]));
      const layoutFile = path.join(dir, OCI_LAYOUT_FILE);
      if (!fs.existsSync(layoutFile)) await writeFileAtomic(layoutFile, JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
      const entry: Descriptor = { ...d, annotations: { [ANNOTATION_REF_NAME]: CACHE_REF_NAME } };
      await writeFileAtomic(path.join(dir, INDEX_FILE), JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [entry] }));
    },
  };
}

/** A registry reference holding one cache: a tag whose manifest is the cache manifest. */
export function registryCacheLocation(ref: string, opts: RegistryClientOptions = {}): CacheLocation {
  const parsed = parseReference(ref);
  const repo = parsed.path;
  const reference = parsed.digest ?? parsed.tag ?? 'latest';
  const subject = subjectOf(parsed);
  const client = new RegistryClient(parsed.domain, repo, opts);
  return {
    ref,
    location: `registry:${ref}`,
    async readManifest() {
      try {
        // The client checks the bytes against the digest the registry claims.
        const { bytes, digest } = await client.getManifest(repo, reference, subject);
        return { bytes, digest };
      } catch (err) {
        if (err instanceof RegistryError && err.status === 404) return undefined;
        throw err;
      }
    },
    openBlob: (d) => client.getBlob(repo, d.digest as Digest, subject),
    hasBlob: async (d) => (await client.headBlob(repo, d.digest as Digest, subject)) !== undefined,
    async putBlob(d, open) {
      const session = await client.startUpload(repo, subject);
      await client.uploadBlob(repo, session, { digest: d.digest as Digest, size: d.size, open }, { subject });
    },
    async putManifest(bytes) {
      await client.putManifest(repo, reference, bytes, MediaTypes.ociManifest, subject);
    },
  };
}
