/**
 * The typed, validating surface of the addon.
 *
 * @packageDocumentation
 * @module @tsbuild/native
 */
export { binding, nativeBinaries } from './binding';
export type {
  NativeBinaries, NativeBinding, NativeExitCallback, NativeProcess, NativeSpawnSpec, NativeSpawnStep,
} from './binding';
export * from './types';
export {
  mount, mountSync, umount, umountSync, mountOverlay, mountOverlaySync, overlayApi, pivotRoot, chroot, sethostname, unshare, setns,
  mountFlagBits, namespaceBits, checkMountData, MOUNT_FLAGS, NAMESPACE_FLAGS, MOUNT_DATA_MAX, FSCONFIG_VALUE_MAX,
} from './mount';
export {
  mknod, mknodArgs, lgetxattr, lsetxattr, llistxattr, lremovexattr, copyFiles, hashFiles, HASH_STAT_FIELDS, statfs, FS_MAGIC, flock, flockWait, pipe, openPty,
} from './fsops';
export type { MknodOptions, CopyFilesResult, FileCopy, HashFilesResult, StatfsResult, FlockMode, Pty } from './fsops';
export * from './spawn';
export { createHash, sha256, randomBytes, Sha256 } from './hash';
