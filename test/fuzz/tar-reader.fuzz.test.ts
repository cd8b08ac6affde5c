// Fuzzing the layer tar reader (fast-check): any bytes, and valid tars with bytes flipped or cut, are
// either read or refused with a TsbuildError (TarFormatError) — never another exception, never a
// hang; and what the writer writes (any name bytes, modes, ids, times, xattrs, contents) reads back.
import { Readable } from 'node:stream';
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildTar, decodeName, encodeName, readTar, TsbuildError, type TarHeader, type TarWriteHeader } from '@tsbuild/storage';
import { globalPaxEntry, gnuLongEntry, makeTar, paxEntry } from '../../fixtures/tars';
import { fuzz, fuzzTestTimeout } from './budget';

const CI_SECONDS = 6;

/** Every entry with its content, reading the input in chunks of `chunk` bytes. */
async function readAll(buf: Uint8Array, chunk: number) {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) parts.push(Buffer.from(buf.subarray(i, i + chunk)));
  const out: { header: TarHeader; body: Buffer }[] = [];
  for await (const e of readTar(Readable.from(parts))) {
    const chunks: Buffer[] = [];
    for await (const c of e.body) chunks.push(c as Buffer);
    out.push({ header: e.header, body: Buffer.concat(chunks) });
  }
  return out;
}

/** Reading must end in entries or a TsbuildError. */
async function readsOrRefuses(buf: Uint8Array, chunk: number): Promise<void> {
  try {
    await readAll(buf, chunk);
  } catch (err) {
    if (!(err instanceof TsbuildError)) throw err;
  }
}

/** A path component: 1-40 arbitrary bytes, no '/' or NUL, not '.' or '..'. */
const component = fc
  .uint8Array({ minLength: 1, maxLength: 40 })
  .map((b) => Buffer.from(b.map((x) => (x === 0 || x === 0x2f ? 0x61 : x))))
  .filter((b) => b.toString('latin1') !== '.' && b.toString('latin1') !== '..');
const relPath = fc.array(component, { minLength: 1, maxLength: 6 }).map((cs) => decodeName(Buffer.concat(cs.flatMap((c, i) => (i ? [Buffer.from('/'), c] : [c])))));

const entrySpec = fc.record({
  type: fc.constantFrom('file', 'dir', 'symlink', 'hardlink', 'fifo', 'char') as fc.Arbitrary<TarWriteHeader['type']>,
  mode: fc.integer({ min: 0, max: 0o7777 }),
  uid: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  gid: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  mtime: fc.integer({ min: 0, max: 2 ** 34 }),
  link: relPath,
  content: fc.uint8Array({ maxLength: 1500 }),
  devmajor: fc.integer({ min: 0, max: 4095 }),
  devminor: fc.integer({ min: 0, max: 1 << 19 }),
  xattrs: fc.dictionary(fc.stringMatching(/^user\.[a-z0-9._-]{1,20}$/), fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)), { maxKeys: 3 }),
});

/** Entries with distinct names, as the writer takes them. */
const tarEntries = fc.uniqueArray(fc.tuple(relPath, entrySpec), { maxLength: 8, selector: ([name]) => name }).map((list) =>
  list.map(([name, s]) => {
    const header: TarWriteHeader = { name, type: s.type, mode: s.mode, uid: s.uid, gid: s.gid, mtime: s.mtime, xattrs: s.xattrs };
    if (s.type === 'symlink' || s.type === 'hardlink') header.linkname = s.link;
    if (s.type === 'char') Object.assign(header, { devmajor: s.devmajor, devminor: s.devminor });
    return { header, body: s.type === 'file' ? Buffer.from(s.content) : undefined };
  }),
);

