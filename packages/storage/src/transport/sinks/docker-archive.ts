// `docker-archive:` (the `docker save` format before Docker 25): manifest.json `[{Config, RepoTags,
// Layers}]`, the config, and the layers as UNCOMPRESSED tars (their digest = diffID), stored at
// `blobs/sha256/<hex>` like docker ≥25 writes them. docker 20.10 and podman 4.3 take any member path
// that manifest.json names, and every docker version accepts uncompressed layers.
import type { Digest } from '../../digest';
import { uncompressedLayer, type Image, type LayerBlob } from '../../image/model';
import type { DockerArchiveManifestEntry } from '../../image/types';
import { blobMember, writeArchiveFile } from '../archive-file';
import { fullName } from '../oci';
import type { ImageSink } from '../sink';
import { writeProgress } from '../common';

export const dockerArchiveSink: ImageSink = {
  name: 'docker',
  aliases: ['docker-archive'],
  dest: 'file',
  summary: 'docker-archive (docker save before Docker 25)',
  async write(images, out, opts) {
    const manifest: DockerArchiveManifestEntry[] = [];
    const layers = new Map<Digest, LayerBlob>();
    const configs = new Map<Digest, Image>();
    for (const img of images) {
      const tars: LayerBlob[] = [];
      for (const layer of img.layers) tars.push(layers.get(layer.diffID) ?? (await uncompressedLayer(layer)));
      for (const t of tars) layers.set(t.diffID, t);
      configs.set(img.id, img);
      // Fully qualified: podman reads a short RepoTag as localhost/<name>, docker normalizes either way.
      manifest.push({ Config: blobMember(img.id), RepoTags: img.names.map(fullName), Layers: tars.map((l) => blobMember(l.diffID)) });
    }
    let total = 0;
    for (const l of layers.values()) total += l.size;
    for (const img of configs.values()) total += img.configDescriptor.size;
    const onBytes = writeProgress(opts.onProgress, total);
    await writeArchiveFile(out, opts.mtime ?? 0, async (w) => {
      for (const l of layers.values()) await w.addStream(blobMember(l.diffID), l.size, await l.compressed(), onBytes);
      for (const img of configs.values()) {
        const bytes = await img.rawConfig();
        await w.addBuffer(blobMember(img.id), bytes);
        onBytes(bytes.length);
      }
      await w.addBuffer('manifest.json', JSON.stringify(manifest));
    });
  },
};
