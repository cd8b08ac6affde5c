// Decompression by sniffing magic bytes: gzip (node:zlib), zstd (fzstd; Node 20's zlib lacks it),
// bzip2 and xz (the system tools, which Node has no codec for). Anything else passes through.
// Required where used, not here: loading it is part of every command's start (README, Performance).
import type * as childProcess from 'node:child_process';
import type * as zlib from 'node:zlib';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Decompress as ZstdDecompress } from 'fzstd';
import { TsbuildError } from '../errors';

export type Compression = 'gzip' | 'zstd' | 'bzip2' | 'xz' | 'none';

const MAGIC: Array<[Compression, number[]]> = [
  ['gzip', [0x1f, 0x8b]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['bzip2', [0x42, 0x5a, 0x68]], // "BZh"
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
];
const SNIFF_BYTES = 6;

/** The compression a stream starting with `head` uses. */
export function detectCompression(head: Buffer): Compression {
  for (const [kind, magic] of MAGIC) {
    if (head.length >= magic.length && magic.every((b, i) => head[i] === b)) return kind;
  }
  return 'none';
}

/** A Transform decoding zstd frames with fzstd's streaming decoder. */
export function zstdDecompressor(): Transform {
  // Loaded on first use: most commands never meet a zstd layer, and every module costs start time.
  const { Decompress } = require('fzstd') as typeof import('fzstd');
  let decoder: ZstdDecompress;
  const t = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      try {
        decoder.push(chunk);
        cb();
      } catch (err) {
        cb(new TsbuildError('ECORRUPT', `zstd: invalid compressed data (${(err as Error).message})`));
      }
    },
    flush(cb: TransformCallback) {
      try {
        decoder.push(new Uint8Array(0), true);
        cb();
      } catch (err) {
        cb(new TsbuildError('ECORRUPT', `zstd: truncated or invalid compressed data (${(err as Error).message})`));
      }
    },
  });
  // fzstd may hand out views of its window: copy before passing them on
  decoder = new Decompress((data) => {
    if (data.length) t.push(Buffer.from(data));
  });
  return t;
}

async function* prepend(head: Buffer, rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  let done = false;
  try {
    if (head.length) yield head;
    for (;;) {
      const r = await rest.next();
      if (r.done) {
        done = true;
        return;
      }
      yield r.value;
    }
  } finally {
    // stopped early (the consumer went away): let the input clean up too
    if (!done) await rest.return?.();
  }
}

/** Pipes `src` through `cmd -dc`, turning a missing tool or a failure into a clear error. */
async function external(cmd: 'bzip2' | 'xz', src: Readable, out: PassThrough): Promise<void> {
  const child = (require('node:child_process') as typeof childProcess).spawn(cmd, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        reject(new TsbuildError('ENOTOOL', `decompressing a ${cmd} stream needs the "${cmd}" command, which is not installed (apt-get install ${cmd === 'xz' ? 'xz-utils' : 'bzip2'})`));
      } else reject(new Error(`${cmd} -dc: ${err.message}`));
    });
    child.on('close', (code) => resolve(code));
  });
  // the child may exit early on bad input: an EPIPE on its stdin is then reported by the exit status
  const feed = pipeline(src, child.stdin).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_PREMATURE_CLOSE') throw err;
  });
  const drain = pipeline(child.stdout, out, { end: false });
  const [code] = await Promise.all([exited, feed, drain]);
  if (code !== 0) throw new TsbuildError('ECORRUPT', `${cmd} -dc failed (exit ${code}): ${stderr.trim() || 'invalid compressed data'}`);
  out.end();
}

/**
 * A stream of the decompressed bytes of `input`, whatever its compression (see detectCompression).
 * Errors (corrupt data, missing tools) are emitted on the returned stream.
 */
export function decompress(input: Readable | AsyncIterable<Buffer>): Readable {
  const out = new PassThrough();
  let kind: Compression = 'none';
  // The input is ours from here on, and so are its errors, for as long as it lives: once the codec has
  // failed and the iteration stopped, a verifying input can still report its digest check at its end,
  // and an 'error' with no listener is an uncaught exception. The first error wins.
  if (input instanceof Readable) input.on('error', (err) => out.destroy(err));
  (async () => {
    const it = (input as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    const parts: Buffer[] = [];
    let have = 0;
    while (have < SNIFF_BYTES) {
      const r = await it.next();
      if (r.done) break;
      const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
      parts.push(b);
      have += b.length;
    }
    const head = Buffer.concat(parts);
    const src = Readable.from(prepend(head, it), { objectMode: false });
    kind = detectCompression(head);
    switch (kind) {
      case 'gzip':
        return pipeline(src, (require('node:zlib') as typeof zlib).createGunzip(), out);
      case 'zstd':
        return pipeline(src, zstdDecompressor(), out);
      case 'bzip2':
        return external('bzip2', src, out);
      case 'xz':
        return external('xz', src, out);
      case 'none':
        return pipeline(src, out);
    }
  })().catch((err: Error & { code?: string }) => {
    // zlib's messages ("incorrect header check") do not say which codec failed
    if (kind === 'gzip' && err.code?.startsWith('Z_')) err.message = `gzip: ${err.message}`;
    out.destroy(err);
  });
  return out;
}
