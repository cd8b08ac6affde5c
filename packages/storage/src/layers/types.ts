import type { Descriptor } from '../content/types';
import type { Digest } from '../digest';
import { TsbuildError } from '../errors';

/** A committed, read-only layer, keyed by its chainID. */
export interface Layer {
  /** chainID(L0) = diffID(L0); chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)). */
  chainID: Digest;
  /** sha256 of the layer's uncompressed tar (the image config's rootfs.diff_ids entry). */
  diffID: Digest;
  parent: Digest | null;
  /** Bytes of the uncompressed tar. */
  size: number;
  /** Bytes of the files in the layer (docker's layer size: file sizes and link targets); absent in
   * layers committed before it was recorded. */
  contentSize?: number;
  /** The driver's id for the layer's files; '' for a lazy layer (`remote` set, files not fetched yet). */
  cacheId: string;
  /**
   * Where a lazily held layer's blob can be fetched (a shared build cache's hit): the layer is known
   * (chain, diffID, size) but its files are not on disk until LayerStore.ensurePresent fetches them.
   * Kept once fetched: it is also a compressed form of the layer that pushes and saves can reuse.
   */
  remote?: RemoteLayer;
  /** False while a lazy layer's files are not fetched yet. */
  present: boolean;
  /** Set when committed with a SOURCE_DATE_EPOCH clamp: the layer's tar clamps mtimes to it. */
  clampMtime?: number;
}

/** A layer's blob in a shared build cache: `registry:REF` or `local:DIR` (an OCI layout folder). */
export interface RemoteLayer {
  location: string;
  blob: Descriptor;
}

export interface CommitOptions {
  /**
   * SOURCE_DATE_EPOCH: mtimes later than this (seconds) are written as this in the layer's tar. The
   * files on disk keep their times; the clamp is recorded so that openTar() reproduces the same bytes.
   */
  clampMtime?: number;
  /**
   * Holds the new layer's chain before the commit makes it visible, under the lock the sweep takes:
   * nothing unreferenced is ever published, so a prune from another process cannot take the layer
   * between the commit and the caller's next root (a build's cache record or image).
   */
  lease?: { add(chain: string): Promise<void> };
}

/** A writable layer (a container's or a build step's) on top of a committed chain. */
export interface RWLayer {
  /** The caller's name for it (unique in the store). */
  readonly name: string;
  /** The driver id of its files. */
  readonly id: string;
  /** The driver id of its init layer, if it has one. */
  readonly initId: string | null;
  readonly parent: Digest | null;
  /** Where its own changes live (overlay2: the upper dir). */
  readonly diffPath: string;
  /** Mounts it (refcounted across processes) and returns the rootfs path. */
  mount(): Promise<string>;
  unmount(): Promise<void>;
}

export interface CreateRWOptions {
  /**
   * Fills an init layer between the parent and the RW layer (Docker's `<id>-init`: /etc/hosts, ...).
   * Receives the init layer's directory. A RW layer with an init layer commits by copying its diff.
   */
  init?: (dir: string) => Promise<void> | void;
  /**
   * A throwaway layer: overlay2 mounts it `volatile` (no syncs, Linux 5.10+; its unmount does not sync
   * the host filesystem) and its records are written without fsync. Nothing of it survives a power loss.
   */
  volatile?: boolean;
}

export class LayerNotFoundError extends TsbuildError {
  constructor(readonly chainID: string) {
    super('ENOLAYER', `layer ${chainID} not found`);
  }
}

export class DiffIDMismatchError extends TsbuildError {
  constructor(
    readonly expected: Digest,
    readonly actual: Digest,
  ) {
    super('EDIGEST', `layer diffID mismatch: expected ${expected}, got ${actual}`);
  }
}
