// Integrity of what the store records, against hostile input (issue 9): a layer blob is recorded for
// a diff_id only after it was decompressed and hashed to it, whether it comes from an archive or a
// registry that lies.
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Store, sha256OfBuffer, type Digest } from '@tsbuild/storage';
import { busyboxTarball, useTestRoot } from './helpers/roots';
import { startRegistry, type RegistryPeer } from './peers/registry';

const t = useTestRoot();

/** A tar holding one file named `name`. */
function tarOf(name: string, content: string): Buffer {
  const dir = fs.mkdtempSync(path.join(t.work, 'tar-'));
  fs.writeFileSync(path.join(dir, name), content);
  return execFileSync('tar', ['-C', dir, '-cf', '-', name]);
}

async function baseDiffID(): Promise<Digest> {
  const img = await t.store.images.resolve('busybox');
  return img.layers[0]!.diffID;
}

/** A docker-archive whose config names `diffID` and whose one layer is `layer` (any bytes). */
function dockerArchive(file: string, diffID: Digest, layer: Buffer): void {
  const dir = fs.mkdtempSync(path.join(t.work, 'archive-'));
  const config = { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffID] } };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  fs.writeFileSync(path.join(dir, 'layer.tar.gz'), layer);
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: ['evil:latest'], Layers: ['layer.tar.gz'] }]));
  execFileSync('tar', ['-C', dir, '-cf', file, 'manifest.json', 'config.json', 'layer.tar.gz']);
}

