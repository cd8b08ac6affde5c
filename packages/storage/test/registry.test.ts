// Push and pull against a real docker-registry (test/peers/registry.ts) on 127.0.0.1, checked with
// skopeo and by running the pulled image; Basic (htpasswd) and Bearer (token server) auth with
// credentials from the auth files; TLS with a self-signed certificate; the CLI commands.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Containers, MediaTypes, RegistryClient, Store, TarContentCounter, TsbuildError, findCredentials, hostPlatform, parseChallenge, sha256OfBuffer, type Digest, type Progress } from '../src';
import { makeBusyboxTar } from '../../../fixtures/busybox';
import { startRegistry, type AccessEntry, type RegistryPeer } from '../../../test/peers/registry';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(REPO_ROOT, 'packages', 'builder', 'bin', 'tsbuild.js');

let top: string;
let busyboxTar: string;
let reg: RegistryPeer;

beforeAll(async () => {
  top = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-regtest-'));
  busyboxTar = makeBusyboxTar(path.join(top, 'busybox.tar'));
  reg = await startRegistry();
});

afterAll(async () => {
  await reg?.stop();
  fs.rmSync(top, { recursive: true, force: true });
});

// Per-test resources, released even when the test fails.
let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  const list = cleanups.reverse();
  cleanups = [];
  const errors: unknown[] = [];
  for (const c of list) await Promise.resolve(c()).catch((e) => errors.push(e));
  if (errors.length > 0) throw errors[0];
});

function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((mp): mp is string => !!mp && (mp === dir || mp.startsWith(`${dir}/`)));
}

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanups.push(() => {
    const left = mountsUnder(dir);
    for (const m of left.reverse()) spawnSync('umount', ['-l', m]);
    fs.rmSync(dir, { recursive: true, force: true });
    if (left.length > 0) throw new Error(`mounts were left under ${dir}: ${left.join(', ')}`);
  });
  return dir;
}

async function openStore(): Promise<Store> {
  const dir = tempDir('tsbuild-regstore-');
  const store = await Store.open(path.join(dir, 'root'));
  cleanups.push(() => store.close());
  return store;
}

/** A store with the busybox fixture imported as `app:latest`. */
async function storeWithApp(): Promise<{ store: Store; id: Digest; diffID: Digest }> {
  const store = await openStore();
  const { id, diffID } = await store.importTarball(busyboxTar, 'app:latest', { config: { Cmd: ['/bin/sh'] } });
  return { store, id, diffID };
}

function skopeo(args: string[], env?: NodeJS.ProcessEnv): string {
  try {
    return execFileSync('skopeo', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env, timeout: 60_000 });
  } catch (err) {
    throw new Error(`skopeo ${args.join(' ')} failed: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`);
  }
}

/** Runs `sh -c script` in an image of the store; returns its stdout and exit code. */
async function runIn(store: Store, image: string, script: string): Promise<{ stdout: string; exitCode: number }> {
  const containers = new Containers(store);
  const { record, process: proc } = await containers.create({ image, cmd: ['sh', '-c', script] });
  try {
    const { container, finished } = await containers.start(record, proc, {});
    const chunks: Buffer[] = [];
    container.stdout?.on('data', (c: Buffer) => chunks.push(c));
    container.stderr?.resume();
    const exit = await finished;
    return { stdout: Buffer.concat(chunks).toString('utf8'), exitCode: exit.exitCode };
  } finally {
    await containers.remove(record.id, { force: true });
  }
}

const uploads = (entries: AccessEntry[]) => entries.filter((e) => e.path.includes('/blobs/uploads/'));
const manifestPut = (repo: string) => (e: AccessEntry) => e.method === 'PUT' && e.path.startsWith(`/v2/${repo}/manifests/`);

/** A minimal environment for credential lookups: nothing from this machine's real auth files. */
function authEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { HOME: home, PATH: process.env.PATH, ...extra };
}

