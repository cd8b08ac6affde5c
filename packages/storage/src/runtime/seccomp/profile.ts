// Docker's seccomp profile format (moby/profiles seccomp/seccomp.go, the JSON `--security-opt
// seccomp=FILE` takes): its checks, and its resolution against one container (seccomp_linux.go):
// rules are kept or dropped by the native architecture, the container's bounding capabilities and the
// running kernel's version, leaving plain rules for the compiler.
import * as os from 'node:os';
import { TsbuildError } from '../../errors';

export type SeccompAction =
  | 'SCMP_ACT_KILL' | 'SCMP_ACT_KILL_PROCESS' | 'SCMP_ACT_KILL_THREAD' | 'SCMP_ACT_TRAP' | 'SCMP_ACT_ERRNO'
  | 'SCMP_ACT_TRACE' | 'SCMP_ACT_ALLOW' | 'SCMP_ACT_LOG';

export type SeccompOperator =
  | 'SCMP_CMP_NE' | 'SCMP_CMP_LT' | 'SCMP_CMP_LE' | 'SCMP_CMP_EQ' | 'SCMP_CMP_GE' | 'SCMP_CMP_GT'
  | 'SCMP_CMP_MASKED_EQ';

export interface SeccompArg {
  index: number;
  value: number | bigint;
  /** For SCMP_CMP_MASKED_EQ: `value` is the mask and `valueTwo` what the masked argument must equal. */
  valueTwo?: number | bigint;
  op: SeccompOperator;
}

export interface SeccompFilter {
  caps?: string[];
  /** Go architecture names: amd64, x86, x32, arm64, arm, … */
  arches?: string[];
  /** "<kernel>.<major>" */
  minKernel?: string;
}

export interface SeccompRule {
  names?: string[];
  /** Older profiles name one syscall per rule. */
  name?: string;
  action: SeccompAction;
  errnoRet?: number;
  args?: SeccompArg[] | null;
  comment?: string;
  includes?: SeccompFilter;
  excludes?: SeccompFilter;
}

export interface SeccompProfile {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  /** Native architecture → the sub-architectures admitted with it (SCMP_ARCH_*). */
  archMap?: { architecture: string; subArchitectures?: string[] | null }[];
  /** The older flat form: every architecture admitted. */
  architectures?: string[];
  /** SECCOMP_FILTER_FLAG_* names. */
  flags?: string[];
  syscalls?: SeccompRule[];
}

/** A rule after resolution: what the compiler turns into BPF. */
export interface ResolvedRule {
  names: string[];
  action: SeccompAction;
  errnoRet?: number;
  args: SeccompArg[];
}

export interface ResolvedProfile {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  /** SCMP_ARCH_* names admitted (native first). */
  architectures: string[];
  flags: number;
  rules: ResolvedRule[];
}

const ACTIONS: readonly SeccompAction[] = [
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG',
];
const OPERATORS: readonly SeccompOperator[] = [
  'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ',
];
/** SECCOMP_FILTER_FLAG_* that need nothing but the filter itself. */
export const SECCOMP_FILTER_FLAGS: Readonly<Record<string, number>> = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
};

/** A profile that cannot be used: the message names the field. */
export class SeccompProfileError extends TsbuildError {
  constructor(message: string) {
    super('ESECCOMP', message, { exitCode: 125 });
  }
}

