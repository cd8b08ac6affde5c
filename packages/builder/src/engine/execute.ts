// Execution: stages as a dependency graph (independent stages in parallel), steps in order. A layer
// step is looked up in the cache by its key; on a miss its executor runs on a fresh work layer,
// which is committed and recorded. Config steps only add their history lines.
import * as path from 'node:path';
import { chainIDs, formatPlatform, isHostPlatform, type CacheRecord, type Digest, type KeyParts, type Platform } from '@tsbuild/storage';
import type { BuildEvent, EventSink } from '../progress';
import type { BuildBackend, LayerView } from './backend';
import { cacheKey, explainMiss, lineageId, stepKeyParts } from './cache-keys';
import { historyEntry, scratchConfig, type ImageConfig } from './image-config';
import { BuildError } from './errors';
import { executorFor, type ExecContext, type LayerExecutor } from './executors';
import type { PlannedStage, PlannedStep } from './plan';
import type { BuildOptions } from './builder';
import type { ResolvedStep, SharedCaches } from './shared-cache';

type LayerOutcome = { chainID: string; diffID: string; empty: boolean; cached: boolean; created: string };

export interface StageResult {
  chainID: string | null;
  config: ImageConfig;
  layers: { diffID: string; chainID: string }[];
}

/** What execution needs from the build. */
export interface ExecSession {
  readonly opts: BuildOptions;
  readonly backend: BuildBackend;
  readonly emit: EventSink;
  readonly contextDir: string;
  readonly dockerfilePath: string;
  /** The build's time (SOURCE_DATE_EPOCH when given). */
  readonly created: string;
  /** Fires when the build is canceled or a stage failed: running steps are killed. */
  readonly signal: AbortSignal;
  /** The caller's cancellation. */
  readonly cancel: AbortSignal | undefined;
  /** Whether a .dockerignore hides anything from the context. */
  readonly contextFiltered: boolean;
  /** `--cache-from` sources, read before the first step. */
  readonly sharedCaches: SharedCaches;
  checkCanceled(): void;
  startVertex(name: string): number;
}

export class StageRunner {
  /** Every stage started, by plan: awaited (settled) before a failed build rejects. */
  readonly results = new Map<PlannedStage, Promise<StageResult>>();
  /** Every layer step resolved, hit or run, in the order they finished (for `--cache-to`). */
  readonly resolvedSteps: ResolvedStep[] = [];
  /**
   * Steps being resolved, by cache key: the same step of several target platforms (a FROM
   * --platform=$BUILDPLATFORM stage that does not read TARGET*) runs once, the others wait for it.
   */
  private readonly inflight = new Map<string, Promise<LayerOutcome>>();

  constructor(private readonly session: ExecSession) {}

  stageResult(stage: PlannedStage): Promise<StageResult> {
    let result = this.results.get(stage);
    if (!result) {
      result = this.executeStage(stage);
      // Avoid unhandled rejections for stages awaited later (or never, after a sibling failed).
      result.catch(() => {});
      this.results.set(stage, result);
    }
    return result;
  }

