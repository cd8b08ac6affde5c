/**
 * The container runtime: run a process in a prepared rootfs with Docker's defaults.
 *
 * @packageDocumentation
 * @module @tsbuild/storage/runtime
 */
export { runContainer } from './run';
export type { RunOptions, RunningContainer, ContainerExit } from './run';
export { createCgroup, detectCgroupVersion, removeStaleCgroups, DEFAULT_DEVICE_RULES } from './cgroups';
export type { CgroupLimits, CgroupOptions, ContainerCgroup } from './cgroups';
export { containerSteps, thermalThrottlePaths, DOCKER_MASKED_PATHS, DOCKER_READONLY_PATHS, DEFAULT_DEVICES } from './steps';
export type { BindMount, ContainerStepsOptions } from './steps';
export { resolveUser, resolveRootfsUser, readRootfsEtcFile, lookupUser, parsePasswd, parseGroup } from './users';
export type { ExecUser, PasswdEntry, GroupEntry } from './users';
export { capabilitySet, allCapabilities } from './run';
export { hostDeviceSteps } from './steps';
export {
  containerSeccomp, seccompOptionFromFlag, compileFilter, resolveProfile, parseProfile, checkProfile,
  DOCKER_DEFAULT_PROFILE, DOCKER_PROFILE_VERSION, SeccompProfileError, SeccompCompileError,
} from './seccomp';
export type { SeccompOption, SeccompProfile, CompiledSeccomp, ResolvedProfile } from './seccomp';
export { execInContainer, cgroupProcsOf } from './exec';
export type { ExecOptions, ExecProcess } from './exec';
