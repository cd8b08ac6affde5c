import type { Descriptor, Platform } from '../content/types';

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };

/** The OCI platform of this host (`linux`/`amd64`, ...). */
export function hostPlatform(): Platform {
  return { os: process.platform === 'linux' ? 'linux' : process.platform, architecture: ARCH[process.arch] ?? process.arch };
}

/** Picks the manifest for `want` from an index's descriptors (architecture and os must match). */
export function selectPlatform(manifests: Descriptor[], want: Platform = hostPlatform()): Descriptor | undefined {
  const candidates = manifests.filter(
    (m) => m.platform && m.platform.os === want.os && m.platform.architecture === want.architecture,
  );
  if (want.variant) return candidates.find((m) => m.platform?.variant === want.variant) ?? candidates[0];
  return candidates[0];
}
