// Build caches shared beyond one storage root (issue 13): `--cache-from` sources are read once, before
// the first step, into one map from platform key to record; a step that misses the local cache looks
// there, brings the record's layer into the store (verified) and records it locally. `--cache-to`
// exports the records of the steps this build resolved: the final image's (mode=min) or every
// stage's (mode=max).
import { formatPlatform, hostPlatform, platformCacheKey, type CacheRecord, type ExportRecord } from '@tsbuild/storage';
import type { EventSink } from '../progress';
import type { BuildBackend, SharedCacheSource } from './backend';
import type { PlannedStage } from './plan';

/** `--cache-from`: where a shared cache is read from (an OCI layout folder, a registry reference). */
export type CacheImportSpec = { type: 'local'; src: string } | { type: 'registry'; ref: string };
/** `--cache-to`: where a shared cache is written; mode=min (default) exports the final image's steps. */
export type CacheExportSpec = ({ type: 'local'; dest: string } | { type: 'registry'; ref: string }) & {
  mode?: 'min' | 'max';
  /** An export that fails is a warning, not a failed build (buildx's ignore-error=true). */
  ignoreError?: boolean;
};

/** How progress and warnings name a cache: its folder or its reference. */
export function cacheName(spec: CacheImportSpec | CacheExportSpec): string {
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

  /** Reads every source in parallel; a missing one is a notice, a corrupt one a warning (both ignored). */
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
          if ((err as { code?: string }).code !== 'EBADCACHE') throw err;
          warn(`${(err as Error).message}; ignoring it`);
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
   * brought into the store; undefined when no source has it.
   */
  async hit(key: string, parent: string, platform: string = this.platform): Promise<CacheRecord | undefined> {
    const remoteKey = platformCacheKey(key, platform);
    for (const source of this.sources) {
      const record = source.records.get(remoteKey);
      if (!record || record.parent !== parent) continue;
      await source.importLayer(record);
      const { chainID, diffID, size, empty, created } = record;
      return { chainID, diffID, size, empty, created };
    }
    return undefined;
  }
}

/** The records `spec` exports from what the build resolved, under their platform keys. */
export function exportRecords(spec: CacheExportSpec, steps: readonly ResolvedStep[], finals: readonly PlannedStage[]): ExportRecord[] {
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