  private async executeStage(stage: PlannedStage): Promise<StageResult> {
    const { backend, emit, opts } = this.session;
    // Dependencies first, all at once: independent stages build in parallel.
    await Promise.all([...stage.deps].map((d) => this.stageResult(d)));

    const shownSteps = 1 + stage.steps.filter((st) => executorFor(st.instr.kind).layer).length;
    const fromVertex = this.session.startVertex(`[${stage.label}${'1'.padStart(String(shownSteps).length)}/${shownSteps}] FROM ${stage.baseDisplay}`);
    let chainID: string | null = null;
    let layers: { diffID: string; chainID: string }[] = [];
    let config: ImageConfig;
    if (stage.base.kind === 'scratch') {
      config = scratchConfig(stage.platform);
    } else if (stage.base.kind === 'image') {
      chainID = stage.base.image.chainID;
      await backend.hold(chainID);
      config = stage.base.image.config;
      layers = chainFromConfig(config, chainID);
    } else {
      const dep = await this.stageResult(stage.base.stage);
      chainID = dep.chainID;
      config = dep.config;
      layers = [...dep.layers];
    }
    emit({ type: 'step-done', vertex: fromVertex, time: Date.now() });

    const history = [...(config.history ?? [])];
    // Times come from when layers were made (cache records included), so a fully cached build gives
    // the same image ID; metadata steps take the time of the layer step before them, and those
    // before the stage's first layer step the time of that step (never the base image's time). A
    // stage of metadata steps only takes the build's time.
    const epoch = opts.sourceDateEpoch !== undefined ? this.session.created : undefined;
    let lastCreated: string | undefined = epoch;
    const pending: PlannedStep[] = [];
    const flushPending = (time: string) => {
      for (const p of pending.splice(0)) history.push(historyEntry(historyText(p), time, true));
    };
    for (const step of stage.steps) {
      this.session.checkCanceled();
      const executor = executorFor(step.instr.kind);
      if (!executor.layer) {
        pending.push(step);
        continue;
      }
      if (lastCreated !== undefined) flushPending(lastCreated);
      const vertex = this.session.startVertex(step.name);
      try {
        const outcome = await this.executeLayerStep(executor, stage, step, chainID, vertex);
        flushPending(epoch ?? outcome.created);
        if (!outcome.empty) {
          await backend.hold(outcome.chainID);
          chainID = outcome.chainID;
          layers.push({ diffID: outcome.diffID, chainID: outcome.chainID });
        }
        lastCreated = epoch ?? outcome.created;
        history.push(historyEntry(historyText(step), lastCreated, outcome.empty));
        emit({ type: outcome.cached ? 'step-cached' : 'step-done', vertex, time: Date.now() });
      } catch (err) {
        const message = this.session.cancel?.aborted ? 'canceled' : (err as Error).message;
        emit({ type: 'step-error', vertex, message, time: Date.now() });
        const where = `Dockerfile:${step.instr.startLine}: ${step.name.replace(/^\[[^\]]*\] /, '')}`;
        throw new BuildError(`${where}: ${message}`, (err as { runExitCode?: number }).runExitCode);
      }
    }
    lastCreated ??= this.session.created;
    flushPending(lastCreated);
    const final = structuredClone(stage.finalConfig);
    final.history = history;
    final.created = lastCreated;
    final.rootfs = { type: 'layers', diff_ids: layers.map((l) => l.diffID) };
    return { chainID, config: final, layers };
  }

  private async executeLayerStep(
    executor: LayerExecutor,
    stage: PlannedStage,
    step: PlannedStep,
    parent: string | null,
    vertex: number,
  ): Promise<LayerOutcome> {
    const { opts } = this.session;
    const parts = await stepKeyParts(executor, step, parent, {
      network: opts.network ?? 'default',
      chainOf: (ref) => this.chainOf(ref, stage),
      sourceDateEpoch: opts.sourceDateEpoch,
      ...(isHostPlatform(stage.platform) ? {} : { foreignPlatform: formatPlatform(stage.platform) }),
    });
    const key = cacheKey(parts);
    const running = this.inflight.get(key);
    if (running) return { ...(await running), cached: true };
    const outcome = this.resolveLayerStep(executor, stage, step, parent, vertex, key, parts);
    this.inflight.set(key, outcome);
    try {
      return await outcome;
    } finally {
      this.inflight.delete(key);
    }
  }

