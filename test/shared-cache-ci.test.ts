// Issue 13's acceptance, a CI runner's view: store A builds the `app` workload with --cache-to
// type=registry,mode=max and pushes it; an empty store B holding only the same base builds from the
// cache without running anything and without downloading a layer, gets the same image ID and, pushed,
// the same manifest digest while the registry serves no layer blob; after one source file changes B
// runs only the later steps and downloads only the layers those need. With and without basic auth.
// Then lazy layers behind basic auth: a later `run`/`save` fetches with its own --authfile (or the
// library call's registry options) and, without credentials, fails naming the layer and the registry.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { build, type BuildEvent } from '@tsbuild/builder';
import type { Digest } from '@tsbuild/storage';
import { cli, openTestRoot, runImage, useTestRoot, type TestRoot } from './helpers/roots';
import { writeAppWorkload } from './helpers/bench-workloads';
import { startRegistry, type AccessEntry, type RegistryPeer } from './peers/registry';

const t = useTestRoot();

const LAYER_STEP = /^\[[^\]]*\] (RUN|COPY|WORKDIR) /;
/** The layer steps of a build and how each ended. */
function layerSteps(events: BuildEvent[]): Map<string, BuildEvent['type']> {
  const names = new Map(events.flatMap((e) => (e.type === 'step-start' && LAYER_STEP.test(e.name) ? [[e.vertex, e.name] as const] : [])));
  const out = new Map<string, BuildEvent['type']>();
  for (const e of events) if ((e.type === 'step-done' || e.type === 'step-cached') && names.has(e.vertex)) out.set(names.get(e.vertex)!, e.type);
  return out;
}

const blobGets = (log: AccessEntry[]) => log.filter((e) => e.method === 'GET' && /\/blobs\/sha256:/.test(e.path));
const blobWrites = (log: AccessEntry[]) => log.filter((e) => (e.method === 'PUT' || e.method === 'PATCH') && e.path.includes('/blobs/uploads/'));