describe('fuzz: tar reader', () => {
  it(
    'any bytes: read or refused with a TsbuildError',
    async () => {
      await fuzz('tar-any-bytes', fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), fc.integer({ min: 1, max: 700 }), (bytes, chunk) => readsOrRefuses(bytes, chunk)), CI_SECONDS);
    },
    fuzzTestTimeout(CI_SECONDS),
  );

  it(
    'valid tars with bytes overwritten and cut short: read or refused with a TsbuildError',
    async () => {
      const mutation = fc.record({
        writes: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 12 }),
        cut: fc.option(fc.nat()),
        chunk: fc.integer({ min: 1, max: 1024 }),
      });
      await fuzz('tar-mutated', fc.asyncProperty(tarEntries, mutation, async (entries, m) => {
          const tar = buildTar(entries);
          for (const [at, value] of m.writes) tar[at % tar.length] = value;
          await readsOrRefuses(m.cut === null ? tar : tar.subarray(0, m.cut % (tar.length + 1)), m.chunk);
        }), CI_SECONDS);
    },
    fuzzTestTimeout(CI_SECONDS),
  );

  it(
    'pax and GNU headers with any records: read or refused with a TsbuildError',
    async () => {
      const key = fc
        .oneof(
          fc.constantFrom('path', 'linkpath', 'size', 'uid', 'gid', 'mtime', 'atime', 'uname', 'hdrcharset', 'GNU.sparse.size', 'SCHILY.xattr.user.a'),
          fc.string({ maxLength: 12 }).map((k) => `LIBARCHIVE.xattr.${k}`),
          fc.string({ minLength: 1, maxLength: 12 }),
        )
        .filter((k) => !/[=\n\0]/.test(k)); // what a pax record can hold
      const value = fc.oneof(fc.string({ maxLength: 24 }), fc.integer().map(String), fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b)));
      const header = fc.oneof(
        fc.dictionary(key, value, { maxKeys: 4 }).map((r) => paxEntry(r)),
        fc.dictionary(key, value, { maxKeys: 3 }).map((r) => globalPaxEntry(r)),
        fc.tuple(fc.constantFrom('L' as const, 'K' as const), fc.string({ maxLength: 300 })).map(([k, v]) => gnuLongEntry(k, v)),
      );
      const body = fc.record({ name: fc.string({ minLength: 1, maxLength: 30 }).filter((n) => !n.includes('\0')), content: fc.string({ maxLength: 40 }) });
      await fuzz('tar-pax-gnu-headers', fc.asyncProperty(fc.array(fc.tuple(fc.array(header, { maxLength: 3 }), body), { maxLength: 4 }), fc.integer({ min: 1, max: 600 }), async (list, chunk) => {
          await readsOrRefuses(makeTar(list.flatMap(([headers, b]) => [...headers, b])), chunk);
        }), CI_SECONDS);
    },
    fuzzTestTimeout(CI_SECONDS),
  );

  it(
    'round trip: names of any bytes, modes, ids, times, xattrs and contents read back as written',
    async () => {
      await fuzz('tar-round-trip', fc.asyncProperty(tarEntries, fc.integer({ min: 1, max: 2048 }), async (entries, chunk) => {
          const read = await readAll(buildTar(entries), chunk);
          expect(read).toHaveLength(entries.length);
          read.forEach(({ header, body }, i) => {
            const w = entries[i]!;
            expect(encodeName(header.name.replace(/\/$/, ''))).toEqual(encodeName(w.header.name));
            expect([header.type, header.mode, header.uid, header.gid, header.mtime]).toEqual([w.header.type, w.header.mode, w.header.uid, w.header.gid, w.header.mtime]);
            if (w.header.linkname !== undefined) expect(encodeName(header.linkname)).toEqual(encodeName(w.header.linkname));
            if (w.header.type === 'char') expect([header.devmajor, header.devminor]).toEqual([w.header.devmajor, w.header.devminor]);
            expect(body).toEqual(w.body ?? Buffer.alloc(0));
            expect(Object.fromEntries(header.xattrs)).toEqual(w.header.xattrs);
          });
        }), CI_SECONDS);
    },
    fuzzTestTimeout(CI_SECONDS),
  );

  it(
    'file names: decodeName/encodeName keep any bytes; UTF-8 names decode to themselves',
    async () => {
      await fuzz('names-bytes', fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
          expect(encodeName(decodeName(Buffer.from(b)))).toEqual(Buffer.from(b));
        }), 2);
      await fuzz('names-utf8', fc.property(fc.string({ unit: 'grapheme', maxLength: 32 }), (s) => {
          expect(decodeName(Buffer.from(s, 'utf8'))).toBe(s);
        }), 2);
    },
    fuzzTestTimeout(4),
  );
});
