// What we know about each layer beyond its diffID: its uncompressed size and the compressed blobs
// already produced for it (so a second save or push reuses the gzip instead of compressing again).
// It is a cache: losing it costs recompression, never correctness. Callers hold the image store's
// exclusive lock around `update`.
import * as fsp from 'node:fs/promises';
import { writeFileAtomic } from '../atomic';
import { isDigest, type Digest } from '../digest';
import type { Descriptor } from './types';

export interface LayerInfo {
  /** Size of the uncompressed tar (the diffID's bytes). */
  size?: number;
  /** Compressed blobs whose uncompressed bytes hash to this diffID. */
  compressed?: Descriptor[];
}

interface BlobInfoFile {
  version: 1;
  layers: Record<string, LayerInfo>;
}

export class LayerBlobInfo {
  constructor(readonly file: string) {}

  async read(): Promise<Map<Digest, LayerInfo>> {
    let parsed: BlobInfoFile;
    try {
      parsed = JSON.parse(await fsp.readFile(this.file, 'utf8'));
    } catch {
      // Missing or torn (it is only a cache): start empty.
      return new Map();
    }
    const out = new Map<Digest, LayerInfo>();
    for (const [k, v] of Object.entries(parsed?.layers ?? {})) if (isDigest(k) && v && typeof v === 'object') out.set(k, v);
    return out;
  }

  async get(diffID: Digest): Promise<LayerInfo | undefined> {
    return (await this.read()).get(diffID);
  }

  /** The diffID a compressed blob decompresses to, if recorded. */
  async diffIDOf(blob: Digest): Promise<Digest | undefined> {
    for (const [diffID, info] of await this.read()) {
      if (diffID === blob || info.compressed?.some((c) => c.digest === blob)) return diffID;
    }
    return undefined;
  }

  /** Read-modify-write; the caller holds the image store's exclusive lock. */
  async update(fn: (layers: Map<Digest, LayerInfo>) => void): Promise<void> {
    const layers = await this.read();
    const before = JSON.stringify(Object.fromEntries(layers));
    fn(layers);
    const out: BlobInfoFile = { version: 1, layers: Object.fromEntries(layers) };
    // Nothing new (a rebuild of a known image): no write, no fsync.
    if (JSON.stringify(out.layers) === before) return;
    await writeFileAtomic(this.file, JSON.stringify(out));
  }

  static addCompressed(layers: Map<Digest, LayerInfo>, diffID: Digest, blob: Descriptor, size?: number): void {
    const info = layers.get(diffID) ?? {};
    if (size !== undefined) info.size = size;
    if (blob.digest !== diffID) {
      const list = (info.compressed ?? []).filter((c) => c.digest !== blob.digest);
      list.push({ mediaType: blob.mediaType, digest: blob.digest, size: blob.size });
      info.compressed = list;
    }
    layers.set(diffID, info);
  }
}
