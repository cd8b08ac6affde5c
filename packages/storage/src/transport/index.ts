export {
  DEFAULT_GZIP_LEVEL,
  gzipLayer,
  openUncompressedLayer,
  uncompressedSize,
  type Progress,
  type ProgressFn,
  type ProgressPhase,
  type SaveOptions,
} from './common';
export { saveDockerOciArchive, saveOciArchive, saveOciDir } from './oci';
export { saveDockerArchive } from './docker';
export { loadArchive, type LayerImporter, type LoadOptions, type LoadResult } from './load';
export { ArchiveWriter } from './archive-writer';
export { readArchiveMembers, type ArchiveMember } from './archive-reader';
export * from './registry';
