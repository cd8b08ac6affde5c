// The build orchestrator: Dockerfile → planned stages → steps with cache keys → layers → image.
//
// Planning is pure (no filesystem changes): every instruction is expanded with the environment it
// sees, so bad input (unknown stage, missing source, bad flag) fails before any layer is made.
// Execution runs stages as a dependency graph (independent stages in parallel) and steps in order.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  parse,
  parseInstructions,
  parseOnbuildTrigger,
  expandInstruction,
  ShellLexer,
  DockerfileParseError,
  DockerfileExpansionError,
  EXPANDED_INSTRUCTIONS,
  type Command,
  type Stage,
  type Instruction,
  type RunInstruction,
  type CopyInstruction,
  type AddInstruction,
} from '../dockerfile';
import { InvalidReferenceError, chainIDs, parseReference, type Digest, type SeccompOption } from '@tsbuild/storage';
import type { BuildEvent, EventSink } from '../progress';
import type { BuildBackend, ResolvedImage, RunRuntimeOptions } from './backend';
import { ArgScope, evaluateGlobalArgs, PROXY_ARGS } from './args';
import { BuildCache, cacheKey, lineageId, type KeyParts } from './cache';
import { ConfigState, DEFAULT_SHELL, applyToConfig, historyEntry, scratchConfig, type ImageConfig } from './image-config';
import { BuildError } from './errors';
import { runStep, type RunContext } from './run-step';
import { ContextSources, copyStep, type CopySources } from './copy-step';
import { workdirStep } from './workdir-step';

export interface BuildOptions {
  /** The build context directory. */
  context: string;
  /** Dockerfile path (relative paths are relative to the current directory); default <context>/Dockerfile. */
  dockerfile?: string;
  /** The Dockerfile's text (for `-f -`); wins over `dockerfile`. */
  dockerfileContent?: string;
  tags?: string[];
  buildArgs?: Record<string, string>;
  target?: string;
  noCache?: boolean;
  labels?: Record<string, string>;
  network?: 'default' | 'host' | 'none';
  /** Secrets for RUN --mount=type=secret: id → a file path or an environment variable name. */
  secrets?: Record<string, { src?: string; env?: string }>;
  /** Only the host's platform is supported; anything else is a clear error. */
  platform?: string;
  /** Clamp times (config, history, layer files) for reproducible images. */
  sourceDateEpoch?: number;
  /** The seccomp filter of RUN steps: Docker's default profile unless 'unconfined' or a profile is given. */
  seccomp?: SeccompOption;
  /** Entitlements granted (BuildKit's --allow): 'security.insecure' lets RUN --security=insecure run. */
  allow?: string[];
  /**
   * Base images: 'missing' (default) uses the local image and pulls one that is not held when its
   * reference names a registry host; 'always' (docker build --pull) pulls every base image first.
   */
  pull?: 'missing' | 'always';
  /** For every RUN: extra /etc/hosts lines, rlimits and the /dev/shm size (docker build's flags). */
  runtime?: RunRuntimeOptions;
}

export interface BuildHooks {
  /** Receives every {@link BuildEvent} of the build, in order, synchronously. */
  onEvent?: EventSink;
  /**
   * Cancels the build: running RUN steps are killed, no step commits after it fires, and build()
   * rejects with a BuildError "build canceled" once everything it started is cleaned up (no mount,
   * no work layer, no image, no tag). Steps finished before it keep their cache entries. A signal
   * that fires after the last step, while the image is being written, no longer stops the build.
   */
  signal?: AbortSignal;
}

export interface BuildResult {
  imageId: string;
  manifestDigest: string;
  tags: string[];
  config: ImageConfig;
  warnings: string[];
}

/** A step of a planned stage. Layer steps carry what their cache key and execution need. */
interface PlannedStep {
  number: number; // 1-based within the stage, FROM is 1
  name: string;
  instr: Instruction;
  /** Env (KEY=value) a RUN sees: image env + in-scope build args. */
  runEnv: string[];
  /** The env as the cache key sees it: runEnv without undeclared proxy args. */
  keyEnv: string[];
  /** Build args in scope (declared), for the history line. */
  args: string[];
  configBefore: ImageConfig;
  /** The config after this instruction (what WORKDIR created, for example). */
  configAfter: ImageConfig;
  historyText: string;
  copy?: CopySources;
  /** RUN --mount=type=bind sources in the context, by mount target: in the key, and what is mounted. */
  binds?: Map<string, CopySources> | undefined;
}