describe('push', () => {
  it('pushes gzip layers that skopeo sees; a second push finds every blob and uploads nothing', async () => {
    const { store, id, diffID } = await storeWithApp();
    const ref = `${reg.host}/app:latest`;
    const progress: Progress[] = [];
    const res = await store.push('app', ref, { onProgress: (p) => progress.push(p) });
    expect(res.reference).toBe(ref);
    expect(res.blobs).toEqual({ uploaded: 2, existing: 0, mounted: 0 });
    const gz = await store.images.findLayerBlob(diffID, MediaTypes.ociLayerGzip);
    expect(gz).toBeDefined();
    expect(progress.some((p) => p.phase === 'compress' && p.done === 1)).toBe(true);
    const last = progress.filter((p) => p.phase === 'write').pop()!;
    expect(last.done).toBe(last.total);
    expect(res.bytesUploaded).toBe(last.total);

    const inspect = JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${ref}`]));
    expect(inspect.Layers).toEqual([gz!.digest]);
    expect(inspect.Digest).toBe(res.digest);
    const raw = skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${ref}`]);
    expect(sha256OfBuffer(raw)).toBe(res.digest);
    expect(JSON.parse(raw).mediaType).toBe(MediaTypes.ociManifest);
    const config = skopeo(['inspect', '--tls-verify=false', '--config', '--raw', `docker://${ref}`]);
    expect(sha256OfBuffer(config)).toBe(id);

    await reg.waitFor(manifestPut('app'));
    const mark = reg.requests().length;
    const blobsBefore = (await store.images.content.list()).length;
    const again = await store.push('app', ref);
    expect(again.blobs).toEqual({ uploaded: 0, existing: 2, mounted: 0 });
    expect(again.digest).toBe(res.digest);
    expect(again.bytesUploaded).toBe(0);
    await reg.waitFor(manifestPut('app'), mark);
    const second = reg.requests().slice(mark);
    expect(uploads(second)).toEqual([]);
    expect(second.filter((e) => e.method === 'HEAD' && e.path.includes('/blobs/sha256:') && e.status === 200)).toHaveLength(2);
    // The kept gzip blob was reused: nothing new in the content store.
    expect((await store.images.content.list()).length).toBe(blobsBefore);
  });

  it('uploads in chunks when asked, and mounts blobs from a repository the store knows holds them', async () => {
    const { store } = await storeWithApp();
    const mark = reg.requests().length;
    const chunked = await store.push('app', `${reg.host}/chunked:v1`, { chunkSize: 256 * 1024 });
    expect(chunked.blobs.uploaded).toBe(2);
    await reg.waitFor(manifestPut('chunked'), mark);
    const patches = reg.requests().slice(mark).filter((e) => e.method === 'PATCH');
    expect(patches.length).toBeGreaterThan(2);
    expect(patches.every((e) => e.status === 202)).toBe(true);
    expect(JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/chunked:v1`])).Digest).toBe(chunked.digest);

    // The store has a tag in `chunked` on this registry: a push elsewhere mounts from there.
    await store.images.tag(`${reg.host}/chunked:v1`, 'app');
    const mark2 = reg.requests().length;
    const mounted = await store.push('app', `${reg.host}/mounted:v1`);
    expect(mounted.blobs).toEqual({ uploaded: 0, existing: 0, mounted: 2 });
    await reg.waitFor(manifestPut('mounted'), mark2);
    const posts = reg.requests().slice(mark2).filter((e) => e.method === 'POST');
    expect(posts).toHaveLength(2);
    expect(posts.every((e) => e.path.includes('mount=sha256') && e.path.includes('from=chunked') && e.status === 201)).toBe(true);
    expect(reg.requests().slice(mark2).filter((e) => e.method === 'PUT' || e.method === 'PATCH')).toEqual([
      expect.objectContaining({ method: 'PUT', path: '/v2/mounted/manifests/v1', status: 201 }),
    ]);
  });
});

describe('pull', () => {
  it('pulls into a fresh store: the same image ID, layers imported, and it runs', async () => {
    const { store: src, id } = await storeWithApp();
    const ref = `${reg.host}/pulled:latest`;
    const pushed = await src.push('app', ref);

    const store = await openStore();
    const progress: Progress[] = [];
    const res = await store.pull(ref, { onProgress: (p) => progress.push(p) });
    expect(res).toMatchObject({ reference: ref, id, manifestDigest: pushed.digest, digest: pushed.digest, blobs: { downloaded: 2, existing: 0 } });
    expect(progress.some((p) => p.phase === 'import' && p.done === 1 && p.total === 1)).toBe(true);
    const lastRead = progress.filter((p) => p.phase === 'read').pop()!;
    expect(lastRead.done).toBe(lastRead.total);
    const img = await store.images.resolve(ref);
    expect(img.id).toBe(id);
    expect(img.manifestDescriptor.digest).toBe(pushed.digest);
    // The original gzip blob is kept; images shows the bytes of the layer's files (docker's size).
    expect(await store.images.content.has(img.layers[0]!.descriptor.digest)).toBe(true);
    const files = new TarContentCounter();
    await pipeline(fs.createReadStream(busyboxTar), files, new Writable({ write: (_c, _e, cb) => cb() }));
    expect(files.bytes).toBeGreaterThan(1_000_000);
    expect((await store.images.list()).find((i) => i.ref === ref)!.size).toBe(files.bytes);

    const run = await runIn(store, ref, 'echo pulled-ok; head -1 /etc/passwd');
    expect(run).toEqual({ stdout: 'pulled-ok\nroot:x:0:0:root:/root:/bin/sh\n', exitCode: 0 });

    const again = await store.pull(ref);
    expect(again.blobs).toEqual({ downloaded: 0, existing: 2 });
    expect(again.id).toBe(id);

    // By digest: the same image, not tagged.
    const byDigest = await store.pull(`${reg.host}/pulled@${pushed.digest}`);
    expect(byDigest).toMatchObject({ id, reference: `${reg.host}/pulled@${pushed.digest}` });
  });

  it('a built two-layer image: the built layer is materialized and gzipped for the push, pulled back on its parent, and runs', async () => {
    const { store, diffID: baseDiffID } = await storeWithApp();
    const base = await store.imageChain('app');
    const rw = await store.layers.createRW(base.chainID, 'build-step');
    const rootfs = await rw.mount();
    fs.writeFileSync(path.join(rootfs, 'hello.txt'), 'built layer\n');
    fs.rmSync(path.join(rootfs, 'etc', 'group'));
    await rw.unmount();
    const built = await store.layers.commitRW(rw);
    expect(await store.images.content.has(built.diffID)).toBe(false); // only the diff directory so far
    const created = await store.images.createImage({
      layers: [{ diffID: baseDiffID, size: fs.statSync(busyboxTar).size }, { diffID: built.diffID, size: built.size }],
      config: { architecture: hostPlatform().architecture, os: 'linux', config: { Cmd: ['/bin/sh'] } },
      tags: ['built:latest'],
    });
    const ref = `${reg.host}/built:v1`;
    const pushed = await store.push('built', ref);
    expect(pushed.blobs.uploaded).toBe(3);
    const gz = await store.images.findLayerBlob(built.diffID, MediaTypes.ociLayerGzip);
    expect(JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${ref}`])).Layers[1]).toBe(gz!.digest);

    const fresh = await openStore();
    const pulled = await fresh.pull(ref);
    expect(pulled.id).toBe(created.id);
    expect(fresh.layers.get((await fresh.imageChain(ref)).chainID!).parent).toBe(baseDiffID);
    expect(await runIn(fresh, ref, 'cat /hello.txt; test -e /etc/group || echo whiteout-applied')).toEqual({
      stdout: 'built layer\nwhiteout-applied\n',
      exitCode: 0,
    });
  });

  it('pulls a docker v2s2 image that skopeo pushed, and the platform image from an index', async () => {
    const { store: src, id } = await storeWithApp();
    const archive = path.join(tempDir('tsbuild-regarchive-'), 'app.tar');
    await src.save(['app'], archive, 'oci');
    skopeo(['copy', '--insecure-policy', '--dest-tls-verify=false', '--format', 'v2s2', `oci-archive:${archive}:app:latest`, `docker://${reg.host}/copied:v1`]);

    const store = await openStore();
    const res = await store.pull(`${reg.host}/copied:v1`);
    expect(res.id).toBe(id);
    const img = await store.images.resolve(`${reg.host}/copied:v1`);
    expect(img.manifestDescriptor.mediaType).toBe(MediaTypes.dockerManifest);
    expect(img.layers[0]!.descriptor.mediaType).toBe(MediaTypes.dockerLayerGzip);
    expect((await runIn(store, `${reg.host}/copied:v1`, 'echo v2s2')).stdout).toBe('v2s2\n');

    // Pushing the pulled image keeps its manifest bytes (and digest).
    const back = await store.push(`${reg.host}/copied:v1`, `${reg.host}/copied:again`);
    expect(back.digest).toBe(res.manifestDigest);
    expect(back.mediaType).toBe(MediaTypes.dockerManifest);

    // An index with this host's platform and another one, built on the registry by hand.
    const base = `http://${reg.host}/v2/copied`;
    const put = async (url: string, body: Buffer, type?: string) => {
      const r = await fetch(url, { method: 'PUT', body, headers: type ? { 'content-type': type } : {} });
      expect(r.status).toBe(201);
    };
    const other = hostPlatform().architecture === 'arm64' ? 's390x' : 'arm64';
    const otherConfig = Buffer.from(JSON.stringify({ ...img.config, architecture: other }));
    const otherConfigDigest = sha256OfBuffer(otherConfig);
    const session = await fetch(`${base}/blobs/uploads/`, { method: 'POST' });
    const loc = new URL(session.headers.get('location')!, `http://${reg.host}`);
    loc.searchParams.set('digest', otherConfigDigest);
    await put(loc.href, otherConfig);
    const layer = JSON.parse(skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/copied:v1`])).layers[0];
    const otherManifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        config: { mediaType: MediaTypes.ociConfig, digest: otherConfigDigest, size: otherConfig.length },
        layers: [{ ...layer, mediaType: MediaTypes.ociLayerGzip }],
      }),
    );
    await put(`${base}/manifests/${sha256OfBuffer(otherManifest)}`, otherManifest, MediaTypes.ociManifest);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociIndex,
        manifests: [
          { mediaType: MediaTypes.ociManifest, digest: sha256OfBuffer(otherManifest), size: otherManifest.length, platform: { os: 'linux', architecture: other } },
          { mediaType: MediaTypes.dockerManifest, digest: res.manifestDigest, size: img.manifestDescriptor.size, platform: hostPlatform() },
        ],
      }),
    );
    await put(`${base}/manifests/multi`, index, MediaTypes.ociIndex);

    const multi = await store.pull(`${reg.host}/copied:multi`);
    expect(multi).toMatchObject({ id, manifestDigest: res.manifestDigest, digest: sha256OfBuffer(index), blobs: { downloaded: 0 } });
    const foreign = await store.pull(`${reg.host}/copied:multi`, { platform: { os: 'linux', architecture: other } });
    expect(foreign.id).toBe(otherConfigDigest);
    await expect(store.pull(`${reg.host}/copied:multi`, { platform: { os: 'linux', architecture: 'mips64le' } })).rejects.toThrow(
      `no image for linux/mips64le in the index (it has linux/${other}, linux/${hostPlatform().architecture}): ${reg.host}/copied:multi`,
    );
  });
});

describe('errors', () => {
  it('an upload whose source reports corruption only after the registry answered is "upload aborted", not the HTTP error', async () => {
    const client = new RegistryClient(reg.host, 'late');
    const session = await client.startUpload('late', 'late-check');
    const body = Buffer.from('bytes that do not match the digest');
    // As a verifying stream does: every byte first, the digest verdict at the end (here once the
    // registry has had every byte and answered 400).
    const open = async () => {
      const source = new Readable({ read() {} });
      source.push(body);
      setTimeout(() => source.destroy(new Error('blob is corrupt (late check)')), 300);
      return source;
    };
    const err = (await client.uploadBlob('late', session, { digest: sha256OfBuffer(Buffer.from('other')), size: body.length, open }, { subject: 'late-check' }).then(() => undefined, (e: Error) => e)) as Error;
    expect(err).toBeInstanceOf(TsbuildError);
    expect(err.message).toBe('upload aborted: blob is corrupt (late check): late-check');
  });

  it('name the registry, repository and HTTP status in one line', async () => {
    const { store } = await storeWithApp();
    await store.push('app', `${reg.host}/errs:latest`);
    const fail = async (p: Promise<unknown>) => {
      const err = (await p.then(() => undefined, (e: Error) => e)) as Error;
      expect(err).toBeInstanceOf(TsbuildError);
      expect(err.message).not.toContain('\n');
      return err.message;
    };
    expect(await fail(store.pull(`${reg.host}/errs:nope`))).toBe(`manifest unknown: ${reg.host}/errs:nope (HTTP 404)`);
    expect(await fail(store.pull(`${reg.host}/nothere:latest`))).toBe(`manifest unknown: ${reg.host}/nothere:latest (HTTP 404)`);
    const closed = await startRegistry();
    const host = closed.host;
    await closed.stop();
    expect(await fail(store.pull(`${host}/app:latest`))).toMatch(new RegExp(`^cannot reach registry ${host} \\(http\\): .*ECONNREFUSED.*: ${host}/app:latest$`));
    await expect(store.push('missing:latest', `${reg.host}/x:1`)).rejects.toThrow('image not found: missing:latest');

    // Blobs are verified both ways: a corrupt local blob aborts its upload, a corrupt registry blob
    // fails the pull (the registry serves its files as they are). A registry of its own: blobs are
    // shared between repositories, and the other tests push the same layer.
    const own = await startRegistry();
    cleanups.push(() => own.stop());
    await store.push('app', `${own.host}/errs:latest`);
    const img = await store.images.resolve('app');
    const gz = (await store.images.findLayerBlob(img.layers[0]!.diffID, MediaTypes.ociLayerGzip))!;
    const corrupt = (file: string) => {
      const buf = fs.readFileSync(file);
      buf[buf.length >> 1]! ^= 0xff;
      fs.writeFileSync(file, buf);
    };
    const localBlob = store.images.content.blobPath(gz.digest);
    const good = fs.readFileSync(localBlob);
    corrupt(localBlob);
    expect(await fail(store.push('app', `${own.host}/corrupt:latest`))).toMatch(
      new RegExp(`^upload aborted: blob ${gz.digest} is corrupt: expected ${gz.digest}, got sha256:[0-9a-f]{64}: ${own.host}/corrupt@${gz.digest}$`),
    );
    fs.writeFileSync(localBlob, good);
    corrupt(path.join(own.dir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', gz.digest.slice(7, 9), gz.digest.slice(7), 'data'));
    const fresh = await openStore();
    expect(await fail(fresh.pull(`${own.host}/errs:latest`))).toMatch(
      new RegExp(`^blob is corrupt: its bytes hash to sha256:[0-9a-f]{64}: ${own.host}/errs@${gz.digest}$`),
    );
    expect(await fresh.images.content.has(gz.digest)).toBe(false);
    await expect(store.push('app', `${reg.host}/x@sha256:${'0'.repeat(64)}`)).rejects.toThrow(/cannot push to a digest reference/);
  });
});

describe('authentication', () => {
  it('htpasswd (Basic): refused without credentials, accepted with ~/.docker/config.json', async () => {
    const secured = await startRegistry({ auth: { htpasswd: { alice: 's3cret' } } });
    cleanups.push(() => secured.stop());
    const { store, id } = await storeWithApp();
    const home = tempDir('tsbuild-reghome-');
    const ref = `${secured.host}/app:latest`;

    await expect(store.push('app', ref, { env: authEnv(home) })).rejects.toThrow(
      new RegExp(`^unauthorized: authentication required: ${secured.host}/app@sha256:[0-9a-f]{64} \\(HTTP 401\\)$`),
    );
    await expect(store.pull(ref, { env: authEnv(home) })).rejects.toThrow(`unauthorized: authentication required: ${ref} (HTTP 401)`);

    const writeConfig = (user: string, pass: string) => {
      fs.mkdirSync(path.join(home, '.docker'), { recursive: true });
      const auth = Buffer.from(`${user}:${pass}`).toString('base64');
      fs.writeFileSync(path.join(home, '.docker', 'config.json'), JSON.stringify({ auths: { [secured.host]: { auth } } }));
    };
    writeConfig('alice', 'wrong');
    await expect(store.push('app', ref, { env: authEnv(home) })).rejects.toThrow(/^unauthorized: authentication required: .*\(HTTP 401\)$/);

    writeConfig('alice', 's3cret');
    const pushed = await store.push('app', ref, { env: authEnv(home) });
    expect(pushed.blobs.uploaded).toBe(2);
    const fresh = await openStore();
    expect((await fresh.pull(ref, { env: authEnv(home) })).id).toBe(id);
    // skopeo reads the same file (through REGISTRY_AUTH_FILE) and agrees.
    const inspect = JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${ref}`], { ...process.env, REGISTRY_AUTH_FILE: path.join(home, '.docker', 'config.json') }));
    expect(inspect.Digest).toBe(pushed.digest);
  });

  it('token (Bearer): credentials from $XDG_RUNTIME_DIR/containers/auth.json, scoped tokens, mounts, identity tokens', async () => {
    const secured = await startRegistry({ auth: { token: { users: { bob: 'pw' }, refreshTokens: { bob: 'refresh-123' } } } });
    cleanups.push(() => secured.stop());
    const { store, id } = await storeWithApp();
    const home = tempDir('tsbuild-reghome-');
    const runtime = path.join(home, 'run');
    const ref = `${secured.host}/app:latest`;

    await expect(store.push('app', ref, { env: authEnv(home, { XDG_RUNTIME_DIR: runtime }) })).rejects.toThrow(
      new RegExp(`^unauthorized: authentication required and no credentials for ${secured.host} are configured .*: ${secured.host}/app \\(HTTP 401\\)$`),
    );

    fs.mkdirSync(path.join(runtime, 'containers'), { recursive: true });
    fs.writeFileSync(path.join(runtime, 'containers', 'auth.json'), JSON.stringify({ auths: { [secured.host]: { auth: Buffer.from('bob:pw').toString('base64') } } }));
    const env = authEnv(home, { XDG_RUNTIME_DIR: runtime });
    const pushed = await store.push('app', ref, { env });
    expect(pushed.blobs.uploaded).toBe(2);
    expect(secured.tokenRequests).toContainEqual(['repository:app:pull,push']);

    // A mount asks for pull access to the source repository too.
    await store.images.tag(ref, 'app');
    const mounted = await store.push('app', `${secured.host}/other:v1`, { env });
    expect(mounted.blobs.mounted).toBe(2);
    expect(secured.tokenRequests).toContainEqual(['repository:app:pull', 'repository:other:pull,push']);

    const fresh = await openStore();
    expect((await fresh.pull(`${secured.host}/other:v1`, { env })).id).toBe(id);

    // An identity token (docker's OAuth2 refresh token) is traded with a POST.
    fs.mkdirSync(path.join(home, '.docker'));
    fs.writeFileSync(path.join(home, '.docker', 'config.json'), JSON.stringify({ auths: { [secured.host]: { identitytoken: 'refresh-123' } } }));
    const viaRefresh = await openStore();
    expect((await viaRefresh.pull(ref, { env: authEnv(home) })).id).toBe(id);
  });
});

