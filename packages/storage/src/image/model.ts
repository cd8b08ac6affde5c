// Images and layers as immutable values with lazy accessors (after go-containerregistry's v1.Image and
// v1.Layer). Every source (the local store, an OCI layout or archive, a docker-archive, a registry)
// yields them and every sink (archives, layout directories, registries, the local store) takes them,
// so a sink never needs to know where an image came from. Metadata is held; bytes are opened on demand.
import type { Readable } from 'node:stream';
import type { Descriptor, Platform } from '../content/types';
import { MediaTypes } from '../content/types';
import { sha256OfBuffer, type Digest } from '../digest';
import type { ImageConfig, ImageManifest } from './types';

export interface LayerBlob {
  /** The blob the manifest names: compressed, or the uncompressed tar itself (digest = diffID). */
  readonly descriptor: Descriptor;
  readonly digest: Digest;
  readonly diffID: Digest;
  /** The blob's size in bytes. */
  readonly size: number;
  readonly mediaType: string;
  /** The blob's bytes as the manifest names them, verified against `digest`. */
  compressed(): Promise<Readable>;
  /** The layer's tar, verified against `diffID` (the stream errors at its end otherwise). */
  uncompressed(): Promise<Readable>;
  /** Size of the uncompressed tar (measured once when no one recorded it). */
  uncompressedSize(): Promise<number>;
  /**
   * This layer as a gzip (or zstd) blob: itself when its blob is compressed already, else the tar
   * compressed at `level` (a source that can keep the result does, so it is compressed once).
   */
  gzipped(level?: number): Promise<LayerBlob>;
}

export interface Image {
  /** The image ID: the config digest. */
  readonly id: Digest;
  /** Familiar references to record with it in a sink (`app:latest`); empty when it has none. */
  readonly names: readonly string[];
  readonly manifest: ImageManifest;
  readonly manifestDescriptor: Descriptor;
  readonly config: ImageConfig;
  readonly configDescriptor: Descriptor;
  /** Bottom-up, one per manifest layer (and config diff_id). */
  readonly layers: readonly LayerBlob[];
  /** The manifest's exact bytes (its digest is manifestDescriptor.digest). */
  rawManifest(): Promise<Buffer>;
  /** The config's exact bytes (its digest is the image ID). */
  rawConfig(): Promise<Buffer>;
}

/** An image index: one image per platform under shared names (a multi-platform build, `manifest create`). */
export interface MultiPlatformImage {
  readonly names: readonly string[];
  readonly images: readonly { image: Image; platform: Platform }[];
}

function sameBlob(a: Descriptor, b: Descriptor): boolean {
  return a.digest === b.digest && a.mediaType === b.mediaType;
}

/**
 * `img` with other blobs for its layers (same diffIDs, e.g. gzip forms): the same image when nothing
 * changed, else one with a new OCI manifest over the same config (go-containerregistry's mutate).
 */
export function withLayers(img: Image, layers: readonly LayerBlob[]): Image {
  const unchanged = layers.length === img.manifest.layers.length && layers.every((l, i) => sameBlob(l.descriptor, img.manifest.layers[i]!));
  if (unchanged) return img;
  const cfg = img.configDescriptor;
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, digest: cfg.digest, size: cfg.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size, ...(l.descriptor.annotations ? { annotations: l.descriptor.annotations } : {}) })),
    ...(img.manifest.annotations ? { annotations: img.manifest.annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const manifestDescriptor: Descriptor = { mediaType: MediaTypes.ociManifest, digest: sha256OfBuffer(bytes), size: bytes.length };
  return {
    id: img.id,
    names: img.names,
    manifest,
    manifestDescriptor,
    config: img.config,
    configDescriptor: img.configDescriptor,
    layers,
    rawManifest: async () => bytes,
    rawConfig: () => img.rawConfig(),
  };
}

/** `img` under other names (the same blobs). */
export function withNames(img: Image, names: readonly string[]): Image {
  return { ...img, names, rawManifest: () => img.rawManifest(), rawConfig: () => img.rawConfig() };
}

/**
 * `layer` with its uncompressed tar as the blob (digest = diffID), as docker-archives hold layers. The
 * bytes come from `uncompressed()` even when the layer is named by its diffID already: a source may
 * hold that tar only in another form.
 */
export async function uncompressedLayer(layer: LayerBlob): Promise<LayerBlob> {
  const size = await layer.uncompressedSize();
  return {
    descriptor: { mediaType: MediaTypes.ociLayer, digest: layer.diffID, size },
    digest: layer.diffID,
    diffID: layer.diffID,
    size,
    mediaType: MediaTypes.ociLayer,
    compressed: () => layer.uncompressed(),
    uncompressed: () => layer.uncompressed(),
    uncompressedSize: async () => size,
    gzipped: (level) => layer.gzipped(level),
  };
}