interface PlannedStage {
  stage: Stage;
  label: string; // `[stage 2/5]` prefix part, e.g. 'builder ' or ''
  base: { kind: 'scratch' } | { kind: 'image'; image: ResolvedImage } | { kind: 'stage'; stage: PlannedStage };
  baseDisplay: string;
  steps: PlannedStep[];
  finalConfig: ImageConfig;
  /** Stages this one reads from (FROM, COPY --from, RUN --mount from=). */
  deps: Set<PlannedStage>;
  /** Images referenced by COPY --from / mount from= (by the raw reference). */
  fromImages: Map<string, ResolvedImage>;
}

interface StageResult {
  chainID: string | null;
  config: ImageConfig;
  layers: { diffID: string; chainID: string }[];
}

export async function build(opts: BuildOptions, backend: BuildBackend, hooks: BuildHooks = {}): Promise<BuildResult> {
  // A bad tag is refused before any step runs, not after the whole build (docker build does the same).
  for (const tag of opts.tags ?? []) {
    try {
      parseReference(tag);
    } catch (err) {
      if (err instanceof InvalidReferenceError) throw new BuildError(`invalid tag ${JSON.stringify(tag)}: ${err.reason}`);
      throw err;
    }
  }
  const builder = new Builder(opts, backend, hooks.onEvent ?? (() => {}), hooks.signal);
  return builder.run();
}

class Builder {
  private readonly cache: BuildCache;
  private lexer: ShellLexer;
  private readonly warnings: string[] = [];
  private readonly usedBuildArgs = new Set<string>();
  private vertex = 0;
  private readonly contextDir: string;
  private readonly dockerfilePath: string;
  private readonly results = new Map<PlannedStage, Promise<StageResult>>();
  private readonly created: string;
  private sources: ContextSources | undefined;
  private readonly abort = new AbortController();

  constructor(
    private readonly opts: BuildOptions,
    private readonly backend: BuildBackend,
    private readonly emit: EventSink,
    /** The caller's cancellation; the internal controller also fires when a stage fails. */
    private readonly cancel?: AbortSignal,
  ) {
    this.cache = new BuildCache(backend.root);
    this.lexer = new ShellLexer();
    this.contextDir = path.resolve(opts.context);
    this.dockerfilePath = opts.dockerfile ? path.resolve(opts.dockerfile) : path.join(this.contextDir, 'Dockerfile');
    this.created = new Date(opts.sourceDateEpoch !== undefined ? opts.sourceDateEpoch * 1000 : Date.now()).toISOString();
  }

  /**
   * On the first failure, the stages still running are cancelled (their containers killed) and
   * waited for, so nothing keeps running or holding a work layer once build() has rejected.
   */
  async run(): Promise<BuildResult> {
    const onCancel = () => this.abort.abort();
    this.cancel?.addEventListener('abort', onCancel, { once: true });
    try {
      this.checkCanceled();
      return await this.runStages();
    } catch (err) {
      this.abort.abort();
      await Promise.allSettled([...this.results.values()]);
      // A step killed by the cancel fails in its own words (exit code 137): the cause is the cancel.
      if (this.cancel?.aborted) throw new BuildError('build canceled');
      throw err;
    } finally {
      this.cancel?.removeEventListener('abort', onCancel);
      await this.backend.releaseHolds();
      await this.sources?.cleanup();
    }
  }

