// The build orchestrator: Dockerfile → planned stages → steps with cache keys → layers → image.
//
// Planning (plan.ts) is pure (no filesystem changes): every instruction is expanded with the
// environment it sees, so bad input (unknown stage, missing source, bad flag) fails before any layer
// is made. Execution (execute.ts) runs stages as a dependency graph (independent stages in parallel)
// and steps in order, keyed by cache-keys.ts. What each instruction does is its executor's
// (executors/, looked up by kind): nothing here knows one instruction from another.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse, parseInstructions, ShellLexer, DockerfileParseError, DockerfileExpansionError, type Stage } from '../dockerfile';
import { INLINE_CACHE_KEY, InvalidReferenceError, encodeInlineCache, formatPlatform, hostPlatform, parsePlatform, parseReference, type Platform, type RegistryClientOptions, type SeccompOption } from '@tsbuild/storage';
import type { BuildEvent, EventSink } from '../progress';
import type { BuildBackend, RunRuntimeOptions } from './backend';
import { evaluateGlobalArgs, PROXY_ARGS } from './args';
import type { ImageConfig } from './image-config';
import { BuildError } from './errors';
import { ContextSources } from './executors';
import { Planner, type PlannedStage, type PlanSession } from './plan';
import { StageRunner, type ExecSession } from './execute';
import { SharedCaches, cacheName, exportRecords, type CacheDestination, type CacheExportSpec, type CacheImportSpec } from './shared-cache';

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
  /**
   * Target platforms (`linux/amd64`, `linux/arm64`, ...; default this host's). More than one gives an
   * OCI image index with one image per platform, which the tags then name.
   */
  platforms?: string[];
  /** One target platform, or several comma-separated (docker build --platform). */
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
  /** Shared build caches to read (`--cache-from`), all read before the first step; ignored with noCache. */
  cacheFrom?: CacheImportSpec[];
  /** Where to export the steps' records and layers (`--cache-to`) once the image is written. */
  cacheTo?: CacheExportSpec[];
  /**
   * Registry options (podman build's --authfile, --creds, --tls-verify) for every registry the build
   * reads or writes: base image pulls, shared caches, and the blobs of lazy layers it fetches.
   */
  registry?: RegistryClientOptions;
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
  /** The image ID (config digest); for a multi-platform build, the index digest (as buildx gives). */
  imageId: string;
  /** The image manifest's digest; for a multi-platform build, the index digest. */
  manifestDigest: string;
  /** Set when the build made an image index (more than one platform). */
  indexDigest?: string;
  /** One image per target platform, in the order asked. */
  platforms: { platform: string; imageId: string; manifestDigest: string }[];
  tags: string[];
  config: ImageConfig;
  warnings: string[];
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

class Builder implements PlanSession, ExecSession {
  lexer = new ShellLexer();
  readonly usedBuildArgs = new Set<string>();
  readonly contextDir: string;
  readonly dockerfilePath: string;
  readonly created: string;
  private readonly warnings: string[] = [];
  private vertex = 0;
  private sources: ContextSources | undefined;
  private readonly abort = new AbortController();
  private readonly runner = new StageRunner(this);
  sharedCaches = new SharedCaches();

