// Loading image archives: OCI archives (oci-layout + index.json) and docker-archives (manifest.json),
// plain or gzip/zstd-compressed as a whole. Members are streamed into the content store (never the
// whole archive in memory), verified where their name carries a digest; then each image's layers are
// handed, bottom-up, to the layer store through a LayerImporter as verified uncompressed streams, and
// the images are tagged.
//
// Names: docker-archive RepoTags; for OCI, `io.containerd.image.name` when present (docker ≥25,
// containerd), else `org.opencontainers.image.ref.name` read as a reference (`app:latest`, or `app` →
// `app:latest`). An image without a usable name is loaded untagged (reachable by ID).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MediaTypes, type Descriptor } from '../content/types';
import { isDigest, type Digest } from '../digest';
import { storeImage } from '../image/local';
import { withNames, type Image } from '../image/model';
import { familiarString, parseReference } from '../image/reference';
import type { ImageStore, StagedBlobs } from '../image/store';
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, type DockerArchiveManifestEntry, type ImageIndex, type ImageManifest } from '../image/types';
import { normalizeName, readArchiveMembers } from './archive-file';
import { decompress, detectCompression } from '../archive/decompress';
import { CONFIG_MAX, type ProgressFn } from './common';
import { importImages, type LayerImporter } from './import';
import { TsbuildError, archiveError, describeSystemError, shortName, withContext } from '../errors';
import { checkConfig, checkIndex, isIndexDocument, pairLayers, parseDocument } from '../image/decode';

export type { LayerImporter } from './import';

export interface LoadOptions {
  importer: LayerImporter;
  onProgress?: ProgressFn;
}

export interface LoadResult {
  /** Familiar references tagged by the load (`app:latest`). */
  images: string[];
  /** Image IDs (config digests), one per loaded image. */
  ids: Digest[];
}

const METADATA = new Set(['manifest.json', 'index.json', 'oci-layout', 'repositories']);
const METADATA_MAX = 64 << 20;

export async function loadArchive(store: ImageStore, file: string, opts: LoadOptions): Promise<LoadResult> {
  const st = await fs.promises.stat(file).catch((err: NodeJS.ErrnoException) => {
    throw new TsbuildError(err.code ?? 'EIO', err.code === 'ENOENT' ? `archive not found: ${shortName(file)}` : `cannot read archive ${shortName(file)}: ${describeSystemError(err)}`, { cause: err });
  });
  if (!st.isFile()) throw new TsbuildError('EINVAL', `cannot load ${shortName(file)}: not a regular file`);
  // What a failed load wrote is deleted at once, not left to prune's grace period.
  const staged = await store.stageBlobs();
  try {
    const result = await loadStaged(store, file, st.size, staged, opts);
    await staged.release();
    return result;
  } catch (err) {
    await staged.abandon().catch(() => {});
    throw err;
  }
}

async function loadStaged(store: ImageStore, file: string, fileSize: number, staged: StagedBlobs, opts: LoadOptions): Promise<LoadResult> {
  const members = await readMembers(store, file, fileSize, staged, opts.onProgress);
  let images: Image[];
  let indexes: LoadedIndex[] = [];
  if (members.meta.has('oci-layout') && members.meta.has('index.json')) ({ images, indexes } = await fromOciLayout(store, members, file));
  else if (members.meta.has('manifest.json')) images = await fromDockerArchive(store, members, file, staged);
  else if (members.meta.has('repositories')) {
    throw archiveError(file, `legacy docker-archive (docker < 1.10, no manifest.json) is not supported; re-save it with a newer docker`);
  } else throw archiveError(file, `not an image archive (no oci-layout + index.json, no manifest.json)`);
  await importImages(store, opts.importer, images, opts.onProgress);
  // A multi-platform image stays one: its index (the archive's bytes) under its names.
  for (const x of indexes) await store.addIndex(x.descriptor, x.index, x.names);
  const result: LoadResult = { images: [], ids: [] };
  for (const x of indexes) for (const n of x.names) if (!result.images.includes(n)) result.images.push(n);
  for (const img of images) {
    for (const n of img.names) if (!result.images.includes(n)) result.images.push(n);
    if (!result.ids.includes(img.id)) result.ids.push(img.id);
  }
  return result;
}

interface Members {
  meta: Map<string, Buffer>;
  /** Archive path → stored blob. */
  files: Map<string, Descriptor>;
  /** Archive path → path it links to. */
  links: Map<string, string>;
}