  private async runStages(): Promise<BuildResult> {
    if (this.opts.platform) checkPlatform(this.opts.platform);
    const text = this.readDockerfile();
    let parsed;
    try {
      parsed = parse(text);
    } catch (err) {
      throw wrapParseError(err, this.dockerfilePath);
    }
    for (const w of parsed.warnings) this.warn(w);
    const lexer = new ShellLexer({ escapeToken: parsed.directives.escape });
    this.lexer = lexer;
    let dockerfile;
    try {
      dockerfile = parseInstructions(parsed);
    } catch (err) {
      throw wrapParseError(err, this.dockerfilePath);
    }
    if (dockerfile.stages.length === 0) throw new BuildError('the Dockerfile has no FROM instruction');

    const buildArgs = new Map(Object.entries(this.opts.buildArgs ?? {}));
    const globals = evaluateGlobalArgs(dockerfile.globalArgs, buildArgs, lexer, this.usedBuildArgs);
    const target = this.pickTarget(dockerfile.stages);

    const planned = new Map<Stage, PlannedStage>();
    const planStage = async (stage: Stage): Promise<PlannedStage> => {
      const existing = planned.get(stage);
      if (existing) return existing;
      const p = await this.planStage(stage, dockerfile.stages, globals, buildArgs, planStage);
      planned.set(stage, p);
      return p;
    };
    const finalStage = await planStage(target);
    await this.sources?.save();

    const unused = [...buildArgs.keys()].filter((k) => !this.usedBuildArgs.has(k) && !PROXY_ARGS.has(k));
    if (unused.length > 0) this.warn(`one or more build args were not consumed: [${unused.sort().join(' ')}]`);

    const result = await this.stageResult(finalStage);
    this.checkCanceled();
    const config = structuredClone(result.config);
    if (this.opts.labels && Object.keys(this.opts.labels).length > 0) {
      config.config.Labels = { ...(config.config.Labels ?? {}), ...this.opts.labels };
    }
    const ids = await this.backend.writeImage(config, result.layers);
    const tags: string[] = [];
    for (const t of this.opts.tags ?? []) tags.push(await this.backend.tag(t, ids.imageId));
    this.emit({ type: 'image', imageId: ids.imageId, manifestDigest: ids.manifestDigest, tags, time: Date.now() });
    return { ...ids, tags, config, warnings: this.warnings };
  }

