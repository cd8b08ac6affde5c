// The graph driver interface: how a layer's files are kept on disk and assembled into a rootfs.
// Mounts are data (containerd's snapshotters): `mounts(id)` computes what to mount without touching the
// kernel, and one place (perform.ts) executes the plan.
import type { Readable } from 'node:stream';
import type { Digest } from '../digest';

export type DriverName = 'overlay2' | 'vfs' | 'aufs';

/** A mount(2) call: `options` become the comma-joined data string, except the flag words in MOUNT_FLAG_WORDS. */
export interface GenericMount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

/** An overlay mount performed by native.mountOverlay (new mount API: one `lowerdir+` per layer). */
export interface OverlayMount {
  type: 'overlay';
  /** Lower directories, nearest (topmost) first. */
  lower: string[];
  upper?: string;
  work?: string;
  target?: string;
  /** Overlay options other than the layers, e.g. 'index=off', 'redirect_dir=off', 'volatile'. */
  options: string[];
}

/**
 * A FUSE overlay performed by spawning `fuse-overlayfs` (the aufs driver where the kernel has no aufs).
 * Unmounted with `fusermount3 -u`, falling back to a lazy umount2.
 */
export interface FuseOverlayMount {
  type: 'fuse-overlayfs';
  /** Lower directories, nearest (topmost) first. */
  lower: string[];
  upper?: string;
  work?: string;
  target?: string;
  /** fuse-overlayfs `-o` options other than the layers, e.g. 'dev', 'suid'. */
  options: string[];
  /** Environment for the fuse-overlayfs process (e.g. FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT=1). */
  env?: Record<string, string>;
}

export type Mount = GenericMount | OverlayMount | FuseOverlayMount;

export function isOverlayMount(m: Mount): m is OverlayMount {
  return m.type === 'overlay' && Array.isArray((m as OverlayMount).lower);
}

export function isFuseOverlayMount(m: Mount): m is FuseOverlayMount {
  return m.type === 'fuse-overlayfs' && Array.isArray((m as FuseOverlayMount).lower);
}

/** What `get(id)` would do: perform `mounts` in order (each targets `target` unless it names one). */
export interface MountPlan {
  id: string;
  /** The rootfs path that get() returns. */
  target: string;
  /** Empty when the layer's own directory is the rootfs (a base layer, every vfs layer). */
  mounts: Mount[];
  /** The rootfs cannot be written (a committed layer mounted without an upper dir). */
  readOnly: boolean;
}

export interface DriverCreateOptions {
  /** A writable (container or build step) layer; otherwise it is committed (read-only) once filled. */
  readWrite?: boolean;
  /** overlay2: mount with `volatile` (no syncs). For throwaway RW layers only. */
  volatile?: boolean | undefined;
}

export interface DiffOptions {
  /** Clamp every mtime in the tar to at most this (seconds since the epoch; SOURCE_DATE_EPOCH). */
  clampMtime?: number;
}

/** Counts get() calls per layer id. The layer store supplies a persistent one shared by processes. */
export interface MountCounter {
  /** Adds one reference; returns the new count. */
  increment(id: string): Promise<number> | number;
  /** Drops one reference (never below 0); returns the new count. */
  decrement(id: string): Promise<number> | number;
  /** After a decrement: put has done what it had to (unmounted at 0, or nothing to do). */
  settled?(id: string): Promise<void> | void;
}

export interface RepairReport {
  /** Stale mounts (no live user) that were unmounted. */
  unmounted: string[];
  /** Short links recreated from `link` files. */
  relinked: string[];
  /** Leftover dirs removed (`*-removing`, staged copies, unused `merged` dirs). */
  removed: string[];
}

export interface DriverRemoveOptions {
  /**
   * Delete the files on the calling thread: faster for a small tree (a pool round trip per entry costs
   * more than its syscall), but the event loop waits. For a caller with nothing else to do (`run --rm`).
   */
  inline?: boolean;
}

export interface Driver {
  readonly name: DriverName;
  /** The storage root this driver lives under (its own dir is `<root>/<name>`). */
  readonly root: string;
  create(id: string, parent: string | null, opts?: DriverCreateOptions): Promise<void>;
  /** Deletes a layer; refuses while it is mounted. Children are the caller's business. */
  remove(id: string, opts?: DriverRemoveOptions): Promise<void>;
  exists(id: string): boolean;
  /** Every layer id on disk (including ones no metadata refers to). */
  list(): string[];
  /** PURE with respect to the kernel: reads the layer's files and computes what get() would mount. */
  mounts(id: string): MountPlan;
  /** Whether the plan's mount is currently in place (always false when the plan mounts nothing). */
  isMounted(id: string): boolean;
  /** Performs the plan (refcounted) and returns the rootfs path. */
  get(id: string): Promise<string>;
  /** Refcount--, and at 0 a lazy unmount and rmdir of the mount point. Never throws for a busy mount. */
  put(id: string): Promise<void>;
  /** Marks a layer read-only: later mounts have no upper dir. Refuses while mounted. */
  commit(id: string): Promise<void>;
  /** The layer's own directory (overlay2 `diff`, vfs `dir/<id>`, aufs branch). */
  diffPath(id: string): string;
  /** The layer's changes as a deterministic OCI tar (overlay2: native diff; vfs: naive diff). */
  diff(id: string, opts?: DiffOptions): Readable;
  /** Extracts an uncompressed layer tar into the layer; diffID = sha256 of the tar bytes. */
  applyDiff(id: string, tar: Readable): Promise<{ diffID: Digest; size: number }>;
  /** Replaces the in-memory mount counter (the layer store's persistent one). */
  setMountCounter(counter: MountCounter): void;
  /**
   * Fixes what a crash left behind: rebuilds links, removes half-removed and staged dirs, unmounts
   * mounts of layers for which `inUse(id)` is false and removes unused mount points.
   */
  repair(inUse: (id: string) => boolean): Promise<RepairReport>;
  /**
   * Whether a dead process left something repair() must look at that the layer store's own markers
   * do not show (a mount probe, a diff staged outside a layer's registration). Costs what such
   * leftovers cost to find, never a look at every layer: the store asks it at every open.
   */
  needsRepair(): boolean;
  /** Unmounts everything this process mounted (puts each of its get()s). */
  cleanup(): Promise<void>;
}
