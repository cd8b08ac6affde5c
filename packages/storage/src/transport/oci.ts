// Export to OCI image layouts: a tar archive (`oci-archive:`) or a directory (`oci:`). Layers are
// written gzip-compressed (compressed once, then kept in the store for reuse) unless
// compression: 'none'. Each name becomes an index.json entry with `org.opencontainers.image.ref.name`
// = the familiar reference (`app:latest`, what `skopeo ... oci-archive:file:app:latest` and
// `umoci --image dir:app:latest` match) and `io.containerd.image.name` = the full name (what docker ≥25
// and containerd read).
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsyncDir, mkdirp, tmpSibling, writeFileAtomic } from '../atomic';
import { INDEX_FILE, OCI_LAYOUT_FILE, OCI_LAYOUT_VERSION } from '../content/store';
import { MediaTypes, type Descriptor } from '../content/types';
import type { Digest } from '../digest';
import { formatReference, parseReference } from '../image/reference';
import type { ImageStore } from '../image/store';
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, type DockerArchiveManifestEntry, type ImageIndex } from '../image/types';
import {
  blobMember,
  exportManifest,
  gzipLayer,
  openUncompressedLayer,
  resolveForExport,
  uncompressedSize,
  writeArchiveFile,
  type SaveOptions,
} from './common';

interface BlobToWrite {
  digest: Digest;
  size: number;
  open: () => Promise<Readable | Buffer>;
}

interface PreparedLayout {
  index: ImageIndex;
  /** docker load's manifest.json over the same blobs (uncompressed layers only). */
  dockerManifest: DockerArchiveManifestEntry[];
  /** In write order: layers, configs, manifests; each digest once. */
  blobs: BlobToWrite[];
}

async function prepareLayout(store: ImageStore, refs: string[], opts: SaveOptions): Promise<PreparedLayout> {
  const images = await resolveForExport(store, refs);
  const blobs = new Map<Digest, BlobToWrite>();
  const add = (b: BlobToWrite) => {
    if (!blobs.has(b.digest)) blobs.set(b.digest, b);
  };
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] };
  const dockerManifest: DockerArchiveManifestEntry[] = [];
  const totalLayers = images.reduce((n, i) => n + i.resolved.layers.length, 0);
  let layersDone = 0;
  for (const { resolved, names } of images) {
    const layerDescs: Descriptor[] = [];
    for (const layer of resolved.layers) {
      if (opts.compression === 'none') {
        const size = await uncompressedSize(store, layer);
        const desc: Descriptor = { mediaType: MediaTypes.ociLayer, digest: layer.diffID, size };
        layerDescs.push(desc);
        add({ digest: desc.digest, size, open: () => openUncompressedLayer(store, layer) });
      } else {
        const { descriptor } = await gzipLayer(store, layer, opts.gzipLevel);
        layerDescs.push(descriptor);
        add({ digest: descriptor.digest, size: descriptor.size, open: () => store.content.open(descriptor.digest, { size: descriptor.size }) });
      }
      opts.onProgress?.({ phase: 'compress', done: ++layersDone, total: totalLayers, item: layer.diffID });
    }
    const cfg = resolved.configDescriptor;
    add({ digest: cfg.digest, size: cfg.size, open: () => store.content.readBytes(cfg.digest) });
    const manifest = await exportManifest(store, resolved, layerDescs);
    add({ digest: manifest.descriptor.digest, size: manifest.descriptor.size, open: async () => manifest.bytes });
    const base = { mediaType: manifest.descriptor.mediaType, digest: manifest.descriptor.digest, size: manifest.descriptor.size };
    dockerManifest.push({
      Config: blobMember(cfg.digest),
      RepoTags: names.map((n) => formatReference(parseReference(n))),
      Layers: layerDescs.map((d) => blobMember(d.digest)),
    });
    if (names.length === 0) index.manifests.push(base);
    for (const name of names) {
      index.manifests.push({
        ...base,
        annotations: { [ANNOTATION_IMAGE_NAME]: formatReference(parseReference(name)), [ANNOTATION_REF_NAME]: name },
      });
    }
  }
  return { index, dockerManifest, blobs: [...blobs.values()] };
}

