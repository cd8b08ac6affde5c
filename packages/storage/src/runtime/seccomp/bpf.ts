// A resolved seccomp profile compiled to a classic BPF program (struct sock_filter[]) for
// seccomp(SECCOMP_SET_MODE_FILTER). Layout:
//   load seccomp_data.arch; one block per admitted architecture; anything else is killed
//   (a filter that skips the arch check can be bypassed through another ABI's numbers).
//   In a block: x32 numbers (x86-64 with bit 30) are refused; numbers above the highest one the
//   profile names return ENOSYS (newer than the profile: libcs fall back, as runc arranges); the rest
//   is a binary search over ranges of numbers with the same outcome, so a syscall costs ~9 jumps.
//   A syscall with argument rules gets its own block: rules in order, each an AND of comparisons,
//   64-bit arguments compared as two 32-bit halves (classic BPF loads 32 bits at a time).
import { AARCH64_SYSCALLS, I386_SYSCALLS, X86_64_SYSCALLS } from './syscalls';
import type { ResolvedProfile, ResolvedRule, SeccompAction, SeccompArg } from './profile';
import { TsbuildError } from '../../errors';

export const BPF_MAXINSNS = 4096;

// linux/filter.h, linux/bpf_common.h
const BPF_LD_W_ABS = 0x20;
const BPF_ALU_AND_K = 0x54;
const BPF_JMP_JA = 0x05;
const BPF_JEQ = 0x15;
const BPF_JGT = 0x25;
const BPF_JGE = 0x35;
const BPF_JSET = 0x45;
const BPF_RET_K = 0x06;

// linux/seccomp.h
const RET_KILL_PROCESS = 0x80000000;
const RET_KILL_THREAD = 0x00000000;
const RET_TRAP = 0x00030000;
const RET_ERRNO = 0x00050000;
const RET_TRACE = 0x7ff00000;
const RET_LOG = 0x7ffc0000;
const RET_ALLOW = 0x7fff0000;

const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
const OFFSET_ARGS = 16;

const EPERM = 1;
const ENOSYS = 38;
const X32_SYSCALL_BIT = 0x40000000;

interface ArchInfo {
  audit: number;
  table: Readonly<Record<string, number>>;
  /** x86-64 shares its audit arch with x32, told apart by bit 30 of the number. */
  refuseX32?: boolean;
}

/** Architectures tsbuild has syscall tables for, by libseccomp name. */
export const ARCHITECTURES: Readonly<Record<string, ArchInfo>> = {
  SCMP_ARCH_X86_64: { audit: 0xc000003e, table: X86_64_SYSCALLS, refuseX32: true },
  SCMP_ARCH_X86: { audit: 0x40000003, table: I386_SYSCALLS },
  // arm64's 32-bit compat ABI (SCMP_ARCH_ARM) has no table here: such processes are killed.
  SCMP_ARCH_AARCH64: { audit: 0xc00000b7, table: AARCH64_SYSCALLS },
};

export class SeccompCompileError extends TsbuildError {
  constructor(message: string) {
    super('ESECCOMP', message, { exitCode: 125 });
  }
}

/** The SECCOMP_RET_* value of an action. */
export function actionValue(action: SeccompAction, errnoRet: number | undefined): number {
  switch (action) {
    case 'SCMP_ACT_ALLOW': return RET_ALLOW;
    case 'SCMP_ACT_ERRNO': return (RET_ERRNO | ((errnoRet ?? EPERM) & 0xffff)) >>> 0;
    case 'SCMP_ACT_TRACE': return (RET_TRACE | ((errnoRet ?? EPERM) & 0xffff)) >>> 0;
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD': return RET_KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS': return RET_KILL_PROCESS;
    case 'SCMP_ACT_TRAP': return RET_TRAP;
    case 'SCMP_ACT_LOG': return RET_LOG;
  }
}

// ---- an assembler with forward labels ----

type Target = number | Label; // a number: that many instructions ahead (0 = the next one)
class Label {
  at = -1;
}

interface Insn {
  code: number;
  k: number;
  jt: Target;
  jf: Target;
}

class Program {
  readonly insns: Insn[] = [];

  emit(code: number, k: number, jt: Target = 0, jf: Target = 0): void {
    this.insns.push({ code, k: k >>> 0, jt, jf });
  }
  load(offset: number): void {
    this.emit(BPF_LD_W_ABS, offset);
  }
  ret(value: number): void {
    this.emit(BPF_RET_K, value);
  }
  jump(label: Label): void {
    this.emit(BPF_JMP_JA, 0, label);
  }
  place(label: Label): void {
    label.at = this.insns.length;
  }