  private async resolveLayerStep(
    executor: LayerExecutor,
    stage: PlannedStage,
    step: PlannedStep,
    parent: string | null,
    vertex: number,
    key: string,
    parts: KeyParts,
  ): Promise<LayerOutcome> {
    const { backend, opts, emit } = this.session;
    const cache = backend.cache;
    const lineage = lineageId(this.session.contextDir, this.session.dockerfilePath, String(stage.stage.index), String(step.number));
    if (!opts.noCache) {
      const local = await cache.lookup(key);
      const hit = local && (local.empty || (await backend.hasLayer(local.chainID))) ? local : await this.sharedHit(key, parent, stage.platform);
      if (hit) {
        await cache.recordLineage(lineage, parts);
        const record = { ...hit, chainID: hit.empty ? (parent ?? '') : hit.chainID, created: hit.created ?? this.session.created };
        this.resolvedSteps.push({ stage, key, parent: parent ?? '', record });
        return { ...record, cached: true };
      }
      const reason = explainMiss(await cache.lastParts(lineage), parts) ?? this.session.sharedCaches.missNote();
      if (reason) emit({ type: 'step-cache-miss', vertex, reason, time: Date.now() });
    }
    const work = await backend.createWorkLayer(parent, {
      onFetch: (line) => emit({ type: 'step-log', vertex, stream: 'stderr', data: Buffer.from(`${line}\n`), time: Date.now() }),
    });
    try {
      await executor.execute(step, work.rootfs, this.execContext(vertex, stage, work.upper));
      // A step that finished after a cancel (a COPY, a RUN that exited on its own) is not committed.
      this.session.checkCanceled();
      const clamp = opts.sourceDateEpoch !== undefined ? { clampMtime: opts.sourceDateEpoch } : {};
      const committed = await work.commit(clamp);
      const created = this.session.created;
      const record = committed.empty
        ? { chainID: parent ?? '', diffID: '', size: 0, empty: true, created }
        : { chainID: committed.chainID, diffID: committed.diffID, size: committed.size, empty: false, created };
      await cache.store(key, record);
      await cache.recordLineage(lineage, parts);
      this.resolvedSteps.push({ stage, key, parent: parent ?? '', record });
      return { ...record, cached: false };
    } finally {
      await work.discard();
    }
  }

  /** A `--cache-from` record for the step, its layer brought into the store and recorded locally. */
  private async sharedHit(key: string, parent: string | null, platform: Platform): Promise<CacheRecord | undefined> {
    const record = await this.session.sharedCaches.hit(key, parent ?? '', formatPlatform(platform));
    if (record) await this.session.backend.cache.store(key, record);
    return record;
  }

  private execContext(vertex: number, stage: PlannedStage, workUpper?: string): ExecContext {
    const { backend, opts, emit } = this.session;
    return {
      backend,
      emit: (e) => emit({ ...e, vertex } as BuildEvent),
      network: opts.network ?? 'default',
      ...(opts.seccomp !== undefined ? { seccomp: opts.seccomp } : {}),
      secrets: opts.secrets ?? {},
      signal: this.session.signal,
      contextDir: this.session.contextDir,
      contextFiltered: this.session.contextFiltered,
      cacheMountsDir: path.join(backend.root, 'builder', 'cache-mounts'),
      ...(opts.runtime ? { runtime: opts.runtime } : {}),
      ...(workUpper !== undefined ? { workUpper } : {}),
      viewOf: (ref) => this.viewFor(ref, stage),
    };
  }

  private async viewFor(ref: string, current?: PlannedStage): Promise<LayerView> {
    const chain = await this.chainOf(ref, current);
    return this.session.backend.viewLayer(chain);
  }

  private async chainOf(ref: string, current?: PlannedStage): Promise<string | null> {
    // The stages this one reads from: a multi-platform build has one `builder` per target platform.
    for (const planned of current ? current.deps : this.results.keys()) {
      const s = planned.stage;
      if ((s.name !== '' && s.name === ref.toLowerCase()) || (/^\d+$/.test(ref) && s.index === Number(ref))) {
        return (await this.stageResult(planned)).chainID;
      }
    }
    const image = current?.fromImages.get(ref) ?? (await this.session.backend.resolveImage(ref));
    return image.chainID;
  }
}

function historyText(step: PlannedStep): string {
  return `${executorFor(step.instr.kind).history(step)} # tsbuild`;
}

/** The chain of an image's layers, rebuilt from its diffIDs. */
function chainFromConfig(config: ImageConfig, top: string | null): { diffID: string; chainID: string }[] {
  const diffIDs = (config.rootfs?.diff_ids ?? []) as Digest[];
  const chains = chainIDs(diffIDs);
  if (top !== null && chains[chains.length - 1] !== top) throw new BuildError(`image layers do not match their chain ID ${top}`);
  return diffIDs.map((diffID, i) => ({ diffID, chainID: chains[i]! }));
}
