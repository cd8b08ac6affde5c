// decompress(): gzip (node:zlib), zstd (fzstd, data made by the zstd CLI), bzip2 and xz (system
// tools), plain passthrough; corrupt and truncated inputs fail clearly.
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decompress, detectCompression } from '../../src/archive/decompress';
import { listTar } from '../../src/archive/tar-reader';
import { chunked, makeTar } from '../../../../fixtures/tars';
import { errorOf } from '../../../../test/helpers/errors';
import { collect } from '../../../../test/helpers/streams';

/** A tar with compressible and incompressible parts, large enough for several zstd blocks. */
const TAR = makeTar([
  { name: 'text', content: 'layer '.repeat(60_000) },
  { name: 'random', content: crypto.randomBytes(200_000) },
  { name: 'dir/', type: 'dir' },
]);

function cli(cmd: string, args: string[], input: Buffer): Buffer {
  return execFileSync(cmd, args, { input, maxBuffer: 64 * 1024 * 1024 });
}

const makers: Record<string, () => Buffer> = {
  gzip: () => zlib.gzipSync(TAR),
  zstd: () => cli('zstd', ['-q', '-c', '-3'], TAR),
  bzip2: () => cli('bzip2', ['-c'], TAR),
  xz: () => cli('xz', ['-c', '-0'], TAR),
  none: () => TAR,
};
const cache = new Map<string, Buffer>();
/** Each compressed form, made once. */
const compressed = Object.fromEntries(
  Object.keys(makers).map((k) => [k, () => cache.get(k) ?? (cache.set(k, makers[k]!()), cache.get(k)!)]),
) as Record<string, () => Buffer>;

describe('decompress', () => {
  it.each(Object.keys(compressed))('%s', async (kind) => {
    const input = compressed[kind]!();
    expect(detectCompression(input.subarray(0, 6))).toBe(kind);
    const out = await collect(decompress(chunked(input, 4096)));
    expect(out.equals(TAR)).toBe(true);
    // and as a stream the tar reader takes directly
    expect((await listTar(decompress(chunked(input, 65536)))).map((h) => h.name)).toEqual(['text', 'random', 'dir/']);
  });

  it('decodes concatenated gzip members and zstd frames', async () => {
    const half = Math.floor(TAR.length / 2);
    const gz = Buffer.concat([zlib.gzipSync(TAR.subarray(0, half)), zlib.gzipSync(TAR.subarray(half))]);
    expect((await collect(decompress(chunked(gz, 1000)))).equals(TAR)).toBe(true);
    const zst = Buffer.concat([cli('zstd', ['-q', '-c'], TAR.subarray(0, half)), cli('zstd', ['-q', '-c'], TAR.subarray(half))]);
    expect((await collect(decompress(chunked(zst, 1000)))).equals(TAR)).toBe(true);
  });

  it('passes short and empty inputs through', async () => {
    expect(await collect(decompress(chunked(Buffer.from('ab'), 1)))).toEqual(Buffer.from('ab'));
    expect((await collect(decompress(chunked(Buffer.alloc(0))))).length).toBe(0);
  });

  it.each([
    ['gzip', /^gzip: /],
    ['zstd', /^zstd: /],
    ['bzip2', /^bzip2 -dc failed \(exit \d+\)/],
    ['xz', /^xz -dc failed \(exit \d+\)/],
  ])('reports truncated %s data', async (kind, message) => {
    const data = compressed[kind]!();
    const err = await errorOf(() => collect(decompress(chunked(data.subarray(0, Math.floor(data.length / 2)), 8192))));
    expect(err.message).toMatch(message);
  });

  it('explains how to install a missing bzip2 or xz', async () => {
    const saved = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const err = await errorOf(() => collect(decompress(chunked(compressed.xz!(), 8192))));
      expect(err.message).toBe('decompressing a xz stream needs the "xz" command, which is not installed (apt-get install xz-utils)');
    } finally {
      process.env.PATH = saved;
    }
  });

  it('reports corrupt gzip data', async () => {
    const gz = zlib.gzipSync(TAR);
    gz.fill(0x55, 100, 200);
    const err = await errorOf(() => collect(decompress(chunked(gz, 8192))));
    expect(err.message).toMatch(/^gzip: /);
  });
});
