export { BuildCache, type CacheRecord, type KeyParts } from './store';
export {
  CACHE_CONFIG_MEDIA_TYPE,
  CACHE_DIFFID_ANNOTATION,
  badCache,
  decodeCache,
  decodeCacheManifest,
  encodeCache,
  platformCacheKey,
  type RemoteCache,
  type RemoteCacheRecord,
} from './remote-format';