/** Every member name of every layer of a docker-archive. */
function archiveLayerNames(file: string): string[] {
  const manifest = JSON.parse(execFileSync('tar', ['-xOf', file, 'manifest.json'], { encoding: 'utf8' })) as { Layers: string[] }[];
  const names: string[] = [];
  for (const entry of manifest) {
    for (const l of entry.Layers) {
      const bytes = execFileSync('tar', ['-xOf', file, l], { maxBuffer: 256 << 20 });
      names.push(...execFileSync('tar', ['-tf', '-'], { input: maybeGunzip(bytes), encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n').map((n) => n.replace(/^\.\//, '')));
    }
  }
  return names;
}

function maybeGunzip(b: Buffer): Buffer {
  return b[0] === 0x1f && b[1] === 0x8b ? zlib.gunzipSync(b) : b;
}

describe('a layer blob for a diff_id the store already has', () => {
  it('load refuses a gzip that does not decompress to the diff_id, records nothing, and save ships the real layer', async () => {
    const diffID = await baseDiffID();
    const evil = path.join(t.work, 'evil.tar');
    const poison = zlib.gzipSync(tarOf('BACKDOOR', 'owned\n'));
    dockerArchive(evil, diffID, poison);
    await expect(t.store.load(evil)).rejects.toThrow(/layer sha256:[0-9a-f]{64} does not match its diff_id sha256:/);
    expect((await t.store.images.blobInfo.get(diffID))?.compressed ?? []).toEqual([]);
    expect(await t.store.images.list()).toHaveLength(1);
    // What the failed load wrote is gone at once (issue 9, defect 5).
    expect(await t.store.images.content.has(sha256OfBuffer(poison))).toBe(false);

    // A store written before the check may already record the bad blob: it is hashed all the same.
    const planted = await t.store.images.content.putBytes(poison, 'application/vnd.oci.image.layer.v1.tar+gzip');
    await t.store.images.recordLayerBlob(diffID, planted);
    await expect(t.store.load(evil)).rejects.toThrow(/does not match its diff_id/);
    expect(await t.store.images.list()).toHaveLength(1);
    await t.store.images.forgetLayerBlob(diffID, planted.digest);

    const saved = path.join(t.work, 'base.tar');
    await t.store.save(['busybox'], saved, 'docker');
    const names = archiveLayerNames(saved);
    expect(names).not.toContain('BACKDOOR');
    expect(names).toContain('bin/busybox');
    const oci = path.join(t.work, 'base.oci.tar');
    await t.store.save(['busybox'], oci, 'oci');
    expect(execFileSync('tar', ['-tf', oci], { encoding: 'utf8' })).not.toContain(sha256OfBuffer(poison).slice(7));
  });

  it('load refuses a truncated gzip of the real layer, and accepts the whole one', async () => {
    const diffID = await baseDiffID();
    const real = zlib.gzipSync(fs.readFileSync(t.store.images.content.blobPath(diffID)));
    const truncated = path.join(t.work, 'truncated.tar');
    dockerArchive(truncated, diffID, real.subarray(0, real.length - 64));
    await expect(t.store.load(truncated)).rejects.toThrow(/layer sha256:[0-9a-f]{64}/);
    expect((await t.store.images.blobInfo.get(diffID))?.compressed ?? []).toEqual([]);

    const whole = path.join(t.work, 'whole.tar');
    dockerArchive(whole, diffID, real);
    await t.store.load(whole);
    expect((await t.store.images.blobInfo.get(diffID))?.compressed?.map((c) => c.digest)).toEqual([sha256OfBuffer(real)]);
  });
});

describe('a lying registry', () => {
  let reg: RegistryPeer;
  beforeEach(async () => {
    reg = await startRegistry();
  });
  afterEach(async () => {
    await reg.stop();
  });

  /** Uploads a blob through the distribution API (monolithic POST + PUT). */
  async function upload(repo: string, bytes: Buffer): Promise<{ digest: Digest; size: number }> {
    const digest = sha256OfBuffer(bytes);
    const start = await fetch(`http://${reg.host}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    const url = new URL(start.headers.get('location')!, `http://${reg.host}`);
    url.searchParams.set('digest', digest);
    const put = await fetch(url, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    expect(put.status).toBe(201);
    return { digest, size: bytes.length };
  }

  it('pull refuses a layer that does not decompress to its diff_id, and a later push of the base ships the real layer', async () => {
    const diffID = await baseDiffID();
    const poison = zlib.gzipSync(tarOf('BACKDOOR', 'owned\n'));
    const layer = await upload('evil', poison);
    const config = await upload('evil', Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffID] } })));
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
    };
    const put = await fetch(`http://${reg.host}/v2/evil/manifests/latest`, {
      method: 'PUT',
      body: JSON.stringify(manifest),
      headers: { 'content-type': manifest.mediaType },
    });
    expect(put.status).toBe(201);

    await expect(t.store.pull(`${reg.host}/evil:latest`)).rejects.toThrow(`layer ${layer.digest} does not match its diff_id ${diffID}`);
    expect((await t.store.images.blobInfo.get(diffID))?.compressed ?? []).toEqual([]);
    // What the failed pull downloaded is gone at once (defect 5).
    expect(await t.store.images.content.has(layer.digest)).toBe(false);
    expect(await t.store.images.content.has(config.digest)).toBe(false);

    await t.store.push('busybox', `${reg.host}/base:latest`);
    const pushed = (await (await fetch(`http://${reg.host}/v2/base/manifests/latest`, { headers: { accept: manifest.mediaType } })).json()) as typeof manifest;
    expect(pushed.layers[0]!.digest).not.toBe(layer.digest);
    const blob = Buffer.from(await (await fetch(`http://${reg.host}/v2/base/blobs/${pushed.layers[0]!.digest}`)).arrayBuffer());
    const names = execFileSync('tar', ['-tf', '-'], { input: maybeGunzip(blob), encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(names).not.toContain('BACKDOOR');
    expect(names).toContain('bin/busybox');
  });
});

describe('rmi of the base image while a build uses it', () => {
  it('the built image still saves: the base layer blobs are leased until the image is written', async () => {
    const { build } = await import('@tsbuild/builder');
    const http = await import('node:http');
    // The RUN step asks this server; it removes the base image before answering, so the removal
    // happens while the step runs, with no timing involved.
    let removed: unknown;
    const server = http.createServer((_req, res) => {
      t.store.removeImage('busybox').then(
        (r) => {
          removed = r;
          res.end('after rmi\n');
        },
        (err: Error) => {
          removed = err;
          res.end(`rmi failed: ${err.message}\n`);
        },
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as import('node:net').AddressInfo).port;
      const ctx = fs.mkdtempSync(path.join(t.work, 'ctx-'));
      fs.writeFileSync(path.join(ctx, 'Dockerfile'), `FROM busybox\nRUN wget -q -O /got http://127.0.0.1:${port}/\n`);
      await build({ context: ctx, tags: ['built:latest'] }, { store: t.store });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(removed).toMatchObject({ deleted: [expect.stringMatching(/^sha256:/)] });
    expect((await t.store.images.list()).map((i) => i.ref)).toEqual(['built:latest']);

    const saved = path.join(t.work, 'built.tar');
    await t.store.save(['built'], saved, 'docker');
    const names = archiveLayerNames(saved);
    expect(names).toContain('bin/busybox');
    expect(names).toContain('got');
  });
});

describe('a load that fails', () => {
  it('on a full disk (a real 24 MiB tmpfs) removes the blobs it wrote at once', async () => {
    const top = fs.mkdtempSync(path.join(t.work, 'full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tsbuild-enospc', top]);
    let store: Store | undefined;
    try {
      store = await Store.open(path.join(top, 'root'), { driver: 'vfs' });
      const before = await store.images.content.list();
      // A config, then an 8 MiB layer that fits, then a 20 MiB one that does not (random bytes:
      // nothing compresses them); the archive itself is on the ordinary disk.
      const dir = fs.mkdtempSync(path.join(t.work, 'big-'));
      const layers = [crypto.randomBytes(8 << 20), crypto.randomBytes(20 << 20)];
      layers.forEach((b, i) => fs.writeFileSync(path.join(dir, `layer${i}.tar`), b));
      const config = { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((b) => sha256OfBuffer(b)) } };
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
      fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: ['big:latest'], Layers: ['layer0.tar', 'layer1.tar'] }]));
      const archive = path.join(t.work, 'big.tar');
      execFileSync('tar', ['-C', dir, '-cf', archive, 'manifest.json', 'config.json', 'layer0.tar', 'layer1.tar']);

      // One line naming the cause (TsbuildError with the errno as its code).
      await expect(store.load(archive)).rejects.toMatchObject({ code: 'ENOSPC', message: expect.stringMatching(/no space left on device/) });
      expect(await store.images.content.list()).toEqual(before);
      expect(fs.readdirSync(store.images.content.ingestDir)).toEqual([]);
      expect(fs.readdirSync(path.join(store.root, 'blob-leases'))).toEqual([]);
      // The space is back: the same store takes a small image now.
      await store.importTarball(busyboxTarball(), 'busybox:latest');
    } finally {
      await store?.close();
      execFileSync('umount', ['-l', top]);
    }
  });
});
