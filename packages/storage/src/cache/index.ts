export { BuildCache, type CacheRecord, type KeyParts } from './store';
