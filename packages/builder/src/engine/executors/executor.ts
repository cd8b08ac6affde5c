// One executor per instruction kind, behind one interface: plan (config changes and what the step
// needs resolved before any layer is made) → key parts → execute (on the step's work layer) →
// history line. The orchestrator (plan.ts, execute.ts) looks executors up by kind (index.ts) and
// knows nothing of any one instruction.
import type { KeyParts, Platform, SeccompOption } from '@tsbuild/storage';
import type { Instruction, ShellLexer } from '../../dockerfile';
import type { BuildEvent } from '../../progress';
import type { ArgScope } from '../args';
import type { BuildBackend, LayerView, RunRuntimeOptions } from '../backend';
import type { ConfigState, ImageConfig } from '../image-config';
import type { ContextSources } from './copy';

/** Kinds that are steps of a stage (FROM starts the stage and is planned with it). */
export type StepKind = Exclude<Instruction['kind'], 'from'>;
export type InstructionOf<K extends StepKind> = Instruction & { kind: K };

/** A planned step as its executor sees it. */
export interface Step<I extends Instruction = InstructionOf<StepKind>, P = unknown> {
  readonly instr: I;
  /** What the executor's plan() returned. */
  readonly planned: P;
  /** Env (KEY=value) a RUN sees: image env + in-scope build args + undeclared proxy args. */
  readonly runEnv: string[];
  /** The env as the cache key sees it: runEnv without undeclared proxy args. */
  readonly keyEnv: string[];
  /** Build args in scope (declared), for the history line. */
  readonly args: string[];
  readonly configBefore: ImageConfig;
  /** The config after this instruction (what WORKDIR set, for example). */
  readonly configAfter: ImageConfig;
  /** The instruction as written (an ONBUILD trigger prefixed with `ONBUILD `). */
  readonly original: string;
}

export interface PlanContext {
  /** The stage's image config; config instructions change it. */
  readonly state: ConfigState;
  readonly scope: ArgScope;
  readonly lexer: ShellLexer;
  /** A variable as the instruction sees it: ENV first, then build args. */
  visible(name: string): string | undefined;
  readonly secrets: Readonly<Record<string, { src?: string; env?: string }>>;
  /** Entitlements granted (`--allow`). */
  readonly allow: readonly string[];
  /** The stage's platform: what its RUN steps execute as. */
  readonly platform: Platform;
  /** Records that the step reads a stage or an image (COPY --from, RUN --mount from=); resolves an image now. */
  dependOn(ref: string, line: number): Promise<void>;
  /** The build context's side of COPY/ADD and context binds (opened on first use). */
  contextSources(): Promise<ContextSources>;
}

export interface KeyContext {
  /** The build's network mode (`--network`). */
  readonly network: string;
  /** The stage's platform (`linux/arm64`) when it is not this host's, so no two platforms share a RUN key. */
  readonly foreignPlatform?: string;
  /** The chain ID of a stage or image a step reads from (null: no layers). */
  chainOf(ref: string): Promise<string | null>;
}

export interface ExecContext {
  readonly backend: BuildBackend;
  /** The step's output, shown under its progress line. */
  emit(event: Omit<Extract<BuildEvent, { type: 'step-log' }>, 'vertex'>): void;
  readonly network: 'default' | 'host' | 'none';
  /** RUN's seccomp filter (default: Docker's profile). */
  readonly seccomp?: SeccompOption;
  readonly secrets: Readonly<Record<string, { src?: string; env?: string }>>;
  /** Aborted when the build is canceled or another stage failed: the step's container is killed. */
  readonly signal: AbortSignal;
  readonly contextDir: string;
  /** Whether a .dockerignore hides anything from the context. */
  readonly contextFiltered: boolean;
  readonly cacheMountsDir: string;
  readonly runtime?: RunRuntimeOptions;
  /** The step's WorkLayer.upper, when it has one. */
  readonly workUpper?: string;
  /** A read-only view of a stage or image. */
  viewOf(ref: string): Promise<LayerView>;
}

interface ExecutorBase<K extends StepKind, P> {
  /** Applies the instruction to the config and resolves what the step needs; bad input fails here. */
  plan(instr: InstructionOf<K>, ctx: PlanContext): Promise<P> | P;
  /** The history line (`created_by`) without tsbuild's ` # tsbuild` mark. */
  history(step: Step<InstructionOf<K>, P>): string;
}

/** An instruction that makes a layer: it has a cache key and runs on a work layer. */
export interface LayerExecutor<K extends StepKind = StepKind, P = unknown> extends ExecutorBase<K, P> {
  readonly layer: true;
  /** The key's parts besides the parent chain, the instruction and SOURCE_DATE_EPOCH (in this order). */
  keyParts(step: Step<InstructionOf<K>, P>, ctx: KeyContext): Promise<KeyParts> | KeyParts;
  execute(step: Step<InstructionOf<K>, P>, rootfs: string, ctx: ExecContext): Promise<void>;
}

/** An instruction that only changes the config (or the build's variables). */
export interface ConfigExecutor<K extends StepKind = StepKind, P = unknown> extends ExecutorBase<K, P> {
  readonly layer: false;
}

export type InstructionExecutor<K extends StepKind = StepKind, P = unknown> = LayerExecutor<K, P> | ConfigExecutor<K, P>;
