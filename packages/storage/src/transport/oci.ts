// Images as an OCI image layout (what the OCI archive and layout directory sinks write). Layers are
// gzip-compressed (compressed once, then kept by the source for reuse) unless compression: 'none'.
// Each name becomes an index.json entry with `org.opencontainers.image.ref.name` = the familiar
// reference (`app:latest`, what `skopeo ... oci-archive:file:app:latest` and `umoci --image
// dir:app:latest` match) and `io.containerd.image.name` = the full name (what docker ≥25 and
// containerd read).
import type { Readable } from 'node:stream';
import { MediaTypes, type Descriptor } from '../content/types';
import { sha256OfBuffer, type Digest } from '../digest';
import { uncompressedLayer, withLayers, type Image, type LayerBlob } from '../image/model';
import { formatReference, parseReference } from '../image/reference';
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, type DockerArchiveManifestEntry, type ImageIndex } from '../image/types';
import { blobMember } from './archive-file';
import type { SaveOptions } from './common';

export interface LayoutBlob {
  digest: Digest;
  size: number;
  open: () => Promise<Readable | Buffer>;
}

export interface OciLayoutPlan {
  index: ImageIndex;
  /** docker load's manifest.json over the same blobs (uncompressed layers only). */
  dockerManifest: DockerArchiveManifestEntry[];
  /** In write order: layers, configs, manifests; each digest once. */
  blobs: LayoutBlob[];
}

/** The fully qualified form of a familiar name (`app:latest` → `docker.io/library/app:latest`). */
export function fullName(name: string): string {
  return formatReference(parseReference(name));
}

/** Plans the layout of `images`: their blobs (layers converted as `opts.compression` asks) and index. */
export async function planOciLayout(images: readonly Image[], opts: SaveOptions): Promise<OciLayoutPlan> {
  const blobs = new Map<Digest, LayoutBlob>();
  const add = (b: LayoutBlob) => {
    if (!blobs.has(b.digest)) blobs.set(b.digest, b);
  };
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] };
  const dockerManifest: DockerArchiveManifestEntry[] = [];
  const totalLayers = [...images, ...(opts.indexes ?? []).flatMap((x) => x.images.map((i) => i.image))].reduce((n, i) => n + i.layers.length, 0);
  let layersDone = 0;
  /** Adds an image's blobs (layers converted) and returns its manifest's descriptor as written. */
  const planImage = async (img: Image): Promise<{ manifest: Descriptor; layers: LayerBlob[] }> => {
    const layers: LayerBlob[] = [];
    for (const layer of img.layers) {
      const out = opts.compression === 'none' ? await uncompressedLayer(layer) : await layer.gzipped(opts.gzipLevel);
      layers.push(out);
      add({ digest: out.digest, size: out.size, open: () => out.compressed() });
      opts.onProgress?.({ phase: 'compress', done: ++layersDone, total: totalLayers, item: layer.diffID });
    }
    const cfg = img.configDescriptor;
    add({ digest: cfg.digest, size: cfg.size, open: () => img.rawConfig() });
    const exported = withLayers(img, layers);
    const m = exported.manifestDescriptor;
    add({ digest: m.digest, size: m.size, open: () => exported.rawManifest() });
    return { manifest: { mediaType: m.mediaType, digest: m.digest, size: m.size }, layers };
  };
  const addEntries = (base: Descriptor, names: readonly string[]) => {
    if (names.length === 0) index.manifests.push(base);
    for (const name of names) {
      index.manifests.push({ ...base, annotations: { [ANNOTATION_IMAGE_NAME]: fullName(name), [ANNOTATION_REF_NAME]: name } });
    }
  };
  for (const img of images) {
    const { manifest, layers } = await planImage(img);
    dockerManifest.push({ Config: blobMember(img.configDescriptor.digest), RepoTags: img.names.map(fullName), Layers: layers.map((l) => blobMember(l.digest)) });
    addEntries(manifest, img.names);
  }
  // An index names its platform images' manifests as written here (their layers may have been converted).
  for (const multi of opts.indexes ?? []) {
    const manifests: Descriptor[] = [];
    for (const { image, platform } of multi.images) manifests.push({ ...(await planImage(image)).manifest, platform });
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests }));
    const digest = sha256OfBuffer(bytes);
    add({ digest, size: bytes.length, open: async () => bytes });
    addEntries({ mediaType: MediaTypes.ociIndex, digest, size: bytes.length }, multi.names);
  }
  return { index, dockerManifest, blobs: [...blobs.values()] };
}