async function readMembers(store: ImageStore, file: string, fileSize: number, staged: StagedBlobs, onProgress?: ProgressFn): Promise<Members> {
  const raw = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  let read = 0;
  raw.on('data', (chunk) => {
    read += chunk.length;
    onProgress?.({ phase: 'read', done: read, total: fileSize, item: file });
  });
  const stream = decompress(raw);
  const out: Members = { meta: new Map(), files: new Map(), links: new Map() };
  try {
    for await (const m of readArchiveMembers(stream)) {
      if (m.type === 'symlink') {
        out.links.set(m.name, path.posix.normalize(path.posix.join(path.posix.dirname(m.name), m.linkname)));
        continue;
      }
      if (m.type === 'link') {
        out.links.set(m.name, normalizeName(m.linkname));
        continue;
      }
      if (m.type !== 'file') continue;
      if (METADATA.has(m.name)) {
        if (m.size > METADATA_MAX) throw archiveError(file, `${m.name} is ${m.size} bytes, too large`);
        const chunks: Buffer[] = [];
        for await (const c of m.body) chunks.push(Buffer.from(c));
        out.meta.set(m.name, Buffer.concat(chunks));
        continue;
      }
      const named = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(m.name);
      const expected = named ? (`sha256:${named[1]}` as Digest) : undefined;
      if (expected) await staged.hold(expected);
      if (expected && (await store.content.has(expected))) {
        for await (const _ of m.body); // already stored (and verified when it was)
        out.files.set(m.name, { mediaType: MediaTypes.octetStream, digest: expected, size: m.size });
        continue;
      }
      try {
        out.files.set(m.name, await store.content.putStream(m.body, expected, undefined, staged.created));
      } catch (err) {
        throw withContext(`${shortName(file)}: member ${m.name}`, err);
      }
    }
  } finally {
    raw.destroy();
  }
  return out;
}

function lookup(members: Members, name: string, file: string, what: string): Descriptor {
  let p = normalizeName(name);
  for (let hops = 0; hops < 16 && !members.files.has(p) && members.links.has(p); hops++) p = members.links.get(p)!;
  const d = members.files.get(p);
  if (!d) throw archiveError(file, `${what} ${name} is missing from the archive`);
  return d;
}

function parseMeta<T>(members: Members, name: string, file: string): T {
  return parseDocument(members.meta.get(name)!, name, (detail) => archiveError(file, detail)) as T;
}

/** Familiar names from an OCI index entry's annotations (see the header). */
function ociEntryNames(desc: Descriptor): string[] {
  for (const key of [ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME]) {
    const raw = desc.annotations?.[key];
    if (!raw) continue;
    try {
      const ref = parseReference(raw);
      if (!ref.digest) return [familiarString(ref)];
    } catch {
      // not a usable name; try the next annotation
    }
  }
  return [];
}

/** An image index of an OCI archive whose every platform image the archive holds. */
interface LoadedIndex {
  descriptor: Descriptor;
  index: ImageIndex;
  names: string[];
}

async function fromOciLayout(store: ImageStore, members: Members, file: string): Promise<{ images: Image[]; indexes: LoadedIndex[] }> {
  const layout = parseMeta<{ imageLayoutVersion?: unknown } | null>(members, 'oci-layout', file);
  if (layout?.imageLayoutVersion !== '1.0.0') throw archiveError(file, `unsupported OCI layout version ${JSON.stringify(layout?.imageLayoutVersion)?.slice(0, 40)}`);
  const index = checkIndex(parseMeta<unknown>(members, 'index.json', file), `${shortName(file)}: index.json`);
  const out: Image[] = [];
  const indexes: LoadedIndex[] = [];
  for (const entry of index.manifests) {
    if (!isDigest(entry.digest)) throw archiveError(file, `index.json names an invalid digest ${JSON.stringify(entry.digest)}`);
    lookup(members, `blobs/sha256/${entry.digest.slice(7)}`, file, 'manifest');
    const names = ociEntryNames(entry);
    const multi = await platformImagesOf(store, members, entry, file);
    if (multi) {
      out.push(...multi.images);
      indexes.push({ descriptor: { mediaType: entry.mediaType, digest: entry.digest, size: entry.size }, index: multi.index, names });
      continue;
    }
    const { manifest, descriptor } = await store.readManifest(entry);
    const at = out.findIndex((o) => o.manifestDescriptor.digest === descriptor.digest);
    const same = out[at];
    if (same) out[at] = withNames(same, [...same.names, ...names.filter((n) => !same.names.includes(n))]);
    else out.push(await describe(store, manifest, descriptor, file, names));
  }
  return { images: out, indexes };
}

/**
 * Every platform image of an index entry, when the entry is an index of one level whose images the
 * archive all holds (skopeo copy --all, save --format oci); otherwise undefined, and this host's
 * image is loaded as before.
 */
