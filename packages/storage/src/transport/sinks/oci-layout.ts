// `oci:DIR` — an OCI image layout directory (created if missing), as skopeo and umoci read it.
// Existing blobs are kept, and the new entries replace entries of the same ref.name in its index.json.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fsyncDir, mkdirp, tmpSibling, writeFileAtomic } from '../../atomic';
import { INDEX_FILE, OCI_LAYOUT_FILE, OCI_LAYOUT_VERSION } from '../../content/store';
import { MediaTypes } from '../../content/types';
import { ANNOTATION_REF_NAME, type ImageIndex } from '../../image/types';
import { checkIndex } from '../../image/decode';
import { withContext } from '../../errors';
import { planOciLayout, type LayoutBlob } from '../oci';
import type { ImageSink } from '../sink';
import { writeProgress } from '../common';

export const ociLayoutSink: ImageSink = {
  name: 'oci-layout',
  aliases: [],
  indexes: true,
  dest: 'directory',
  summary: 'OCI layout directory (skopeo oci:DIR, umoci), gzip layers',
  async write(images, dir, opts) {
    const layout = await planOciLayout(images, opts);
    const blobsDir = path.join(dir, 'blobs', 'sha256');
    await mkdirp(blobsDir);
    const layoutFile = path.join(dir, OCI_LAYOUT_FILE);
    if (!fs.existsSync(layoutFile)) await writeFileAtomic(layoutFile, JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
    const total = layout.blobs.reduce((n, b) => n + b.size, 0);
    const onBytes = writeProgress(opts.onProgress, total);
    for (const b of layout.blobs) {
      const target = path.join(blobsDir, b.digest.slice(7));
      if (!fs.existsSync(target)) await writeLayoutBlob(target, b);
      onBytes(b.size);
    }
    await fsyncDir(blobsDir);
    const indexFile = path.join(dir, INDEX_FILE);
    const existing = await readIndex(indexFile);
    const newNames = new Set(layout.index.manifests.map((m) => m.annotations?.[ANNOTATION_REF_NAME]).filter(Boolean));
    const newDigests = new Set(layout.index.manifests.map((m) => m.digest));
    const kept = existing.manifests.filter((m) => {
      const name = m.annotations?.[ANNOTATION_REF_NAME];
      if (name) return !newNames.has(name);
      return !newDigests.has(m.digest);
    });
    await writeFileAtomic(indexFile, JSON.stringify({ ...existing, manifests: [...kept, ...layout.index.manifests] }));
  },
};

/** Writes one blob into a layout directory: staged beside it, synced, renamed. */
export async function writeLayoutBlob(target: string, b: LayoutBlob): Promise<void> {
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

/** The directory's index.json, or an empty one when there is none yet. */
async function readIndex(file: string): Promise<ImageIndex> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] };
    throw withContext(`cannot read ${file}`, err);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  return checkIndex(doc, file);
}
