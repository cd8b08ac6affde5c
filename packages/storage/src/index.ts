/**
 * Everything on disk — digests, the content store (an OCI layout), images, transports, the tar
 * codec, layers and drivers, and the container runtime.
 *
 * @packageDocumentation
 * @module @tsbuild/storage
 */
export * from './errors';
export * from './names';
export * from './digest';
export * from './atomic';
export * from './fsmode';
export * from './lock';
export * from './content';
export * from './image';
export * from './transport';
export * from './archive';
export * from './store';
export * from './rootless';
export * from './runtime';
export * from './containers';
export * from './drivers';
export * from './layers';
export * from './cache';
export * from './fsck';