  constructor(
    readonly opts: BuildOptions,
    readonly backend: BuildBackend,
    readonly emit: EventSink,
    /** The caller's cancellation; the internal controller also fires when a stage fails. */
    readonly cancel: AbortSignal | undefined,
  ) {
    this.contextDir = path.resolve(opts.context);
    this.dockerfilePath = opts.dockerfile ? path.resolve(opts.dockerfile) : path.join(this.contextDir, 'Dockerfile');
    this.created = new Date(opts.sourceDateEpoch !== undefined ? opts.sourceDateEpoch * 1000 : Date.now()).toISOString();
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  get contextFiltered(): boolean {
    return this.sources?.filtered ?? false;
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
      await Promise.allSettled([...this.runner.results.values()]);
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
    const targets = targetPlatforms(this.opts);
    if (targets.length > 1 && !this.backend.writeIndex) throw new BuildError('this build backend cannot write a multi-platform image');
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
    const target = this.pickTarget(dockerfile.stages);
    // One plan per target platform; steps the platforms share (same key) run once (execute.ts).
    const finals: PlannedStage[] = [];
    for (const platform of targets) {
      const globals = evaluateGlobalArgs(dockerfile.globalArgs, buildArgs, lexer, this.usedBuildArgs, platform);
      const label = targets.length > 1 ? `${formatPlatform(platform)} ` : '';
      finals.push(await new Planner(this, dockerfile.stages, globals, buildArgs, platform, label).plan(target));
    }
    await this.sources?.save();

    const unused = [...buildArgs.keys()].filter((k) => !this.usedBuildArgs.has(k) && !PROXY_ARGS.has(k));
    if (unused.length > 0) this.warn(`one or more build args were not consumed: [${unused.sort().join(' ')}]`);

    if (!this.opts.noCache && this.opts.cacheFrom?.length) {
      this.sharedCaches = await SharedCaches.read(this.opts.cacheFrom, this.backend, this.emit, (name) => this.startVertex(name), (m) => this.warn(m));
    }
    const results = await Promise.all(finals.map((f) => this.runner.stageResult(f)));
    this.checkCanceled();
    const images: BuildResult['platforms'] = [];
    let first: ImageConfig | undefined;
    for (const [i, result] of results.entries()) {
      const config = structuredClone(result.config);
      if (this.opts.labels && Object.keys(this.opts.labels).length > 0) {
        config.config.Labels = { ...(config.config.Labels ?? {}), ...this.opts.labels };
      }
      first ??= config;
      if (this.opts.cacheTo?.some((s) => s.type === 'inline')) this.exportInlineCache(config, finals[i]!);
      const ids = await this.backend.writeImage(config, result.layers);
      images.push({ platform: formatPlatform(finals[i]!.platform), ...ids });
    }
    const indexDigest =
      images.length > 1
        ? await this.backend.writeIndex!(images.map((img, i) => ({ manifestDigest: img.manifestDigest, platform: finals[i]!.platform })))
        : undefined;
    const ids = indexDigest ? { imageId: indexDigest, manifestDigest: indexDigest } : { imageId: images[0]!.imageId, manifestDigest: images[0]!.manifestDigest };
    const tags: string[] = [];
    for (const t of this.opts.tags ?? []) tags.push(await this.backend.tag(t, indexDigest ?? ids.imageId));
    // After the image, as BuildKit runs its cache exporters after the image exporter: a failed export
    // (without ignore-error) fails the build, whose image is written and tagged by then.
    for (const spec of this.opts.cacheTo ?? []) if (spec.type !== 'inline') await this.exportCache(spec, finals, ids.imageId);
    this.emit({ type: 'image', imageId: ids.imageId, manifestDigest: ids.manifestDigest, tags, time: Date.now() });
    return { ...ids, ...(indexDigest ? { indexDigest } : {}), platforms: images, tags, config: first!, warnings: this.warnings };
  }

  /** `--cache-to type=inline`: the final image's records (min mode) go into its config, as BuildKit's do. */
  private exportInlineCache(config: ImageConfig, finalStage: PlannedStage): void {
    const vertex = this.startVertex(`exporting cache to ${cacheName({ type: 'inline' })}`);
    const records = exportRecords({ mode: 'min' }, this.runner.resolvedSteps, [finalStage]);
    (config as unknown as Record<string, unknown>)[INLINE_CACHE_KEY] = encodeInlineCache(records);
    this.emit({ type: 'step-log', vertex, stream: 'stdout', data: Buffer.from(`${records.length} records\n`), time: Date.now() });
    this.emit({ type: 'step-done', vertex, time: Date.now() });
  }

  private async exportCache(spec: CacheExportSpec & CacheDestination, finals: PlannedStage[], imageId: string): Promise<void> {
    if (!this.backend.writeSharedCache) throw new BuildError('this build backend cannot export a build cache');
    const vertex = this.startVertex(`exporting cache to ${cacheName(spec)}`);
    try {
      const written = await this.backend.writeSharedCache(spec, exportRecords(spec, this.runner.resolvedSteps, finals));
      const said = written.unchanged ? 'unchanged, nothing written' : `${written.bytes} bytes of blobs written`;
      this.emit({ type: 'step-log', vertex, stream: 'stdout', data: Buffer.from(`${said}\n`), time: Date.now() });
    } catch (err) {
      const message = `exporting cache to ${cacheName(spec)}: ${(err as Error).message}`;
      if (!spec.ignoreError) {
        this.emit({ type: 'step-error', vertex, message, time: Date.now() });
        throw new BuildError(`${message} (the image ${imageId.slice('sha256:'.length, 'sha256:'.length + 12)} was built; ignore-error=true makes this a warning)`);
      }
      this.warn(message);
    }
    this.emit({ type: 'step-done', vertex, time: Date.now() });
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

  async contextSources(): Promise<ContextSources> {
    this.sources ??= await ContextSources.open(
      this.contextDir,
      this.opts.dockerfileContent !== undefined ? { text: this.opts.dockerfileContent } : { path: this.dockerfilePath },
      this.backend.root,
    );
    return this.sources;
  }

  /** Throws once the build is canceled: by the caller, or because another stage failed. */
  checkCanceled(): void {
    if (this.cancel?.aborted) throw new BuildError('build canceled');
    if (this.abort.signal.aborted) throw new BuildError('canceled: another stage failed');
  }

  startVertex(name: string): number {
    const vertex = ++this.vertex;
    this.emit({ type: 'step-start', vertex, name, time: Date.now() });
    return vertex;
  }
}

/** The build's target platforms, parsed, each once (default: this host's). */
function targetPlatforms(opts: BuildOptions): Platform[] {
  const texts = [...(opts.platforms ?? []), ...(opts.platform ? opts.platform.split(',') : [])].map((t) => t.trim()).filter(Boolean);
  const out: Platform[] = [];
  for (const text of texts) {
    let p: Platform;
    try {
      p = parsePlatform(text);
    } catch (err) {
      throw new BuildError((err as Error).message);
    }
    if (!out.some((q) => formatPlatform(q) === formatPlatform(p))) out.push(p);
  }
  return out.length > 0 ? out : [hostPlatform()];
}

function wrapParseError(err: unknown, file: string): Error {
  if (err instanceof DockerfileParseError || err instanceof DockerfileExpansionError) {
    return new BuildError(`${path.basename(file)}: ${err.message}`);
  }
  return err as Error;
}