describe.each([
  ['without auth', false],
  ['with basic auth', true],
] as const)('shared build cache in a registry, %s', (_label, auth) => {
  let reg: RegistryPeer;
  const savedAuthFile = process.env.REGISTRY_AUTH_FILE;
  beforeEach(async () => {
    reg = await startRegistry(auth ? { auth: { htpasswd: { ci: 'runner-secret' } } } : {});
    if (auth) {
      // The library reads credentials where the CLI does: the auth file.
      const authFile = path.join(t.work, 'auth.json');
      fs.writeFileSync(authFile, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('ci:runner-secret').toString('base64') } } }));
      process.env.REGISTRY_AUTH_FILE = authFile;
    }
  });
  afterEach(async () => {
    if (savedAuthFile === undefined) delete process.env.REGISTRY_AUTH_FILE;
    else process.env.REGISTRY_AUTH_FILE = savedAuthFile;
    await reg.stop();
  });

  /** An empty store that pulled the base from the registry (both runners do the same). */
  async function runner(base: string): Promise<TestRoot> {
    const r = await openTestRoot({ base: false });
    await r.store.pull(base);
    await r.store.images.tag('bench-base:latest', base);
    return r;
  }

  it('store B builds everything from the cache, downloads no layer, and pushes the same manifest moving no layer bytes', async () => {
    const base = `${reg.host}/base:1`;
    await t.store.push('busybox:latest', base);
    const cacheRef = `${reg.host}/app:buildcache`;
    const ctx = writeAppWorkload(path.join(t.work, 'app'));
    const a = await runner(base);
    const b = await runner(base);
    try {
      const aEvents: BuildEvent[] = [];
      const built = await build({ context: ctx, tags: ['app:latest'], cacheTo: [{ type: 'registry', ref: cacheRef, mode: 'max' }] }, { store: a.store, onEvent: (e) => aEvents.push(e) });
      const steps = layerSteps(aEvents);
      expect(steps.size).toBe(6);
      expect([...steps.values()].every((s) => s === 'step-done')).toBe(true);
      const pushedA = await a.store.push('app:latest', `${reg.host}/app:1`);

      // Store B: every layer step CACHED, nothing run; one manifest and one config read, no layer.
      const fromB = (await reg.settledRequests()).length;
      const bEvents: BuildEvent[] = [];
      const fromCache = await build({ context: ctx, tags: ['app:latest'], cacheFrom: [{ type: 'registry', ref: cacheRef }] }, { store: b.store, onEvent: (e) => bEvents.push(e) });
      const bSteps = layerSteps(bEvents);
      expect([...bSteps.keys()]).toEqual([...steps.keys()]);
      expect([...bSteps.values()].every((s) => s === 'step-cached')).toBe(true);
      expect(bEvents.filter((e) => e.type === 'step-log')).toEqual([]);
      expect(fromCache.imageId).toBe(built.imageId);
      const during = (await reg.settledRequests()).slice(fromB);
      expect(during.filter((e) => e.method === 'GET' && e.path.includes('/manifests/') && e.status === 200)).toHaveLength(1);
      expect(blobGets(during).map((e) => e.path)).toEqual([expect.stringContaining('/v2/app/blobs/')]); // the cache config
      const chain = (await b.store.imageChain('app:latest')).chainID!;
      const lazy = () => {
        const out: Digest[] = [];
        for (let c: Digest | null = chain; c; c = b.store.layers.get(c).parent) if (!b.store.layers.get(c).present) out.push(c);
        return out;
      };
      const lazyLayers = lazy().length;
      expect(lazyLayers).toBe(fromCache.config.rootfs.diff_ids.length - 1); // all but the base
      // `images` knows the size without the files.
      const row = (await b.store.images.list()).find((i) => i.ref === 'app:latest')!;
      const rowA = (await a.store.images.list()).find((i) => i.ref === 'app:latest')!;
      expect(row.notFetched).toBeGreaterThan(0);
      expect(row.notFetched).toBeLessThan(row.size);
      expect(rowA.notFetched).toBeUndefined();

      // B pushes to another repository of the same registry: the layers are mounted from the cache's
      // repository and the base's, nothing is read, only the config (not a layer) is uploaded.
      const fromPush = (await reg.settledRequests()).length;
      const pushedB = await b.store.push('app:latest', `${reg.host}/team/app:1`);
      const pushLog = (await reg.settledRequests()).slice(fromPush);
      expect(pushedB.digest).toBe(pushedA.digest);
      expect(blobGets(pushLog)).toEqual([]);
      expect(pushedB.blobs).toEqual({ uploaded: 1, existing: 0, mounted: fromCache.config.rootfs.diff_ids.length });
      expect(pushedB.bytesUploaded).toBe((await b.store.images.resolve('app:latest')).configDescriptor.size);
      expect(blobWrites(pushLog)).toHaveLength(1);
      // And to the repository A pushed to: every blob is there already.
      const again = await b.store.push('app:latest', `${reg.host}/app:from-b`);
      expect(again.blobs.uploaded + again.blobs.mounted).toBe(0);
      expect(lazy()).toHaveLength(lazyLayers); // still nothing fetched
      if (!auth) {
        // To another registry the bytes must move: each lazy layer's blob is read from the cache once,
        // verified, and uploaded as is (the same manifest again), still without extracting it.
        const other = await startRegistry();
        try {
          const fromOther = (await reg.settledRequests()).length;
          const elsewhere = await b.store.push('app:latest', `${other.host}/app:1`);
          expect(elsewhere.digest).toBe(pushedA.digest);
          expect(blobGets((await reg.settledRequests()).slice(fromOther))).toHaveLength(lazyLayers);
          expect(lazy()).toHaveLength(lazyLayers);
        } finally {
          await other.stop();
        }
      }

      // One source file changes: B runs the steps from the COPY on and fetches only the layers under it.
      fs.writeFileSync(path.join(ctx, 'src', 'm2.js'), 'export const v2 = "changed";\n');
      const fromRebuild = (await reg.settledRequests()).length;
      const rEvents: BuildEvent[] = [];
      const rebuilt = await build({ context: ctx, tags: ['app:v2'], cacheFrom: [{ type: 'registry', ref: cacheRef }] }, { store: b.store, onEvent: (e) => rEvents.push(e) });
      const rSteps = [...layerSteps(rEvents).entries()];
      const firstRun = rSteps.findIndex(([name]) => name.includes('COPY src/'));
      expect(rSteps.slice(0, firstRun).every(([, s]) => s === 'step-cached')).toBe(true);
      expect(rSteps.slice(firstRun).every(([, s]) => s === 'step-done')).toBe(true);
      // The layers the new image shares with the cache were fetched (present now), the rest stayed lazy.
      const diffIDs = rebuilt.config.rootfs.diff_ids;
      const shared = diffIDs.filter((d) => built.config.rootfs.diff_ids.includes(d)).length - 1; // without the base
      expect(shared).toBeGreaterThan(0);
      expect(blobGets((await reg.settledRequests()).slice(fromRebuild))).toHaveLength(1 + shared); // the config + those layers
      expect(lazy()).toHaveLength(lazyLayers - shared);
      // The log says what moved.
      const fetchLines = rEvents.flatMap((e) => (e.type === 'step-log' && e.data.toString().startsWith('fetching layer ') ? [e.data.toString()] : []));
      expect(fetchLines).toHaveLength(shared);
      for (const line of fetchLines) expect(line).toMatch(new RegExp(`^fetching layer sha256:[0-9a-f]{64} \\(\\d+ bytes\\) from ${cacheRef}\n$`));
      expect((await runImage(b.store, 'app:v2', ['cat', '/app/src/m2.js'])).stdout).toBe('export const v2 = "changed";\n');
    } finally {
      await b.close();
      await a.close();
    }
  });
});