  private readDockerfile(): string {
    if (this.opts.dockerfileContent !== undefined) return this.opts.dockerfileContent;
    try {
      return fs.readFileSync(this.dockerfilePath, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new BuildError(`cannot read the Dockerfile: ${this.dockerfilePath} does not exist`);
      throw new BuildError(`cannot read the Dockerfile ${this.dockerfilePath}: ${(err as Error).message}`);
    }
  }

  private pickTarget(stages: Stage[]): Stage {
    const target = this.opts.target;
    if (target === undefined || target === '') return stages[stages.length - 1]!;
    const found = stages.find((s) => s.name === target.toLowerCase());
    if (!found) throw new BuildError(`target stage "${target}" could not be found`);
    return found;
  }

  private warn(message: string, line?: number): void {
    this.warnings.push(message);
    const e: BuildEvent = { type: 'warning', message, time: Date.now() };
    if (line !== undefined) e.line = line;
    this.emit(e);
  }

  // ---------------------------------------------------------------- planning

  private async planStage(
    stage: Stage,
    stages: Stage[],
    globals: Map<string, string>,
    buildArgs: Map<string, string>,
    planStage: (s: Stage) => Promise<PlannedStage>,
  ): Promise<PlannedStage> {
    const lexer = this.lexer;
    const fromInstr = expandInstruction(stage.from, (n) => globals.get(n), lexer);
    const baseName = fromInstr.baseName;
    if (fromInstr.platform) checkPlatform(fromInstr.platform, stage.from.startLine);
    const deps = new Set<PlannedStage>();
    let base: PlannedStage['base'];
    let baseConfig: ImageConfig;
    const earlier = stages.slice(0, stage.index).find((s) => s.name !== '' && s.name === baseName.toLowerCase());
    if (baseName.toLowerCase() === 'scratch') {
      base = { kind: 'scratch' };
      baseConfig = scratchConfig();
    } else if (earlier) {
      const dep = await planStage(earlier);
      deps.add(dep);
      base = { kind: 'stage', stage: dep };
      baseConfig = dep.finalConfig;
    } else {
      if (baseName === '') throw new BuildError(lineMessage(stage.from.startLine, 'base name (FROM) should not be blank'));
      const image = await this.resolveImage(baseName, stage.from.startLine);
      base = { kind: 'image', image };
      baseConfig = image.config;
    }

    const state = new ConfigState(baseConfig);
    const scope = new ArgScope(buildArgs, globals, this.usedBuildArgs);
    const visible = (name: string): string | undefined => state.getEnv(name) ?? scope.values.get(name);

    // ONBUILD triggers of the base image run right after FROM.
    const triggers: Command[] = [];
    for (const trigger of baseConfig.config.OnBuild ?? []) {
      const cmd = parseOnbuildTrigger(trigger, { startLine: stage.from.startLine, endLine: stage.from.endLine });
      (cmd as { original: string }).original = `ONBUILD ${cmd.original}`;
      triggers.push(cmd);
    }
    const instructions = [...triggers, ...stage.instructions];
    // BuildKit numbers the steps it shows: FROM and the layer steps, not metadata instructions.
    const total = 1 + instructions.filter((i) => isLayerKind(i.kind)).length;
    let shown = 1;
    const label = stage.name !== '' ? `${stage.name} ` : stages.length > 1 ? `stage-${stage.index} ` : '';
    const fromImages = new Map<string, ResolvedImage>();
    const steps: PlannedStep[] = [];
    let number = 1;

    for (const raw of instructions) {
      number++;
      const instr = atLine(raw.startLine, () => (EXPANDED_INSTRUCTIONS.has(raw.kind) ? expandInstruction(raw, visible, lexer) : raw));
      const args = [...scope.values].filter(([k]) => state.getEnv(k) === undefined).map(([k, v]) => `${k}=${v}`);
      // Proxy build args reach RUN without a declaration, but stay out of the key and the history.
      const proxies = [...buildArgs]
        .filter(([k]) => PROXY_ARGS.has(k) && !scope.declared.has(k) && state.getEnv(k) === undefined)
        .map(([k, v]) => `${k}=${v}`);
      const step: PlannedStep = {
        number,
        name: `[${label}${String(isLayerKind(raw.kind) ? ++shown : shown).padStart(String(total).length)}/${total}] ${raw.original}`,
        instr,
        runEnv: [...state.env(), ...args, ...proxies],
        keyEnv: [...state.env(), ...args],
        args,
        configBefore: structuredClone(state.image),
        configAfter: state.image,
        historyText: raw.original,
      };
      if (!atLine(instr.startLine, () => applyToConfig(state, instr))) {
        switch (instr.kind) {
          case 'arg':
            scope.declare(instr, lexer, visible);
            break;
          case 'run':
            await this.planRunMounts(instr, stages, stage, planStage, deps, fromImages);
            step.binds = await this.planContextBinds(instr);
            break;
          case 'copy':
          case 'add': {
            const from = instr.kind === 'copy' ? instr.from : '';
            if (from !== '') await this.stageOrImage(from, stages, stage, planStage, deps, fromImages, instr.startLine);
            else step.copy = await this.planSources(instr);
            break;
          }
          default:
            break;
        }
      }
      step.configAfter = structuredClone(state.image);
      steps.push(step);
    }
    const finalConfig = structuredClone(state.image);
    return {
      stage,
      label,
      base,
      baseDisplay: baseName,
      steps,
      finalConfig,
      deps,
      fromImages,
    };
  }

  private async resolveImage(ref: string, line: number): Promise<ResolvedImage> {
    const pull = async (why: string) => {
      if (!this.backend.pullImage) throw new BuildError(lineMessage(line, `base image "${ref}": this backend cannot pull`));
      try {
        await this.backend.pullImage(ref);
      } catch (err) {
        throw new BuildError(lineMessage(line, `base image "${ref}" ${why}, and pulling it failed: ${(err as Error).message}`));
      }
    };
    if (this.opts.pull === 'always' && ref !== 'scratch') await pull('was to be pulled (--pull)');
    try {
      return await this.backend.resolveImage(ref);
    } catch (err) {
      if (this.opts.pull !== 'always' && namesRegistryHost(ref)) {
        await pull('is not in the store');
        return await this.backend.resolveImage(ref);
      }
      throw new BuildError(lineMessage(line, `base image "${ref}" not found: ${(err as Error).message}`));
    }
  }

  private async stageOrImage(
    ref: string,
    stages: Stage[],
    current: Stage,
    planStage: (s: Stage) => Promise<PlannedStage>,
    deps: Set<PlannedStage>,
    fromImages: Map<string, ResolvedImage>,
    line: number,
  ): Promise<void> {
    const byName = stages.find((s) => s.name !== '' && s.name === ref.toLowerCase());
    const byIndex = /^\d+$/.test(ref) ? stages[Number(ref)] : undefined;
    const source = byName ?? byIndex;
    if (source) {
      if (source.index >= current.index) {
        throw new BuildError(lineMessage(line, `stage "${ref}" is not defined before stage "${current.name || current.index}"`));
      }
      deps.add(await planStage(source));
      return;
    }
    if (!fromImages.has(ref)) fromImages.set(ref, await this.resolveImage(ref, line));
  }

  private async planRunMounts(
    instr: RunInstruction,
    stages: Stage[],
    current: Stage,
    planStage: (s: Stage) => Promise<PlannedStage>,
    deps: Set<PlannedStage>,
    fromImages: Map<string, ResolvedImage>,
  ): Promise<void> {
    for (const m of instr.mounts ?? []) {
      const from = 'from' in m ? m.from : '';
      if (from) await this.stageOrImage(from, stages, current, planStage, deps, fromImages, instr.startLine);
      if (m.type === 'secret' && m.required && !this.opts.secrets?.[m.id]) {
        throw new BuildError(lineMessage(instr.startLine, `secret ${m.id} is required but was not provided (--secret id=${m.id},src=FILE)`));
      }
      if (m.type === 'ssh') {
        throw new BuildError(lineMessage(instr.startLine, 'RUN --mount=type=ssh is not supported by tsbuild yet'));
      }
    }
    if (instr.security === 'insecure' && !(this.opts.allow ?? []).includes('security.insecure')) {
      throw new BuildError(lineMessage(instr.startLine, 'RUN --security=insecure needs the security.insecure entitlement: pass --allow security.insecure'));
    }
  }

  private async planContextBinds(instr: RunInstruction): Promise<Map<string, CopySources> | undefined> {
    const binds = (instr.mounts ?? []).filter((m) => m.type === 'bind' && !m.from);
    if (binds.length === 0) return undefined;
    const out = new Map<string, CopySources>();
    for (const m of binds) {
      if (m.type !== 'bind') continue;
      try {
        out.set(m.target, await (await this.contextSources()).planBind(m.source));
      } catch (err) {
        throw new BuildError(lineMessage(instr.startLine, `--mount=type=bind,source=${m.source}: ${(err as Error).message}`));
      }
    }
    return out;
  }

  private async contextSources(): Promise<ContextSources> {
    this.sources ??= await ContextSources.open(
      this.contextDir,
      this.opts.dockerfileContent !== undefined ? { text: this.opts.dockerfileContent } : { path: this.dockerfilePath },
      this.backend.root,
    );
    return this.sources;
  }

  private async planSources(instr: CopyInstruction | AddInstruction): Promise<CopySources> {
    try {
      return await (await this.contextSources()).plan(instr);
    } catch (err) {
      if (err instanceof BuildError) throw err;
      throw new BuildError(lineMessage(instr.startLine, (err as Error).message));
    }
  }

  // ---------------------------------------------------------------- execution

  private stageResult(stage: PlannedStage): Promise<StageResult> {
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
    // Dependencies first, all at once: independent stages build in parallel.
    const depResults = await Promise.all([...stage.deps].map((d) => this.stageResult(d)));
    void depResults;

    const shownSteps = 1 + stage.steps.filter((st) => isLayerKind(st.instr.kind)).length;
    const fromVertex = this.startVertex(`[${stage.label}${'1'.padStart(String(shownSteps).length)}/${shownSteps}] FROM ${stage.baseDisplay}`);
    let chainID: string | null = null;
    let layers: { diffID: string; chainID: string }[] = [];
    let config: ImageConfig;
    if (stage.base.kind === 'scratch') {
      config = scratchConfig();
    } else if (stage.base.kind === 'image') {
      chainID = stage.base.image.chainID;
      await this.backend.hold(chainID);
      config = stage.base.image.config;
      layers = chainFromConfig(config, chainID);
    } else {
      const dep = await this.stageResult(stage.base.stage);
      chainID = dep.chainID;
      config = dep.config;
      layers = [...dep.layers];
    }
    this.emit({ type: 'step-done', vertex: fromVertex, time: Date.now() });

    const history = [...(config.history ?? [])];
    // Times come from when layers were made (cache records included), so a fully cached build gives
    // the same image ID; metadata steps take the time of the layer step before them, and those
    // before the stage's first layer step the time of that step (never the base image's time). A
    // stage of metadata steps only takes the build's time.
    const epoch = this.opts.sourceDateEpoch !== undefined ? this.created : undefined;
    let lastCreated: string | undefined = epoch;
    const pending: PlannedStep[] = [];
    const flushPending = (time: string) => {
      for (const p of pending.splice(0)) history.push(historyEntry(historyText(p), time, true));
    };
    for (const step of stage.steps) {
      this.checkCanceled();
      const instr = step.instr;
      if (!isLayerKind(instr.kind)) {
        pending.push(step);
        continue;
      }
      if (lastCreated !== undefined) flushPending(lastCreated);
      const vertex = this.startVertex(step.name);
      try {
        const outcome = await this.executeLayerStep(stage, step, chainID, vertex);
        flushPending(epoch ?? outcome.created);
        if (!outcome.empty) {
          await this.backend.hold(outcome.chainID);
          chainID = outcome.chainID;
          layers.push({ diffID: outcome.diffID, chainID: outcome.chainID });
        }
        lastCreated = epoch ?? outcome.created;
        history.push(historyEntry(historyText(step), lastCreated, outcome.empty));
        this.emit({ type: outcome.cached ? 'step-cached' : 'step-done', vertex, time: Date.now() });
      } catch (err) {
        const message = this.cancel?.aborted ? 'canceled' : (err as Error).message;
        this.emit({ type: 'step-error', vertex, message, time: Date.now() });
        const where = `Dockerfile:${step.instr.startLine}: ${step.name.replace(/^\[[^\]]*\] /, '')}`;
        throw new BuildError(`${where}: ${message}`, (err as { runExitCode?: number }).runExitCode);
      }
    }
    lastCreated ??= this.created;
    flushPending(lastCreated);
    const final = structuredClone(stage.finalConfig);
    final.history = history;
    final.created = lastCreated;
    final.rootfs = { type: 'layers', diff_ids: layers.map((l) => l.diffID) };
    return { chainID, config: final, layers };
  }

  private async executeLayerStep(
    stage: PlannedStage,
    step: PlannedStep,
    parent: string | null,
    vertex: number,
  ): Promise<{ chainID: string; diffID: string; empty: boolean; cached: boolean; created: string }> {
    const parts = await this.keyParts(stage, step, parent);
    const key = cacheKey(parts);
    const lineage = lineageId(this.contextDir, this.dockerfilePath, String(stage.stage.index), String(step.number));
    if (!this.opts.noCache) {
      const hit = await this.cache.lookup(key);
      if (hit && (hit.empty || (await this.backend.hasLayer(hit.chainID)))) {
        await this.cache.recordLineage(lineage, parts);
        return { ...hit, chainID: hit.empty ? (parent ?? '') : hit.chainID, cached: true, created: hit.created ?? this.created };
      }
      const reason = await this.cache.explainMiss(lineage, parts);
      if (reason) this.emit({ type: 'step-cache-miss', vertex, reason, time: Date.now() });
    }
    const work = await this.backend.createWorkLayer(parent);
    try {
      const instr = step.instr;
      if (instr.kind === 'run') {
        await runStep(this.runContext(vertex, stage, step), work.rootfs, instr, step.runEnv, step.configBefore);
      } else if (instr.kind === 'copy' || instr.kind === 'add') {
        await copyStep(work.rootfs, instr, step.copy, await this.copySourceRoot(stage, instr), step.configBefore.config.WorkingDir || '/');
      } else if (instr.kind === 'workdir') {
        await workdirStep(work.rootfs, step.configAfter.config.WorkingDir || '/', step.configBefore.config.User);
      }
      // A step that finished after a cancel (a COPY, a RUN that exited on its own) is not committed.
      this.checkCanceled();
      const clamp = this.opts.sourceDateEpoch !== undefined ? { clampMtime: this.opts.sourceDateEpoch } : {};
      const committed = await work.commit(clamp);
      const created = this.created;
      const record = committed.empty
        ? { chainID: parent ?? '', diffID: '', size: 0, empty: true, created }
        : { chainID: committed.chainID, diffID: committed.diffID, size: committed.size, empty: false, created };
      await this.cache.store(key, record);
      await this.cache.recordLineage(lineage, parts);
      return { ...record, cached: false };
    } finally {
      await work.discard();
    }
  }

  private runContext(vertex: number, stage: PlannedStage, step: PlannedStep): RunContext {
    return {
      backend: this.backend,
      emit: (e) => this.emit({ ...e, vertex } as BuildEvent),
      network: this.opts.network ?? 'default',
      ...(this.opts.seccomp !== undefined ? { seccomp: this.opts.seccomp } : {}),
      secrets: this.opts.secrets ?? {},
      signal: this.abort.signal,
      viewOf: (ref) => this.viewFor(ref, stage),
      contextDir: this.contextDir,
      contextBind: (target) => {
        const planned = step.binds?.get(target);
        return planned ? { entries: planned.entries, filtered: this.sources?.filtered ?? false } : undefined;
      },
      cacheMountsDir: path.join(this.backend.root, 'builder', 'cache-mounts'),
      ...(this.opts.runtime ? { runtime: this.opts.runtime } : {}),
    };
  }

  /** The root a COPY/ADD reads from: the context, a stage or an image. */
  private async copySourceRoot(stage: PlannedStage, instr: CopyInstruction | AddInstruction): Promise<{ dir: string; fromStage: boolean; release(): Promise<void> }> {
    const from = instr.kind === 'copy' ? instr.from : '';
    if (from === '') return { dir: this.contextDir, fromStage: false, release: async () => {} };
    const view = await this.viewFor(from, stage);
    return { dir: view.rootfs, fromStage: true, release: () => view.release() };
  }

  private async viewFor(ref: string, current?: PlannedStage): Promise<{ rootfs: string; release(): Promise<void> }> {
    const chain = await this.chainOf(ref, current);
    return this.backend.viewLayer(chain);
  }

  private async chainOf(ref: string, current?: PlannedStage): Promise<string | null> {
    for (const [planned] of this.results) {
      const s = planned.stage;
      if ((s.name !== '' && s.name === ref.toLowerCase()) || (/^\d+$/.test(ref) && s.index === Number(ref))) {
        return (await this.stageResult(planned)).chainID;
      }
    }
    const image = current?.fromImages.get(ref) ?? (await this.backend.resolveImage(ref));
    return image.chainID;
  }

  private async keyParts(stage: PlannedStage, step: PlannedStep, parent: string | null): Promise<KeyParts> {
    const instr = step.instr;
    const config = step.configBefore.config;
    const parts: KeyParts = {
      parent: parent ?? 'scratch',
      instruction: canonicalInstruction(instr),
    };
    if (instr.kind === 'run') {
      parts.env = JSON.stringify(step.keyEnv);
      if (step.binds) parts.content = JSON.stringify([...step.binds].map(([target, b]) => [target, b.contentDigest]));
      parts.user = config.User ?? '';
      parts.workdir = config.WorkingDir ?? '';
      parts.shell = JSON.stringify(config.Shell ?? DEFAULT_SHELL);
      parts.network = this.opts.network ?? 'default';
      parts.mounts = JSON.stringify(instr.mounts ?? []);
      const froms = (instr.mounts ?? []).map((m) => ('from' in m ? m.from : '')).filter(Boolean);
      if (froms.length > 0) parts.from = JSON.stringify(await Promise.all(froms.map((f) => this.chainOf(f, stage))));
    } else if (instr.kind === 'copy' || instr.kind === 'add') {
      parts.user = config.User ?? '';
      parts.workdir = config.WorkingDir ?? '';
      if (step.copy) parts.content = step.copy.contentDigest;
      const from = instr.kind === 'copy' ? instr.from : '';
      if (from !== '') parts.from = (await this.chainOf(from, stage)) ?? 'scratch';
    } else if (instr.kind === 'workdir') {
      parts.workdir = step.configAfter.config.WorkingDir ?? '';
    }
    if (this.opts.sourceDateEpoch !== undefined) parts.epoch = String(this.opts.sourceDateEpoch);
    return parts;
  }

  /** Throws once the build is canceled: by the caller, or because another stage failed. */
  private checkCanceled(): void {
    if (this.cancel?.aborted) throw new BuildError('build canceled');
    if (this.abort.signal.aborted) throw new BuildError('canceled: another stage failed');
  }

  private startVertex(name: string): number {
    const vertex = ++this.vertex;
    this.emit({ type: 'step-start', vertex, name, time: Date.now() });
    return vertex;
  }
}

function checkPlatform(platform: string, line?: number): void {
  const host = `linux/${scratchConfig().architecture}`;
  if (platform === host || platform === scratchConfig().architecture || platform === '$BUILDPLATFORM') return;
  const message = `platform "${platform}" is not supported: tsbuild builds for the host platform (${host}) only`;
  throw new BuildError(line !== undefined ? lineMessage(line, message) : message);
}

function historyText(step: PlannedStep): string {
  const instr = step.instr;
  if (instr.kind === 'run') {
    const args = step.args.length > 0 ? `|${step.args.length} ${step.args.join(' ')} ` : '';
    return `RUN ${args}${instr.prependShell ? '/bin/sh -c ' : ''}${instr.cmdLine.join(' ')} # tsbuild`;
  }
  return `${expandedText(instr) ?? step.historyText} # tsbuild`;
}

/** The instruction with its variables expanded, as BuildKit records it in the history. */
function expandedText(instr: Instruction): string | undefined {
  const pairs = (list: { key: string; value: string }[]) => list.map((p) => `${p.key}=${p.value}`).join(' ');
  switch (instr.kind) {
    case 'workdir':
      return `WORKDIR ${instr.path}`;
    case 'env':
      return `ENV ${pairs(instr.pairs)}`;
    case 'label':
      return `LABEL ${pairs(instr.labels)}`;
    case 'user':
      return `USER ${instr.user}`;
    case 'expose':
      return `EXPOSE ${instr.ports.join(' ')}`;
    case 'volume':
      return `VOLUME [${instr.volumes.map((v) => JSON.stringify(v)).join(', ')}]`;
    case 'stopsignal':
      return `STOPSIGNAL ${instr.signal}`;
    case 'arg':
      return `ARG ${instr.args.map((a) => (a.value === undefined ? a.key : `${a.key}=${a.value}`)).join(' ')}`;
    case 'copy':
    case 'add': {
      if (instr.contents.length > 0) return undefined; // heredoc sources: the original text says more
      const flags = [
        ...(instr.kind === 'copy' && instr.from ? [`--from=${instr.from}`] : []),
        ...(instr.chown ? [`--chown=${instr.chown}`] : []),
        ...(instr.chmod ? [`--chmod=${instr.chmod}`] : []),
        ...(instr.link ? ['--link'] : []),
      ];
      return [instr.kind.toUpperCase(), ...flags, ...instr.sources, instr.dest].join(' ');
    }
    default:
      return undefined;
  }
}

/** The instruction as the key sees it: its kind and its expanded fields, not its line number. */
function canonicalInstruction(instr: Instruction): string {
  const { startLine: _s, endLine: _e, comments: _c, original: _o, ...rest } = instr as Instruction & Record<string, unknown>;
  return JSON.stringify(rest);
}

/** The chain of an image's layers, rebuilt from its diffIDs. */
function chainFromConfig(config: ImageConfig, top: string | null): { diffID: string; chainID: string }[] {
  const diffIDs = (config.rootfs?.diff_ids ?? []) as Digest[];
  const chains = chainIDs(diffIDs);
  if (top !== null && chains[chains.length - 1] !== top) throw new BuildError(`image layers do not match their chain ID ${top}`);
  return diffIDs.map((diffID, i) => ({ diffID, chainID: chains[i]! }));
}

/** Runs `fn`; an error it throws becomes a build error naming the Dockerfile line. */
function atLine<T>(line: number, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof BuildError) throw err;
    if (err instanceof DockerfileParseError || err instanceof DockerfileExpansionError) throw new BuildError(`Dockerfile: ${err.message}`);
    throw new BuildError(lineMessage(line, (err as Error).message));
  }
}

function lineMessage(line: number, message: string): string {
  return `Dockerfile:${line}: ${message}`;
}

function wrapParseError(err: unknown, file: string): Error {
  if (err instanceof DockerfileParseError || err instanceof DockerfileExpansionError) {
    return new BuildError(`${path.basename(file)}: ${err.message}`);
  }
  return err as Error;
}

/** Whether a reference's first component is a registry host (`localhost:5000/app`, `ghcr.io/x/y`). */
function namesRegistryHost(ref: string): boolean {
  const slash = ref.indexOf('/');
  if (slash < 0) return false;
  const first = ref.slice(0, slash);
  return first === 'localhost' || first.includes('.') || first.includes(':');
}

/** Instructions that make a layer (and a progress step); the others only change the config. */
function isLayerKind(kind: Instruction['kind']): boolean {
  return kind === 'run' || kind === 'copy' || kind === 'add' || kind === 'workdir';
}
