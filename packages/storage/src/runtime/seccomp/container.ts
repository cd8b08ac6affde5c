// The filter a container gets, without loading the compiler (bpf.ts, the syscall tables and Docker's
// profile as data: ~4 ms of a short command) when it is not needed: a container with Docker's default
// capabilities takes the precompiled filter. Every other case loads ./index and compiles.
import { PRECOMPILED_CAPABILITIES, PRECOMPILED_FILTERS, PRECOMPILED_MIN_KERNEL } from './precompiled';
import { kernelVersion, nativeGoArch, type SeccompProfile } from './profile';

/** 'default' (Docker's profile), 'unconfined' (no filter) or a profile in Docker's format. */
export type SeccompOption = 'default' | 'unconfined' | SeccompProfile;

export interface CompiledSeccomp {
  filter: Buffer;
  flags: number;
}

/**
 * The default profile's filter for Docker's default capabilities, compiled when tsbuild was built
 * (precompiled.ts; a unit test checks it against the compiler): compiling it costs a short command
 * 3 to 6 ms of CPU. Undefined for another capability set, architecture or a kernel older than the one
 * the profile's rules were resolved for.
 */
export function precompiledDefault(capabilities: readonly string[]): CompiledSeccomp | undefined {
  const entry = PRECOMPILED_FILTERS[nativeGoArch()];
  const [k, maj] = kernelVersion();
  const [minK, minMaj] = PRECOMPILED_MIN_KERNEL;
  if (!entry || [...capabilities].sort().join(',') !== PRECOMPILED_CAPABILITIES) return undefined;
  if (k < minK || (k === minK && maj < minMaj)) return undefined;
  return { filter: Buffer.from(entry.filter, 'base64'), flags: entry.flags };
}

/** containerSeccomp (./index), loading the compiler only when the precompiled filter does not fit. */
export async function seccompFor(option: SeccompOption | undefined, capabilities: readonly string[]): Promise<CompiledSeccomp | undefined> {
  if (option === 'unconfined') return undefined;
  if (option === undefined || option === 'default') {
    const precompiled = precompiledDefault(capabilities);
    if (precompiled) return precompiled;
  }
  return (await import('./index.js')).containerSeccomp(option, capabilities);
}
