// Planning: every stage's instructions expanded with the environment they see, applied to the config
// and resolved (sources hashed, stages and images found) by their executors, before any layer is
// made. Planning changes no file, so bad input fails fast and leaves nothing behind.
import {
  expandInstruction,
  parseOnbuildTrigger,
  EXPANDED_INSTRUCTIONS,
  type Command,
  type ShellLexer,
  type Stage,
  type Instruction,
} from '../dockerfile';
import type { BuildBackend, ResolvedImage } from './backend';
import { ArgScope, PROXY_ARGS } from './args';
import { ConfigState, scratchConfig, type ImageConfig } from './image-config';
import { BuildError, atLine, lineMessage } from './errors';
import { executorFor, type ContextSources, type InstructionOf, type PlanContext, type Step, type StepKind } from './executors';
import type { BuildOptions } from './builder';
import { hostPlatform, isHostPlatform, parsePlatform, type Platform } from '@tsbuild/storage';

/** A step of a planned stage: what its executor planned, and how progress shows it. */
export interface PlannedStep extends Step {
  number: number; // 1-based within the stage, FROM is 1
  name: string;
}

export interface PlannedStage {
  stage: Stage;
  /** The platform the stage's image is for and its RUN steps execute as (FROM --platform, else the target's). */
  platform: Platform;
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

/** What planning needs from the build. */
export interface PlanSession {
  readonly opts: BuildOptions;
  readonly backend: BuildBackend;
  readonly lexer: ShellLexer;
  /** Build args some ARG consumed (for the "not consumed" warning). */
  readonly usedBuildArgs: Set<string>;
  contextSources(): Promise<ContextSources>;
}

export class Planner {
  private readonly planned = new Map<Stage, PlannedStage>();

  constructor(
    private readonly session: PlanSession,
    private readonly stages: Stage[],
    private readonly globals: Map<string, string>,
    private readonly buildArgs: Map<string, string>,
    /** The platform being built; `platformLabel` prefixes progress names in a multi-platform build. */
    private readonly target: Platform = hostPlatform(),
    private readonly platformLabel = '',
  ) {}

  /** Plans a stage and, first, the stages it reads from (once each). */
  async plan(stage: Stage): Promise<PlannedStage> {
    const existing = this.planned.get(stage);
    if (existing) return existing;
    const p = await this.planStage(stage);
    this.planned.set(stage, p);
    return p;
  }

  private async planStage(stage: Stage): Promise<PlannedStage> {
    const { lexer, opts } = this.session;
    const fromInstr = expandInstruction(stage.from, (n) => this.globals.get(n), lexer);
    const baseName = fromInstr.baseName;
    const line = stage.from.startLine;
    const asked = fromInstr.platform ? atLine(line, () => parsePlatform(fromInstr.platform)) : undefined;
    let platform = asked ?? this.target;
    const deps = new Set<PlannedStage>();
    let base: PlannedStage['base'];
    let baseConfig: ImageConfig;
    const earlier = this.stages.slice(0, stage.index).find((s) => s.name !== '' && s.name === baseName.toLowerCase());
    if (baseName.toLowerCase() === 'scratch') {
      base = { kind: 'scratch' };
      baseConfig = scratchConfig(platform);
    } else if (earlier) {
      const dep = await this.plan(earlier);
      deps.add(dep);
      base = { kind: 'stage', stage: dep };
      baseConfig = dep.finalConfig;
      // A stage built on another is for that stage's platform unless it names one.
      platform = asked ?? dep.platform;
    } else {
      if (baseName === '') throw new BuildError(lineMessage(line, 'base name (FROM) should not be blank'));
      const image = await this.resolveImage(baseName, line, platform);
      base = { kind: 'image', image };
      baseConfig = image.config;
    }

    const state = new ConfigState(baseConfig);
    const scope = new ArgScope(this.buildArgs, this.globals, this.session.usedBuildArgs);
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
    const label = this.platformLabel + (stage.name !== '' ? `${stage.name} ` : this.stages.length > 1 ? `stage-${stage.index} ` : '');
    const fromImages = new Map<string, ResolvedImage>();
    const ctx: PlanContext = {
      state,
      scope,
      lexer,
      visible,
      secrets: opts.secrets ?? {},
      allow: opts.allow ?? [],
      platform,
      dependOn: (ref, at) => this.stageOrImage(ref, stage, deps, fromImages, at, platform),
      contextSources: () => this.session.contextSources(),
    };
    const steps: PlannedStep[] = [];
    let number = 1;

    for (const raw of instructions) {
      number++;
      const instr = atLine(raw.startLine, () => (EXPANDED_INSTRUCTIONS.has(raw.kind) ? expandInstruction(raw, visible, lexer) : raw));
      const args = [...scope.values].filter(([k]) => state.getEnv(k) === undefined).map(([k, v]) => `${k}=${v}`);
      // Proxy build args reach RUN without a declaration, but stay out of the key and the history.
      const proxies = [...this.buildArgs]
        .filter(([k]) => PROXY_ARGS.has(k) && !scope.declared.has(k) && state.getEnv(k) === undefined)
        .map(([k, v]) => `${k}=${v}`);
      const executor = executorFor(instr.kind); // throws for FROM: a stage's instructions never hold one
      const stepInstr = instr as InstructionOf<StepKind>;
      const name = `[${label}${String(executor.layer ? ++shown : shown).padStart(String(total).length)}/${total}] ${raw.original}`;
      const runEnv = [...state.env(), ...args, ...proxies];
      const keyEnv = [...state.env(), ...args];
      const configBefore = structuredClone(state.image);
      const planned = await executor.plan(stepInstr, ctx);
      steps.push({ number, name, instr: stepInstr, planned, runEnv, keyEnv, args, configBefore, configAfter: structuredClone(state.image), original: raw.original });
    }
    return { stage, platform, label, base, baseDisplay: baseName, steps, finalConfig: structuredClone(state.image), deps, fromImages };
  }

