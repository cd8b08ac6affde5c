// The library's save functions: images of the store, by reference, through a sink of the registry.
import { storeImagesAndIndexes } from '../image/local';
import type { ImageStore } from '../image/store';
import { userError } from '../errors';
import { formatPlatform } from '../image/platform';
import type { SaveOptions } from './common';
import { dockerArchiveSink, dockerOciArchiveSink, findSink, ociArchiveSink, ociLayoutSink, sinkNames } from './sinks';
import type { ImageSink } from './sink';

/** A save format: the name of a registered sink (`docker-oci`, `oci`, `docker`, `oci-layout`) or an alias. */
export type SaveFormat = string;

/** The sink for `format`, or a one-line error listing the formats. */
export function sinkFor(format: SaveFormat): ImageSink {
  const sink = findSink(format);
  if (!sink) throw userError(`unknown format "${format}": use ${sinkNames().join(', ')}`);
  return sink;
}

/** Saves images of the store (names, IDs or digests) to `out` in `format`. */
export async function saveImages(store: ImageStore, refs: string[], format: SaveFormat, out: string, opts: SaveOptions = {}): Promise<void> {
  const sink = sinkFor(format);
  if (refs.length === 0) throw userError('no images to save');
  const { images, indexes } = await storeImagesAndIndexes(store, refs);
  if (indexes.length > 0 && !sink.indexes) {
    const platforms = indexes[0]!.images.map((i) => formatPlatform(i.platform)).join(', ');
    throw userError(`${indexes[0]!.names[0] ?? 'the image'} is a multi-platform image (${platforms}): format ${sink.name} cannot hold an image index (docker load takes one platform); use --format oci or oci-layout`);
  }
  await sink.write(images, out, { ...opts, ...(indexes.length > 0 ? { indexes } : {}) });
}

/** Saves images as an OCI archive (a tar of an OCI image layout). */
export const saveOciArchive = (store: ImageStore, images: string[], out: string, opts: SaveOptions = {}): Promise<void> =>
  saveImages(store, images, ociArchiveSink.name, out, opts);

/** What `docker save` writes since Docker 25 (see sinks/docker-oci-archive.ts). */
export const saveDockerOciArchive = (store: ImageStore, images: string[], out: string, opts: SaveOptions = {}): Promise<void> =>
  saveImages(store, images, dockerOciArchiveSink.name, out, opts);

/** Saves images into an OCI layout directory (created if missing; see sinks/oci-layout.ts). */
export const saveOciDir = (store: ImageStore, images: string[], dir: string, opts: SaveOptions = {}): Promise<void> =>
  saveImages(store, images, ociLayoutSink.name, dir, opts);

/** Saves images as a docker-archive. */
export const saveDockerArchive = (store: ImageStore, images: string[], out: string, opts: SaveOptions = {}): Promise<void> =>
  saveImages(store, images, dockerArchiveSink.name, out, opts);
