import { describe, expect, it } from 'vitest';
import { MediaTypes } from '../src/content';
import { chainIDs, sha256OfBuffer, type Digest } from '../src/digest';
import {
  CACHE_CONFIG_MEDIA_TYPE,
  CACHE_DIFFID_ANNOTATION,
  INLINE_CACHE_KEY,
  decodeCache,
  decodeInlineCache,
  encodeCache,
  encodeInlineCache,
  platformCacheKey,
  type RemoteCacheRecord,
} from '../src/cache';
import { thrown } from '../../../test/helpers/errors';

const REF = 'localhost:5000/app:buildcache';
const digestOf = (s: string): Digest => sha256OfBuffer(s);

/** Two layer steps on scratch, then an empty step (a RUN that changed nothing) on top. */
function sampleRecords(): RemoteCacheRecord[] {
  const diffIDs = [digestOf('layer 1'), digestOf('layer 2')];
  const [c1, c2] = chainIDs(diffIDs);
  const created = '2026-12-04T20:00:00.000Z';
  return [
    { key: platformCacheKey(digestOf('k1'), 'linux/amd64'), parent: '', chainID: c1!, diffID: diffIDs[0]!, size: 10, empty: false, created, blob: { mediaType: MediaTypes.ociLayerGzip, digest: digestOf('blob 1'), size: 7 } },
    { key: platformCacheKey(digestOf('k2'), 'linux/amd64'), parent: c1!, chainID: c2!, diffID: diffIDs[1]!, size: 20, empty: false, created, blob: { mediaType: MediaTypes.ociLayer, digest: diffIDs[1]!, size: 20 } },
    { key: platformCacheKey(digestOf('k3'), 'linux/amd64'), parent: c2!, chainID: c2!, diffID: '', size: 0, empty: true, created },
  ];
}

/** Re-encodes a cache after `edit` changed its config document (the manifest names the new config). */
function withConfig(edit: (doc: { schemaVersion: unknown; records: Record<string, unknown>[] }) => void): { manifest: Buffer; config: Buffer } {
  const encoded = encodeCache(sampleRecords());
  const doc = JSON.parse(encoded.config.toString());
  edit(doc);
  const config = Buffer.from(JSON.stringify(doc));
  const manifest = JSON.parse(encoded.manifest.toString());
  manifest.config = { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: sha256OfBuffer(config), size: config.length };
  return { manifest: Buffer.from(JSON.stringify(manifest)), config };
}

