// The container runtime: run a process in a prepared rootfs with Docker's defaults.
export { runContainer } from './run';
export type { RunOptions, RunningContainer, ContainerExit } from './run';
export { createCgroup, detectCgroupVersion, removeStaleCgroups, DEFAULT_DEVICE_RULES } from './cgroups';
export type { CgroupLimits, CgroupOptions, ContainerCgroup } from './cgroups';
export { containerSteps, thermalThrottlePaths, DOCKER_MASKED_PATHS, DOCKER_READONLY_PATHS, DEFAULT_DEVICES } from './steps';
export type { BindMount, ContainerStepsOptions } from './steps';
export { resolveUser, resolveRootfsUser, readRootfsEtcFile, lookupUser, parsePasswd, parseGroup } from './users';
export type { ExecUser, PasswdEntry, GroupEntry } from './users';
export { execInContainer, cgroupProcsOf } from './exec';
export type { ExecOptions, ExecProcess } from './exec';
