// One liveness model for layers: a committed layer lives while a root reaches it (an image, a RW
// layer, a build-cache record, a live lease) and the sweep removes the rest. The store finds every
// root itself: these tests open it as a library user would, with no option at all.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { BuildCache, Store, buildTar, type Digest } from '@tsbuild/storage';
import { destroyRoot, tempRoot } from '../../../test/helpers/temp';
import { makeImage } from '../../../test/helpers/images';

function tarOf(files: Record<string, string>): Buffer {
  return buildTar(Object.entries(files).map(([name, body]) => ({ header: { name, type: 'file' as const, size: Buffer.byteLength(body), mtime: 1 }, body })));
}

const roots: string[] = [];
const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => {});
  for (const r of roots.splice(0)) destroyRoot(r);
});

async function openStore(): Promise<Store> {
  const root = tempRoot('liveness');
  roots.push(root);
  const store = await Store.open(root);
  stores.push(store);
  return store;
}

/** A base image and one committed layer on it that no image names (what a build step leaves). */
async function baseAndStep(store: Store, name: string): Promise<{ base: Digest; step: Digest }> {
  const { id } = await store.importTarball(Readable.from([tarOf({ base: 'base' })]), 'base:1');
  const base = (await store.imageChain(id)).chainID!;
  const rw = await store.layers.createRW(base, name);
  fs.writeFileSync(path.join(await rw.mount(), 'step'), name);
  await rw.unmount();
  return { base, step: (await store.layers.commitRW(rw)).chainID };
}

describe('layer liveness', () => {
  it('prune keeps the layers build-cache records name, with no option passed, until the records go', async () => {
    const store = await openStore();
    const { base, step } = await baseAndStep(store, 'cached');
    // Written as a build in another process writes it: through a cache instance of its own.
    await new BuildCache(store.root).store(`sha256:${'1'.repeat(64)}`, { chainID: step, diffID: store.layers.get(step).diffID, size: 1, empty: false, created: new Date().toISOString() });
    await store.removeImage('base:1');
    const pruned = await store.prune();
    expect(pruned.layers).toBe(0);
    expect(store.layers.has(step)).toBe(true);
    expect(store.layers.has(base)).toBe(true); // the record's chain keeps its parents

    expect(await store.cache.prune()).toEqual({ entries: 1, bytes: 1 });
    expect(await store.collectLayers()).toBe(2);
    expect(store.layers.list()).toEqual([]);
  });

  it('an unreachable layer goes at the next sweep', async () => {
    const store = await openStore();
    const { base, step } = await baseAndStep(store, 'uncached');
    expect(await store.collectLayers()).toBe(1);
    expect(store.layers.has(step)).toBe(false);
    expect(store.layers.has(base)).toBe(true); // the image's
  });

  it("a container's RW layer keeps its image's layers after the image is removed", async () => {
    const store = await openStore();
    const { id } = await store.importTarball(Readable.from([tarOf({ base: 'base' })]), 'base:1');
    const base = (await store.imageChain(id)).chainID!;
    await store.layers.createRW(base, 'ctr-on-base'); // what `tsbuild run base:1` makes
    await store.removeImage('base:1');
    expect(store.layers.has(base)).toBe(true);
    await store.layers.removeRW('ctr-on-base');
    expect(await store.collectLayers()).toBe(1);
    expect(store.layers.list()).toEqual([]);
  });

  it('a commit with a lease holds the new layer before it is visible: a sweep right after keeps it', async () => {
    const store = await openStore();
    const { id } = await store.importTarball(Readable.from([tarOf({ base: 'base' })]), 'base:1');
    const base = (await store.imageChain(id)).chainID!;
    const lease = await store.lease();
    const rw = await store.layers.createRW(base, 'leased-commit');
    fs.writeFileSync(path.join(await rw.mount(), 'step'), 'step');
    await rw.unmount();
    // What a build step does; the sweep is what a prune in another process may run at this moment.
    const step = (await store.layers.commitRW(rw, { lease })).chainID;
    await store.removeImage('base:1'); // sweeps
    expect(store.layers.has(step)).toBe(true);
    expect(store.layers.has(base)).toBe(true);
    await lease.release();
    expect(await store.collectLayers()).toBe(2);
  });

  it("a live process's lease keeps its chains; a released lease does not", async () => {
    const store = await openStore();
    const { step } = await baseAndStep(store, 'leased');
    const lease = await store.lease();
    await lease.add(step);
    await store.removeImage('base:1'); // sweeps
    expect(store.layers.has(step)).toBe(true);
    expect(await store.collectLayers()).toBe(0);
    await lease.release();
    expect(await store.collectLayers()).toBe(2);
  });

  it('load leases the layers it imports: a sweep by another process between two layers keeps the first', async () => {
    const src = await openStore();
    await makeImage(src.images, [tarOf({ one: '1' }), tarOf({ two: '2' })], { tags: ['two:1'] });
    const archive = path.join(roots[0]!, 'two.tar');
    await src.save(['two:1'], archive, 'oci');
    const dest = await openStore();
    const destRoot = roots[1]!;
    const sweeps: string[] = [];
    // Another process sweeps the store right after the first layer is in (this one waits for it).
    const sweepFromAnotherProcess = () => {
      const child = spawnSync(process.execPath, ['-e', SWEEP, destRoot], { encoding: 'utf8', timeout: 60_000 });
      sweeps.push(`${child.status}:${child.stdout.trim()}${child.stderr.trim()}`);
    };
    await dest.load(archive, (p) => {
      if (p.phase === 'import' && p.done === 1) sweepFromAnotherProcess();
    });
    expect(sweeps).toEqual(['0:0']);
    const chain = (await dest.imageChain('two:1')).chainID!;
    expect(dest.layers.has(chain)).toBe(true);
    expect(await dest.collectLayers()).toBe(0);
  });
});

/** A script that opens the store at argv[1] and sweeps its layers, printing how many it removed. */
const SWEEP = `require('@tsbuild/storage').Store.open(process.argv[1]).then(async (s) => { process.stdout.write(String(await s.collectLayers())); await s.close(); })`;
