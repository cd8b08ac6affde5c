// A shared build cache in an OCI layout folder (`--cache-to type=local,dest=DIR`, `--cache-from
// type=local,src=DIR`): the cache manifest of remote-format.ts, its config and its layer blobs under
// blobs/sha256, and an index.json naming the manifest. Usable as a CI cache directory. Reading checks
// every document against its digest before decoding it, and a layer's blob against its digest and
// its diffID while the layer store extracts it, so nothing is recorded from bytes that do not match.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { mkdirp, writeFileAtomic } from '../atomic';
import { INDEX_FILE, OCI_LAYOUT_FILE, OCI_LAYOUT_VERSION } from '../content/store';
import { MediaTypes, type Descriptor } from '../content/types';
import { digestHex, sha256OfBuffer, verifyingStream, type Digest } from '../digest';
import { checkIndex, parseDocument } from '../image/decode';
import { openOwnBlobVerified, StoreLayer } from '../image/local';
import type { LayerBlob } from '../image/model';
import type { ImageStore } from '../image/store';
import { ANNOTATION_REF_NAME } from '../image/types';
import type { LayerStore } from '../layers';
import { writeLayoutBlob } from './sinks/oci-layout';
import { badCache, decodeCache, decodeCacheManifest, encodeCache, type RemoteCache, type RemoteCacheRecord } from '../cache/remote-format';

/** The index.json name of the cache manifest in a layout folder. */
const CACHE_REF_NAME = 'tsbuild-cache';

/** A step to export: a record without its blob (the export picks the blob). */
export type ExportRecord = Omit<RemoteCacheRecord, 'blob'>;

/**
 * Writes `records` and their layers' gzip blobs (made once and kept by the image store) to `dir`.
 * Blobs already there are kept; the index is replaced last, so a reader sees the old cache or the new.
 * Returns the manifest digest and the bytes of the blobs it wrote.
 */
export async function writeCacheLayout(images: ImageStore, dir: string, records: readonly ExportRecord[]): Promise<{ digest: Digest; bytes: number }> {
  const blobsDir = path.join(dir, 'blobs', 'sha256');
  await mkdirp(blobsDir);
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
  const encoded = encodeCache(full);
  let bytes = 0;
  const put = async (digest: Digest, size: number, open: () => Promise<Readable | Buffer>) => {
    const target = path.join(blobsDir, digestHex(digest));
    if (fs.existsSync(target)) return;
    await writeLayoutBlob(target, { digest, size, open });
    bytes += size;
  };
  for (const layer of layers.values()) await put(layer.digest, layer.size, () => layer.compressed());
  await put(encoded.configDescriptor.digest, encoded.config.length, async () => encoded.config);
  await put(encoded.manifestDescriptor.digest, encoded.manifest.length, async () => encoded.manifest);
  const layoutFile = path.join(dir, OCI_LAYOUT_FILE);
  if (!fs.existsSync(layoutFile)) await writeFileAtomic(layoutFile, JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
  const manifest: Descriptor = { ...encoded.manifestDescriptor, annotations: { [ANNOTATION_REF_NAME]: CACHE_REF_NAME } };
  await writeFileAtomic(path.join(dir, INDEX_FILE), JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [manifest] }));
  return { digest: encoded.manifestDescriptor.digest, bytes };
}

/** A cache read from a layout folder: its records, and how to bring a record's layer into a store. */
export interface LayoutCache extends RemoteCache {
  readonly ref: string;
  /** Extracts the record's layer on its parent chain (verified against blob digest and diffID). */
  importLayer(layers: LayerStore, record: RemoteCacheRecord): Promise<void>;
}

/**
 * Reads the cache in `dir` (`ref` names it in messages). A missing folder or index is undefined (a
 * notice for the caller); a corrupt or foreign one throws EBADCACHE naming `ref`.
 */
export async function readCacheLayout(dir: string, ref: string): Promise<LayoutCache | undefined> {
  const fail = (detail: string) => badCache(ref, detail);
  let indexText: string;
  try {
    indexText = await fsp.readFile(path.join(dir, INDEX_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fail(`cannot read ${INDEX_FILE}: ${(err as Error).message}`);
  }
  const index = checkIndex(parseDocument(indexText, INDEX_FILE, fail), `cache ${ref}: ${INDEX_FILE}`);
  const entry = index.manifests.find((m) => m.annotations?.[ANNOTATION_REF_NAME] === CACHE_REF_NAME) ?? index.manifests[0];
  if (!entry) throw fail(`${INDEX_FILE} names no manifest`);
  const blobPath = (d: Digest) => path.join(dir, 'blobs', 'sha256', digestHex(d));
  const readVerified = async (d: Descriptor, what: string): Promise<Buffer> => {
    const bytes = await fsp.readFile(blobPath(d.digest)).catch((err: Error) => {
      throw fail(`cannot read the ${what} ${d.digest}: ${err.message}`);
    });
    if (sha256OfBuffer(bytes) !== d.digest || bytes.length !== d.size) throw fail(`the ${what} ${d.digest} does not match its digest`);
    return bytes;
  };
  const manifestBytes = await readVerified(entry, 'manifest');
  // The manifest is checked (a tsbuild cache, a well-formed config descriptor) before its config is read.
  const { config } = decodeCacheManifest(ref, manifestBytes);
  const cache = decodeCache(ref, manifestBytes, await readVerified(config, 'config'));
  return {
    ...cache,
    ref,
    async importLayer(layers, record) {
      const blob = record.blob;
      if (!blob) return;
      const layer: LayerBlob = {
        descriptor: blob,
        digest: blob.digest as Digest,
        diffID: record.diffID as Digest,
        size: blob.size,
        mediaType: blob.mediaType,
        compressed: async () => {
          const verify = verifyingStream(blob.digest as Digest, blob.size);
          const file = fs.createReadStream(blobPath(blob.digest as Digest));
          file.on('error', (err) => verify.destroy(fail(`cannot read the layer ${blob.digest}: ${err.message}`)));
          return file.pipe(verify);
        },
        uncompressed: async () => openOwnBlobVerified(layer, () => {}),
        uncompressedSize: async () => record.size,
        gzipped: async () => layer,
      };
      await layers.importLayer(record.parent === '' ? null : (record.parent as Digest), layer.diffID, () => openOwnBlobVerified(layer, () => {}));
    },
  };
}
