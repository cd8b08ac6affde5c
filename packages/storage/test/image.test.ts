import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MediaTypes } from '../src/content';
import type { Digest } from '../src/digest';
import {
  familiarString,
  formatReference,
  ImageStore,
  InvalidReferenceError,
  parseReference,
} from '../src/image';
import { makeImage } from '../../../test/helpers/images';
import { thrown } from '../../../test/helpers/errors';

const D = `sha256:${'ab'.repeat(32)}`;

describe('image references', () => {
  it.each([
    ['app', 'docker.io/library/app:latest', 'app:latest'],
    ['app:v1', 'docker.io/library/app:v1', 'app:v1'],
    ['myorg/app:v1', 'docker.io/myorg/app:v1', 'myorg/app:v1'],
    ['docker.io/library/app', 'docker.io/library/app:latest', 'app:latest'],
    ['index.docker.io/x/y', 'docker.io/x/y:latest', 'x/y:latest'],
    ['localhost/app', 'localhost/app:latest', 'localhost/app:latest'],
    ['localhost:5000/a/b-c__d.e:t_1.0', 'localhost:5000/a/b-c__d.e:t_1.0', 'localhost:5000/a/b-c__d.e:t_1.0'],
    ['quay.io/org/app', 'quay.io/org/app:latest', 'quay.io/org/app:latest'],
    ['[::1]:5000/app:x', '[::1]:5000/app:x', '[::1]:5000/app:x'],
    [`app@${D}`, `docker.io/library/app@${D}`, `app@${D}`],
    [`app:v1@${D}`, `docker.io/library/app:v1@${D}`, `app:v1@${D}`],
  ])('%s → %s', (input, full, familiar) => {
    const ref = parseReference(input);
    expect(formatReference(ref)).toBe(full);
    expect(familiarString(ref)).toBe(familiar);
  });

  it.each([
    ['', /empty name/],
    ['App', /repository name must be lowercase/],
    ['myorg/App', /repository name must be lowercase/],
    ['app:', /invalid tag ""/],
    ['app:-x', /invalid tag "-x"/],
    [`app:${'t'.repeat(129)}`, /invalid tag/],
    ['a//b', /empty path component/],
    ['-app', /invalid path component "-app"/],
    ['app_', /invalid path component "app_"/],
    ['ab'.repeat(32), /cannot be a 64-character hexadecimal string/],
    ['app@sha256:xyz', /invalid digest "sha256:xyz"/],
    ['bad_host.io:x/app', /invalid registry host "bad_host.io:x"/],
    [`${'a'.repeat(256)}`, /longer than 255/],
  ])('rejects %j', (input, re) => {
    const err = thrown(() => parseReference(input));
    expect(err).toBeInstanceOf(InvalidReferenceError);
    expect(err.message).toMatch(/^invalid reference "/);
    expect(err.message).toMatch(re);
  });
});

describe('ImageStore', () => {
  let tmp: string;
  let store: ImageStore;
  const deleted: { diffIDs: Digest[]; id: Digest }[] = [];
  beforeEach(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-image-'));
    deleted.length = 0;
    store = await ImageStore.open(tmp, {
      onImageDeleted: (diffIDs, id) => {
        deleted.push({ diffIDs, id });
      },
    });
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const indexJson = () => JSON.parse(fs.readFileSync(path.join(tmp, 'oci', 'index.json'), 'utf8'));

  it('tags, resolves every accepted form, and untags', async () => {
    const img = await makeImage(store, ['layer one', 'layer two'], { tags: ['app'] });
    expect(indexJson().manifests).toEqual([
      { ...img.manifest, annotations: { 'org.opencontainers.image.ref.name': 'app:latest' } },
    ]);
    const forms = ['app', 'app:latest', 'docker.io/library/app:latest', img.id, img.id.slice(7), img.id.slice(7, 19), `app@${img.manifest.digest}`];
    for (const f of forms) {
      const r = await store.resolve(f);
      expect(r.id, f).toBe(img.id);
      expect(r.manifestDescriptor.digest).toBe(img.manifest.digest);
    }
    const r = await store.resolve('app');
    expect(r.tags).toEqual(['app:latest']);
    expect(r.config.rootfs.diff_ids).toHaveLength(2);
    expect(r.layers.map((l) => l.descriptor.mediaType)).toEqual([MediaTypes.ociLayer, MediaTypes.ociLayer]);
    expect(r.layers.map((l) => l.descriptor.digest)).toEqual(r.config.rootfs.diff_ids);
    expect(r.manifest.mediaType).toBe(MediaTypes.ociManifest);

    await store.tag('myorg/app:v2', 'app');
    expect((await store.resolve('myorg/app:v2')).id).toBe(img.id);
    expect((await store.list()).map((i) => i.ref).sort()).toEqual(['app:latest', 'myorg/app:v2']);

    await store.untag('app');
    await expect(store.resolve('app')).rejects.toThrow('image not found: app');
    await expect(store.untag('app')).rejects.toThrow('image not found: app');
    await store.untag('docker.io/myorg/app:v2');
    // Untagged but still there (dangling), reachable by ID.
    expect(await store.list()).toEqual([
      { ref: null, id: img.id, manifestDigest: img.manifest.digest, created: '2024-01-01T00:00:00Z', size: 18, platform: 'linux/amd64' },
    ]);
    expect((await store.resolve(img.id)).tags).toEqual([]);

    await expect(store.resolve('nope:1')).rejects.toThrow('image not found: nope:1');
    await expect(store.resolve('Bad')).rejects.toThrow(/invalid reference "Bad": repository name must be lowercase/);
    await expect(store.tag('Bad', img.manifest)).rejects.toThrow(InvalidReferenceError);
    await expect(store.tag(`app@${img.manifest.digest}`, img.manifest)).rejects.toThrow(/cannot tag with a digest reference/);
    await expect(store.resolve(img.id.slice(7, 18))).rejects.toThrow(`image not found: ${img.id.slice(7, 18)}`);
  });

  it('moving a tag leaves the old image dangling; prune removes it and its blobs', async () => {
    const a = await makeImage(store, ['shared base', 'only in a'], { tags: ['app'] });
    const b = await makeImage(store, ['shared base', 'only in b'], { tags: ['app'] });
    expect((await store.resolve('app')).id).toBe(b.id);
    const rows = await store.list();
    expect(rows.map((r) => [r.ref, r.id])).toEqual([
      ['app:latest', b.id],
      [null, a.id],
    ]);
    const aLayers = (await store.resolve(a.id)).layers.map((l) => l.diffID);
    const res = await store.prune();
    expect(res.deletedImages).toEqual([a.id]);
    expect(deleted).toEqual([{ diffIDs: aLayers, id: a.id }]);
    expect(await store.content.has(a.manifest.digest)).toBe(false);
    expect(await store.content.has(a.id)).toBe(false);
    expect(await store.content.has(aLayers[1]!)).toBe(false); // only a used it
    expect(await store.content.has(aLayers[0]!)).toBe(true); // b still does
    expect((await store.list()).map((r) => r.ref)).toEqual(['app:latest']);
  });

  it('prune sweeps orphan blobs older than the grace period only', async () => {
    await makeImage(store, ['kept'], { tags: ['keep'] });
    const orphan = await store.content.putBytes('nobody references me');
    expect((await store.prune()).deletedBlobs).toBe(0); // too recent
    expect(await store.content.has(orphan.digest)).toBe(true);
    const res = await store.prune({ graceMs: 0 });
    expect(res).toMatchObject({ deletedImages: [], deletedBlobs: 1, reclaimedBytes: 20 });
    expect(await store.content.has(orphan.digest)).toBe(false);
    expect((await store.resolve('keep')).layers).toHaveLength(1);
    await store.materializeImage('keep');
  });

  it('keeps recorded compressed blobs while an image uses their layer', async () => {
    const img = await makeImage(store, ['uncompressed layer'], { tags: ['app'] });
    const diffID = (await store.resolve('app')).layers[0]!.diffID;
    const gz = await store.content.putBytes('pretend gzip', MediaTypes.ociLayerGzip);
    await store.recordLayerBlob(diffID, gz, 18);
    expect(await store.findLayerBlob(diffID, MediaTypes.ociLayerGzip)).toEqual(gz);
    await store.prune({ graceMs: 0 });
    expect(await store.content.has(gz.digest)).toBe(true);
    const rm = await store.remove('app');
    expect(rm).toEqual({ untagged: ['app:latest'], deleted: [img.id] });
    expect(await store.content.has(gz.digest)).toBe(false);
    expect(await store.content.has(diffID)).toBe(false);
    expect(await store.blobInfo.get(diffID)).toBeUndefined();
    expect(await store.content.list()).toEqual([]);
  });

  it('removes like docker rmi: tags first, IDs with several tags only when forced', async () => {
    const img = await makeImage(store, ['l1'], { tags: ['a', 'b'] });
    const other = await makeImage(store, ['l1', 'l2'], { tags: ['c'] });
    expect(await store.remove('a')).toEqual({ untagged: ['a:latest'], deleted: [] });
    await store.tag('a', img.manifest);
    await expect(store.remove(img.id.slice(7, 19))).rejects.toThrow(
      `unable to delete image ${img.id.slice(7, 19)} (must be forced): it is tagged as b:latest, a:latest`,
    );
    await expect(store.remove('b')).resolves.toEqual({ untagged: ['b:latest'], deleted: [] });
    await store.tag('b', 'a');
    const res = await store.remove(img.id, { force: true });
    expect(res.deleted).toEqual([img.id]);
    expect(res.untagged.sort()).toEqual(['a:latest', 'b:latest']);
    expect(deleted.map((d) => d.id)).toEqual([img.id]);
    // The shared layer blob survives for the other image.
    const o = await store.resolve('c');
    for (const l of o.layers) expect(await store.content.has(l.descriptor.digest)).toBe(true);
    expect(o.id).toBe(other.id);
    await expect(store.remove('a')).rejects.toThrow('image not found: a');
  });

  it('resolves unambiguous short IDs and reports ambiguous ones', async () => {
    const short = await ImageStore.open(tmp, { shortIdMinLength: 2 });
    const byPrefix = new Map<string, Digest>();
    let clash: [Digest, Digest] | undefined;
    for (let i = 0; !clash && i < 500; i++) {
      const img = await makeImage(short, ['x'], { label: String(i) });
      const p = img.id.slice(7, 9);
      const seen = byPrefix.get(p);
      if (seen) clash = [seen, img.id];
      byPrefix.set(p, img.id);
    }
    expect(clash).toBeDefined();
    const prefix = clash![0].slice(7, 9);
    await expect(short.resolve(prefix)).rejects.toThrow(`image ID prefix "${prefix}" is ambiguous: it matches 2 images; give more digits`);
    expect((await short.resolve(clash![1].slice(7, 30))).id).toBe(clash![1]);
    // The default store wants 12 digits.
    await expect(store.resolve(clash![1].slice(7, 15))).rejects.toThrow('image not found');
  });

  it('describes history and inspect like docker', async () => {
    await store.createImage({
      layers: [
        { diffID: (await store.content.putBytes('aaaa')).digest, size: 4 },
        { diffID: (await store.content.putBytes('bbbbbbbb')).digest, size: 8 },
      ],
      config: {
        created: '2024-02-02T00:00:00Z',
        author: 'me',
        architecture: 'amd64',
        os: 'linux',
        config: { Cmd: ['sh'] },
        history: [
          { created: '2024-01-01T00:00:00Z', created_by: 'ADD a' },
          { created: '2024-01-02T00:00:00Z', created_by: 'ENV x=1', empty_layer: true },
          { created: '2024-01-03T00:00:00Z', created_by: 'RUN b', comment: 'c' },
        ],
      },
      tags: ['h:1'],
    });
    const img = await store.resolve('h:1');
    const h = await store.history('h:1');
    expect(h.map((x) => [x.id, x.createdBy, x.size, x.emptyLayer])).toEqual([
      [img.id, 'RUN b', 8, false],
      [null, 'ENV x=1', 0, true],
      [null, 'ADD a', 4, false],
    ]);
    const i = await store.inspect('h:1');
    expect(i).toMatchObject({
      Id: img.id,
      RepoTags: ['h:1'],
      Created: '2024-02-02T00:00:00Z',
      Author: 'me',
      Config: { Cmd: ['sh'] },
      Architecture: 'amd64',
      Os: 'linux',
      Size: 12,
      RootFS: { Type: 'layers', Layers: img.config.rootfs.diff_ids },
      Comment: 'c',
    });
    // The config is stored in canonical order with rootfs before history.
    const raw = (await store.content.readBytes(img.id)).toString();
    expect(raw.indexOf('"rootfs"')).toBeLessThan(raw.indexOf('"history"'));
    expect(raw).toBe(JSON.stringify(JSON.parse(raw)));
  });

  it('keeps every tag when many are written concurrently (index.json under the lock)', async () => {
    const img = await makeImage(store, ['z']);
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.tag(`t${i}`, img.manifest)));
    const other = await ImageStore.open(tmp); // a second opener sees the same index
    expect((await other.list()).map((r) => r.ref).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `t${i}:latest`).sort());
    expect(fs.readdirSync(path.join(tmp, 'oci')).sort()).toEqual(['blobs', 'index.json', 'ingest', 'oci-layout']);
  });

  it('removes index.json temporaries left by a crashed writer when opening', async () => {
    await makeImage(store, ['x'], { tags: ['x'] });
    fs.writeFileSync(path.join(tmp, 'oci', '.tmp-index.json-0123456789ab'), '{"torn');
    fs.writeFileSync(path.join(tmp, '.tmp-blobinfo.json-0123456789ab'), '{"torn');
    const reopened = await ImageStore.open(tmp);
    expect(fs.readdirSync(path.join(tmp, 'oci')).sort()).toEqual(['blobs', 'index.json', 'ingest', 'oci-layout']);
    expect(fs.readdirSync(tmp).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    expect((await reopened.resolve('x')).tags).toEqual(['x:latest']);
  });

  it('createImage needs a blob or a size for each layer', async () => {
    await expect(
      store.createImage({ layers: [{ diffID: `sha256:${'1'.repeat(64)}` }], config: { architecture: 'amd64', os: 'linux' } }),
    ).rejects.toThrow(/layer sha256:1{64} needs a blob descriptor or its uncompressed size/);
  });
});
