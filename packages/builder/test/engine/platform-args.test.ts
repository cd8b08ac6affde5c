// BuildKit's automatic platform args and the platform part of a RUN's cache key.
import { describe, expect, it } from 'vitest';
import { hostPlatform, parsePlatform } from '@tsbuild/storage';
import { parse, parseInstructions, ShellLexer } from '../../src/dockerfile';
import { evaluateGlobalArgs, platformArgs } from '../../src/engine/args';
import { cacheKey, stepKeyParts } from '../../src/engine/cache-keys';
import { scratchConfig } from '../../src/engine/image-config';
import { executorFor, type LayerExecutor, type Step } from '../../src/engine/executors';

describe('platform args', () => {
  it('TARGET* name the target, BUILD* the host', () => {
    const args = platformArgs(parsePlatform('linux/arm/v7'), parsePlatform('linux/amd64'));
    expect(Object.fromEntries(args)).toEqual({
      TARGETPLATFORM: 'linux/arm', TARGETOS: 'linux', TARGETARCH: 'arm', TARGETVARIANT: '',
      BUILDPLATFORM: 'linux/amd64', BUILDOS: 'linux', BUILDARCH: 'amd64', BUILDVARIANT: '',
    });
    expect(platformArgs(parsePlatform('linux/arm/v6')).get('TARGETVARIANT')).toBe('v6');
  });

  it('are visible to FROM lines for the target being built', () => {
    const df = parseInstructions(parse('ARG BASE=img-$TARGETARCH\nFROM $BASE\n'));
    const globals = evaluateGlobalArgs(df.globalArgs, new Map(), new ShellLexer(), new Set(), parsePlatform('linux/arm64'));
    expect(globals.get('BASE')).toBe('img-arm64');
    expect(globals.get('BUILDARCH')).toBe(hostPlatform().architecture);
  });
});

describe('the RUN key and the platform', () => {
  const run = parseInstructions(parse('FROM scratch\nRUN make\n')).stages[0]!.instructions[0]!;
  const step = { instr: run, planned: undefined, runEnv: [], keyEnv: [], args: [], configBefore: scratchConfig(), configAfter: scratchConfig(), original: 'RUN make' } as unknown as Step;
  const executor = executorFor('run') as LayerExecutor;
  const key = async (foreignPlatform?: string) =>
    stepKeyParts(executor, step, 'sha256:parent', { network: 'default', chainOf: async () => null, ...(foreignPlatform ? { foreignPlatform } : {}) });

  it('has no platform part for the host, so keys made before multi-platform builds still hit', async () => {
    const parts = await key();
    expect(Object.keys(parts)).toEqual(['parent', 'instruction', 'env', 'user', 'workdir', 'shell', 'network', 'mounts']);
  });

  it('differs for another platform: two platforms never share a RUN result', async () => {
    const arm = await key('linux/arm64');
    expect(arm.platform).toBe('linux/arm64');
    expect(cacheKey(arm)).not.toBe(cacheKey(await key()));
    expect(cacheKey(arm)).not.toBe(cacheKey(await key('linux/arm/v7')));
  });
});
