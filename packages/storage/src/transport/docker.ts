// Export to docker-archive (`docker save` format): manifest.json `[{Config, RepoTags, Layers}]`, the
// config, and the layers as UNCOMPRESSED tars (their digest = diffID), stored at `blobs/sha256/<hex>`
// like docker ≥25 writes them. docker 20.10 and podman 4.3 take any member path that manifest.json
// names, and every docker version accepts uncompressed layers.
import type { Digest } from '../digest';
import { formatReference, parseReference } from '../image/reference';
import type { ImageStore } from '../image/store';
import type { DockerArchiveManifestEntry } from '../image/types';
import { blobMember, openUncompressedLayer, resolveForExport, uncompressedSize, writeArchiveFile, type SaveOptions } from './common';
import type { ImageLayer } from '../image/store';

export async function saveDockerArchive(store: ImageStore, images: string[], out: string, opts: SaveOptions = {}): Promise<void> {
  const resolved = await resolveForExport(store, images);
  const manifest: DockerArchiveManifestEntry[] = [];
  const layers = new Map<Digest, { layer: ImageLayer; size: number }>();
  const configs = new Map<Digest, number>();
  for (const { resolved: img, names } of resolved) {
    for (const layer of img.layers) {
      if (!layers.has(layer.diffID)) layers.set(layer.diffID, { layer, size: await uncompressedSize(store, layer) });
    }
    configs.set(img.id, img.configDescriptor.size);
    manifest.push({
      Config: blobMember(img.id),
      // Fully qualified: podman reads a short RepoTag as localhost/<name>, docker normalizes either way.
      RepoTags: names.map((n) => formatReference(parseReference(n))),
      Layers: img.layers.map((l) => blobMember(l.diffID)),
    });
  }
  let total = 0;
  for (const { size } of layers.values()) total += size;
  for (const size of configs.values()) total += size;
  let done = 0;
  const onBytes = (n: number) => {
    done += n;
    opts.onProgress?.({ phase: 'write', done, total });
  };
  await writeArchiveFile(out, opts.mtime ?? 0, async (w) => {
    for (const { layer, size } of layers.values()) {
      await w.addStream(blobMember(layer.diffID), size, await openUncompressedLayer(store, layer), onBytes);
    }
    for (const id of configs.keys()) {
      const bytes = await store.content.readBytes(id);
      await w.addBuffer(blobMember(id), bytes);
      onBytes(bytes.length);
    }
    await w.addBuffer('manifest.json', JSON.stringify(manifest));
  });
}
