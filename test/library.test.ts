// build() as a library: cancellation through an AbortSignal, and several builds at once in one process
// on one Store.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { build, type BuildEvent } from '@tsbuild/builder';
import { REPO, mountsUnder, runImage, useTestRoot, writeTree } from './helpers/roots';

const t = useTestRoot();

function context(files: Record<string, string>): string {
  return writeTree(fs.mkdtempSync(path.join(t.work, 'ctx-')), files);
}

/** What a build can leave in the root: committed layers, work layers, mounts, tags, staged files. */
async function rootState() {
  return {
    layers: fs.readdirSync(path.join(t.root, 'layers', 'sha256')).sort(),
    workLayers: t.store.layers.listRW().map((rw) => rw.name),
    mounts: mountsUnder(t.root),
    tags: (await t.store.images.list()).map((i) => i.ref ?? i.id).sort(),
    staged: fs.readdirSync(path.join(t.root, 'layers', 'tmp')),
  };
}

describe('build() with an AbortSignal', () => {
  it('kills the running RUN step and leaves no mount, work layer, layer or tag', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox\nRUN echo kept > /kept\nRUN echo started && sleep 600\nRUN echo never\n' });
    const before = await rootState();
    const controller = new AbortController();
    const events: BuildEvent[] = [];
    const onEvent = (e: BuildEvent) => {
      events.push(e);
      if (e.type === 'step-log' && e.data.toString().includes('started')) controller.abort();
    };
    await expect(build({ context: ctx, tags: ['canceled:latest'] }, { store: t.store, signal: controller.signal, onEvent })).rejects.toThrow(
      /^build canceled$/,
    );

    const after = await rootState();
    // The step finished before the cancel keeps its layer (a cache entry); nothing else is new.
    expect(after.layers.filter((l) => !before.layers.includes(l))).toHaveLength(1);
    expect({ ...after, layers: [] }).toEqual({ ...before, layers: [] });
    const ends = events.filter((e) => e.type === 'step-done' || e.type === 'step-error' || e.type === 'step-cached');
    expect(ends.map((e) => e.type)).toEqual(['step-done', 'step-done', 'step-error']);
    expect(ends[2]).toMatchObject({ type: 'step-error', message: 'canceled' });
    expect(events.some((e) => e.type === 'step-start' && e.name.includes('echo never'))).toBe(false);
  });

  it('rejects at once when the signal has already fired', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox\nRUN echo never > /never\n' });
    const before = await rootState();
    const events: BuildEvent[] = [];
    await expect(
      build({ context: ctx, tags: ['never:latest'] }, { store: t.store, signal: AbortSignal.abort(), onEvent: (e) => events.push(e) }),
    ).rejects.toThrow(/^build canceled$/);
    expect(events).toEqual([]);
    expect(await rootState()).toEqual(before);
  });
});

describe('two builds in one process on one store', () => {
  it('run at the same time and both produce their image', async () => {
    // Each RUN waits for the other's mark in a shared cache mount: serialized builds would fail here.
    const waitFor = (mine: string, theirs: string) =>
      `RUN --mount=type=cache,id=rendezvous,target=/shared touch /shared/${mine} && ` +
      `for i in $(seq 400); do [ -e /shared/${theirs} ] && break; sleep 0.05; done && [ -e /shared/${theirs} ] && echo ${mine} > /built-by\n`;
    const a = context({ Dockerfile: `FROM busybox\n${waitFor('a', 'b')}COPY a.txt /a.txt\n`, 'a.txt': 'from a\n' });
    const b = context({ Dockerfile: `FROM busybox\n${waitFor('b', 'a')}COPY b.txt /b.txt\n`, 'b.txt': 'from b\n' });
    const [ra, rb] = await Promise.all([
      build({ context: a, tags: ['a:latest'] }, { store: t.store }),
      build({ context: b, tags: ['b:latest'] }, { store: t.store }),
    ]);
    expect(ra.imageId).not.toBe(rb.imageId);
    expect((await runImage(t.store, 'a:latest', ['cat', '/built-by', '/a.txt'])).stdout).toBe('a\nfrom a\n');
    expect((await runImage(t.store, 'b:latest', ['cat', '/built-by', '/b.txt'])).stdout).toBe('b\nfrom b\n');
    const state = await rootState();
    expect(state.tags).toEqual(['a:latest', 'b:latest', 'busybox:latest']);
    expect(state.workLayers).toEqual([]);
  });
});

describe("@tsbuild/storage's entry (dist/entry.js)", () => {
  const storageDist = path.join(REPO, 'packages', 'storage', 'dist');
  const node = (args: string[]) => {
    const r = spawnSync(process.execPath, args, { cwd: REPO, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    return JSON.parse(r.stdout) as unknown;
  };

  it('exports exactly the names and objects of index.ts, and loads transports, runtime and fsck only when used', () => {
    const script = `
      const loaded = (re) => Object.keys(require.cache).some((f) => re.test(f));
      const entry = require('@tsbuild/storage');
      const dist = ${JSON.stringify(storageDist)};
      const lazyLoadedEarly = ['transport', 'runtime/index', 'runtime/seccomp', 'fsck'].filter((m) => loaded(new RegExp('/dist/' + m)));
      const index = require(dist + '/index.js');
      const names = (m) => Object.keys(m).sort();
      console.log(JSON.stringify({
        entryFile: require.resolve('@tsbuild/storage').slice(dist.length),
        lazyLoadedEarly,
        missing: names(index).filter((k) => !(k in entry)),
        extra: names(entry).filter((k) => !(k in index)),
        different: names(index).filter((k) => entry[k] !== index[k]),
      }));`;
    expect(node(['-e', script])).toEqual({ entryFile: '/entry.js', lazyLoadedEarly: [], missing: [], extra: [], different: [] });
  });

  it('named imports of lazily loaded exports work from ES modules', () => {
    const script = `
      import { pullImage, runContainer, fsck, SeccompProfileError, Store } from '@tsbuild/storage';
      console.log(JSON.stringify([pullImage, runContainer, fsck, SeccompProfileError, Store].map((x) => typeof x)));`;
    expect(node(['--input-type=module', '-e', script])).toEqual(['function', 'function', 'function', 'function', 'function']);
  });
});