  assemble(): Buffer {
    if (this.insns.length > BPF_MAXINSNS) {
      throw new SeccompCompileError(`seccomp filter has ${this.insns.length} instructions, above the kernel's limit of ${BPF_MAXINSNS}`);
    }
    const out = Buffer.alloc(this.insns.length * 8);
    this.insns.forEach((insn, pc) => {
      const rel = (t: Target, max: number): number => {
        const off = typeof t === 'number' ? t : t.at - pc - 1;
        if (typeof t !== 'number' && t.at < 0) throw new Error('seccomp: internal error, a label was never placed');
        if (off < 0 || off > max) throw new SeccompCompileError(`seccomp filter: a jump of ${off} instructions does not fit (profile rules too large)`);
        return off;
      };
      out.writeUInt16LE(insn.code, pc * 8);
      if (insn.code === BPF_JMP_JA) {
        out.writeUInt32LE(rel(insn.jt, 0xffffffff), pc * 8 + 4);
      } else {
        out.writeUInt8(rel(insn.jt, 255), pc * 8 + 2);
        out.writeUInt8(rel(insn.jf, 255), pc * 8 + 3);
        out.writeUInt32LE(insn.k, pc * 8 + 4);
      }
    });
    return out;
  }
}

// ---- argument comparisons ----

const split64 = (v: number | bigint): [number, number] => {
  const b = BigInt(v);
  return [Number((b >> 32n) & 0xffffffffn), Number(b & 0xffffffffn)];
};

/** Falls through when the argument satisfies `arg`, jumps to `fail` otherwise. */
function emitComparison(p: Program, arg: SeccompArg, fail: Label): void {
  const hiOff = OFFSET_ARGS + arg.index * 8 + 4;
  const loOff = OFFSET_ARGS + arg.index * 8;
  const [hi, lo] = split64(arg.value);
  const ok = new Label();
  switch (arg.op) {
    case 'SCMP_CMP_EQ':
      p.load(hiOff); p.emit(BPF_JEQ, hi, 0, fail);
      p.load(loOff); p.emit(BPF_JEQ, lo, 0, fail);
      break;
    case 'SCMP_CMP_NE':
      p.load(hiOff); p.emit(BPF_JEQ, hi, 0, ok);
      p.load(loOff); p.emit(BPF_JEQ, lo, fail, 0);
      break;
    case 'SCMP_CMP_MASKED_EQ': {
      const [dHi, dLo] = split64(arg.valueTwo ?? 0);
      p.load(hiOff); p.emit(BPF_ALU_AND_K, hi); p.emit(BPF_JEQ, dHi, 0, fail);
      p.load(loOff); p.emit(BPF_ALU_AND_K, lo); p.emit(BPF_JEQ, dLo, 0, fail);
      break;
    }
    case 'SCMP_CMP_GT':
    case 'SCMP_CMP_GE':
      // hi > HI: yes; hi < HI: no; equal: decided by the low half.
      p.load(hiOff); p.emit(BPF_JGT, hi, ok, 0); p.emit(BPF_JEQ, hi, 0, fail);
      p.load(loOff); p.emit(arg.op === 'SCMP_CMP_GT' ? BPF_JGT : BPF_JGE, lo, 0, fail);
      break;
    case 'SCMP_CMP_LT':
    case 'SCMP_CMP_LE':
      // The negations of GE and GT.
      p.load(hiOff); p.emit(BPF_JGT, hi, fail, 0); p.emit(BPF_JEQ, hi, 0, ok);
      p.load(loOff); p.emit(arg.op === 'SCMP_CMP_LT' ? BPF_JGE : BPF_JGT, lo, fail, 0);
      break;
  }
  p.place(ok);
}

/**
 * runc's reading of a rule's args: all conditions must hold, except that when one argument index is
 * named more than once, each condition is a rule of its own (any may hold).
 */
function conditionGroups(rule: ResolvedRule): SeccompArg[][] {
  const counts = new Map<number, number>();
  for (const a of rule.args) counts.set(a.index, (counts.get(a.index) ?? 0) + 1);
  const repeated = [...counts.values()].some((c) => c > 1);
  return repeated ? rule.args.map((a) => [a]) : [rule.args];
}

// ---- one architecture ----

interface SyscallPlan {
  /** Argument rules in profile order: each an AND of comparisons, and its return value. */
  conditional: { args: SeccompArg[]; value: number }[];
  /** The return value when no argument rule matched. */
  fallback: number;
}

