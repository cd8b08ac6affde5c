// OCI digests (`sha256:<64 hex>`), hashing and verifying streams. Only sha256 is supported: it is what
// every tool we interoperate with writes, and refusing the rest keeps blob paths simple.
import { createHash } from '@tsbuild/native';
import * as fs from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { TsbuildError } from './errors';

export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && DIGEST_RE.test(s);
}

/** Validates `s` as an OCI sha256 digest; the error names what is wrong with it. */
export function parseDigest(s: string): Digest {
  if (typeof s !== 'string') throw new Error(`invalid digest: expected a string, got ${typeof s}`);
  if (DIGEST_RE.test(s)) return s as Digest;
  const colon = s.indexOf(':');
  if (colon < 0) throw new Error(`invalid digest "${s}": expected "sha256:" followed by 64 hex digits`);
  const algorithm = s.slice(0, colon);
  if (algorithm !== 'sha256') throw new Error(`invalid digest "${s}": unsupported algorithm "${algorithm}" (only sha256)`);
  const hex = s.slice(colon + 1);
  if (hex.length !== 64) throw new Error(`invalid digest "${s}": expected 64 hex digits, got ${hex.length} characters`);
  throw new Error(`invalid digest "${s}": the hex part must be lowercase 0-9a-f`);
}

/** The hex part of a digest (the blob file name). */
export function digestHex(d: Digest): string {
  return d.slice('sha256:'.length);
}

export function sha256OfBuffer(data: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** A pass-through Transform that hashes and counts the bytes flowing through it. */
export class HashingStream extends Transform {
  private readonly hash = createHash('sha256');
  private finalDigest: Digest | undefined;
  /** Bytes seen so far. */
  bytes = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.finalDigest = `sha256:${this.hash.digest('hex')}`;
    this.onDigest(this.finalDigest, cb);
  }

  /** Hook for subclasses: called once at the end, before the stream finishes. */
  protected onDigest(_d: Digest, cb: TransformCallback): void {
    cb();
  }

  /** The digest of everything that passed; only valid once the stream has flushed. */
  digest(): Digest {
    if (!this.finalDigest) throw new Error('HashingStream.digest() called before the stream ended');
    return this.finalDigest;
  }
}

/** The error a corrupt blob produces; `code` lets callers tell it from I/O errors. */
export class DigestMismatchError extends TsbuildError {
  constructor(
    readonly expected: Digest,
    readonly actual: Digest,
    detail?: string,
  ) {
    super('EDIGEST', `blob ${expected} is corrupt: expected ${expected}, got ${actual}${detail ? ` (${detail})` : ''}`);
  }
}

class VerifyingStream extends HashingStream {
  constructor(
    private readonly expected: Digest,
    private readonly expectedSize?: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, enc: BufferEncoding, cb: TransformCallback): void {
    if (this.expectedSize !== undefined && this.bytes + chunk.length > this.expectedSize) {
      cb(new Error(`blob ${this.expected} is corrupt: expected ${this.expectedSize} bytes, got more`));
      return;
    }
    super._transform(chunk, enc, cb);
  }

  protected override onDigest(d: Digest, cb: TransformCallback): void {
    if (this.expectedSize !== undefined && this.bytes !== this.expectedSize) {
      cb(new Error(`blob ${this.expected} is corrupt: expected ${this.expectedSize} bytes, got ${this.bytes}`));
    } else if (d !== this.expected) {
      cb(new DigestMismatchError(this.expected, d));
    } else {
      cb();
    }
  }
}

/**
 * A pass-through that errors at the end (before 'finish'/'end') when the bytes do not hash to
 * `expected` or do not add up to `size`. Consumers must read to the end to get the check.
 */
export function verifyingStream(expected: Digest, size?: number): HashingStream {
  parseDigest(expected);
  return settleQuietly(new VerifyingStream(expected, size));
}

/** sha256 and size of a file, streamed. */
export async function digestFile(file: string): Promise<{ digest: Digest; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/** ChainID of a layer stack (OCI image spec): chain(L0) = diffID0, chain(Ln) = sha256(chain(n-1) + " " + diffIDn). */
export function chainIDs(diffIDs: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const diffID of diffIDs) {
    out.push(out.length === 0 ? diffID : sha256OfBuffer(`${out[out.length - 1]} ${diffID}`));
  }
  return out;
}

/**
 * Gives a stream a listener of last resort for 'error': every other listener still gets the error,
 * but one that comes after its reader stopped listening (a save that already failed on another layer,
 * a decompressor that gave up first; the digest check reports only at the end) does not become an
 * uncaught exception that ends the process. For the streams that verify bytes and hand them out.
 */
export function settleQuietly<S extends NodeJS.EventEmitter>(stream: S): S {
  stream.on('error', () => undefined);
  return stream;
}
