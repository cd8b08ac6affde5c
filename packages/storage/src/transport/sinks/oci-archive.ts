// `oci-archive:` — a tar of an OCI image layout, gzip layers unless compression: 'none'.
import { INDEX_FILE, OCI_LAYOUT_FILE, OCI_LAYOUT_VERSION } from '../../content/store';
import { blobMember, writeArchiveFile } from '../archive-file';
import { planOciLayout } from '../oci';
import type { ImageSink } from '../sink';
import { writeProgress } from '../common';

export const ociArchiveSink: ImageSink = {
  name: 'oci',
  aliases: ['oci-archive'],
  indexes: true,
  dest: 'file',
  summary: 'OCI archive (a tar of an OCI layout), gzip layers',
  async write(images, out, opts) {
    const layout = await planOciLayout(images, opts);
    const total = layout.blobs.reduce((n, b) => n + b.size, 0);
    const onBytes = writeProgress(opts.onProgress, total);
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
  },
};
