// Cache keys: a step's key is a digest of its named parts (parent layer, instruction, env it sees,
// content of its sources…). The records and the last parts of every step position ("lineage") are
// kept by storage's BuildCache (a root of the layer sweep); this side computes keys and says which
// part changed since the previous build.
import type { KeyParts } from '@tsbuild/storage';
import type { Instruction } from '../dockerfile';
import type { KeyContext, LayerExecutor, Step } from './executors';
import { createHash } from '@tsbuild/native';

export type { KeyParts } from '@tsbuild/storage';

const PART_LABELS: Record<string, string> = {
  parent: 'the parent layer changed',
  instruction: 'the instruction changed',
  env: 'the environment changed',
  args: 'a build argument changed',
  user: 'the user changed',
  workdir: 'the working directory changed',
  shell: 'the shell changed',
  network: 'the network mode changed',
  mounts: 'the RUN mounts changed',
  content: 'the content of the sources changed',
  from: 'the source stage or image changed',
  epoch: 'SOURCE_DATE_EPOCH changed',
  platform: 'the target platform changed',
};

/**
 * A layer step's key parts, in the order existing caches were keyed with: the parent chain, the
 * instruction, what the executor adds, then SOURCE_DATE_EPOCH.
 */
export async function stepKeyParts(
  executor: LayerExecutor,
  step: Step,
  parent: string | null,
  ctx: KeyContext & { sourceDateEpoch?: number | undefined },
): Promise<KeyParts> {
  const parts: KeyParts = {
    parent: parent ?? 'scratch',
    instruction: canonicalInstruction(step.instr),
    ...(await executor.keyParts(step, ctx)),
  };
  if (ctx.sourceDateEpoch !== undefined) parts.epoch = String(ctx.sourceDateEpoch);
  return parts;
}

/** The instruction as the key sees it: its kind and its expanded fields, not its line number. */
function canonicalInstruction(instr: Instruction): string {
  const { startLine: _s, endLine: _e, comments: _c, original: _o, ...rest } = instr as Instruction & Record<string, unknown>;
  return JSON.stringify(rest);
}

export function cacheKey(parts: KeyParts): string {
  const h = createHash('sha256');
  h.update('tsbuild-cache-v1\n');
  for (const [name, value] of Object.entries(parts)) h.update(`${name}=${JSON.stringify(value)}\n`);
  return `sha256:${h.digest('hex')}`;
}

/**
 * Says which parts differ from the last build of the same step position (`previous`, from the
 * cache's lineage; undefined on a first build, which says nothing).
 */
export function explainMiss(previous: KeyParts | undefined, parts: KeyParts): string | undefined {
  if (!previous) return undefined;
  const changed = Object.keys(parts).filter((name) => previous[name] !== parts[name]);
  for (const name of Object.keys(previous)) if (!(name in parts)) changed.push(name);
  if (changed.length === 0) return 'the cached layer is gone';
  return changed.map((name) => describeChange(name, previous[name], parts[name])).join('; ');
}

function describeChange(name: string, before: string | undefined, after: string | undefined): string {
  const label = PART_LABELS[name] ?? `${name} changed`;
  if (name === 'env' || name === 'args') {
    const diff = diffAssignments(before, after);
    if (diff.length > 0) return `${label}: ${diff.join(', ')}`;
  }
  if (name === 'instruction' && before !== undefined && after !== undefined) return `${label} (was: ${truncate(before)})`;
  return label;
}

/** Names of KEY=value assignments that differ between two JSON arrays of them. */
function diffAssignments(before: string | undefined, after: string | undefined): string[] {
  const parse = (s: string | undefined) => {
    const map = new Map<string, string>();
    if (!s) return map;
    try {
      for (const kv of JSON.parse(s) as string[]) {
        const eq = kv.indexOf('=');
        map.set(eq < 0 ? kv : kv.slice(0, eq), eq < 0 ? '' : kv.slice(eq + 1));
      }
    } catch {
      // Not a list of assignments: fall back to the generic label.
    }
    return map;
  };
  const a = parse(before);
  const b = parse(after);
  const names = new Set([...a.keys(), ...b.keys()]);
  return [...names].filter((n) => a.get(n) !== b.get(n)).sort();
}

function truncate(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

export function lineageId(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex');
}