/** Saves images as an OCI archive (a tar of an OCI image layout). */
export async function saveOciArchive(store: ImageStore, images: string[], out: string, opts: SaveOptions = {}): Promise<void> {
  const layout = await prepareLayout(store, images, opts);
  const total = layout.blobs.reduce((n, b) => n + b.size, 0);
  let done = 0;
  const onBytes = (n: number) => {
    done += n;
    opts.onProgress?.({ phase: 'write', done, total });
  };
  await writeArchiveFile(out, opts.mtime ?? 0, async (w) => {
    await w.addBuffer(OCI_LAYOUT_FILE, JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
    for (const b of layout.blobs) {
      const src = await b.open();
      if (Buffer.isBuffer(src)) {
        await w.addBuffer(blobMember(b.digest), src);
        onBytes(src.length);
      } else {
        await w.addStream(blobMember(b.digest), b.size, src, onBytes);
      }
    }
    await w.addBuffer(INDEX_FILE, JSON.stringify(layout.index));
    if (opts.dockerManifest) await w.addBuffer('manifest.json', JSON.stringify(layout.dockerManifest));
  });
}

/**
 * What `docker save` writes since Docker 25: an OCI layout whose layers are uncompressed tars, plus a
 * docker-archive manifest.json naming the same blobs, so docker load (any version), podman load and
 * OCI tools (skopeo oci-archive:, umoci) all read one file.
 */
export async function saveDockerOciArchive(store: ImageStore, images: string[], out: string, opts: SaveOptions = {}): Promise<void> {
  await saveOciArchive(store, images, out, { ...opts, compression: 'none', dockerManifest: true });
}

/**
 * Saves images into an OCI layout directory (created if missing). Existing blobs are kept, and the
 * new entries replace entries of the same ref.name in its index.json.
 */
export async function saveOciDir(store: ImageStore, images: string[], dir: string, opts: SaveOptions = {}): Promise<void> {
  const layout = await prepareLayout(store, images, opts);
  const blobsDir = path.join(dir, 'blobs', 'sha256');
  await mkdirp(blobsDir);
  const layoutFile = path.join(dir, OCI_LAYOUT_FILE);
  if (!fs.existsSync(layoutFile)) await writeFileAtomic(layoutFile, JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
  const total = layout.blobs.reduce((n, b) => n + b.size, 0);
  let done = 0;
  for (const b of layout.blobs) {
    const target = path.join(blobsDir, b.digest.slice(7));
    if (!fs.existsSync(target)) {
      const src = await b.open();
      const tmp = tmpSibling(target);
      try {
        if (Buffer.isBuffer(src)) await fsp.writeFile(tmp, src);
        else await pipeline(src, fs.createWriteStream(tmp));
        const fh = await fsp.open(tmp, 'r');
        await fh.sync();
        await fh.close();
        await fsp.rename(tmp, target);
      } catch (err) {
        await fsp.rm(tmp, { force: true });
        throw err;
      }
    }
    done += b.size;
    opts.onProgress?.({ phase: 'write', done, total });
  }
  await fsyncDir(blobsDir);
  const indexFile = path.join(dir, INDEX_FILE);
  let existing: ImageIndex = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] };
  try {
    existing = JSON.parse(await fsp.readFile(indexFile, 'utf8'));
    if (!Array.isArray(existing.manifests)) throw new Error(`${indexFile}: no "manifests" array`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw err instanceof SyntaxError ? new Error(`${indexFile} is not valid JSON: ${err.message}`) : err;
    }
  }
  const newNames = new Set(layout.index.manifests.map((m) => m.annotations?.[ANNOTATION_REF_NAME]).filter(Boolean));
  const newDigests = new Set(layout.index.manifests.map((m) => m.digest));
  const kept = existing.manifests.filter((m) => {
    const name = m.annotations?.[ANNOTATION_REF_NAME];
    if (name) return !newNames.has(name);
    return !newDigests.has(m.digest);
  });
  await writeFileAtomic(indexFile, JSON.stringify({ ...existing, manifests: [...kept, ...layout.index.manifests] }));
}
