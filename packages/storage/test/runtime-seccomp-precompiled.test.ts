// The default filter shipped precompiled (src/runtime/seccomp/precompiled.ts) is exactly what the
// compiler makes of Docker's default profile for Docker's default capabilities, on every architecture it
// holds and every kernel it is used on. When this fails: node packages/storage/scripts/precompile-seccomp.js.
import * as os from 'node:os';
import { describe, expect, it } from 'vitest';
import { DOCKER_DEFAULT_CAPABILITIES } from '@tsbuild/native';
import { DOCKER_DEFAULT_PROFILE, DOCKER_PROFILE_VERSION, compileFilter, containerSeccomp, resolveProfile } from '../src/runtime';
import {
  PRECOMPILED_CAPABILITIES, PRECOMPILED_FILTERS, PRECOMPILED_MIN_KERNEL, PRECOMPILED_PROFILE_VERSION,
} from '../src/runtime/seccomp/precompiled';
import { nativeGoArch } from '../src/runtime/seccomp/profile';

const compile = (arch: string, kernel: [number, number]) => {
  const resolved = resolveProfile(DOCKER_DEFAULT_PROFILE, { capabilities: DOCKER_DEFAULT_CAPABILITIES, arch, kernel });
  return { filter: compileFilter(resolved).toString('base64'), flags: resolved.flags };
};

describe('the precompiled default seccomp filter', () => {
  it('is for the current profile and the default capabilities', () => {
    expect(PRECOMPILED_PROFILE_VERSION).toBe(DOCKER_PROFILE_VERSION);
    expect(PRECOMPILED_CAPABILITIES).toBe([...DOCKER_DEFAULT_CAPABILITIES].sort().join(','));
    expect(Object.keys(PRECOMPILED_FILTERS).sort()).toEqual(['amd64', 'arm64']);
  });

  it('holds from its minimum kernel on: no rule of the profile names a later one', () => {
    const later = DOCKER_DEFAULT_PROFILE.syscalls!.flatMap((r) => [r.includes?.minKernel, r.excludes?.minKernel])
      .filter((v): v is string => v !== undefined)
      .map((v) => v.split('.').map(Number) as [number, number])
      .filter(([k, maj]) => k > PRECOMPILED_MIN_KERNEL[0] || (k === PRECOMPILED_MIN_KERNEL[0] && maj > PRECOMPILED_MIN_KERNEL[1]));
    expect(later).toEqual([]);
  });

  it.each(Object.keys(PRECOMPILED_FILTERS))('equals a fresh compile for %s, at its minimum kernel and a later one', (arch) => {
    expect(PRECOMPILED_FILTERS[arch]).toEqual(compile(arch, PRECOMPILED_MIN_KERNEL));
    expect(PRECOMPILED_FILTERS[arch]).toEqual(compile(arch, [6, 18]));
  });

  it('is what a container with the default capabilities gets here; another set is compiled', () => {
    const kernel = os.release().split('.').map(Number) as [number, number];
    const got = containerSeccomp('default', DOCKER_DEFAULT_CAPABILITIES)!;
    expect({ filter: got.filter.toString('base64'), flags: got.flags }).toEqual(compile(nativeGoArch(), [kernel[0], kernel[1]]));
    const withAdmin = containerSeccomp('default', [...DOCKER_DEFAULT_CAPABILITIES, 'SYS_ADMIN'])!;
    const resolved = resolveProfile(DOCKER_DEFAULT_PROFILE, { capabilities: [...DOCKER_DEFAULT_CAPABILITIES, 'SYS_ADMIN'] });
    expect(withAdmin.filter.equals(compileFilter(resolved))).toBe(true);
    expect(withAdmin.filter.equals(got.filter)).toBe(false);
  });
});