async function platformImagesOf(store: ImageStore, members: Members, entry: Descriptor, file: string): Promise<{ index: ImageIndex; images: Image[] } | undefined> {
  const raw = await store.content.readJson<unknown>(entry.digest);
  if (!isIndexDocument(raw, entry.mediaType)) return undefined;
  const index = checkIndex(raw, `${shortName(file)}: image index ${entry.digest}`);
  const children = index.manifests.filter((m) => m.platform);
  if (children.length < 2 || children.some((m) => !isDigest(m.digest) || !members.files.has(`blobs/sha256/${m.digest.slice(7)}`))) return undefined;
  const images: Image[] = [];
  for (const child of children) {
    const { manifest, descriptor, index: nested } = await store.readManifest(child);
    if (nested) return undefined;
    images.push(await describe(store, manifest, descriptor, file, []));
  }
  return { index, images };
}

async function describe(store: ImageStore, manifest: ImageManifest, descriptor: Descriptor, file: string, names: string[]): Promise<Image> {
  const configSize = (await store.content.info(manifest.config.digest).catch(() => undefined))?.size ?? 0;
  if (configSize > CONFIG_MAX) throw archiveError(file, `config ${manifest.config.digest} of ${configSize} bytes is too large (over ${CONFIG_MAX})`);
  const config = await store.content
    .readJson<unknown>(manifest.config.digest)
    .then((doc) => checkConfig(doc, `${shortName(file)}: config ${manifest.config.digest}`))
    .catch((err: Error) => {
      throw withContext(`${shortName(file)}: config ${manifest.config.digest}`, err);
    });
  const layers = pairLayers(manifest, config, (detail) => archiveError(file, detail));
  for (const l of manifest.layers) {
    if (!(await store.content.has(l.digest))) throw archiveError(file, `layer blob ${l.digest} is missing from the archive`);
  }
  const image = {
    id: manifest.config.digest,
    manifest,
    manifestDescriptor: { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size },
    config,
    configDescriptor: manifest.config,
    layers,
  };
  return storeImage(store, image, names);
}

async function fromDockerArchive(store: ImageStore, members: Members, file: string, staged: StagedBlobs): Promise<Image[]> {
  const entries = parseMeta<DockerArchiveManifestEntry[]>(members, 'manifest.json', file);
  if (!Array.isArray(entries)) throw archiveError(file, `manifest.json is not an array`);
  const out: Image[] = [];
  for (const e of entries) {
    if (typeof e?.Config !== 'string' || !Array.isArray(e.Layers)) throw archiveError(file, `manifest.json entry without Config or Layers`);
    if (e.Layers.some((l) => typeof l !== 'string')) throw archiveError(file, `manifest.json: Layers must name archive members`);
    const repoTags: unknown = e.RepoTags ?? [];
    if (!Array.isArray(repoTags) || repoTags.some((t) => typeof t !== 'string')) throw archiveError(file, `manifest.json: RepoTags must be an array of strings`);
    const configBlob = lookup(members, e.Config, file, 'config');
    const layers: Descriptor[] = [];
    for (const p of e.Layers) {
      const blob = lookup(members, p, file, 'layer');
      const head = await readHead(store, blob.digest);
      const kind = detectCompression(head);
      if (kind !== 'gzip' && kind !== 'zstd' && kind !== 'none') {
        throw archiveError(file, `layer ${p} is ${kind}-compressed; only uncompressed, gzip and zstd layers are supported`);
      }
      const mediaType = kind === 'gzip' ? MediaTypes.ociLayerGzip : kind === 'zstd' ? MediaTypes.ociLayerZstd : MediaTypes.ociLayer;
      layers.push({ mediaType, digest: blob.digest, size: (await store.content.info(blob.digest)).size });
    }
    const configSize = (await store.content.info(configBlob.digest)).size;
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: configBlob.digest, size: configSize },
      layers,
    };
    const descriptor = await store.content.putJson(manifest, MediaTypes.ociManifest, staged.created);
    const img = await describe(store, manifest, descriptor, file, []);
    const names: string[] = [];
    for (const t of repoTags as string[]) {
      try {
        const ref = parseReference(t);
        if (!ref.digest) names.push(familiarString(ref));
      } catch (err) {
        throw withContext(`${shortName(file)}: RepoTags`, err);
      }
    }
    out.push(withNames(img, names));
  }
  return out;
}

async function readHead(store: ImageStore, d: Digest): Promise<Buffer> {
  const fh = await fs.promises.open(store.content.blobPath(d), 'r');
  try {
    const buf = Buffer.alloc(8);
    const { bytesRead } = await fh.read(buf, 0, 8, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
