import type { Readable } from 'node:stream';
import type { Digest } from '../digest';

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
}

/**
 * Produces the uncompressed tar of a built layer from its diff directory (the layer store implements
 * it). The bytes must hash to `diffID`: the tar is a deterministic function of the directory.
 * Returns null when the layer is unknown.
 */
export interface LayerBlobSource {
  openLayerTar(diffID: Digest): Promise<Readable> | null;
  /** Bytes of the files in the layer of this chain, when the source counted them (docker's size). */
  contentSize?(chainID: Digest): number | undefined;
  /** False for a lazily held layer whose files are not fetched yet. */
  isPresent?(chainID: Digest): boolean;
  /**
   * A lazily held layer's blob in a shared build cache, for a layer with this diffID; with `lazyOnly`,
   * only while no layer of this diffID is present (then the store's own data serves it).
   */
  remoteForm?(diffID: Digest, opts?: { lazyOnly?: boolean }): { location: string; blob: Descriptor } | undefined;
  /** Opens such a blob (compressed, verified against its digest). */
  openRemote?(remote: { location: string; blob: Descriptor }): Promise<Readable>;
}

export const MediaTypes = {
  ociLayout: 'application/vnd.oci.layout.header.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  octetStream: 'application/octet-stream',
} as const;

export type LayerCompression = 'none' | 'gzip' | 'zstd';

/** The compression a layer media type announces (docker and OCI types), or undefined if not a layer. */
export function layerCompression(mediaType: string): LayerCompression | undefined {
  switch (mediaType) {
    case MediaTypes.ociLayer:
    case MediaTypes.ociLayerNondistributable:
    case MediaTypes.dockerLayer:
      return 'none';
    case MediaTypes.ociLayerGzip:
    case MediaTypes.ociLayerNondistributableGzip:
    case MediaTypes.dockerLayerGzip:
    case MediaTypes.dockerForeignLayerGzip:
      return 'gzip';
    case MediaTypes.ociLayerZstd:
      return 'zstd';
    default:
      return undefined;
  }
}
