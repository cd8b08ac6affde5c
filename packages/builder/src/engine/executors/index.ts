// The executor registry, keyed by instruction kind. A new instruction is its parser case
// (dockerfile/instructions.ts), one executor file here, and its line below; the type makes a kind
// without an executor a compile error.
import type { Instruction } from '../../dockerfile';
import { argExecutor, configExecutors } from './config';
import { copyExecutor } from './copy';
import type { InstructionExecutor, StepKind } from './executor';
import { runExecutor } from './run';
import { workdirExecutor } from './workdir';

const EXECUTORS: { readonly [K in StepKind]: InstructionExecutor<K, unknown> } = {
  ...configExecutors,
  arg: argExecutor,
  run: runExecutor,
  copy: copyExecutor,
  add: copyExecutor,
  workdir: workdirExecutor,
};

/** The executor of an instruction kind (FROM has none: it starts a stage). */
export function executorFor(kind: Instruction['kind']): InstructionExecutor {
  if (kind === 'from') throw new Error('FROM is planned with its stage, not as a step');
  return EXECUTORS[kind] as InstructionExecutor;
}

export { ContextSources, type CopySources } from './copy';
export type { ExecContext, InstructionExecutor, InstructionOf, KeyContext, LayerExecutor, PlanContext, Step, StepKind } from './executor';
