import { describe, it, expect } from 'vitest';
import { ConfigState, scratchConfig, normalizePort, cleanPath } from '../../src/engine/image-config';

describe('image config semantics', () => {
  it('ENTRYPOINT clears a CMD inherited from the base, not one set in this stage', () => {
    const base = scratchConfig();
    base.config.Cmd = ['sh'];
    const inherited = new ConfigState(base);
    inherited.setEntrypoint(['/bin/app'], false);
    expect(inherited.config.Cmd).toBeNull();

    const own = new ConfigState(base);
    own.setCmd(['--help'], false);
    own.setEntrypoint(['/bin/app'], false);
    expect(own.config.Cmd).toEqual(['--help']);
  });

  it('shell forms use the current SHELL', () => {
    const s = new ConfigState(scratchConfig());
    s.setCmd(['echo hi'], true);
    expect(s.config.Cmd).toEqual(['/bin/sh', '-c', 'echo hi']);
    s.setShell(['/bin/bash', '-xc']);
    s.setEntrypoint(['run'], true);
    expect(s.config.Entrypoint).toEqual(['/bin/bash', '-xc', 'run']);
  });

  it('ENV replaces in place and appends new keys', () => {
    const s = new ConfigState(scratchConfig());
    s.setEnv([['A', '1'], ['PATH', '/x']]);
    expect(s.config.Env).toEqual(['PATH=/x', 'A=1']);
    expect(s.getEnv('A')).toBe('1');
  });

  it('WORKDIR chains relative paths and cleans them', () => {
    const s = new ConfigState(scratchConfig());
    expect(s.setWorkdir('/a')).toBe('/a');
    expect(s.setWorkdir('b/../c')).toBe('/a/c');
    expect(s.setWorkdir('d/')).toBe('/a/c/d');
    expect(cleanPath('/../x//y/.')).toBe('/x/y');
  });

  it('EXPOSE normalizes ports and rejects garbage', () => {
    expect(normalizePort('80')).toBe('80/tcp');
    expect(normalizePort('53/UDP')).toBe('53/udp');
    expect(() => normalizePort('http')).toThrow(/invalid containerPort: http/);
  });

  it('a child stage does not inherit ONBUILD triggers and records history', () => {
    const base = scratchConfig();
    base.config.OnBuild = ['RUN echo hi'];
    const s = new ConfigState(base);
    expect(s.config.OnBuild).toBeNull();
    s.addLayer('sha256:' + 'a'.repeat(64), 'RUN x', undefined);
    s.addHistory('ENV A=1', undefined);
    expect(s.image.rootfs.diff_ids).toHaveLength(1);
    expect(s.image.history.map((h) => h.empty_layer ?? false)).toEqual([false, true]);
  });
});
