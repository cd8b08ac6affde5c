// --cache-from / --cache-to in buildx's syntax.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCacheFrom, parseCacheTo } from '../../src/cli/cache-spec';
import { thrown } from '../../../../test/helpers/errors';

describe('cache specs', () => {
  it('parses type=local for both directions, mode min by default', () => {
    expect(parseCacheFrom('type=local,src=ci-cache')).toEqual({ type: 'local', src: path.resolve('ci-cache') });
    expect(parseCacheTo('type=local,dest=/c')).toEqual({ type: 'local', dest: '/c', mode: 'min' });
    expect(parseCacheTo('type=local,dest=/c,mode=max')).toEqual({ type: 'local', dest: '/c', mode: 'max' });
    expect(parseCacheFrom('localhost:5000/app:cache')).toEqual({ type: 'registry', ref: 'localhost:5000/app:cache' });
    expect(parseCacheTo('type=registry,ref=localhost:5000/app:cache,mode=max')).toEqual({ type: 'registry', ref: 'localhost:5000/app:cache', mode: 'max' });
    expect(parseCacheTo('type=registry,ref=localhost:5000/app:cache,ignore-error=true')).toEqual({ type: 'registry', ref: 'localhost:5000/app:cache', mode: 'min', ignoreError: true });
    expect(parseCacheTo('type=inline')).toEqual({ type: 'inline' });
    expect(parseCacheTo('type=inline,mode=min')).toEqual({ type: 'inline' });
  });

  it.each([
    [() => parseCacheFrom('type=local'), '--cache-from type=local: src=DIR is required'],
    [() => parseCacheTo('type=local,dest=/c,mode=all'), '--cache-to type=local,dest=/c,mode=all: unknown mode "all": use min or max'],
    [() => parseCacheTo('type=local,dest=/c,compression=zstd'), '--cache-to type=local,dest=/c,compression=zstd: unknown option "compression" for type=local (known: dest, mode, ignore-error)'],
    [() => parseCacheTo('type=inline,mode=max'), "--cache-to type=inline,mode=max: type=inline holds the final image's steps only (mode=min); use type=registry for mode=max"],
    [() => parseCacheTo('type=inline,ref=r/a'), '--cache-to type=inline,ref=r/a: unknown option "ref" for type=inline (known: mode)'],
    [() => parseCacheFrom('type=inline'), '--cache-from type=inline: an inline cache is read from its image: --cache-from type=registry,ref=IMAGE'],
    [() => parseCacheTo('type=gha'), '--cache-to type=gha: unknown cache type "gha": use registry, local or inline'],
    [() => parseCacheFrom('type=registry'), '--cache-from type=registry: ref=REGISTRY/REPOSITORY:TAG is required'],
    [() => parseCacheTo('type=registry,ref=Bad/Ref'), expect.stringMatching(/^--cache-to type=registry,ref=Bad\/Ref: invalid reference "Bad\/Ref": /)],
    [() => parseCacheTo('type=registry,ref=r/a,compression=zstd'), '--cache-to type=registry,ref=r/a,compression=zstd: unknown option "compression" for type=registry (known: ref, mode, ignore-error)'],
    [() => parseCacheTo('type=local,dest=/c,ignore-error=yes'), '--cache-to type=local,dest=/c,ignore-error=yes: ignore-error must be true or false'],
  ])('refuses bad specs in one line (%#)', (fn, message: unknown) => {
    expect(thrown(fn).message).toEqual(message);
  });
});
