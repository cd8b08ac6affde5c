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
  });

  it.each([
    [() => parseCacheFrom('type=local'), '--cache-from type=local: src=DIR is required'],
    [() => parseCacheTo('type=local,dest=/c,mode=all'), '--cache-to type=local,dest=/c,mode=all: unknown mode "all": use min or max'],
    [() => parseCacheTo('type=local,dest=/c,compression=zstd'), '--cache-to type=local,dest=/c,compression=zstd: unknown option "compression" for type=local (known: dest, mode)'],
    [() => parseCacheFrom('localhost:5000/app:cache'), '--cache-from localhost:5000/app:cache: type=registry and type=inline are not supported yet: use type=local'],
    [() => parseCacheTo('type=gha'), '--cache-to type=gha: unknown cache type "gha": use local'],
  ])('refuses bad specs in one line (%#)', (fn, message) => {
    expect(thrown(fn).message).toBe(message);
  });
});