function bad(where: string, what: string): never {
  throw new SeccompProfileError(`seccomp profile ${where}: ${what}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkStringList(where: string, v: unknown): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) bad(where, 'must be a list of strings');
  return v as string[];
}

function checkErrno(where: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 4095) bad(where, `must be an errno number 0-4095 (got ${JSON.stringify(v)})`);
  return v as number;
}

// Kept as given (a number stays a number, so a checked profile still serializes as JSON).
function checkArgValue(where: string, v: unknown): number | bigint {
  if (typeof v === 'bigint' || (typeof v === 'number' && Number.isSafeInteger(v))) {
    const b = BigInt(v);
    if (b >= 0n && b < 1n << 64n) return v;
  }
  return bad(where, `must be an unsigned 64-bit integer (got ${String(v)})`);
}

function checkKernelVersion(where: string, v: unknown): string {
  if (typeof v !== 'string' || !/^\d+\.\d+$/.test(v) || /^0+\.0+$/.test(v)) bad(where, `must be "<kernel>.<major>" (got ${JSON.stringify(v)})`);
  return v;
}

function checkFilter(where: string, v: unknown): SeccompFilter | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) bad(where, 'must be an object');
  for (const key of Object.keys(v)) if (!['caps', 'arches', 'minKernel'].includes(key)) bad(`${where}.${key}`, 'is not a known field');
  return {
    ...(v.caps !== undefined && v.caps !== null ? { caps: checkStringList(`${where}.caps`, v.caps) } : {}),
    ...(v.arches !== undefined && v.arches !== null ? { arches: checkStringList(`${where}.arches`, v.arches) } : {}),
    ...(v.minKernel !== undefined && v.minKernel !== '' ? { minKernel: checkKernelVersion(`${where}.minKernel`, v.minKernel) } : {}),
  };
}

function checkAction(where: string, v: unknown): SeccompAction {
  if (v === 'SCMP_ACT_NOTIFY') bad(where, 'SCMP_ACT_NOTIFY needs a listener, which tsbuild does not run');
  if (!ACTIONS.includes(v as SeccompAction)) bad(where, `unknown action ${JSON.stringify(v)}`);
  return v as SeccompAction;
}

function checkRule(where: string, v: unknown): SeccompRule {
  if (!isObject(v)) bad(where, 'must be an object');
  if (v.name !== undefined && v.name !== '' && v.names !== undefined && v.names !== null) {
    bad(where, "has both 'name' and 'names': use either");
  }
  const names = v.name !== undefined && v.name !== '' ? [String(v.name)] : checkStringList(`${where}.names`, v.names ?? []);
  const args = v.args === undefined || v.args === null ? [] : v.args;
  if (!Array.isArray(args)) bad(`${where}.args`, 'must be a list');
  const includes = checkFilter(`${where}.includes`, v.includes);
  const excludes = checkFilter(`${where}.excludes`, v.excludes);
  return {
    names,
    action: checkAction(`${where}.action`, v.action),
    ...(v.errnoRet !== undefined && v.errnoRet !== null ? { errnoRet: checkErrno(`${where}.errnoRet`, v.errnoRet) } : {}),
    args: args.map((a, j): SeccompArg => {
      const at = `${where}.args[${j}]`;
      if (!isObject(a)) bad(at, 'must be an object');
      if (!Number.isInteger(a.index) || (a.index as number) < 0 || (a.index as number) > 5) bad(`${at}.index`, 'must be 0-5');
      if (!OPERATORS.includes(a.op as SeccompOperator)) bad(`${at}.op`, `unknown operator ${JSON.stringify(a.op)}`);
      return {
        index: a.index as number,
        value: checkArgValue(`${at}.value`, a.value ?? 0),
        valueTwo: checkArgValue(`${at}.valueTwo`, a.valueTwo ?? 0),
        op: a.op as SeccompOperator,
      };
    }),
    ...(includes ? { includes } : {}),
    ...(excludes ? { excludes } : {}),
  };
}

/** Checks a profile (parsed JSON or an object) field by field. */
export function checkProfile(value: unknown): SeccompProfile {
  if (!isObject(value)) bad('', 'must be a JSON object');
  if (value.architectures !== undefined && value.archMap !== undefined &&
      (value.architectures as unknown[] | null)?.length && (value.archMap as unknown[] | null)?.length) {
    bad('', "has both 'architectures' and 'archMap': use either");
  }
  const archMap = value.archMap === undefined || value.archMap === null ? undefined : value.archMap;
  if (archMap !== undefined && !Array.isArray(archMap)) bad('archMap', 'must be a list');
  const syscalls = value.syscalls === undefined || value.syscalls === null ? [] : value.syscalls;
  if (!Array.isArray(syscalls)) bad('syscalls', 'must be a list');
  const flags = value.flags === undefined || value.flags === null ? [] : checkStringList('flags', value.flags);
  for (const f of flags) if (SECCOMP_FILTER_FLAGS[f] === undefined) bad('flags', `unsupported flag ${JSON.stringify(f)} (supported: ${Object.keys(SECCOMP_FILTER_FLAGS).join(', ')})`);
  return {
    defaultAction: checkAction('defaultAction', value.defaultAction),
    ...(value.defaultErrnoRet !== undefined && value.defaultErrnoRet !== null ? { defaultErrnoRet: checkErrno('defaultErrnoRet', value.defaultErrnoRet) } : {}),
    ...(archMap ? {
      archMap: archMap.map((a, i) => {
        if (!isObject(a) || typeof a.architecture !== 'string') bad(`archMap[${i}]`, "needs an 'architecture'");
        const subs = a.subArchitectures === undefined || a.subArchitectures === null ? [] : checkStringList(`archMap[${i}].subArchitectures`, a.subArchitectures);
        return { architecture: a.architecture, subArchitectures: subs };
      }),
    } : {}),
    ...(value.architectures ? { architectures: checkStringList('architectures', value.architectures) } : {}),
    flags,
    syscalls: syscalls.map((r, i) => checkRule(`syscalls[${i}]`, r)),
  };
}

/** Parses a profile file's text; a malformed one is a SeccompProfileError naming the file. */
export function parseProfile(text: string, source = 'profile'): SeccompProfile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SeccompProfileError(`seccomp profile ${source} is not valid JSON: ${(err as Error).message}`);
  }
  try {
    return checkProfile(json);
  } catch (err) {
    if (err instanceof SeccompProfileError) throw new SeccompProfileError(err.message.replace(/^seccomp profile /, `seccomp profile ${source}: `));
    throw err;
  }
}

/** The Go architecture name of this host, as profiles' includes/excludes use it. */
export function nativeGoArch(arch = process.arch): string {
  const table: Record<string, string> = { x64: 'amd64', ia32: 'x86', arm64: 'arm64', arm: 'arm' };
  return table[arch] ?? arch;
}

const NATIVE_SCMP_ARCH: Record<string, string> = {
  amd64: 'SCMP_ARCH_X86_64', x86: 'SCMP_ARCH_X86', arm64: 'SCMP_ARCH_AARCH64', arm: 'SCMP_ARCH_ARM',
};

/** "6.18.44-fc" → [6, 18]; Docker ignores the rest. */
export function kernelVersion(release = os.release()): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

function kernelAtLeast(min: string, kernel: [number, number]): boolean {
  const [k, maj] = min.split('.').map(Number) as [number, number]; // checkKernelVersion: "<kernel>.<major>"
  return kernel[0] > k || (kernel[0] === k && kernel[1] >= maj);
}

export interface ResolveContext {
  /** The container's bounding capabilities, names without CAP_. */
  capabilities: readonly string[];
  /** Go architecture name (default: this host's). */
  arch?: string;
  kernel?: [number, number];
}

const capName = (c: string) => 'CAP_' + c.toUpperCase().replace(/^CAP_/, '');

/**
 * Docker's resolution (seccomp_linux.go setupSeccomp): an `excludes` match drops a rule, an unmet
 * `includes` drops it; capabilities are checked against the bounding set.
 */
export function resolveProfile(profile: SeccompProfile, ctx: ResolveContext): ResolvedProfile {
  const arch = ctx.arch ?? nativeGoArch();
  const kernel = ctx.kernel ?? kernelVersion();
  const caps = new Set(ctx.capabilities.map(capName));
  const native = NATIVE_SCMP_ARCH[arch];
  let architectures: string[];
  if (profile.archMap?.length) {
    const entry = profile.archMap.find((a) => a.architecture === native);
    architectures = entry ? [entry.architecture, ...(entry.subArchitectures ?? [])] : [];
  } else {
    architectures = profile.architectures ?? [];
  }
  // A profile that names no architecture filters the native one only (libseccomp's default).
  if (architectures.length === 0 && native) architectures = [native];
  const rules: ResolvedRule[] = [];
  for (const rule of profile.syscalls ?? []) {
    const ex = rule.excludes;
    if (ex) {
      if (ex.arches?.includes(arch)) continue;
      if (ex.caps?.some((c) => caps.has(capName(c)))) continue;
      if (ex.minKernel && kernelAtLeast(ex.minKernel, kernel)) continue;
    }
    const inc = rule.includes;
    if (inc) {
      if (inc.arches?.length && !inc.arches.includes(arch)) continue;
      if (inc.caps?.some((c) => !caps.has(capName(c)))) continue;
      if (inc.minKernel && !kernelAtLeast(inc.minKernel, kernel)) continue;
    }
    const names = rule.names?.length ? rule.names : rule.name ? [rule.name] : [];
    rules.push({
      names, action: rule.action, args: rule.args ?? [], ...(rule.errnoRet !== undefined ? { errnoRet: rule.errnoRet } : {}),
    });
  }
  const flags = (profile.flags ?? []).reduce((acc, f) => acc | (SECCOMP_FILTER_FLAGS[f] ?? 0), 0);
  return {
    defaultAction: profile.defaultAction,
    ...(profile.defaultErrnoRet !== undefined ? { defaultErrnoRet: profile.defaultErrnoRet } : {}),
    architectures,
    flags,
    rules,
  };
}
