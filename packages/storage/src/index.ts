/**
 * Everything on disk — digests, the content store (an OCI layout), images, transports, the tar
 * codec, layers and drivers, and the container runtime.
 *
 * @packageDocumentation
 * @module @tsbuild/storage
 */
export * from './eager';
export * from './transport';
export * from './runtime';
export * from './fsck';
