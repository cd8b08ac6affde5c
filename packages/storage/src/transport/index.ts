export {
  CONFIG_MAX,
  DEFAULT_GZIP_LEVEL,
  gzipLayer,
  openUncompressedLayer,
  uncompressedSize,
  type Progress,
  type ProgressFn,
  type ProgressPhase,
  type SaveOptions,
} from './common';
export { saveDockerArchive, saveDockerOciArchive, saveImages, saveOciArchive, saveOciDir, sinkFor, type SaveFormat } from './save';
export { IMAGE_SINKS, findSink, sinkNames } from './sinks';
export type { ImageSink } from './sink';
export { planOciLayout, type OciLayoutPlan } from './oci';
export { importImages, type LayerImporter } from './import';
export { loadArchive, type LoadOptions, type LoadResult } from './load';
export { ArchiveWriter, readArchiveMembers, writeArchiveFile, type ArchiveMember } from './archive-file';
export * from './registry';
export { cacheLocationOf, layoutCacheLocation, openRemoteBlob, readCache, registryCacheLocation, writeCache, type CacheLocation, type CacheWriteResult, type ExportRecord, type LoadedCache } from './cache-layout';
