// A build cache shared between storage roots (issue 13) through an OCI layout folder: store A exports
// its records and layers with --cache-to, an empty store B holding only the same base builds from it.
import { spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { build, type BuildEvent } from '@tsbuild/builder';
import { INLINE_CACHE_KEY, Store } from '@tsbuild/storage';
import { CLI, cli, openTestRoot, runImage, useTestRoot, writeTree } from './helpers/roots';
import { startRegistry } from './peers/registry';

const t = useTestRoot();

// The RUN steps write random bytes: a step that ran again could not give the same image ID.
const DOCKERFILE = [
  'FROM busybox',
  'RUN head -c 32 /dev/urandom | od -x > /random',
  'COPY a.txt /a.txt',
  'RUN cat /a.txt /random > /both',
  'RUN true',
  '',
].join('\n');

async function buildCollect(store: typeof t.store, ctx: string, opts: Partial<Parameters<typeof build>[0]> = {}) {
  const events: BuildEvent[] = [];
  const result = await build({ context: ctx, tags: ['app:latest'], ...opts }, { store, onEvent: (e) => events.push(e) });
  return { result, events };
}

/** An empty store holding only store A's base image (imported once, so the same image ID). */
async function storeWithSameBase() {
  const archive = path.join(t.work, 'base.tar');
  if (!fs.existsSync(archive)) await t.store.save(['busybox:latest'], archive, 'oci');
  const b = await openTestRoot({ base: false });
  await b.store.load(archive);
  return b;
}

const count = (events: BuildEvent[], type: BuildEvent['type']) => events.filter((e) => e.type === type).length;
const stepNames = (events: BuildEvent[]) =>
  new Map(events.flatMap((e) => (e.type === 'step-start' ? [[e.vertex, e.name] as const] : [])));

describe('shared build cache', () => {
  it('a second store builds every step from the exported cache: nothing runs, same image', async () => {
    const ctx = writeTree(fs.mkdtempSync(path.join(t.work, 'ctx-')), { Dockerfile: DOCKERFILE, 'a.txt': 'hello\n' });
    const dir = path.join(t.work, 'cache');
    const a = await buildCollect(t.store, ctx, { cacheTo: [{ type: 'local', dest: dir, mode: 'max' }] });
    expect(count(a.events, 'step-cached')).toBe(0);
    expect(fs.existsSync(path.join(dir, 'index.json'))).toBe(true);

    const b = await storeWithSameBase();
    try {
      const built = await buildCollect(b.store, ctx, { cacheFrom: [{ type: 'local', src: dir }] });
      // All four layer steps (RUN, COPY, RUN, RUN that changes nothing) hit; no RUN logged output.
      expect(count(built.events, 'step-cached')).toBe(4);
      expect(count(built.events, 'step-log')).toBe(0);
      expect([...stepNames(built.events).values()]).toContain(`importing cache manifest from ${dir}`);
      expect(built.result.imageId).toBe(a.result.imageId);
      // The manifests differ only in the base's blob (A imported a tar, B loaded A's gzip archive).
      expect(built.result.config.rootfs.diff_ids).toEqual(a.result.config.rootfs.diff_ids);
      // Saves stream the cache's blobs (verified) without extracting the layers; a load gives the image back.
      for (const format of ['oci', 'docker']) {
        const file = path.join(t.work, `app-${format}.tar`);
        await b.store.save(['app:latest'], file, format);
        const c = await openTestRoot({ base: false });
        try {
          await c.store.load(file);
          expect((await c.store.images.resolve('app:latest')).id).toBe(a.result.imageId);
        } finally {
          await c.close();
        }
      }
      const top = (await b.store.imageChain('app:latest')).chainID!;
      expect(b.store.layers.get(top).present).toBe(false);
      expect((await runImage(b.store, 'app:latest', ['cat', '/both'])).stdout).toBe((await runImage(t.store, 'app:latest', ['cat', '/both'])).stdout);
      // The records are local now: a rebuild hits without the shared cache.
      const again = await buildCollect(b.store, ctx);
      expect(count(again.events, 'step-cached')).toBe(4);
    } finally {
      await b.close();
    }
  });

  it('lazy layers: a kill -9 mid-fetch leaves a store the next open repairs; fsck notes them; GC removes them', async () => {
    const ctx = writeTree(fs.mkdtempSync(path.join(t.work, 'ctx-')), { Dockerfile: 'FROM busybox\nRUN head -c 300000 /dev/urandom > /big\n' });
    const dir = path.join(t.work, 'cache');
    await buildCollect(t.store, ctx, { cacheTo: [{ type: 'local', dest: dir }] });
    const b = await storeWithSameBase();
    try {
      await buildCollect(b.store, ctx, { cacheFrom: [{ type: 'local', src: dir }] });
      const chain = (await b.store.imageChain('app:latest')).chainID!;
      expect(b.store.layers.get(chain).present).toBe(false);
      const fsck = await b.store.fsck();
      expect(fsck.problems).toEqual([]);
      expect(fsck.notes).toContainEqual(expect.stringMatching(/^layer sha256:[0-9a-f]{64}: held lazily, its files are not fetched yet/));

      // The layer blob becomes a FIFO: the fetch of a `run` in another process blocks halfway.
      const blob = path.join(dir, 'blobs', 'sha256', b.store.layers.get(chain).remote!.blob.digest.slice('sha256:'.length));
      const bytes = fs.readFileSync(blob);
      fs.rmSync(blob);
      expect(spawnSync('mkfifo', [blob]).status).toBe(0);
      const child = spawn(process.execPath, [CLI, '--root', b.root, 'run', '--rm', 'app', 'true'], { stdio: 'ignore' });
      try {
        const fifo = await fs.promises.open(blob, 'w');
        await fifo.write(bytes.subarray(0, bytes.length >> 1)).catch(() => {});
        const tmp = path.join(b.root, 'layers', 'tmp');
        while (!fs.readdirSync(tmp).some((n) => n.includes('-fetch-'))) await sleep(20);
        child.kill('SIGKILL');
        await new Promise((resolve) => child.once('exit', resolve));
        await fifo.close().catch(() => {});
      } finally {
        child.kill('SIGKILL');
      }
      fs.rmSync(blob);
      fs.writeFileSync(blob, bytes);
      const reopened = await Store.open(b.root);
      try {
        expect(reopened.layers.lastRepair.staging.some((p) => p.includes('-fetch-'))).toBe(true);
        expect(reopened.layers.lastRepair.orphans).toHaveLength(1); // the half-extracted driver layer
        expect(reopened.layers.get(chain).present).toBe(false);
        expect((await reopened.fsck()).problems).toEqual([]);
        expect((await runImage(reopened, 'app:latest', ['wc', '-c', '/big'])).stdout.trim()).toBe('300000 /big');
        expect(reopened.layers.get(chain).present).toBe(true);
        // GC: a lazy layer is a layer; the build cache record and the image keep it, then it goes.
        const other = writeTree(fs.mkdtempSync(path.join(t.work, 'ctx-')), { Dockerfile: 'FROM busybox\nRUN echo lazy > /lazy\n' });
        await build({ context: other, tags: ['other:latest'], cacheTo: [{ type: 'local', dest: path.join(t.work, 'cache2') }] }, { store: t.store });
        await build({ context: other, tags: ['other:latest'], cacheFrom: [{ type: 'local', src: path.join(t.work, 'cache2') }] }, { store: reopened });
        const lazyChain = (await reopened.imageChain('other:latest')).chainID!;
        expect(reopened.layers.get(lazyChain).present).toBe(false);
        await reopened.removeImage('other:latest');
        expect(reopened.layers.has(lazyChain)).toBe(true); // the cache record
        await reopened.cache.clear(); // what `tsbuild prune` does before the sweep
        await reopened.collectLayers();
        expect(reopened.layers.has(lazyChain)).toBe(false);
        expect(reopened.layers.has(chain)).toBe(true); // app:latest's
      } finally {
        await reopened.close();
      }
    } finally {
      await b.close();
    }
  });

  it('a fetched layer no longer needs its cache: with the cache folder gone, save and push serve it from the store', async () => {
    const ctx = writeTree(fs.mkdtempSync(path.join(t.work, 'ctx-')), { Dockerfile: 'FROM busybox\nRUN head -c 200000 /dev/urandom > /big\nRUN echo two > /two\n' });
    const dir = path.join(t.work, 'cache');
    const a = await buildCollect(t.store, ctx, { cacheTo: [{ type: 'local', dest: dir }] });
    const b = await storeWithSameBase();
    const reg = await startRegistry();
    try {
      await buildCollect(b.store, ctx, { cacheFrom: [{ type: 'local', src: dir }] });
      const top = (await b.store.imageChain('app:latest')).chainID!;
      expect(b.store.layers.get(top).present).toBe(false);
      // `run` needs the files: both lazy layers are fetched, each said in one line on stderr.
      const ran = cli(b.root, ['run', '--rm', 'app', 'cat', '/two']);
      expect(ran.stdout).toBe('two\n');
      expect(ran.stderr.split('\n').filter(Boolean)).toEqual([
        expect.stringMatching(new RegExp(`^fetching layer sha256:[0-9a-f]{12}… \\(\\d+(\\.\\d+)?[kM]?B\\) from ${dir}$`)),
        expect.stringMatching(new RegExp(`^fetching layer sha256:[0-9a-f]{12}… \\(\\d+(\\.\\d+)?[kM]?B\\) from ${dir}$`)),
      ]);
      expect(ran.status).toBe(0);
      expect(b.store.layers.get(top).present).toBe(true);

      fs.rmSync(dir, { recursive: true });
      for (const format of ['docker-oci', 'oci', 'docker']) {
        const file = path.join(t.work, `app-${format}.tar`);
        const saved = cli(b.root, ['save', '--format', format, '-o', file, 'app']);
        expect(saved.stderr).toBe('');
        expect(saved.status).toBe(0);
        const c = await openTestRoot({ base: false });
        try {
          await c.store.load(file);
          expect((await c.store.images.resolve('app:latest')).id).toBe(a.result.imageId);
          expect((await runImage(c.store, 'app:latest', ['wc', '-c', '/big'])).stdout.trim()).toBe('200000 /big');
        } finally {
          await c.close();
        }
      }
      // A push to a registry the cache never was in uploads the layers from the store.
      const pushed = await b.store.push('app:latest', `${reg.host}/app:1`);
      expect(pushed.blobs.uploaded).toBe(a.result.config.rootfs.diff_ids.length + 1); // the layers and the config
      const d = await openTestRoot({ base: false });
      try {
        await d.store.pull(`${reg.host}/app:1`);
        expect((await runImage(d.store, `${reg.host}/app:1`, ['cat', '/two'])).stdout).toBe('two\n');
      } finally {
        await d.close();
      }
      expect((await b.store.fsck()).problems).toEqual([]);
    } finally {
      await reg.stop();
      await b.close();
    }
  });

  it('COPY --from a stage that hit lazily fetches that stage\'s layer when the COPY runs', async () => {
    const ctx = writeTree(fs.mkdtempSync(path.join(t.work, 'ctx-')), {
      Dockerfile: 'FROM busybox AS builder\nRUN head -c 16 /dev/urandom | od -x > /out\nFROM busybox\nCOPY a.txt /a\nCOPY --from=builder /out /out\n',
      'a.txt': 'one\n',
    });
    const dir = path.join(t.work, 'cache');
    await buildCollect(t.store, ctx, { cacheTo: [{ type: 'local', dest: dir, mode: 'max' }] });
    fs.writeFileSync(path.join(ctx, 'a.txt'), 'two\n');
    const b = await storeWithSameBase();
    try {
      const built = await buildCollect(b.store, ctx, { cacheFrom: [{ type: 'local', src: dir }] });
      expect(count(built.events, 'step-cached')).toBe(1); // the builder's RUN; both COPYs run
      // The builder's random bytes came from the cache, fetched for the COPY --from.
      expect((await runImage(b.store, 'app:latest', ['cat', '/out'])).stdout).toBe((await runImage(t.store, 'app:latest', ['cat', '/out'])).stdout);
    } finally {
      await b.close();
    }
  });

  it('a layer another process fetched is not fetched again over it', async () => {
    const ctx = writeTree(fs.mkdtempSync(path.join(t.work, 'ctx-')), { Dockerfile: 'FROM busybox\nRUN echo once > /once\n' });
    const dir = path.join(t.work, 'cache');
    await buildCollect(t.store, ctx, { cacheTo: [{ type: 'local', dest: dir }] });
    const b = await storeWithSameBase();
    const other = await Store.open(b.root); // a second process's view of the same root
    try {
      await buildCollect(b.store, ctx, { cacheFrom: [{ type: 'local', src: dir }] });
      const chain = (await b.store.imageChain('app:latest')).chainID!;
      expect(other.layers.get(chain).present).toBe(false); // seen lazy by the other one
      expect((await runImage(b.store, 'app:latest', ['cat', '/once'])).stdout).toBe('once\n');
      await other.layers.ensurePresent(chain);
      expect(other.layers.get(chain).cacheId).toBe(b.store.layers.get(chain).cacheId);
      expect(other.layers.orphanDriverLayers()).toEqual([]);
    } finally {
      await other.close();
      await b.close();
    }
  });

  it('concurrent exports to one folder: the last writer wins and the cache stays whole', async () => {
    const dir = path.join(t.work, 'cache');
    const ctxs = ['one', 'two'].map((n) => writeTree(fs.mkdtempSync(path.join(t.work, 'ctx-')), { Dockerfile: `FROM busybox\nRUN echo ${n} > /n\n` }));
    const b = await storeWithSameBase();
    try {
      await Promise.all([
        buildCollect(t.store, ctxs[0]!, { cacheTo: [{ type: 'local', dest: dir }] }),
        buildCollect(b.store, ctxs[1]!, { cacheTo: [{ type: 'local', dest: dir }] }),
      ]);
      // One of the two records, decodable, with every blob it names present and intact.
      const cache = (await t.store.readBuildCache({ dir }))!;
      expect(cache.records.size).toBe(1);
      const record = [...cache.records.values()][0]!;
      const blob = fs.readFileSync(path.join(dir, 'blobs', 'sha256', record.blob!.digest.slice('sha256:'.length)));
      expect(`sha256:${crypto.createHash('sha256').update(blob).digest('hex')}`).toBe(record.blob!.digest);
    } finally {
      await b.close();
    }
  });

  it('after a source change, runs only the steps after it', async () => {
    const ctx = writeTree(fs.mkdtempSync(path.join(t.work, 'ctx-')), { Dockerfile: DOCKERFILE, 'a.txt': 'hello\n' });
    const dir = path.join(t.work, 'cache');
    await buildCollect(t.store, ctx, { cacheTo: [{ type: 'local', dest: dir }] });
    fs.writeFileSync(path.join(ctx, 'a.txt'), 'changed\n');
    const b = await storeWithSameBase();
    try {
      const built = await buildCollect(b.store, ctx, { cacheFrom: [{ type: 'local', src: dir }] });
      expect(count(built.events, 'step-cached')).toBe(1);
      expect((await runImage(b.store, 'app:latest', ['cat', '/a.txt'])).stdout).toBe('changed\n');
    } finally {
      await b.close();
    }
  });

  it('a missing cache is a warning; a corrupt blob fails the fetch when its files are needed and records nothing', async () => {
    const ctx = writeTree(fs.mkdtempSync(path.join(t.work, 'ctx-')), { Dockerfile: 'FROM busybox\nRUN echo one > /one\n' });
    const missing = path.join(t.work, 'nowhere');
    const cold = await buildCollect(t.store, ctx, { cacheFrom: [{ type: 'local', src: missing }], cacheTo: [{ type: 'local', dest: path.join(t.work, 'cache') }] });
    expect(cold.result.warnings).toContain(`cache ${missing}: not found, building without it`);

    // Flip a byte of the one layer blob the cache manifest names.
    const blob = (digest: string) => path.join(t.work, 'cache', 'blobs', 'sha256', digest.slice('sha256:'.length));
    const index = JSON.parse(fs.readFileSync(path.join(t.work, 'cache', 'index.json'), 'utf8'));
    const manifest = JSON.parse(fs.readFileSync(blob(index.manifests[0].digest), 'utf8'));
    expect(manifest.layers).toHaveLength(1);
    const layer = blob(manifest.layers[0].digest);
    const bytes = fs.readFileSync(layer);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 10) ^ 0xff, bytes.length - 10);
    fs.writeFileSync(layer, bytes);
    const b = await storeWithSameBase();
    try {
      // The hit is lazy: the build reads no layer bytes, so it cannot see the corruption yet.
      const built = await buildCollect(b.store, ctx, { cacheFrom: [{ type: 'local', src: path.join(t.work, 'cache') }] });
      expect(count(built.events, 'step-cached')).toBe(1);
      const top = b.store.layers.get((await b.store.imageChain('app:latest')).chainID!);
      expect(top.present).toBe(false);
      // `run` needs the files: the fetch is verified before anything is recorded.
      await expect(runImage(b.store, 'app:latest', ['cat', '/one'])).rejects.toThrow(/^layer sha256:[0-9a-f]{64}: blob sha256:[0-9a-f]{64} from local:\S+: .*blob sha256:[0-9a-f]{64} is corrupt/);
      expect(b.store.layers.get(top.chainID).present).toBe(false);
      expect(b.store.layers.orphanDriverLayers()).toEqual([]);
      expect(b.store.layers.staleStaging()).toEqual([]);
      expect(b.store.layers.listRW()).toEqual([]);
    } finally {
      await b.close();
    }
  });

  it('a cache whose record pairs a layer with another blob: a save of the lazy image fails naming the layer', async () => {
    // Two caches; the first's record is made to name the second's blob (config, manifest and index
    // rewritten with matching digests): every document verifies, only the blob's tar contradicts the diffID.
    const cacheOf = async (line: string, dir: string) => {
      const ctx = writeTree(fs.mkdtempSync(path.join(t.work, 'ctx-')), { Dockerfile: `FROM busybox\n${line}\n` });
      await buildCollect(t.store, ctx, { cacheTo: [{ type: 'local', dest: dir }] });
      return ctx;
    };
    const dir = path.join(t.work, 'cache');
    const other = path.join(t.work, 'other');
    const ctx = await cacheOf('RUN echo one > /one', dir);
    await cacheOf('RUN echo two > /two', other);
    const blobPath = (root: string, digest: string) => path.join(root, 'blobs', 'sha256', digest.slice('sha256:'.length));
    const manifestOf = (root: string) => {
      const index = JSON.parse(fs.readFileSync(path.join(root, 'index.json'), 'utf8'));
      return { index, manifest: JSON.parse(fs.readFileSync(blobPath(root, index.manifests[0].digest), 'utf8')) };
    };
    const { index, manifest } = manifestOf(dir);
    const [ours, theirs] = [manifest.layers[0], manifestOf(other).manifest.layers[0]];
    fs.copyFileSync(blobPath(other, theirs.digest), blobPath(dir, theirs.digest));
    const swap = (v: unknown): unknown =>
      Array.isArray(v) ? v.map(swap)
      : v && typeof v === 'object' ? ((o) => (o.digest === ours.digest ? { ...o, digest: theirs.digest, size: theirs.size } : o))(Object.fromEntries(Object.entries(v).map(([k, x]) => [k, swap(x)])) as Record<string, unknown>)
      : v;
    const put = (value: unknown) => {
      const bytes = Buffer.from(JSON.stringify(value));
      const digest = `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`;
      fs.writeFileSync(blobPath(dir, digest), bytes);
      return { digest, size: bytes.length };
    };
    const config = put(swap(JSON.parse(fs.readFileSync(blobPath(dir, manifest.config.digest), 'utf8'))));
    const forged = put({ ...(swap(manifest) as object), config: { ...manifest.config, ...config } });
    fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ ...index, manifests: [{ ...index.manifests[0], ...forged }] }));

    const b = await storeWithSameBase();
    try {
      const built = await buildCollect(b.store, ctx, { cacheFrom: [{ type: 'local', src: dir }] });
      expect(count(built.events, 'step-cached')).toBe(1);
      const file = path.join(t.work, 'app.tar');
      await expect(b.store.save(['app:latest'], file, 'oci')).rejects.toThrow(new RegExp(`^layer ${theirs.digest} does not decompress to its diff_id sha256:`));
      expect(fs.existsSync(file)).toBe(false);
      // docker-archive takes the uncompressed tar (materialized from the blob): the error names the blob's location.
      await expect(b.store.save(['app:latest'], file, 'docker')).rejects.toThrow(new RegExp(`^layer sha256:[0-9a-f]{64}: blob ${theirs.digest} from local:${dir} does not decompress to its diff_id: its tar hashes to sha256:`));
      expect(fs.existsSync(file)).toBe(false);
    } finally {
      await b.close();
    }
  });

  it('the CLI takes buildx syntax and logs the import, each CACHED step and the export', async () => {
    const ctx = writeTree(fs.mkdtempSync(path.join(t.work, 'ctx-')), { Dockerfile: DOCKERFILE, 'a.txt': 'hello\n' });
    const dir = path.join(t.work, 'cache');
    const a = cli(t.root, ['build', '--progress', 'plain', '-t', 'app', '--cache-to', `type=local,dest=${dir},mode=max`, ctx]);
    expect(a.stderr).toContain(`exporting cache to ${dir}`);
    expect(a.status).toBe(0);
    const b = await storeWithSameBase();
    try {
      const built = cli(b.root, ['build', '--progress', 'plain', '-t', 'app', '--cache-from', `type=local,src=${dir}`, ctx]);
      expect(built.status).toBe(0);
      expect(built.stderr).toContain(`importing cache manifest from ${dir}`);
      expect(built.stderr.match(/CACHED/g)).toHaveLength(4);
      // `images` is honest about lazily held layers: size known, files not fetched.
      expect(cli(b.root, ['images', 'app']).stdout).toMatch(/ \d+(\.\d+)?[kMG]?B \(\d+(\.\d+)?[kMG]?B not fetched\)\n$/);
    } finally {
      await b.close();
    }
  });

  it.each([
    ['max', 2],
    ['min', 1],
  ] as const)('mode=%s: a multi-stage build hits %i steps on the second store', async (mode, hits) => {
    // The builder stage's RUN is deterministic, so the final COPY --from hits whether or not it ran.
    const ctx = writeTree(fs.mkdtempSync(path.join(t.work, 'ctx-')), {
      Dockerfile: 'FROM busybox AS builder\nRUN echo built > /out\nFROM busybox\nCOPY --from=builder /out /out\n',
    });
    const dir = path.join(t.work, `cache-${mode}`);
    await buildCollect(t.store, ctx, { cacheTo: [{ type: 'local', dest: dir, mode }], sourceDateEpoch: 1700000000 });
    const b = await storeWithSameBase();
    try {
      const built = await buildCollect(b.store, ctx, { cacheFrom: [{ type: 'local', src: dir }], sourceDateEpoch: 1700000000 });
      expect(count(built.events, 'step-cached')).toBe(hits);
      // A miss says when the cache was exported with mode=min.
      const reasons = built.events.flatMap((e) => (e.type === 'step-cache-miss' ? [e.reason] : []));
      expect(reasons).toEqual(mode === 'min' ? [`not in the shared cache ${dir}, exported with mode=min (the final image's steps only; mode=max exports every stage)`] : []);
      expect((await runImage(b.store, 'app:latest', ['cat', '/out'])).stdout).toBe('built\n');
    } finally {
      await b.close();
    }
  });

  it('type=registry: a second store builds every step from a cache ref on a loopback registry', async () => {
    const reg = await startRegistry();
    try {
      const ctx = writeTree(fs.mkdtempSync(path.join(t.work, 'ctx-')), { Dockerfile: DOCKERFILE, 'a.txt': 'hello\n' });
      const ref = `${reg.host}/app:buildcache`;
      const missing = await buildCollect(t.store, ctx, { cacheFrom: [{ type: 'registry', ref }], cacheTo: [{ type: 'registry', ref, mode: 'max' }] });
      expect(missing.result.warnings).toContain(`cache ${ref}: not found, building without it`);
      const b = await storeWithSameBase();
      try {
        const from = (await reg.settledRequests()).length;
        const built = await buildCollect(b.store, ctx, { cacheFrom: [{ type: 'registry', ref }] });
        expect(count(built.events, 'step-cached')).toBe(4);
        expect(count(built.events, 'step-log')).toBe(0);
        expect(built.result.imageId).toBe(missing.result.imageId);
        // One manifest and one config; no layer blob (the hits are lazy).
        const gets = (await reg.settledRequests()).slice(from).filter((e) => e.method === 'GET' && e.status === 200);
        expect(gets.filter((e) => e.path.includes('/manifests/'))).toHaveLength(1);
        expect(gets.filter((e) => e.path.includes('/blobs/'))).toHaveLength(1);
        // `run` fetches the layers it needs, once each, verified.
        const beforeRun = (await reg.settledRequests()).length;
        expect((await runImage(b.store, 'app:latest', ['cat', '/both'])).stdout).toBe((await runImage(t.store, 'app:latest', ['cat', '/both'])).stdout);
        const builtLayers = built.result.config.rootfs.diff_ids.length - (await b.store.images.resolve('busybox:latest')).layers.length;
        expect((await reg.settledRequests()).slice(beforeRun).filter((e) => e.method === 'GET' && e.path.includes('/blobs/'))).toHaveLength(builtLayers);
      } finally {
        await b.close();
      }
    } finally {
      await reg.stop();
    }
  });

  it('type=inline: the pushed image carries its records; a second store builds from the image, lazily', async () => {
    const reg = await startRegistry();
    try {
      const ctx = writeTree(fs.mkdtempSync(path.join(t.work, 'ctx-')), { Dockerfile: DOCKERFILE, 'a.txt': 'hello\n' });
      const a = await buildCollect(t.store, ctx, { cacheTo: [{ type: 'inline' }] });
      expect((a.result.config as unknown as Record<string, { records: unknown[] }>)[INLINE_CACHE_KEY]?.records).toHaveLength(4);
      const image = `${reg.host}/app:1`;
      await t.store.push('app:latest', image);
      // An image without inline records is no cache: a warning naming it.
      await t.store.push('busybox:latest', `${reg.host}/busybox:1`);
      const b = await storeWithSameBase();
      try {
        const from = (await reg.settledRequests()).length;
        const built = await buildCollect(b.store, ctx, {
          cacheFrom: [{ type: 'registry', ref: image }, { type: 'registry', ref: `${reg.host}/busybox:1` }],
          cacheTo: [{ type: 'inline' }],
        });
        expect(built.result.warnings).toContain(`cache ${reg.host}/busybox:1: an image without inline cache records (build it with --cache-to type=inline); ignoring it`);
        expect(count(built.events, 'step-cached')).toBe(4);
        expect(built.result.imageId).toBe(a.result.imageId);
        // The manifests and the two configs; no layer.
        const blobs = (await reg.settledRequests()).slice(from).filter((e) => e.method === 'GET' && e.path.includes('/blobs/'));
        expect(blobs).toHaveLength(2);
        expect((await runImage(b.store, 'app:latest', ['cat', '/both'])).stdout).toBe((await runImage(t.store, 'app:latest', ['cat', '/both'])).stdout);
      } finally {
        await b.close();
      }
    } finally {
      await reg.stop();
    }
  });

  it('skips an export when the cache holds the same records; ignore-error turns a failed export into a warning', async () => {
    const ctx = writeTree(fs.mkdtempSync(path.join(t.work, 'ctx-')), { Dockerfile: 'FROM busybox\nRUN echo one > /one\n' });
    const dir = path.join(t.work, 'cache');
    const logOf = (events: BuildEvent[]) => events.flatMap((e) => (e.type === 'step-log' ? [e.data.toString()] : [])).join('');
    const first = await buildCollect(t.store, ctx, { cacheTo: [{ type: 'local', dest: dir }] });
    expect(logOf(first.events)).toMatch(/^\d+ bytes of blobs written\n$/);
    const again = await buildCollect(t.store, ctx, { cacheTo: [{ type: 'local', dest: dir }] });
    expect(logOf(again.events)).toBe('unchanged, nothing written\n');

    // Nothing listens on port 1 of the loopback.
    const ref = '127.0.0.1:1/app:cache';
    const ignored = await buildCollect(t.store, ctx, { cacheTo: [{ type: 'registry', ref, ignoreError: true }] });
    expect(ignored.result.warnings.some((w) => w.startsWith(`exporting cache to ${ref}: `))).toBe(true);
    await expect(buildCollect(t.store, ctx, { cacheTo: [{ type: 'registry', ref }] })).rejects.toThrow(
      new RegExp(`^exporting cache to ${ref}: .* \\(the image [0-9a-f]{12} was built; ignore-error=true makes this a warning\\)$`),
    );
    // Reading a cache that cannot be reached is a warning (buildx's behaviour), not a failed build.
    const unreachable = await buildCollect(t.store, ctx, { cacheFrom: [{ type: 'registry', ref }] });
    expect(unreachable.result.warnings.some((w) => w.startsWith(`cache ${ref}: cannot read it: `) && w.endsWith('; building without it'))).toBe(true);
  });

  it('type=registry with basic auth: the CLI takes credentials from the auth file', async () => {
    const reg = await startRegistry({ auth: { htpasswd: { alice: 's3cret' } } });
    try {
      const authFile = path.join(t.work, 'auth.json');
      fs.writeFileSync(authFile, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('alice:s3cret').toString('base64') } } }));
      const env = { REGISTRY_AUTH_FILE: authFile };
      const ctx = writeTree(fs.mkdtempSync(path.join(t.work, 'ctx-')), { Dockerfile: DOCKERFILE, 'a.txt': 'hello\n' });
      const ref = `${reg.host}/app:buildcache`;
      // Without credentials the registry answers 401: a warning naming the ref, the build goes on.
      const noAuthFile = path.join(t.work, 'no-auth.json');
      fs.writeFileSync(noAuthFile, JSON.stringify({ auths: {} }));
      const refused = cli(t.root, ['build', '--progress', 'plain', '-t', 'app', '--cache-from', ref, ctx], { env: { REGISTRY_AUTH_FILE: noAuthFile, HOME: t.work, DOCKER_CONFIG: t.work } });
      expect(refused.status).toBe(0);
      expect(refused.stderr).toContain(`cache ${ref}: cannot read it: `);
      const a = cli(t.root, ['build', '--progress', 'plain', '-t', 'app', '--cache-to', `type=registry,ref=${ref},mode=max`, ctx], { env });
      expect(a.stderr).toContain(`exporting cache to ${ref}`);
      expect(a.status).toBe(0);
      const b = await storeWithSameBase();
      try {
        const built = cli(b.root, ['build', '--progress', 'plain', '-t', 'app', '--cache-from', ref, ctx], { env });
        expect(built.status).toBe(0);
        expect(built.stderr.match(/CACHED/g)).toHaveLength(4);
      } finally {
        await b.close();
      }
    } finally {
      await reg.stop();
    }
  });
});
