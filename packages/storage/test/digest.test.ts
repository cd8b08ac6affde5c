import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  chainIDs,
  digestFile,
  HashingStream,
  isDigest,
  parseDigest,
  sha256OfBuffer,
  verifyingStream,
} from '../src/digest';

const EMPTY = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

async function drain(s: NodeJS.ReadableStream): Promise<void> {
  for await (const _ of s as AsyncIterable<unknown>);
}

describe('digest', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-digest-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('parses valid digests and explains invalid ones', () => {
    expect(parseDigest(EMPTY)).toBe(EMPTY);
    expect(isDigest(EMPTY)).toBe(true);
    expect(isDigest('sha256:abc')).toBe(false);
    expect(() => parseDigest('abc')).toThrow(/invalid digest "abc": expected "sha256:"/);
    expect(() => parseDigest(`sha512:${'a'.repeat(128)}`)).toThrow(/unsupported algorithm "sha512"/);
    expect(() => parseDigest('sha256:abcd')).toThrow(/expected 64 hex digits, got 4/);
    expect(() => parseDigest(`sha256:${'A'.repeat(64)}`)).toThrow(/lowercase/);
  });

  it('hashes buffers and files', async () => {
    expect(sha256OfBuffer(Buffer.alloc(0))).toBe(EMPTY);
    const data = crypto.randomBytes(3 << 20);
    const file = path.join(tmp, 'f');
    fs.writeFileSync(file, data);
    const expected = `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
    expect(sha256OfBuffer(data)).toBe(expected);
    expect(await digestFile(file)).toEqual({ digest: expected, size: data.length });
  });

  it('HashingStream passes bytes through and reports digest and count', async () => {
    const data = crypto.randomBytes(100_000);
    const h = new HashingStream();
    const chunks: Buffer[] = [];
    h.on('data', (c: Buffer) => chunks.push(c));
    await pipeline(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), h);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    expect(h.bytes).toBe(data.length);
    expect(h.digest()).toBe(sha256OfBuffer(data));
  });

  it('verifyingStream accepts matching bytes and names the digest when they differ', async () => {
    const data = Buffer.from('hello world');
    const good = sha256OfBuffer(data);
    await drain(Readable.from([data]).pipe(verifyingStream(good, data.length)));
    const bad = sha256OfBuffer('other');
    const err = await drain(Readable.from([data]).pipe(verifyingStream(bad))).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toBe(`blob ${bad} is corrupt: expected ${bad}, got ${good}`);
    const short = await drain(Readable.from([data]).pipe(verifyingStream(good, 100))).catch((e) => e);
    expect(short.message).toMatch(new RegExp(`blob ${good} is corrupt: expected 100 bytes, got 11`));
    const long = await drain(Readable.from([data]).pipe(verifyingStream(good, 5))).catch((e) => e);
    expect(long.message).toMatch(/expected 5 bytes, got more/);
    expect(() => verifyingStream('sha256:nope' as never)).toThrow(/invalid digest/);
  });

  it('computes chain IDs as the OCI spec defines them', () => {
    const a = sha256OfBuffer('a');
    const b = sha256OfBuffer('b');
    const c = sha256OfBuffer('c');
    const ab = sha256OfBuffer(`${a} ${b}`);
    expect(chainIDs([a, b, c])).toEqual([a, ab, sha256OfBuffer(`${ab} ${c}`)]);
    expect(chainIDs([])).toEqual([]);
  });
});