function planArch(profile: ResolvedProfile, table: Readonly<Record<string, number>>, defaultValue: number) {
  const plans = new Map<number, SyscallPlan>();
  const unconditional = new Map<number, number>();
  let highest = -1;
  for (const rule of profile.rules) {
    const value = actionValue(rule.action, rule.errnoRet);
    for (const name of rule.names) {
      const nr = table[name];
      if (nr === undefined) continue; // not a syscall on this architecture (Docker skips them too)
      highest = Math.max(highest, nr);
      if (rule.args.length === 0) {
        if (!unconditional.has(nr)) unconditional.set(nr, value);
        continue;
      }
      const plan = plans.get(nr) ?? { conditional: [], fallback: defaultValue };
      for (const args of conditionGroups(rule)) plan.conditional.push({ args, value });
      plans.set(nr, plan);
    }
  }
  for (const [nr, plan] of plans) plan.fallback = unconditional.get(nr) ?? defaultValue;
  return { plans, unconditional, highest };
}

type Outcome = { ret: number } | { plan: SyscallPlan };
interface Range {
  lo: number;
  outcome: Outcome;
}

function emitOutcome(p: Program, outcome: Outcome): void {
  if ('ret' in outcome) {
    p.ret(outcome.ret);
    return;
  }
  for (const rule of outcome.plan.conditional) {
    const next = new Label();
    for (const arg of rule.args) emitComparison(p, arg, next);
    p.ret(rule.value);
    p.place(next);
  }
  p.ret(outcome.plan.fallback);
}

/** A binary search over ranges[from..to): `jge` the middle range's first number. */
function emitSearch(p: Program, ranges: Range[], from: number, to: number): void {
  if (to - from === 1) {
    emitOutcome(p, ranges[from]!.outcome); // from < to <= ranges.length
    return;
  }
  const mid = (from + to) >> 1;
  const upper = new Label();
  p.emit(BPF_JGE, ranges[mid]!.lo, 0, 1);
  p.jump(upper);
  emitSearch(p, ranges, from, mid);
  p.place(upper);
  emitSearch(p, ranges, mid, to);
}

function emitArch(p: Program, profile: ResolvedProfile, info: ArchInfo, defaultValue: number): void {
  const { plans, unconditional, highest } = planArch(profile, info.table, defaultValue);
  p.load(OFFSET_NR);
  if (info.refuseX32) {
    p.emit(BPF_JSET, X32_SYSCALL_BIT, 0, 1);
    p.ret(actionValue('SCMP_ACT_ERRNO', EPERM));
  }
  // Syscalls newer than any the profile names: ENOSYS, so callers fall back to older ones. A profile
  // that allows by default wants new syscalls allowed, so it gets no such cut-off.
  const allowsByDefault = profile.defaultAction === 'SCMP_ACT_ALLOW' || profile.defaultAction === 'SCMP_ACT_LOG';
  const limit = allowsByDefault || highest < 0 ? Infinity : highest;
  if (limit !== Infinity) {
    p.emit(BPF_JGT, limit, 0, 1);
    p.ret(actionValue('SCMP_ACT_ERRNO', ENOSYS));
  }
  const ranges: Range[] = [];
  const top = Math.max(highest, 0);
  for (let nr = 0; nr <= top + 1; nr++) {
    const plan = plans.get(nr);
    const outcome: Outcome = plan ? { plan } : { ret: nr > top ? defaultValue : (unconditional.get(nr) ?? defaultValue) };
    const last = ranges[ranges.length - 1];
    if (!plan && last && 'ret' in last.outcome && 'ret' in outcome && last.outcome.ret === outcome.ret) continue;
    ranges.push({ lo: nr, outcome });
  }
  emitSearch(p, ranges, 0, ranges.length);
}

/** Compiles a resolved profile: the program's bytes, ready for spawn's `seccomp.filter`. */
export function compileFilter(profile: ResolvedProfile): Buffer {
  const arches = profile.architectures.filter((a) => ARCHITECTURES[a] !== undefined);
  if (arches.length === 0) {
    throw new SeccompCompileError(
      `seccomp profile admits no architecture tsbuild can filter (${profile.architectures.join(', ') || 'none'}; known: ${Object.keys(ARCHITECTURES).join(', ')})`,
    );
  }
  const defaultValue = actionValue(profile.defaultAction, profile.defaultErrnoRet);
  const p = new Program();
  const blocks = arches.map(() => new Label());
  p.load(OFFSET_ARCH);
  arches.forEach((arch, i) => {
    // arches holds only names in ARCHITECTURES; blocks has one label per arch
    p.emit(BPF_JEQ, ARCHITECTURES[arch]!.audit, 0, 1);
    p.jump(blocks[i]!);
  });
  p.ret(RET_KILL_PROCESS);
  arches.forEach((arch, i) => {
    p.place(blocks[i]!);
    emitArch(p, profile, ARCHITECTURES[arch]!, defaultValue);
  });
  return p.assemble();
}
