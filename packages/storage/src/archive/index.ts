// The layer tar codec: writer, streaming reader, decompression, deterministic packing, safe apply.
export * from './whiteout';
export { FUSE_OVERLAY_XATTR_PREFIXES, OPAQUE_MARKER_XATTRS, cacheKeyCountsXattr, copyXattrs, isUnionFsXattr, layerKeepsXattr, readXattrs, sameXattrs } from './xattrs';
export {
  BLOCK as TAR_BLOCK,
  type TarEntryType,
  type TarHeader,
} from './tar-format';
export { buildTar, encodeEntryHeader, tarChunks, tarStream, type TarBody, type TarWriteEntry, type TarWriteHeader } from './tar-writer';
export { listTar, readTar, TarFormatError, type ReadTarOptions, type TarEntry } from './tar-reader';
export { decompress, detectCompression, zstdDecompressor, type Compression } from './decompress';
export { digestLayerStream, layerDigest, packDir, type LayerDigest, type PackOptions } from './pack';
export { applyTar, ApplyError, type ApplyOptions, type ApplyResult, type ApplyWhiteouts } from './apply';
export {
  BreakoutError,
  cleanRelPath,
  isInside,
  resolveInRoot,
  resolveInRootSync,
  splitPath,
  type ResolveOptions,
} from './resolve';
export { TarContentCounter } from './content-size';
