import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MediaTypes } from '../src/content';
import { sha256OfBuffer } from '../src/digest';
import { ImageStore } from '../src/image';
import {
  loadArchive,
  readArchiveMembers,
  saveDockerArchive,
  saveOciArchive,
  saveOciDir,
  type Progress,
} from '../src/transport';
import { makeBusyboxImage, makeImage, recordingImporter } from '../../../test/helpers/images';

const tarList = (file: string) => execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).split('\n').filter(Boolean);

describe('transports', () => {
  let tmp: string;
  let store: ImageStore;
  beforeEach(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-transport-'));
    store = await ImageStore.open(path.join(tmp, 'store'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const freshStore = (name: string) => ImageStore.open(path.join(tmp, name));

  it('OCI archive round trip: materializes the built layer, gzips it once, loads back with the same ID', async () => {
    const bb = await makeBusyboxImage(store, tmp, 'app', { materializeLater: true });
    expect(await store.content.has(bb.diffID)).toBe(false);
    const progress: Progress[] = [];
    const out = path.join(tmp, 'app.oci.tar');
    await saveOciArchive(store, ['app'], out, { onProgress: (p) => progress.push(p) });
    expect(await store.content.has(bb.diffID)).toBe(true); // materialized on first read
    expect(progress.some((p) => p.phase === 'compress' && p.done === 1 && p.total === 1)).toBe(true);
    const last = progress.filter((p) => p.phase === 'write').pop()!;
    expect(last.done).toBe(last.total);

    const names = tarList(out);
    expect(names[0]).toBe('oci-layout');
    expect(names[names.length - 1]).toBe('index.json');
    const gz = await store.findLayerBlob(bb.diffID, MediaTypes.ociLayerGzip);
    expect(gz).toBeDefined();
    expect(names).toContain(`blobs/sha256/${gz!.digest.slice(7)}`);
    expect(names).toContain(`blobs/sha256/${bb.id.slice(7)}`);
    expect(names).not.toContain(`blobs/sha256/${bb.diffID.slice(7)}`);
    const index = JSON.parse(execFileSync('tar', ['-xOf', out, 'index.json'], { encoding: 'utf8' }));
    expect(index.manifests[0].annotations).toEqual({
      'io.containerd.image.name': 'docker.io/library/app:latest',
      'org.opencontainers.image.ref.name': 'app:latest',
    });

    // A second save reuses the kept gzip blob and gives identical bytes.
    const blobsBefore = (await store.content.list()).length;
    const out2 = path.join(tmp, 'again.tar');
    await saveOciArchive(store, ['app'], out2);
    expect((await store.content.list()).length).toBe(blobsBefore);
    expect(fs.readFileSync(out2).equals(fs.readFileSync(out))).toBe(true);

    const target = await freshStore('loaded');
    const { importer, seen } = recordingImporter();
    const loadProgress: Progress[] = [];
    const res = await loadArchive(target, out, { importer, onProgress: (p) => loadProgress.push(p) });
    expect(res).toEqual({ images: ['app:latest'], ids: [bb.id] });
    expect(seen).toEqual([{ parent: null, diffID: bb.diffID, digest: bb.diffID, size: bb.size }]);
    expect(loadProgress.some((p) => p.phase === 'import' && p.done === 1)).toBe(true);
    expect(loadProgress.some((p) => p.phase === 'read')).toBe(true);
    const loaded = await target.resolve('app');
    expect(loaded.id).toBe(bb.id);
    expect(loaded.layers[0]!.descriptor).toMatchObject({ mediaType: MediaTypes.ociLayerGzip, digest: gz!.digest });
    // The uncompressed size was recorded while importing.
    expect((await target.list())[0]!.size).toBe(bb.size);
  });

  it('docker-archive round trip with a shared base layer, and a gzip-compressed archive', async () => {
    const a = await makeImage(store, ['base layer bytes', 'a top'], { tags: ['a:1'] });
    const b = await makeImage(store, ['base layer bytes', 'b top'], { tags: ['quay.io/x/b:2'] });
    const out = path.join(tmp, 'd.tar');
    await saveDockerArchive(store, ['a:1', 'quay.io/x/b:2'], out);
    const manifest = JSON.parse(execFileSync('tar', ['-xOf', out, 'manifest.json'], { encoding: 'utf8' }));
    const ra = await store.resolve('a:1');
    expect(manifest[0]).toEqual({
      Config: `blobs/sha256/${a.id.slice(7)}`,
      RepoTags: ['docker.io/library/a:1'],
      Layers: ra.layers.map((l) => `blobs/sha256/${l.diffID.slice(7)}`),
    });
    expect(manifest[1].RepoTags).toEqual(['quay.io/x/b:2']);

    const gzOut = path.join(tmp, 'd.tar.gz');
    fs.writeFileSync(gzOut, zlib.gzipSync(fs.readFileSync(out)));
    for (const file of [out, gzOut]) {
      const target = await freshStore(`t-${path.basename(file)}`);
      const { importer, seen } = recordingImporter();
      const res = await loadArchive(target, file, { importer });
      expect(res).toEqual({ images: ['a:1', 'quay.io/x/b:2'], ids: [a.id, b.id] });
      // The base is imported once; each top on the right parent.
      expect(seen.map((s) => [s.parent, s.diffID])).toEqual([
        [null, ra.layers[0]!.diffID],
        [ra.layers[0]!.diffID, ra.layers[1]!.diffID],
        [ra.layers[0]!.diffID, (await store.resolve(b.id)).layers[1]!.diffID],
      ]);
      for (const s of seen) expect(s.digest).toBe(s.diffID);
      const r = await target.resolve('quay.io/x/b:2');
      expect(r.id).toBe(b.id);
      expect(r.layers.every((l) => l.descriptor.mediaType === MediaTypes.ociLayer)).toBe(true);
    }
  });

  it('re-exports an imported gzip image: same manifest to OCI, decompressed layers to docker-archive', async () => {
    await makeBusyboxImage(store, tmp, 'bb');
    const oci = path.join(tmp, 'bb.oci.tar');
    await saveOciArchive(store, ['bb'], oci);
    const mid = await freshStore('mid');
    await loadArchive(mid, oci, { importer: recordingImporter().importer });
    const imported = await mid.resolve('bb');
    // Saving again keeps the original compressed blob and manifest digest.
    const oci2 = path.join(tmp, 'bb2.oci.tar');
    await saveOciArchive(mid, ['bb'], oci2);
    const index = JSON.parse(execFileSync('tar', ['-xOf', oci2, 'index.json'], { encoding: 'utf8' }));
    expect(index.manifests[0].digest).toBe(imported.manifestDescriptor.digest);
    // docker-archive needs the uncompressed tar: decompressed on the fly, verified against the diffID.
    const docker = path.join(tmp, 'bb.docker.tar');
    await saveDockerArchive(mid, ['bb'], docker);
    const end = await freshStore('end');
    const { importer, seen } = recordingImporter();
    await loadArchive(end, docker, { importer });
    expect(seen[0]!.digest).toBe(imported.layers[0]!.diffID);
    expect((await end.resolve('bb')).id).toBe(imported.id);
    // Saving by ID records no tag.
    const byId = path.join(tmp, 'byid.tar');
    await saveDockerArchive(mid, [imported.id.slice(7, 19)], byId);
    const m = JSON.parse(execFileSync('tar', ['-xOf', byId, 'manifest.json'], { encoding: 'utf8' }));
    expect(m[0].RepoTags).toEqual([]);
    const untagged = await freshStore('untagged');
    expect(await loadArchive(untagged, byId, { importer: recordingImporter().importer })).toEqual({ images: [], ids: [imported.id] });
    expect((await untagged.list())[0]!.ref).toBeNull();
  });

  it('saves a built image that names an imported base layer by diffID from the original blob', async () => {
    await makeBusyboxImage(store, tmp, 'base');
    const oci = path.join(tmp, 'base.oci.tar');
    await saveOciArchive(store, ['base'], oci);
    const local = await freshStore('local');
    // The layer store already had the layer: the importer does not read it.
    await loadArchive(local, oci, { importer: { importLayer: async () => {} } });
    const base = await local.resolve('base');
    const gz = base.layers[0]!.descriptor;
    // A build on top, naming the base layer by diffID (no uncompressed blob, no layer source).
    const top = await local.content.putBytes('top layer', MediaTypes.ociLayer);
    await local.createImage({
      layers: [{ diffID: base.layers[0]!.diffID, size: (await store.content.info(base.layers[0]!.diffID)).size }, { diffID: top.digest, size: top.size }],
      config: { architecture: 'amd64', os: 'linux' },
      tags: ['built'],
    });
    const out = path.join(tmp, 'built.docker.tar');
    await saveDockerArchive(local, ['built'], out);
    expect(await local.content.has(base.layers[0]!.diffID)).toBe(false); // decompressed on the fly
    const { importer, seen } = recordingImporter();
    await loadArchive(await freshStore('check'), out, { importer });
    expect(seen.map((x) => x.digest)).toEqual([base.layers[0]!.diffID, top.digest]);
    // The OCI save reuses the original gzip blob instead of compressing again.
    const out2 = path.join(tmp, 'built.oci.tar');
    await saveOciArchive(local, ['built'], out2);
    const manifests = JSON.parse(execFileSync('tar', ['-xOf', out2, 'index.json'], { encoding: 'utf8' })).manifests;
    const manifest = JSON.parse(execFileSync('tar', ['-xOf', out2, `blobs/sha256/${manifests[0].digest.slice(7)}`], { encoding: 'utf8' }));
    expect(manifest.layers[0].digest).toBe(gz.digest);
  });

  it('names the member and digest of a corrupt archive blob, and rejects non-archives', async () => {
    const img = await makeImage(store, ['0123456789'.repeat(100)], { tags: ['c'] });
    const out = path.join(tmp, 'c.tar');
    await saveOciArchive(store, ['c'], out, { compression: 'none' });
    const layer = (await store.resolve('c')).layers[0]!;
    const buf = fs.readFileSync(out);
    const at = buf.indexOf(Buffer.from('0123456789'.repeat(10)));
    buf[at + 5]! ^= 1;
    fs.writeFileSync(out, buf);
    const target = await freshStore('bad');
    await expect(loadArchive(target, out, { importer: recordingImporter().importer })).rejects.toThrow(
      new RegExp(`member blobs/sha256/${layer.diffID.slice(7)}: blob ${layer.diffID} is corrupt`),
    );
    expect(await target.list()).toEqual([]);
    const junk = path.join(tmp, 'junk');
    fs.writeFileSync(junk, 'not a tar at all'.repeat(100));
    await expect(loadArchive(target, junk, { importer: recordingImporter().importer })).rejects.toThrow(/bad header checksum/);
    await expect(loadArchive(target, path.join(tmp, 'missing.tar'), { importer: recordingImporter().importer })).rejects.toThrow(
      /archive not found: .*missing\.tar/,
    );
    const empty = path.join(tmp, 'empty.tar');
    execFileSync('tar', ['-cf', empty, '-T', '/dev/null']);
    await expect(loadArchive(target, empty, { importer: recordingImporter().importer })).rejects.toThrow(/not an image archive/);
    expect(img.id).toBeDefined();
  });

  it('an importer that fails on a layer whose bytes do not match the config diff_id', async () => {
    // Build a docker-archive by hand whose config lies about the layer.
    const dir = path.join(tmp, 'liar');
    fs.mkdirSync(dir);
    const layer = Buffer.from('layer bytes');
    fs.writeFileSync(path.join(dir, 'layer.tar'), zlib.gzipSync(layer));
    const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256OfBuffer('other')] } });
    fs.writeFileSync(path.join(dir, 'c.json'), config);
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify([{ Config: 'c.json', RepoTags: ['liar:1'], Layers: ['layer.tar'] }]));
    const out = path.join(tmp, 'liar.tar');
    execFileSync('tar', ['-cf', out, '-C', dir, 'manifest.json', 'c.json', 'layer.tar']);
    const target = await freshStore('liar-store');
    await expect(loadArchive(target, out, { importer: recordingImporter().importer })).rejects.toThrow(
      /does not match its diff_id sha256:[0-9a-f]{64}: its content hashes to sha256:[0-9a-f]{64}$/,
    );
    await expect(target.resolve('liar:1')).rejects.toThrow('image not found');
  });

  it('saves into an OCI layout directory, merging with what is there', async () => {
    await makeImage(store, ['one'], { tags: ['x:1'] });
    await makeImage(store, ['two'], { tags: ['x:2'] });
    const dir = path.join(tmp, 'layout');
    await saveOciDir(store, ['x:1'], dir);
    await saveOciDir(store, ['x:2'], dir);
    await saveOciDir(store, ['x:1'], dir);
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
    expect(index.manifests.map((m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name'])).toEqual(['x:2', 'x:1']);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    for (const m of index.manifests) expect(fs.existsSync(path.join(dir, 'blobs/sha256', m.digest.slice(7)))).toBe(true);
  });

  it('reads pax and GNU long names written by GNU tar', async () => {
    const src = path.join(tmp, 'src');
    const long = `${'d'.repeat(60)}/${'f'.repeat(120)}`;
    fs.mkdirSync(path.join(src, 'd'.repeat(60)), { recursive: true });
    fs.writeFileSync(path.join(src, long), 'long one');
    fs.writeFileSync(path.join(src, 'short'), Buffer.alloc(700, 7));
    fs.symlinkSync('short', path.join(src, 'link'));
    for (const format of ['pax', 'gnu']) {
      const out = path.join(tmp, `${format}.tar`);
      execFileSync('tar', [`--format=${format}`, '-cf', out, '-C', src, '--sort=name', '.']);
      const got: [string, string, string][] = [];
      for await (const m of readArchiveMembers(fs.createReadStream(out))) {
        const chunks: Buffer[] = [];
        for await (const c of m.body) chunks.push(c);
        got.push([m.name, m.type, m.type === 'symlink' ? m.linkname : sha256OfBuffer(Buffer.concat(chunks)).slice(7, 15)]);
      }
      expect(got).toEqual([
        ['', 'dir', sha256OfBuffer('').slice(7, 15)],
        ['d'.repeat(60), 'dir', sha256OfBuffer('').slice(7, 15)],
        [long, 'file', sha256OfBuffer('long one').slice(7, 15)],
        ['link', 'symlink', 'short'],
        ['short', 'file', sha256OfBuffer(Buffer.alloc(700, 7)).slice(7, 15)],
      ]);
    }
  });
});