describe('shared build cache format', () => {
  it('round-trips records through one manifest and one config', () => {
    const records = sampleRecords();
    const encoded = encodeCache(records);
    const manifest = JSON.parse(encoded.manifest.toString());
    expect(manifest.mediaType).toBe(MediaTypes.ociManifest);
    expect(manifest.config.mediaType).toBe(CACHE_CONFIG_MEDIA_TYPE);
    expect(manifest.config.digest).toBe(sha256OfBuffer(encoded.config));
    expect(encoded.manifestDescriptor.digest).toBe(sha256OfBuffer(encoded.manifest));
    // One layer per blob, annotated with its diffID; the empty step has none.
    expect(manifest.layers.map((l: { digest: string; annotations: Record<string, string> }) => [l.digest, l.annotations[CACHE_DIFFID_ANNOTATION]]).sort()).toEqual(
      records.filter((r) => r.blob).map((r) => [r.blob!.digest, r.diffID]).sort(),
    );
    const decoded = decodeCache(REF, encoded.manifest, encoded.config);
    expect(decoded.records.size).toBe(3);
    for (const r of records) expect(decoded.records.get(r.key)).toEqual(r);
  });

  it('encodes the same records to the same bytes, whatever their order (an unchanged export is skipped)', () => {
    const records = sampleRecords();
    const a = encodeCache(records);
    const b = encodeCache([...records].reverse().map((r) => ({ ...r })));
    expect(b.manifestDescriptor.digest).toBe(a.manifestDescriptor.digest);
    expect(b.config.equals(a.config)).toBe(true);
  });

  it('lists a blob two records share once', () => {
    const records = sampleRecords();
    const twin = { ...records[0]!, key: platformCacheKey(digestOf('k1 again'), 'linux/amd64') };
    const manifest = JSON.parse(encodeCache([...records, twin]).manifest.toString());
    expect(manifest.layers).toHaveLength(2);
  });

  it('files a step under a key that depends on the platform', () => {
    const local = digestOf('step');
    expect(platformCacheKey(local, 'linux/amd64')).not.toBe(platformCacheKey(local, 'linux/arm64'));
    expect(platformCacheKey(local, 'linux/amd64')).toBe(platformCacheKey(local, 'linux/amd64'));
  });

  it('refuses an image (a foreign config media type), naming the ref', () => {
    const encoded = encodeCache(sampleRecords());
    const manifest = JSON.parse(encoded.manifest.toString());
    manifest.config.mediaType = MediaTypes.ociConfig;
    const err = thrown(() => decodeCache(REF, Buffer.from(JSON.stringify(manifest)), encoded.config));
    expect(err.message).toBe(`cache ${REF}: not a tsbuild cache: its config has media type ${MediaTypes.ociConfig} (an image, or another tool's cache?)`);
    expect(err.code).toBe('EBADCACHE');
  });

  it.each<[string, (doc: { schemaVersion: unknown; records: Record<string, unknown>[] }) => void, string]>([
    ['a newer schema', (d) => (d.schemaVersion = 2), 'schemaVersion 2, not 1'],
    ['no records', (d) => delete (d as Partial<typeof d>).records, 'no "records" array'],
    ['a bad key', (d) => (d.records[0]!.key = 'sha256:xyz'), 'records[0]: invalid key "sha256:xyz"'],
    ['a chain that does not follow', (d) => (d.records.find((r) => !r.empty && r.parent !== '')!.chainID = digestOf('other')), 'does not follow from its parent and diffID'],
    ['a blob the manifest lacks', (d) => ((d.records.find((r) => r.blob)!.blob as Record<string, unknown>).digest = digestOf('elsewhere')), 'is not a layer of the manifest'],
    ['an empty step with a diffID', (d) => (d.records.find((r) => r.empty)!.diffID = digestOf('x')), 'an empty step must keep'],
    ['a negative size', (d) => (d.records[0]!.size = -1), 'invalid size -1'],
    ['a non-layer blob', (d) => ((d.records.find((r) => r.blob)!.blob as Record<string, unknown>).mediaType = 'application/json'), 'is not an image layer'],
    ['a duplicate key', (d) => d.records.push(d.records[0]!), 'appears twice'],
  ])('refuses a corrupt config (%s), naming the ref', (_what, edit, detail) => {
    const { manifest, config } = withConfig(edit);
    const err = thrown(() => decodeCache(REF, manifest, config));
    expect(err.message.startsWith(`cache ${REF}: `)).toBe(true);
    expect(err.message).toContain(detail);
  });

  it('refuses a config that is not JSON and a manifest without diffID annotations', () => {
    const encoded = encodeCache(sampleRecords());
    expect(thrown(() => decodeCache(REF, encoded.manifest, Buffer.from('{"records": ['))).message).toMatch(new RegExp(`^cache ${REF}: the cache config is not valid JSON`));
    const manifest = JSON.parse(encoded.manifest.toString());
    delete manifest.layers[0].annotations;
    expect(thrown(() => decodeCache(REF, Buffer.from(JSON.stringify(manifest)), encoded.config)).message).toBe(
      `cache ${REF}: layers[0] has no valid ${CACHE_DIFFID_ANNOTATION} annotation`,
    );
  });

  it('inline: records in an image config take the image layers as blobs, by diffID', () => {
    const records = sampleRecords();
    const layers = [records[0]!.blob!, { mediaType: MediaTypes.ociLayerGzip, digest: digestOf('gzip of layer 2'), size: 9 }];
    const manifest = { schemaVersion: 2 as const, mediaType: MediaTypes.ociManifest, config: { mediaType: MediaTypes.ociConfig, digest: digestOf('c'), size: 1 }, layers };
    const config = (inline: unknown, diffIDs = [records[0]!.diffID, records[1]!.diffID]) =>
      Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIDs }, [INLINE_CACHE_KEY]: inline }));
    const decoded = decodeInlineCache(REF, manifest, config(encodeInlineCache(records.map(({ blob: _blob, ...r }) => r))));
    expect(decoded.records.get(records[1]!.key)?.blob).toEqual(layers[1]);
    expect(decoded.records.get(records[2]!.key)).toEqual(records[2]);
    expect(thrown(() => decodeInlineCache(REF, manifest, config(undefined))).message).toBe(`cache ${REF}: an image without inline cache records (build it with --cache-to type=inline)`);
    // A record whose diffID is none of the image's layers has no blob: refused.
    expect(thrown(() => decodeInlineCache(REF, manifest, config(encodeInlineCache(records), [records[0]!.diffID, digestOf('other')]))).message).toBe(`cache ${REF}: records[2]: its layer "${records[1]!.diffID}" is not one of the image's layers`);
  });

  it('records the export mode; an unknown mode is refused', () => {
    const encoded = encodeCache(sampleRecords(), 'max');
    expect(decodeCache(REF, encoded.manifest, encoded.config).mode).toBe('max');
    expect(decodeCache(REF, encodeCache(sampleRecords()).manifest, encodeCache(sampleRecords()).config).mode).toBeUndefined();
    const bad = withConfig((doc) => Object.assign(doc, { mode: 'all' }));
    expect(thrown(() => decodeCache(REF, bad.manifest, bad.config)).message).toBe(`cache ${REF}: the cache config has mode "all", not min or max`);
  });
});
