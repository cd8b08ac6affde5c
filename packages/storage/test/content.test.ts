import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as native from '@tsbuild/native';
import { ContentStore, MediaTypes } from '../src/content';
import { sha256OfBuffer, type Digest } from '../src/digest';

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('ContentStore', () => {
  let tmp: string;
  let dir: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-content-'));
    dir = path.join(tmp, 'oci');
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('creates an OCI layout and reads back what it stores, verified', async () => {
    const cs = await ContentStore.open(dir);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')).manifests).toEqual([]);
    const data = crypto.randomBytes(2 << 20);
    const w = await cs.ingest();
    w.stream.write(data.subarray(0, 12345));
    w.stream.end(data.subarray(12345));
    const desc = await w.commit(sha256OfBuffer(data), MediaTypes.ociLayer);
    expect(desc).toEqual({ mediaType: MediaTypes.ociLayer, digest: sha256OfBuffer(data), size: data.length });
    expect(fs.existsSync(path.join(dir, 'blobs/sha256', desc.digest.slice(7)))).toBe(true);
    expect(await cs.has(desc.digest)).toBe(true);
    expect(await cs.info(desc.digest)).toEqual({ digest: desc.digest, size: data.length });
    expect((await readAll(await cs.open(desc.digest))).equals(data)).toBe(true);
    expect((await cs.readBytes(desc.digest)).equals(data)).toBe(true);
    const j = await cs.putJson({ b: 1, a: [1, 2] }, MediaTypes.ociConfig);
    expect((await cs.readBytes(j.digest)).toString()).toBe('{"b":1,"a":[1,2]}');
    expect(await cs.readJson(j.digest)).toEqual({ b: 1, a: [1, 2] });
    expect((await cs.list()).sort()).toEqual([desc.digest, j.digest].sort());
    expect(fs.readdirSync(cs.ingestDir)).toEqual([]);
    expect(await cs.delete(j.digest)).toBe(true);
    expect(await cs.delete(j.digest)).toBe(false);
    await expect(cs.info(j.digest)).rejects.toThrow(`blob ${j.digest} not found in ${dir}`);
    await expect(cs.open(j.digest)).rejects.toThrow(`blob ${j.digest} not found`);
  });

  it('names the digest of a blob corrupted on disk', async () => {
    const cs = await ContentStore.open(dir);
    const data = crypto.randomBytes(300_000);
    const desc = await cs.putBytes(data);
    const file = cs.blobPath(desc.digest);
    const buf = fs.readFileSync(file);
    buf[150_000]! ^= 0xff;
    fs.writeFileSync(file, buf);
    const re = new RegExp(`blob ${desc.digest} is corrupt: expected ${desc.digest}, got sha256:[0-9a-f]{64}`);
    await expect(readAll(await cs.open(desc.digest))).rejects.toThrow(re);
    await expect(cs.readBytes(desc.digest)).rejects.toThrow(re);
  });

  it('rejects a commit whose bytes do not match the expected digest, leaving nothing behind', async () => {
    const cs = await ContentStore.open(dir);
    const w = await cs.ingest();
    w.stream.end(Buffer.from('abc'));
    const wrong = sha256OfBuffer('abd');
    await expect(w.commit(wrong)).rejects.toThrow(`blob ${wrong} is corrupt: expected ${wrong}, got ${sha256OfBuffer('abc')}`);
    expect(await cs.list()).toEqual([]);
    expect(fs.readdirSync(cs.ingestDir)).toEqual([]);
    const a = await cs.ingest();
    a.stream.write('partial');
    await a.abort();
    expect(fs.readdirSync(cs.ingestDir)).toEqual([]);
  });

  it('removes staging files left by a crashed writer on open, but not those of a live writer', async () => {
    await ContentStore.open(dir);
    const stale = path.join(dir, 'ingest', 'deadbeef');
    fs.writeFileSync(stale, 'half a blob');
    fs.mkdirSync(path.join(dir, 'ingest', 'weird-dir'));
    const cs = await ContentStore.open(dir);
    expect(fs.readdirSync(cs.ingestDir)).toEqual([]);

    const live = await cs.ingest();
    live.stream.write('in progress');
    expect(await cs.removeStaleIngests()).toBe(0);
    // A second process opening the store must not remove it either (flock, not pid checks).
    const again = await ContentStore.open(dir);
    expect(fs.readdirSync(again.ingestDir)).toHaveLength(1);
    const desc = await live.commit();
    expect(await cs.readBytes(desc.digest)).toEqual(Buffer.from('in progress'));
  });

  it('keeps one correct blob when 10 writers store the same content concurrently', async () => {
    const cs = await ContentStore.open(dir);
    const data = crypto.randomBytes(1 << 20);
    const results = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        if (i % 2 === 0) return cs.putBytes(data);
        return cs.putStream(Readable.from([data.subarray(0, 4096), data.subarray(4096)]), sha256OfBuffer(data));
      }),
    );
    for (const r of results) expect(r.digest).toBe(sha256OfBuffer(data));
    expect(await cs.list()).toEqual([sha256OfBuffer(data)]);
    expect((await cs.readBytes(sha256OfBuffer(data))).equals(data)).toBe(true);
    expect(fs.readdirSync(cs.ingestDir)).toEqual([]);
  });

  it('materializes a missing layer blob through the layer source, verified', async () => {
    const layer = crypto.randomBytes(50_000);
    const diffID = sha256OfBuffer(layer);
    let calls = 0;
    let tamper = false;
    const cs = await ContentStore.open(dir, {
      layerSource: {
        openLayerTar(d: Digest) {
          if (d !== diffID) return null;
          calls++;
          return Promise.resolve(Readable.from([tamper ? Buffer.concat([layer, Buffer.from('x')]) : layer]));
        },
      },
    });
    expect(await cs.has(diffID)).toBe(false);
    const [a, b] = await Promise.all([cs.open(diffID), cs.open(diffID)]);
    expect((await readAll(a)).equals(layer)).toBe(true);
    expect((await readAll(b)).equals(layer)).toBe(true);
    expect(calls).toBe(1);
    expect(await cs.has(diffID)).toBe(true);
    // Unknown to the source: a plain not-found error.
    const other = sha256OfBuffer('other');
    await expect(cs.open(other)).rejects.toThrow(`blob ${other} not found`);
    // A source whose tar does not hash to the diffID is reported, and nothing is stored.
    await cs.delete(diffID);
    tamper = true;
    await expect(cs.open(diffID)).rejects.toThrow(/its tar was rebuilt from the diff directory but hashes to sha256:/);
    expect(await cs.has(diffID)).toBe(false);
    expect(fs.readdirSync(cs.ingestDir)).toEqual([]);
  });

  it('refuses a layout of another version', async () => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}');
    await expect(ContentStore.open(dir)).rejects.toThrow(/unsupported imageLayoutVersion "2.0.0"/);
  });

  it('ingest staging files are flocked while written', async () => {
    const cs = await ContentStore.open(dir);
    const w = await cs.ingest();
    const [name] = fs.readdirSync(cs.ingestDir);
    const fd = fs.openSync(path.join(cs.ingestDir, name!), 'r');
    try {
      expect(native.flock(fd, 'exclusive', { nonBlocking: true })).toBe(false);
      await w.abort();
      expect(native.flock(fd, 'exclusive', { nonBlocking: true })).toBe(true);
    } finally {
      fs.closeSync(fd);
    }
  });
});