describe('TLS', () => {
  it('a self-signed registry: refused when verifying, used without verification on loopback', async () => {
    const tls = await startRegistry({ tls: true });
    cleanups.push(() => tls.stop());
    const { store, id } = await storeWithApp();
    const ref = `${tls.host}/app:latest`;
    await expect(store.push('app', ref, { tlsVerify: true })).rejects.toThrow(
      new RegExp(`^cannot reach registry ${tls.host}: TLS certificate not trusted .*--tls-verify=false`),
    );
    const pushed = await store.push('app', ref);
    expect(JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${ref}`])).Digest).toBe(pushed.digest);
    const fresh = await openStore();
    expect((await fresh.pull(ref, { tlsVerify: false })).id).toBe(id);
    expect(tls.requests().some((e) => e.method === 'PUT')).toBe(true);
  });
});

describe('CLI', () => {
  it('tsbuild push and pull; errors are one line with exit code 1', async () => {
    const dir = tempDir('tsbuild-regcli-');
    const cli = (root: string, args: string[]) => spawnSync(process.execPath, [CLI, '--root', root, ...args], { encoding: 'utf8', timeout: 60_000 });
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    expect(cli(a, ['import', busyboxTar, 'app:latest']).status).toBe(0);
    const push = cli(a, ['push', 'app', `${reg.host}/cli:v1`]);
    expect(push.stderr).toBe('');
    expect(push.status).toBe(0);
    expect(push.stdout).toMatch(new RegExp(`^${reg.host}/cli:v1: digest: sha256:[0-9a-f]{64} size: \\d+\\n$`));
    const pull = cli(b, ['pull', `${reg.host}/cli:v1`]);
    expect(pull.stderr).toBe('');
    expect(pull.status).toBe(0);
    const id = pull.stdout.trim();
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(cli(b, ['images', '-q', '--no-trunc']).stdout.trim()).toBe(id);
    const missing = cli(b, ['pull', '--tls-verify=false', `${reg.host}/cli:nope`]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe(`tsbuild: manifest unknown: ${reg.host}/cli:nope (HTTP 404)\n`);
    const usage = cli(b, ['push']);
    expect(usage.status).toBe(2);
  });
});

describe('credentials and challenges', () => {
  it('parses Bearer and Basic challenges, quoted commas included', () => {
    expect(
      parseChallenge('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push",error="insufficient_scope"'),
    ).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push', error: 'insufficient_scope' },
    });
    expect(parseChallenge('Basic realm="Registry Realm"')).toEqual({ scheme: 'basic', params: { realm: 'Registry Realm' } });
    expect(parseChallenge('Negotiate, Basic realm=plain')).toEqual({ scheme: 'basic', params: { realm: 'plain' } });
    expect(parseChallenge(null)).toBeUndefined();
  });

  it('finds credentials: auth.json before config.json, the most specific key, docker.io aliases, helpers', async () => {
    const home = tempDir('tsbuild-regcreds-');
    const runtime = path.join(home, 'run');
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    fs.mkdirSync(path.join(home, '.docker'));
    fs.mkdirSync(path.join(runtime, 'containers'), { recursive: true });
    fs.writeFileSync(
      path.join(home, '.docker', 'config.json'),
      JSON.stringify({
        auths: { 'https://index.docker.io/v1/': { auth: b64('hub:hubpw') }, 'reg.example:5000': { auth: b64('docker:pw') } },
        credHelpers: { 'helped.example': 'tstest' },
      }),
    );
    fs.writeFileSync(
      path.join(runtime, 'containers', 'auth.json'),
      JSON.stringify({ auths: { 'reg.example:5000': { auth: b64('podman:pw:with:colons') }, 'reg.example:5000/team': { auth: b64('team:pw') } } }),
    );
    const bin = path.join(home, 'bin');
    fs.mkdirSync(bin);
    // A credential helper speaks JSON on stdout for the server URL read from stdin.
    fs.writeFileSync(
      path.join(bin, 'docker-credential-tstest'),
      '#!/bin/sh\nread server\nif [ "$server" = helped.example ]; then echo \'{"ServerURL":"helped.example","Username":"helper","Secret":"hpw"}\'; else echo "credentials not found in native keychain"; exit 1; fi\n',
      { mode: 0o755 },
    );
    const env = { HOME: home, XDG_RUNTIME_DIR: runtime, PATH: `${bin}:${process.env.PATH}` };
    expect(await findCredentials('reg.example:5000', 'app', { env })).toEqual({ username: 'podman', password: 'pw:with:colons' });
    expect(await findCredentials('reg.example:5000', 'team/app', { env })).toEqual({ username: 'team', password: 'pw' });
    expect(await findCredentials('docker.io', 'library/busybox', { env })).toEqual({ username: 'hub', password: 'hubpw' });
    expect(await findCredentials('helped.example', 'x', { env })).toEqual({ username: 'helper', password: 'hpw' });
    expect(await findCredentials('other.example', 'x', { env })).toBeUndefined();
    // Without XDG_RUNTIME_DIR, docker's file is what is left.
    expect(await findCredentials('reg.example:5000', 'app', { env: { HOME: home } })).toEqual({ username: 'docker', password: 'pw' });
    fs.writeFileSync(path.join(home, 'broken.json'), '{');
    await expect(findCredentials('reg.example:5000', 'app', { env, authFile: path.join(home, 'broken.json') })).rejects.toThrow(
      `${path.join(home, 'broken.json')} is not valid JSON`,
    );
  });
});