describe('lazy layers from a registry cache behind basic auth', () => {
  let reg: RegistryPeer;
  const savedAuthFile = process.env.REGISTRY_AUTH_FILE;
  beforeEach(async () => {
    reg = await startRegistry({ auth: { htpasswd: { ci: 'runner-secret' } } });
    // No credentials anywhere by default, for this process and the CLIs it starts.
    const none = path.join(t.work, 'no-auth.json');
    fs.writeFileSync(none, JSON.stringify({ auths: {} }));
    process.env.REGISTRY_AUTH_FILE = none;
  });
  afterEach(async () => {
    if (savedAuthFile === undefined) delete process.env.REGISTRY_AUTH_FILE;
    else process.env.REGISTRY_AUTH_FILE = savedAuthFile;
    await reg.stop();
  });

  it('run, save and build fetch with the command\'s --authfile; without credentials one error names the registry and the layer, and the layer stays lazy', async () => {
    const authFile = path.join(t.work, 'auth.json');
    fs.writeFileSync(authFile, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('ci:runner-secret').toString('base64') } } }));
    const env = { REGISTRY_AUTH_FILE: process.env.REGISTRY_AUTH_FILE!, HOME: t.work, DOCKER_CONFIG: t.work, XDG_RUNTIME_DIR: t.work, XDG_CONFIG_HOME: t.work };
    const ctx = path.join(t.work, 'ctx');
    fs.mkdirSync(ctx);
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN head -c 16 /dev/urandom | od -x > /random\n');
    const ref = `${reg.host}/app:buildcache`;
    const exported = cli(t.root, ['build', '--progress', 'plain', '-t', 'app', '--authfile', authFile, '--cache-to', `type=registry,ref=${ref}`, ctx], { env });
    expect(exported.stderr).toContain(`exporting cache to ${ref}`);
    expect(exported.status).toBe(0);
    const random = (await runImage(t.store, 'app:latest', ['cat', '/random'])).stdout;

    const archive = path.join(t.work, 'base.tar');
    await t.store.save(['busybox:latest'], archive, 'oci');
    const b = await openTestRoot({ base: false });
    const c = await openTestRoot({ base: false });
    try {
      await b.store.load(archive);
      const built = cli(b.root, ['build', '--progress', 'plain', '-t', 'app', '--authfile', authFile, '--cache-from', `type=registry,ref=${ref}`, ctx], { env });
      expect(built.stderr.match(/CACHED/g)).toHaveLength(1);
      expect(built.status).toBe(0);
      const top = (await b.store.imageChain('app:latest')).chainID!;
      const lazyAndClean = () => {
        expect(b.store.layers.get(top).present).toBe(false);
        expect(b.store.layers.orphanDriverLayers()).toEqual([]);
        expect(b.store.layers.staleStaging()).toEqual([]);
        expect(b.store.layers.listRW()).toEqual([]);
        expect(fs.readdirSync(path.join(b.root, 'oci', 'ingest'))).toEqual([]);
      };
      lazyAndClean();

      // Without credentials: one error line naming the layer and the registry; nothing recorded.
      const errorLine = new RegExp(`^tsbuild: .*layer sha256:[0-9a-f]{64}: cannot (fetch|read) blob sha256:[0-9a-f]{64} from registry:${ref}: unauthorized: .*${reg.host}`);
      const refused = cli(b.root, ['run', '--rm', 'app', 'cat', '/random'], { env });
      expect(refused.status).not.toBe(0);
      expect(refused.stderr.split('\n').filter((l) => l.startsWith('tsbuild: '))).toEqual([expect.stringMatching(errorLine)]);
      lazyAndClean();
      expect(cli(b.root, ['ps', '-a', '-q']).stdout).toBe('');
      const file = path.join(t.work, 'app.tar');
      const refusedSave = cli(b.root, ['save', '-o', file, 'app'], { env });
      expect(refusedSave.status).not.toBe(0);
      expect(refusedSave.stderr.split('\n').filter((l) => l.startsWith('tsbuild: '))).toEqual([expect.stringMatching(errorLine)]);
      expect(fs.existsSync(file)).toBe(false);
      lazyAndClean();

      // With --authfile: save streams the blob from the cache (said unless -q), the layer stays lazy.
      const saved = cli(b.root, ['save', '--authfile', authFile, '-o', file, 'app'], { env });
      expect(saved.stderr).toMatch(new RegExp(`^fetching layer sha256:[0-9a-f]{12}… \\(\\d+(\\.\\d+)?[kM]?B\\) from ${ref}\n$`));
      expect(saved.status).toBe(0);
      expect(cli(b.root, ['save', '-q', '--authfile', authFile, '-o', file, 'app'], { env }).stderr).toBe('');
      lazyAndClean();
      await c.store.load(file);
      expect((await runImage(c.store, 'app:latest', ['cat', '/random'])).stdout).toBe(random);
      // `run --authfile` fetches the layer.
      const ran = cli(b.root, ['run', '--rm', '--authfile', authFile, 'app', 'cat', '/random'], { env });
      expect(ran.stdout).toBe(random);
      expect(ran.stderr).toMatch(new RegExp(`^fetching layer sha256:[0-9a-f]{12}… \\(\\d+(\\.\\d+)?[kM]?B\\) from ${ref}\n$`));
      expect(ran.status).toBe(0);
      expect(b.store.layers.get(top).present).toBe(true);
    } finally {
      await c.close();
      await b.close();
    }
  });

  it('the library: a lazy fetch takes the registry options of the call that needs it', async () => {
    const ctx = path.join(t.work, 'ctx');
    fs.mkdirSync(ctx);
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo library > /f\n');
    const ref = `${reg.host}/lib:buildcache`;
    const registry = { credentials: { username: 'ci', password: 'runner-secret' } };
    await build({ context: ctx, tags: ['lib:latest'], cacheTo: [{ type: 'registry', ref }], registry }, { store: t.store });
    const archive = path.join(t.work, 'base.tar');
    await t.store.save(['busybox:latest'], archive, 'oci');
    const b = await openTestRoot({ base: false });
    try {
      await b.store.load(archive);
      const events: BuildEvent[] = [];
      await build({ context: ctx, tags: ['lib:latest'], cacheFrom: [{ type: 'registry', ref }], registry }, { store: b.store, onEvent: (e) => events.push(e) });
      expect(events.filter((e) => e.type === 'step-cached')).toHaveLength(1);
      const top = (await b.store.imageChain('lib:latest')).chainID!;
      await expect(runImage(b.store, 'lib:latest', ['cat', '/f'])).rejects.toThrow(new RegExp(`^layer ${top}: cannot fetch blob sha256:[0-9a-f]{64} from registry:${ref}: unauthorized: `));
      expect(b.store.layers.get(top).present).toBe(false);
      const fetched: string[] = [];
      const out = await b.store.withRemoteAccess({ registry, onFetch: (f) => fetched.push(f.from) }, () => runImage(b.store, 'lib:latest', ['cat', '/f']));
      expect(out.stdout).toBe('library\n');
      expect(fetched).toEqual([ref]);
      expect(b.store.layers.get(top).present).toBe(true);
    } finally {
      await b.close();
    }
  });
});
