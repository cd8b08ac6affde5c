// Seccomp for containers: policy in TypeScript (a Docker-format profile, resolved against the
// container's capabilities and compiled to classic BPF), mechanism in the addon (spawn loads the bytes).
import * as fs from 'node:fs';
import { compileFilter } from './bpf';
import { DOCKER_DEFAULT_PROFILE } from './default-profile';
import { precompiledDefault, type CompiledSeccomp, type SeccompOption } from './container';
import { checkProfile, parseProfile, resolveProfile, type SeccompProfile } from './profile';
import { TsbuildError } from '../../errors';

export { DOCKER_DEFAULT_PROFILE, DOCKER_PROFILE_VERSION } from './default-profile';
export { ARCHITECTURES, BPF_MAXINSNS, SeccompCompileError, compileFilter } from './bpf';
export {
  SeccompProfileError, checkProfile, parseProfile, resolveProfile,
  type ResolveContext, type ResolvedProfile, type SeccompProfile,
} from './profile';

export type { CompiledSeccomp, SeccompOption } from './container';

// The default profile depends only on the capability set (and the host): compile each set once.
const defaultCache = new Map<string, CompiledSeccomp>();

/** The filter for a container with these bounding capabilities, or undefined for 'unconfined'. */
export function containerSeccomp(option: SeccompOption | undefined, capabilities: readonly string[]): CompiledSeccomp | undefined {
  if (option === 'unconfined') return undefined;
  if (option === undefined || option === 'default') {
    const key = [...capabilities].sort().join(',');
    let compiled = defaultCache.get(key);
    if (!compiled) {
      compiled = precompiledDefault(capabilities) ?? compileProfile(DOCKER_DEFAULT_PROFILE, capabilities);
      defaultCache.set(key, compiled);
    }
    return compiled;
  }
  // A caller's object gets the same checks as a file.
  return compileProfile(checkProfile(option), capabilities);
}

function compileProfile(profile: SeccompProfile, capabilities: readonly string[]): CompiledSeccomp {
  const resolved = resolveProfile(profile, { capabilities });
  return { filter: compileFilter(resolved), flags: resolved.flags };
}

/**
 * `--security-opt seccomp=VALUE`: 'unconfined', or a JSON profile file (read and checked now, so a bad
 * one fails before anything starts).
 */
export function seccompOptionFromFlag(value: string): SeccompOption {
  if (value === 'unconfined') return 'unconfined';
  if (value === 'builtin' || value === 'default') return 'default';
  let text: string;
  try {
    text = fs.readFileSync(value, 'utf8');
  } catch (err) {
    throw new TsbuildError('EINVAL', `seccomp profile ${value} cannot be read: ${(err as NodeJS.ErrnoException).code}`, { exitCode: 125 });
  }
  return parseProfile(text, value);
}