  private async resolveImage(ref: string, line: number, platform: Platform = this.target): Promise<ResolvedImage> {
    const { backend, opts } = this.session;
    // The platform is named only when it is not this host's: a host build resolves as it always did.
    const explicit = Boolean(opts.platforms?.length || opts.platform);
    const wanted = explicit || !isHostPlatform(platform) ? platform : undefined;
    const pull = async (why: string) => {
      if (!backend.pullImage) throw new BuildError(lineMessage(line, `base image "${ref}": this backend cannot pull`));
      try {
        await backend.pullImage(ref, wanted);
      } catch (err) {
        throw new BuildError(lineMessage(line, `base image "${ref}" ${why}, and pulling it failed: ${(err as Error).message}`));
      }
    };
    if (opts.pull === 'always' && ref !== 'scratch') await pull('was to be pulled (--pull)');
    try {
      return await backend.resolveImage(ref, wanted);
    } catch (err) {
      if (opts.pull !== 'always' && namesRegistryHost(ref)) {
        await pull('is not in the store');
        return await backend.resolveImage(ref, wanted);
      }
      // Found, but not for this platform: say that, not "not found".
      const missing = (err as { code?: string }).code === 'ENOIMAGE';
      throw new BuildError(lineMessage(line, `base image "${ref}"${missing ? ' not found' : ''}: ${(err as Error).message}`));
    }
  }

  private async stageOrImage(ref: string, current: Stage, deps: Set<PlannedStage>, fromImages: Map<string, ResolvedImage>, line: number, platform: Platform): Promise<void> {
    const byName = this.stages.find((s) => s.name !== '' && s.name === ref.toLowerCase());
    const byIndex = /^\d+$/.test(ref) ? this.stages[Number(ref)] : undefined;
    const source = byName ?? byIndex;
    if (source) {
      if (source.index >= current.index) {
        throw new BuildError(lineMessage(line, `stage "${ref}" is not defined before stage "${current.name || current.index}"`));
      }
      deps.add(await this.plan(source));
      return;
    }
    if (!fromImages.has(ref)) fromImages.set(ref, await this.resolveImage(ref, line, platform));
  }
}

/** Instructions that make a layer (and a progress step); the others only change the config. */
function isLayerKind(kind: Instruction['kind']): boolean {
  return executorFor(kind).layer;
}

/** Whether a reference's first component is a registry host (`localhost:5000/app`, `ghcr.io/x/y`). */
function namesRegistryHost(ref: string): boolean {
  const slash = ref.indexOf('/');
  if (slash < 0) return false;
  const first = ref.slice(0, slash);
  return first === 'localhost' || first.includes('.') || first.includes(':');
}
