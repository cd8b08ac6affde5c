export { BuildCache, type CacheRecord, type KeyParts } from './store';
export {
  CACHE_CONFIG_MEDIA_TYPE,
  CACHE_DIFFID_ANNOTATION,
  INLINE_CACHE_KEY,
  badCache,
  decodeCache,
  decodeCacheManifest,
  decodeInlineCache,
  encodeCache,
  encodeInlineCache,
  platformCacheKey,
  type CacheMode,
  type RemoteCache,
  type RemoteCacheRecord,
} from './remote-format';
