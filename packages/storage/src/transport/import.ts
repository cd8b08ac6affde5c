// The local store as the sink of a load or a pull: images whose blobs were staged in the content store
// get their layers extracted by the layer store (LayerImporter), bottom-up and each chain once, as
// verified uncompressed streams of their own blobs; then each image is recorded under its names.
import type { Readable } from 'node:stream';
import type { Descriptor } from '../content/types';
import { chainIDs, type Digest } from '../digest';
import { openOwnBlobVerified } from '../image/local';
import type { Image, LayerBlob } from '../image/model';
import type { ImageStore } from '../image/store';
import type { ProgressFn } from './common';

/** Implemented by the layer store: extract one layer on top of its parent chain. */
export interface LayerImporter {
  /**
   * `open()` yields the layer's uncompressed tar, verified against `diffID` (the stream errors at its
   * end otherwise). An importer that already has the chain may return without calling it.
   */
  importLayer(parentChainID: Digest | null, diffID: Digest, open: () => Readable): Promise<void>;
}

/**
 * Hands one layer to the importer as its blob's verified uncompressed stream. An importer that
 * already has the chain does not read it; the blob is then decompressed and hashed here all the
 * same, because the caller records it as a form of the diffID, which save and push then ship in
 * place of the layer. Returns the uncompressed size.
 */
async function importLayerVerified(importer: LayerImporter, parent: Digest | null, layer: LayerBlob): Promise<number | undefined> {
  let size: number | undefined;
  const open = () => openOwnBlobVerified(layer, (n) => (size = n));
  await importer.importLayer(parent, layer.diffID, open);
  if (size !== undefined || layer.digest === layer.diffID) return size; // hashed, or named by its diffID
  // Not even a blob recorded before is trusted: a store written before this check may hold a bad one.
  for await (const _ of open());
  return size;
}

/** Imports every image's layers (each chain once), then records each image under its names. */
export async function importImages(store: ImageStore, importer: LayerImporter, images: readonly Image[], onProgress?: ProgressFn): Promise<void> {
  const done = new Set<Digest>();
  const total = new Set(images.flatMap((i) => chainIDs(i.layers.map((l) => l.diffID)))).size;
  // Recorded even when the importer had the layer already (importLayerVerified hashed the blob then):
  // a built image naming this layer by diffID can then be saved from the original blob (the layer
  // store may not rebuild its bytes).
  const blobs: { diffID: Digest; blob: Descriptor; size?: number }[] = [];
  for (const img of images) {
    const chain = chainIDs(img.layers.map((l) => l.diffID));
    for (const [i, layer] of img.layers.entries()) {
      const id = chain[i]!;
      if (done.has(id)) continue;
      const size = await importLayerVerified(importer, i === 0 ? null : chain[i - 1]!, layer);
      const blob = { mediaType: layer.mediaType, digest: layer.digest, size: layer.size };
      blobs.push({ diffID: layer.diffID, blob, ...(size !== undefined ? { size } : {}) });
      done.add(id);
      onProgress?.({ phase: 'import', done: done.size, total, item: layer.diffID });
    }
  }
  for (const [i, img] of images.entries()) await store.addImage(img.manifestDescriptor, [...img.names], i === 0 ? blobs : []);
}
