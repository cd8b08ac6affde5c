// SHA-256 and random bytes without node:crypto (cc/sha256.cc: OpenSSL from node's own symbols, and
// getrandom(2)). node:crypto's JavaScript took ~8 ms of every CLI command to compile and run on its first
// require (README, Performance). The API is the subset of node:crypto's the packages use, with the same
// results: `createHash('sha256')` (update with strings as UTF-8 or bytes, digest as a Buffer or hex) and
// `randomBytes(size)`.
import { binding } from './binding';

type Data = string | NodeJS.TypedArray;

function checkData(fn: string, data: unknown): asserts data is Data {
  if (typeof data !== 'string' && !(ArrayBuffer.isView(data) && !(data instanceof DataView))) throw new TypeError(`${fn}: data must be a string or a Buffer/typed array (got ${typeof data})`);
}

/** An incremental SHA-256, as node:crypto's Hash: update() any number of times, then digest() once. */
export class Sha256 {
  private handle: unknown = binding.sha256Create();

  /** Adds `data` (a string as UTF-8). */
  update(data: Data): this {
    checkData('sha256.update', data);
    if (this.handle === undefined) throw new Error('sha256.update: the digest was already taken');
    binding.sha256Update(this.handle, data);
    return this;
  }

  /** The digest of everything added, as 32 bytes or lowercase hex. The hash cannot be used after it. */
  digest(): Buffer;
  digest(encoding: 'hex'): string;
  digest(encoding?: 'hex'): Buffer | string {
    if (this.handle === undefined) throw new Error('sha256.digest: the digest was already taken');
    const bytes = binding.sha256Digest(this.handle);
    this.handle = undefined;
    return encoding === undefined ? bytes : bytes.toString(encoding);
  }
}

/** node:crypto's createHash for the one algorithm tsbuild uses. */
export function createHash(algorithm: 'sha256'): Sha256 {
  if (algorithm !== 'sha256') throw new Error(`createHash: only sha256 is supported (got ${String(algorithm)})`);
  return new Sha256();
}

/** The SHA-256 of `data` in one call. */
export function sha256(data: Data): Buffer {
  checkData('sha256', data);
  return binding.sha256(data);
}

/** `size` bytes from the kernel's CSPRNG (getrandom), as node:crypto's randomBytes. */
export function randomBytes(size: number): Buffer {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`randomBytes: size must be a non-negative integer (got ${size})`);
  const bytes = Buffer.allocUnsafe(size);
  if (size > 0) binding.randomFill(bytes);
  return bytes;
}
