// What the transports share: progress reports, save options, limits, and the layer helpers of the
// library API (thin wrappers over the image model's store layers, image/local.ts).
import type { Readable } from 'node:stream';
import type { Descriptor } from '../content/types';
import { DEFAULT_GZIP_LEVEL, StoreLayer } from '../image/local';
import type { ImageLayer, ImageStore } from '../image/store';
import type { MultiPlatformImage } from '../image/model';

export { DEFAULT_GZIP_LEVEL };

/**
 * Image configs larger than this are refused before they are read (they are parsed in memory; a
 * config with a thousand history entries is well under 1 MiB).
 */
export const CONFIG_MAX = 64 << 20;

export type ProgressPhase = 'compress' | 'write' | 'read' | 'import';

export interface Progress {
  phase: ProgressPhase;
  done: number;
  total: number;
  /** The blob, layer or file concerned, when there is one. */
  item?: string;
}

export type ProgressFn = (p: Progress) => void;

/** A byte counter that reports `write`-phase progress of `total` bytes as bytes are counted into it. */
export function writeProgress(onProgress: ProgressFn | undefined, total: number): (bytes: number) => void {
  let done = 0;
  return (bytes) => {
    done += bytes;
    onProgress?.({ phase: 'write', done, total });
  };
}

export interface SaveOptions {
  onProgress?: ProgressFn;
  /** gzip level for layers compressed on save (OCI outputs). Default DEFAULT_GZIP_LEVEL. */
  gzipLevel?: number;
  /** LayerBlob compression in OCI outputs: gzip (default) or none (uncompressed tars). */
  compression?: 'gzip' | 'none';
  /** mtime of archive members (seconds); default 0 so the same images give the same archive. */
  mtime?: number;
  /** OCI archives: also write docker load's manifest.json (with compression 'none'). */
  dockerManifest?: boolean;
  /** Image indexes to write next to the images (OCI outputs only: docker load cannot take one). */
  indexes?: readonly MultiPlatformImage[];
}

/** Size of a layer's uncompressed tar: known, or measured by decompressing once (then recorded). */
export function uncompressedSize(store: ImageStore, layer: ImageLayer): Promise<number> {
  return new StoreLayer(store, layer.diffID, layer.descriptor).uncompressedSize();
}

/** The uncompressed tar of a layer, verified against its diffID (see StoreLayer.uncompressed). */
export function openUncompressedLayer(store: ImageStore, layer: ImageLayer): Promise<Readable> {
  return new StoreLayer(store, layer.diffID, layer.descriptor).uncompressed();
}

/** A gzip blob for `layer`: the layer's own if already compressed, a kept one, or a new one (kept). */
export function gzipLayer(store: ImageStore, layer: ImageLayer, level = DEFAULT_GZIP_LEVEL): Promise<{ descriptor: Descriptor; created: boolean }> {
  return new StoreLayer(store, layer.diffID, layer.descriptor).gzipForm(level);
}
