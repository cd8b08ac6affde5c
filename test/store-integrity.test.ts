// Integrity of what the store records, against hostile input (issue 9): a layer blob is recorded for
// a diff_id only after it was decompressed and hashed to it, whether it comes from an archive or a
// registry that lies.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256OfBuffer, type Digest } from '@tsbuild/storage';
import { openTestRoot, type TestRoot } from './helpers/roots';
import { startRegistry, type RegistryPeer } from './peers/registry';

let t: TestRoot;
beforeEach(async () => {
  t = await openTestRoot();
});
afterEach(async () => {
  await t.close();
});

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

    await t.store.push('busybox', `${reg.host}/base:latest`);
    const pushed = (await (await fetch(`http://${reg.host}/v2/base/manifests/latest`, { headers: { accept: manifest.mediaType } })).json()) as typeof manifest;
    expect(pushed.layers[0]!.digest).not.toBe(layer.digest);
    const blob = Buffer.from(await (await fetch(`http://${reg.host}/v2/base/blobs/${pushed.layers[0]!.digest}`)).arrayBuffer());
    const names = execFileSync('tar', ['-tf', '-'], { input: maybeGunzip(blob), encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(names).not.toContain('BACKDOOR');
    expect(names).toContain('bin/busybox');
  });
});
