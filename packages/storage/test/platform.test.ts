// OCI platforms: what users type parsed and normalized like containerd, index entries picked by it.
import { describe, expect, it } from 'vitest';
import { MediaTypes, type Descriptor } from '../src/content';
import { formatPlatform, parsePlatform, platformMatches, selectPlatform } from '../src/image/platform';

const entry = (architecture: string, variant?: string): Descriptor => ({
  mediaType: MediaTypes.ociManifest,
  digest: `sha256:${architecture.padEnd(64, '0').slice(0, 64).replace(/[^0-9a-f]/g, '0')}`,
  size: 1,
  platform: { os: 'linux', architecture, ...(variant ? { variant } : {}) },
});

describe('parsePlatform', () => {
  it.each([
    ['linux/amd64', 'linux/amd64'],
    ['linux/arm64', 'linux/arm64'],
    ['linux/arm64/v8', 'linux/arm64'],
    ['linux/arm/v7', 'linux/arm'],
    ['linux/arm/v6', 'linux/arm/v6'],
    ['arm64', 'linux/arm64'],
    ['Linux/X86_64', 'linux/amd64'],
    ['linux/aarch64', 'linux/arm64'],
  ])('%s is %s', (text, normal) => {
    expect(formatPlatform(parsePlatform(text))).toBe(normal);
  });

  it.each([
    ['linux/', 'empty or invalid component'],
    ['windows/amd64', 'operating system "windows" is not supported (only linux)'],
    ['linux/arm/v7/x', 'too many components'],
  ])('refuses %s in one line', (text, why) => {
    expect(() => parsePlatform(text)).toThrow(`invalid platform "${text}": ${why} (expected OS/ARCH[/VARIANT], e.g. linux/arm64)`);
  });
});

describe('selectPlatform', () => {
  const index = [entry('amd64'), entry('arm64', 'v8'), entry('arm', 'v6'), entry('arm', 'v7')];

  it('matches default variants both ways', () => {
    expect(selectPlatform(index, parsePlatform('linux/arm64'))).toBe(index[1]);
    expect(selectPlatform(index, parsePlatform('linux/arm/v7'))).toBe(index[3]);
    expect(selectPlatform(index, parsePlatform('linux/arm/v6'))).toBe(index[2]);
    expect(platformMatches({ os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'arm64' })).toBe(true);
  });

  it('takes another variant of the architecture only when no exact one exists (arm/v7 runs v6 binaries)', () => {
    const v6 = entry('arm', 'v6');
    expect(selectPlatform([v6], parsePlatform('linux/arm/v7'))).toBe(v6);
  });

  it('finds nothing for a platform the index lacks', () => {
    expect(selectPlatform(index, parsePlatform('linux/riscv64'))).toBeUndefined();
  });
});
