// cc/sha256.cc through src/hash.ts: the same digests as node:crypto, on inputs around OpenSSL's 64-byte
// block and the stack/heap boundary of string conversion; random bytes from getrandom.
import * as crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createHash, randomBytes, sha256 } from '@tsbuild/native';

const nodeHex = (...parts: (string | Uint8Array)[]) => {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

/** Deterministic bytes (not random: a failure must reproduce). */
function bytes(n: number, seed = 1): Buffer {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const SIZES = [0, 1, 31, 32, 55, 56, 63, 64, 65, 127, 128, 1000, 1023, 1024, 1025, 4096, 65536, 1 << 20, (1 << 20) + 7];

describe('sha256 without node:crypto', () => {
  it('hashes bytes one-shot and incrementally like node:crypto', () => {
    for (const n of SIZES) {
      const data = bytes(n, n + 1);
      expect(sha256(data).toString('hex')).toBe(nodeHex(data));
      expect(createHash('sha256').update(data).digest('hex')).toBe(nodeHex(data));
      // Split at every block-relevant offset: the incremental state must carry over partial blocks.
      for (const cut of [0, 1, 63, 64, 65, n >> 1, n]) {
        if (cut > n) continue;
        const h = createHash('sha256').update(data.subarray(0, cut)).update(data.subarray(cut));
        expect(h.digest()).toEqual(crypto.createHash('sha256').update(data).digest());
      }
    }
  });

  it('hashes a view at an offset into a larger buffer, and typed arrays other than Buffer', () => {
    const big = bytes(300);
    const view = big.subarray(17, 250);
    expect(sha256(view).toString('hex')).toBe(nodeHex(view));
    const words = new Uint32Array(big.buffer, big.byteOffset + 4, 20);
    expect(createHash('sha256').update(words).digest('hex')).toBe(nodeHex(new Uint8Array(words.buffer, words.byteOffset, words.byteLength)));
  });

  it('hashes strings as UTF-8, short and long (over the stack buffer), ASCII and not', () => {
    for (const s of ['', 'a', 'abc', 'é', '漢字', '😀', 'x'.repeat(1024), 'x'.repeat(1025), 'é'.repeat(512), 'é'.repeat(513), '\0nul\0', 'a\ud800b', 'ß'.repeat(100_000)]) {
      expect(sha256(s).toString('hex')).toBe(nodeHex(s));
      expect(createHash('sha256').update(s).update(Buffer.from(s)).update(s).digest('hex')).toBe(nodeHex(s, Buffer.from(s), s));
    }
    expect(sha256('abc').toString('hex')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('refuses other algorithms, other data and use after digest', () => {
    expect(() => createHash('md5' as 'sha256')).toThrow(/only sha256/);
    expect(() => sha256(42 as unknown as string)).toThrow(TypeError);
    expect(() => createHash('sha256').update(new DataView(new ArrayBuffer(4)) as unknown as Uint8Array)).toThrow(TypeError);
    const h = createHash('sha256').update('a');
    h.digest();
    expect(() => h.digest()).toThrow(/already taken/);
    expect(() => h.update('b')).toThrow(/already taken/);
  });

  it('gives random bytes of the size asked, different each time', () => {
    expect(randomBytes(0)).toEqual(Buffer.alloc(0));
    const a = randomBytes(32);
    const b = randomBytes(32);
    expect(a.length).toBe(32);
    expect(a.equals(b)).toBe(false);
    expect(randomBytes(1 << 20).length).toBe(1 << 20);
    expect(() => randomBytes(-1)).toThrow(RangeError);
    expect(() => randomBytes(1.5)).toThrow(RangeError);
  });
});
