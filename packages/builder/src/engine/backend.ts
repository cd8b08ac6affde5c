// What the build orchestrator needs from storage and the runtime, and nothing more. The real
// implementation (store-backend.ts) sits on @tsbuild/storage; keeping this narrow keeps the
// orchestrator testable and its dependencies obvious.
import type { Readable, Writable } from 'node:stream';
import type { BuildCache, CacheWriteResult, ExportRecord, Platform, RemoteCacheRecord, SeccompOption } from '@tsbuild/storage';
import type { CacheDestination, CacheExportSpec, CacheImportSpec } from './shared-cache';
import type { ImageConfig } from './image-config';

export interface ResolvedImage {
  /** The image ID: the config digest. */
  id: string;
  /** The normalized reference it was found by. */
  ref: string;
  config: ImageConfig;
  /** The chain ID of the top layer, or null for an image without layers. */
  chainID: string | null;
}

/** A read-write layer on top of a chain, mounted while the step runs. */
export interface WorkLayer {
  /** The mounted root filesystem. */
  readonly rootfs: string;
  /**
   * The upper directory of the kernel overlay mounted at `rootfs` (overlay2), when there is one: the
   * contents of a directory a step creates may be written there directly (see executors/copy.ts).
   */
  readonly upper?: string;
  /**
   * Unmounts and turns the changes into a committed layer; `empty` is true when nothing changed.
   * `clampMtime` rewrites file times in the layer tar (SOURCE_DATE_EPOCH).
   */
  commit(opts: { clampMtime?: number }): Promise<{ chainID: string; diffID: string; size: number; empty: boolean }>;
  /** Unmounts and throws the changes away. Safe to call twice or after commit. */
  discard(): Promise<void>;
}

/** A read-only view of a chain (for COPY --from and RUN --mount from=). */
export interface LayerView {
  readonly rootfs: string;
  release(): Promise<void>;
}

export interface RunRequest {
  rootfs: string;
  args: string[];
  env: string[];
  cwd: string;
  user: string;
  network: 'host' | 'none';
  /** Extra mounts (cache dirs, binds, secrets, tmpfs), target paths inside the container. */
  mounts: RunMountRequest[];
  /** RUN --security=insecure (granted with --allow security.insecure). */
  privileged?: boolean;
  /** Default: Docker's seccomp profile. */
  seccomp?: SeccompOption;
  stdout: Writable;
  stderr: Writable;
  /** Kills the container when aborted. */
  signal?: AbortSignal;
  /** docker build's --add-host, --ulimit and --shm-size for every RUN. */
  runtime?: RunRuntimeOptions;
}

export interface RunRuntimeOptions {
  extraHosts?: { host: string; ip: string }[];
  rlimits?: { type: string; soft: number; hard: number }[];
  /** Bytes of /dev/shm. */
  shmSize?: number;
}

export type RunMountRequest =
  | { type: 'bind'; source: string; target: string; readonly: boolean }
  | { type: 'tmpfs'; target: string; size?: number };

export interface RunResult {
  exitCode: number | null;
  signal: string | null;
  oomKilled?: boolean;
}

/** A shared build cache read by `--cache-from` (shared-cache.ts). */
export interface SharedCacheSource {
  readonly ref: string;
  /** By platform key. */
  readonly records: ReadonlyMap<string, RemoteCacheRecord>;
  /** How it was exported, when it says (mode=min holds the final image's steps only). */
  readonly mode?: 'min' | 'max';
  /**
   * Holds the record's layer in the store on its parent chain without its files (a lazy layer):
   * they are fetched, verified against blob digest and diffID, when a step, run, save or -o needs them.
   */
  holdLayer(record: RemoteCacheRecord): Promise<void>;
}

export interface BuildBackend {
  /** Storage root: the builder keeps its cache mounts and stat cache below it. */
  readonly root: string;
  /** The build cache's records (storage keeps their layers alive). */
  readonly cache: BuildCache;
  /** A scratch directory that crash repair removes if this process dies (caller removes it otherwise). */
  scratch(kind: string): Promise<string>;
  /** The image `ref` names, for `platform` when given (picked from an index, checked otherwise). */
  resolveImage(ref: string, platform?: Platform): Promise<ResolvedImage>;
  /** Fetches `ref` from its registry into the store (build --pull, or a base image not held locally). */
  pullImage?(ref: string, platform?: Platform): Promise<void>;
  hasLayer(chainID: string): Promise<boolean>;
  /** `onFetch` hears of each layer under the parent fetched first (lazily held from a shared cache). */
  createWorkLayer(parentChainID: string | null, opts?: { onFetch?: (line: string) => void }): Promise<WorkLayer>;
  viewLayer(chainID: string | null): Promise<LayerView>;
  run(req: RunRequest): Promise<RunResult>;
  /** Writes an image index over written platform images (a multi-platform build); returns its digest. */
  writeIndex?(images: { manifestDigest: string; platform: Platform }[]): Promise<string>;
  /** Writes the image (config + manifest) and returns its IDs; tags are applied by `tag`. */
  writeImage(config: ImageConfig, layers: { diffID: string; chainID: string }[]): Promise<{ imageId: string; manifestDigest: string }>;
  tag(ref: string, imageId: string): Promise<string>;
  /** Keeps a chain from being garbage-collected until releaseHolds (between commit and image). */
  hold(chainID: string | null): Promise<void>;
  releaseHolds(): Promise<void>;
  /** An uncompressed tar stream of a committed layer chain's merged tree (for --output). */
  exportRootfs?(chainID: string | null): Promise<Readable>;
  /** Reads a shared cache (`--cache-from`); undefined when there is none, EBADCACHE when it is corrupt. */
  readSharedCache?(spec: CacheImportSpec): Promise<SharedCacheSource | undefined>;
  /** Writes records and their layers as a shared cache (`--cache-to`). */
  writeSharedCache?(spec: CacheExportSpec & CacheDestination, records: readonly ExportRecord[]): Promise<CacheWriteResult>;
}
