// Fuzzing the decoders of image metadata (fast-check): docker-archive manifest.json, OCI oci-layout,
// index.json, image manifests and image configs with any JSON where the loader expects a shape, and
// RepoTags / references of any text. `load` must import the image or refuse the archive with a
// TsbuildError — never another exception — and leave a store that still lists its images.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReference, Store, TsbuildError } from '@tsbuild/storage';
import { makeTar } from '../../fixtures/tars';
import { fuzz, fuzzTestTimeout } from './budget';

const CI_SECONDS = 8;

let top: string;
let store: Store;
beforeAll(async () => {
  top = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-fuzz-load-'));
  store = await Store.open(path.join(top, 'root'), { driver: 'vfs' });
});
afterAll(async () => {
  await store?.close();
  fs.rmSync(top, { recursive: true, force: true });
});

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const json = (v: unknown) => Buffer.from(JSON.stringify(v) ?? 'null');
const LAYER = makeTar([{ name: 'hello', content: 'hi\n' }]);
const DIFF_ID = `sha256:${sha(LAYER)}`;

/** Either the expected value or anything JSON can say instead. */
const orJunk = <T>(good: T) => fc.oneof({ weight: 3, arbitrary: fc.constant(good) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) });

const configDoc = fc.record({
  architecture: orJunk('amd64'),
  os: orJunk('linux'),
  config: orJunk({}),
  rootfs: orJunk({ type: 'layers', diff_ids: [DIFF_ID] }),
  history: orJunk([]),
});

/** Blobs named by their digest, as both formats store them. */
function blob(files: Map<string, Buffer>, content: Buffer): { name: string; digest: string; size: number } {
  const name = `blobs/sha256/${sha(content)}`;
  files.set(name, content);
  return { name, digest: `sha256:${sha(content)}`, size: content.length };
}

type DockerShape = { config: unknown; tags: unknown; extraTag: string; layers: boolean; entry: boolean; junk: unknown };
type OciShape = { config: unknown; layout: unknown; schemaVersion: unknown; configDesc: boolean; layerMediaType: unknown; layerSize: unknown; manifestsJunk: unknown; annotations: unknown };

const dockerArchive = fc
  .record({ config: configDoc, tags: orJunk(['fuzz:1']), extraTag: fc.string({ maxLength: 40 }), layers: fc.boolean(), entry: fc.boolean(), junk: fc.option(fc.jsonValue({ maxDepth: 3 })) })
  .map((g) => ({ docker: g }));

function dockerFiles(g: DockerShape): Map<string, Buffer> {
    const files = new Map<string, Buffer>();
    const config = blob(files, json(g.config));
    const layer = blob(files, LAYER);
    const tags = Array.isArray(g.tags) ? [...(g.tags as unknown[]), g.extraTag] : g.tags;
    const entry = { Config: config.name, RepoTags: tags, Layers: g.layers ? [layer.name] : layer.name };
    files.set('manifest.json', json(g.junk ?? (g.entry ? [entry] : entry)));
    return files;
}

const ociArchive = fc
  .record({
    config: configDoc,
    layout: orJunk({ imageLayoutVersion: '1.0.0' }),
    schemaVersion: orJunk(2),
    configDesc: fc.boolean(),
    layerMediaType: orJunk('application/vnd.oci.image.layer.v1.tar'),
    layerSize: orJunk<number | null>(null),
    manifestsJunk: fc.option(fc.jsonValue({ maxDepth: 3 })),
    annotations: orJunk({ 'org.opencontainers.image.ref.name': 'fuzz:2' }),
  })
  .map((g) => ({ oci: g }));

function ociFiles(g: OciShape): Map<string, Buffer> {
    const files = new Map<string, Buffer>();
    const config = blob(files, json(g.config));
    const layer = blob(files, LAYER);
    const manifest = blob(
      files,
      json({
        schemaVersion: g.schemaVersion,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: g.configDesc ? { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size } : config.digest,
        layers: [{ mediaType: g.layerMediaType, digest: layer.digest, size: g.layerSize ?? layer.size }],
      }),
    );
    files.set('oci-layout', json(g.layout));
    const desc = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifest.digest, size: manifest.size, annotations: g.annotations };
    files.set('index.json', json(g.manifestsJunk ?? { schemaVersion: 2, manifests: [desc] }));
    return files;
}

async function loadsOrRefuses(shape: { docker: DockerShape } | { oci: OciShape }): Promise<void> {
  const files = 'docker' in shape ? dockerFiles(shape.docker) : ociFiles(shape.oci);
  const file = path.join(top, 'archive.tar');
  fs.writeFileSync(file, makeTar([...files].map(([name, content]) => ({ name, content }))));
  try {
    await store.load(file);
  } catch (err) {
    if (!(err instanceof TsbuildError)) throw err;
  }
  await store.images.list();
}

describe('fuzz: image metadata decoders', () => {
  it(
    'load: docker and OCI archives with any manifest, index, layout and config JSON load or are refused with a TsbuildError',
    async () => {
      await fuzz('load-metadata', fc.asyncProperty(fc.oneof(dockerArchive, ociArchive), (shape) => loadsOrRefuses(shape)), CI_SECONDS, 30_000);
    },
    fuzzTestTimeout(CI_SECONDS),
  );

  it(
    'references: any text parses or is refused with a TsbuildError',
    async () => {
      const refChars = fc.constantFrom(...'abcAB09:/@.-_'.split(''), 'sha256:', 'localhost:5000/', 'docker.io/', `@sha256:${'a'.repeat(64)}`, ' ', '\u00e9', '//');
      await fuzz('references', fc.property(fc.oneof(fc.string({ maxLength: 80 }), fc.array(refChars, { maxLength: 20 }).map((a) => a.join(''))), (s) => {
          try {
            const ref = parseReference(s);
            expect(typeof ref.path).toBe('string');
          } catch (err) {
            if (!(err instanceof TsbuildError)) throw err;
          }
        }), 2);
    },
    fuzzTestTimeout(2),
  );
});
