// Build caches shared beyond one storage root (issue 13): `--cache-from` sources are read once, before
// the first step, into one map from platform key to record; a step that misses the local cache looks
// there, holds the record's layer lazily (no bytes move until something needs its files) and records
// it locally. `--cache-to`
// exports the records of the steps this build resolved: the final image's (mode=min) or every
// stage's (mode=max).
import { TsbuildError, formatPlatform, hostPlatform, platformCacheKey, type CacheRecord, type ExportRecord } from '@tsbuild/storage';
import type { EventSink } from '../progress';
import type { BuildBackend, SharedCacheSource } from './backend';
import type { PlannedStage } from './plan';

/** `--cache-from`: where a shared cache is read from (an OCI layout folder, a registry reference). */
export type CacheImportSpec = { type: 'local'; src: string } | { type: 'registry'; ref: string };
/**
 * `--cache-to`: where a shared cache is written; mode=min (default) exports the final image's steps.
 * `inline` writes them into the image's config (min mode only); a push carries them, and the pushed
 * image is read back as a cache with `{ type: 'registry', ref: IMAGE }`.
 */
export type CacheExportSpec = (CacheDestination | { type: 'inline' }) & {
  mode?: 'min' | 'max';
  /** An export that fails is a warning, not a failed build (buildx's ignore-error=true). */
  ignoreError?: boolean;
};

/** A cache export written to a place of its own (not inline). */
export type CacheDestination = { type: 'local'; dest: string } | { type: 'registry'; ref: string };

/** How progress and warnings name a cache: its folder or its reference. */
export function cacheName(spec: CacheImportSpec | CacheExportSpec): string {
  if (spec.type === 'inline') return 'the image config (inline)';
  return spec.type === 'registry' ? spec.ref : 'src' in spec ? spec.src : spec.dest;
}

/** A layer step this build resolved (hit or run), for the export. */
export interface ResolvedStep {
  stage: PlannedStage;
  key: string;
  /** The chain the step ran on ('' on scratch). */
  parent: string;
  record: CacheRecord;
}

/** This host's platform as a cache key part (`linux/amd64`). */
export function cachePlatform(): string {
  const p = hostPlatform();
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

export class SharedCaches {
  private readonly sources: SharedCacheSource[] = [];
  private readonly platform = cachePlatform();

  /**
   * Reads every source in parallel. A source that cannot be used is a warning naming it and the build
   * goes on without it, as buildx does: missing, corrupt or foreign, or unreadable (refused
   * credentials, a 5xx, no route to the registry, an unreadable folder).
   */
  static async read(
    specs: readonly CacheImportSpec[],
    backend: BuildBackend,
    emit: EventSink,
    startVertex: (name: string) => number,
    warn: (message: string) => void,
  ): Promise<SharedCaches> {
    const caches = new SharedCaches();
    if (specs.length === 0) return caches;
    if (!backend.readSharedCache) throw new Error('this build backend cannot read shared caches');
    const read = backend.readSharedCache.bind(backend);
    const found = await Promise.all(
      specs.map(async (spec) => {
        const vertex = startVertex(`importing cache manifest from ${cacheName(spec)}`);
        try {
          const source = await read(spec);
          if (!source) warn(`cache ${cacheName(spec)}: not found, building without it`);
          return source;
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code === 'EBADCACHE') warn(`${(err as Error).message}; ignoring it`);
          else if (err instanceof TsbuildError || typeof code === 'string') warn(`cache ${cacheName(spec)}: cannot read it: ${(err as Error).message}; building without it`);
          else throw err; // a bug, not the cache's fault
          return undefined;
        } finally {
          emit({ type: 'step-done', vertex, time: Date.now() });
        }
      }),
    );
    for (const source of found) if (source) caches.sources.push(source);
    return caches;
  }

  /**
   * The record of a step (local key `key`) on `parent` in the first source holding one, with its layer
   * held lazily in the store; undefined when no source has it.
   */
  async hit(key: string, parent: string, platform: string = this.platform): Promise<CacheRecord | undefined> {
    const remoteKey = platformCacheKey(key, platform);
    for (const source of this.sources) {
      const record = source.records.get(remoteKey);
      if (!record || record.parent !== parent) continue;
      await source.holdLayer(record);
      const { chainID, diffID, size, empty, created } = record;
      return { chainID, diffID, size, empty, created };
    }
    return undefined;
  }

  /** What a step that no source holds is told about mode=min sources (see minModeNote). */
  missNote(): string | undefined {
    return minModeNote(this.sources);
  }
}

/** Why a step that no source holds may be missing: a mode=min source holds the final image's steps only. */
export function minModeNote(sources: readonly { ref: string; mode?: string }[]): string | undefined {
  const min = sources.filter((s) => s.mode === 'min').map((s) => s.ref);
  return min.length > 0 ? `not in the shared cache ${min.join(', ')}, exported with mode=min (the final image's steps only; mode=max exports every stage)` : undefined;
}

/** The records `spec` exports from what the build resolved, under their platform keys. */
export function exportRecords(spec: Pick<CacheExportSpec, 'mode'>, steps: readonly ResolvedStep[], finals: readonly PlannedStage[]): ExportRecord[] {
  // The final stage of every target platform, and the stages under it.
  const inImage = new Set<PlannedStage>();
  for (const final of finals) for (let s: PlannedStage | undefined = final; s; s = s.base.kind === 'stage' ? s.base.stage : undefined) inImage.add(s);
  const out = new Map<string, ExportRecord>();
  for (const step of steps) {
    if ((spec.mode ?? 'min') === 'min' && !inImage.has(step.stage)) continue;
    // Each step under the platform its stage was built for.
    const key = platformCacheKey(step.key, formatPlatform(step.stage.platform));
    out.set(key, { ...step.record, key, parent: step.parent });
  }
  return [...out.values()];
}
