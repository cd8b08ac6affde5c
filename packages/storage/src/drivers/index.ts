export type {
  DriverCreateOptions, DiffOptions, Driver, DriverName, FuseOverlayMount, GenericMount, Mount, MountCounter, MountPlan,
  OverlayMount, RepairReport,
} from './types';
export { isFuseOverlayMount, isOverlayMount } from './types';
export { BaseDriver, MemoryMountCounter, type DriverOptions } from './base';
export { MAX_LOWERS, MaxDepthError, Overlay2Driver, overlayMountPlan, type Overlay2Options, type OverlayPlanInput } from './overlay2';
export { VfsDriver } from './vfs';
export {
  AufsDriver, AufsUnsupportedError, assertAufs, aufsKernelMounts, aufsMountPlan, probeAufs, type AufsBackend,
  type AufsOptions, type AufsPlanInput, type AufsProbe, type AufsProbeOptions,
} from './aufs';
export { fuseOverlayCommand, type FuseOverlayCommand } from './perform';
export { copyTree, mergeTree } from './treecopy';
export {
  OverlayUnsupportedError, assertOverlay, baseOverlayOptions, overlayFeatures, probeOverlay, type OverlayFeatures,
  type OverlayProbe,
} from './probe';
export { existingDriver, openDriver, type DriverChoice, type OpenDriverOptions, type OpenedDriver } from './select';
export { isMountPoint, mountsUnder, parseMountInfo, readMountInfo, type MountInfoEntry } from './mountinfo';
export { stageChanges } from './naivediff';
