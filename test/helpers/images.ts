// Small images in an ImageStore, for the image, transport and interop tests.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { MediaTypes } from '../../packages/storage/src/content';
import { digestFile, sha256OfBuffer, type Digest } from '../../packages/storage/src/digest';
import type { ImageStore } from '../../packages/storage/src/image';
import type { LayerImporter } from '../../packages/storage/src/transport';
import { makeBusyboxTar } from '../../fixtures/busybox';

export const BASE_CONFIG = {
  architecture: 'amd64',
  os: 'linux',
  config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
};

/** An image whose layers are the given byte strings (stored as uncompressed layer blobs). */
export async function makeImage(
  store: ImageStore,
  layers: (Buffer | string)[],
  opts: { tags?: string[]; created?: string; label?: string } = {},
) {
  const descs = [];
  for (const l of layers) {
    const d = await store.content.putBytes(Buffer.from(l), MediaTypes.ociLayer);
    descs.push({ diffID: d.digest, size: d.size });
  }
  return store.createImage({
    layers: descs,
    config: {
      created: opts.created ?? '2024-01-01T00:00:00Z',
      ...BASE_CONFIG,
      config: { ...BASE_CONFIG.config, ...(opts.label ? { Labels: { l: opts.label } } : {}) },
      history: layers.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `layer ${i}` })),
    },
    ...(opts.tags && { tags: opts.tags }),
  });
}

/**
 * The busybox image: one layer, the fixture's tar. With `materializeLater`, the tar is NOT stored as a
 * blob: the caller gets a layer source serving it, like a built layer's diff directory would.
 */
export async function makeBusyboxImage(store: ImageStore, tmp: string, tag: string, opts: { materializeLater?: boolean } = {}) {
  const tar = makeBusyboxTar(path.join(tmp, `busybox-${Math.random().toString(16).slice(2)}.tar`));
  const { digest: diffID, size } = await digestFile(tar);
  if (opts.materializeLater) {
    store.setHooks({
      layerSource: { openLayerTar: (d: Digest) => (d === diffID ? Promise.resolve(fs.createReadStream(tar)) : null) },
    });
  } else {
    await store.content.putStream(fs.createReadStream(tar), diffID, MediaTypes.ociLayer);
  }
  const created = await store.createImage({
    layers: [{ diffID, size }],
    config: {
      created: '2024-01-01T00:00:00Z',
      ...BASE_CONFIG,
      history: [{ created: '2024-01-01T00:00:00Z', created_by: 'busybox fixture' }],
    },
    tags: [tag],
  });
  return { ...created, diffID, size, tar };
}

/** A LayerImporter that consumes each layer and records what it saw (the layer store's stand-in). */
export function recordingImporter() {
  const seen: { parent: Digest | null; diffID: Digest; digest: Digest; size: number }[] = [];
  const importer: LayerImporter = {
    async importLayer(parent, diffID, open) {
      const chunks: Buffer[] = [];
      for await (const c of open() as Readable) chunks.push(c as Buffer);
      const data = Buffer.concat(chunks);
      seen.push({ parent, diffID, digest: sha256OfBuffer(data), size: data.length });
    },
  };
  return { importer, seen };
}
