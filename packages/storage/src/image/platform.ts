// OCI platforms (`linux/arm64`, `linux/arm/v7`): parsed from what users type, compared with containerd's
// normalization (arm64 means arm64/v8, arm means arm/v7, amd64/v1 is amd64), and picked from an index.
import type { Descriptor, Platform } from '../content/types';
import { userError } from '../errors';

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };

/** Spellings other tools accept for an architecture (uname -m names, containerd's aliases). */
const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm', i386: '386', i686: '386' };

/** The variant an architecture has when none is given. */
const DEFAULT_VARIANT: Record<string, string> = { arm64: 'v8', arm: 'v7', amd64: 'v1' };

/** The OCI platform of this host (`linux`/`amd64`, ...). */
export function hostPlatform(): Platform {
  return { os: process.platform === 'linux' ? 'linux' : process.platform, architecture: ARCH[process.arch] ?? process.arch };
}

/**
 * Parses `os/arch[/variant]` (or a bare `arch`, which means linux), as docker's `--platform`. A bad
 * string is a one-line user error naming it.
 */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().toLowerCase().split('/');
  const bad = (why: string) => userError(`invalid platform "${text}": ${why} (expected OS/ARCH[/VARIANT], e.g. linux/arm64)`);
  if (parts.some((p) => !/^[a-z0-9._-]+$/.test(p))) throw bad('empty or invalid component');
  if (parts.length > 3) throw bad('too many components');
  const [os, arch, variant] = parts.length === 1 ? ['linux', parts[0]!, undefined] : [parts[0]!, parts[1]!, parts[2]];
  if (os !== 'linux') throw bad(`operating system "${os}" is not supported (only linux)`);
  const architecture = ARCH_ALIASES[arch] ?? arch;
  return normalizePlatform({ os, architecture, ...(variant ? { variant } : {}) });
}

/** Drops a variant that is the architecture's default (arm64/v8 → arm64), as image indexes usually do. */
export function normalizePlatform(p: Platform): Platform {
  const out: Platform = { os: p.os, architecture: p.architecture };
  if (p.variant && p.variant !== DEFAULT_VARIANT[p.architecture]) out.variant = p.variant;
  return out;
}

/** `linux/arm64`, `linux/arm/v7`. */
export function formatPlatform(p: Platform): string {
  const n = normalizePlatform(p);
  return [n.os, n.architecture, n.variant].filter(Boolean).join('/');
}

/** Whether `have` (an index entry's or a config's platform) serves `want`. */
export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have) return false;
  const a = normalizePlatform(have);
  const b = normalizePlatform(want);
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}

/** Whether this host runs `p`'s binaries without emulation. */
export function isHostPlatform(p: Platform): boolean {
  const h = hostPlatform();
  return p.os === h.os && p.architecture === h.architecture;
}

/**
 * Picks the manifest for `want` from an index's descriptors: the exact platform, else one of the same
 * os and architecture when the wanted variant is not given.
 */
export function selectPlatform(manifests: Descriptor[], want: Platform = hostPlatform()): Descriptor | undefined {
  const exact = manifests.find((m) => platformMatches(m.platform, want));
  if (exact || want.variant) return exact;
  return manifests.find((m) => m.platform && m.platform.os === want.os && m.platform.architecture === want.architecture);
}

/** The platforms an index lists, for messages (`linux/amd64, linux/arm64`). */
export function describePlatforms(manifests: Descriptor[]): string {
  return manifests.map((m) => (m.platform ? formatPlatform(m.platform) : '?')).join(', ') || 'none';
}
