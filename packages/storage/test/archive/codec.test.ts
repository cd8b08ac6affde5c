// The layer codec round trip, determinism, GNU tar interop and the reader's edge cases.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { lsetxattr, mknod } from '@tsbuild/native';
import { applyTar } from '../../src/archive/apply';
import { layerDigest, packDir } from '../../src/archive/pack';
import { listTar, readTar, TarFormatError } from '../../src/archive/tar-reader';
import { buildTar, encodeEntryHeader, tarStream } from '../../src/archive/tar-writer';
import { chunked, globalPaxEntry, gnuLongEntry, makeTar, paxEntry } from '../../../../fixtures/tars';
import { errorOf } from '../../../../test/helpers/errors';
import { bufferStream, collect } from '../../../../test/helpers/streams';
import { tempRootsPerTest } from '../../../../test/helpers/temp';
import { snapshot } from '../../../../test/helpers/tree';

/** VFS_CAP_REVISION_2 + effective, permitted net_raw|setuid|net_bind_service: what `setcap cap_net_raw,cap_setuid,cap_net_bind_service+ep` writes. */
const CAPABILITY = Buffer.from('0100000280240000000000000000000000000000', 'hex');
const BINARY_XATTR = Buffer.from([0x00, 0xff, 0x80, 0x7f, 0x00, 0xc3, 0x28, 0x0a, 0x3d]);
const BIG_ID = 1_000_000;
const T = 1_234_567_890;

const NAME_150 = 'n'.repeat(150);
const NAME_300 = `${'p'.repeat(100)}/${'q'.repeat(100)}/${'r'.repeat(98)}`;
const LONG_TARGET = `${'../'.repeat(40)}etc/owned`;

/** A tree with every shape a layer must keep. */
function makeTree(dir: string): void {
  const p = (rel: string) => path.join(dir, rel);
  for (const d of ['etc', 'bin', 'dev', 'hl', 'deep/a/b/c/d/e/f', 'p'.repeat(100) + '/' + 'q'.repeat(100)]) fs.mkdirSync(p(d), { recursive: true });
  fs.writeFileSync(p('etc/owned'), 'owned by a big uid\n');
  fs.lchownSync(p('etc/owned'), BIG_ID, BIG_ID);
  fs.writeFileSync(p('bin/ping'), Buffer.alloc(70_000, 7)); // more than one read chunk of the tar
  fs.chmodSync(p('bin/ping'), 0o755);
  lsetxattr(p('bin/ping'), 'security.capability', CAPABILITY);
  fs.writeFileSync(p('etc/binary-xattr'), 'x');
  lsetxattr(p('etc/binary-xattr'), 'user.blob', BINARY_XATTR);
  lsetxattr(p('etc'), 'user.dir', Buffer.from('on a dir'));
  fs.writeFileSync(p(NAME_150), 'a 150-byte name');
  fs.writeFileSync(p(NAME_300), 'a 300-byte name');
  fs.symlinkSync('../../../../../../../etc/owned', p('deep/a/b/c/d/e/f/link'));
  fs.symlinkSync(LONG_TARGET, p('deep/long-target'));
  fs.writeFileSync(p('hl/one'), 'linked');
  fs.linkSync(p('hl/one'), p('hl/two'));
  fs.linkSync(p('hl/one'), p('hl/three'));
  mknod(p('dev/fifo'), { type: 'fifo', mode: 0o620 });
  mknod(p('dev/null'), { type: 'char', mode: 0o666, major: 1, minor: 3 });
  mknod(p('dev/loop0'), { type: 'block', mode: 0o660, major: 7, minor: 0 });
  // mknod applies the umask: set the exact modes
  fs.chmodSync(p('dev/null'), 0o666);
  fs.chmodSync(p('dev/fifo'), 0o620);
  fs.chmodSync(p('dev/loop0'), 0o660);
  fs.writeFileSync(p('bin/su'), '#!/bin/sh\n');
  fs.chmodSync(p('bin/su'), 0o4755);
  fs.writeFileSync(p('bin/wall'), '#!/bin/sh\n');
  fs.chmodSync(p('bin/wall'), 0o2755);
  fs.mkdirSync(p('tmp'));
  fs.chmodSync(p('tmp'), 0o1777);
  fs.mkdirSync(p('shared'));
  fs.chownSync(p('shared'), 1000, 50);
  fs.chmodSync(p('shared'), 0o2775);
  fs.writeFileSync(p('empty'), '');
  // fixed times everywhere, dirs last (children change their parents' mtime)
  const all: string[] = [];
  const walk = (rel: string) => {
    for (const n of fs.readdirSync(p(rel))) {
      const r = rel ? `${rel}/${n}` : n;
      all.push(r);
      if (fs.lstatSync(p(r)).isDirectory()) walk(r);
    }
  };
  walk('');
  for (const r of all.reverse()) fs.lutimesSync(p(r), T + r.length, T + r.length);
}

const newRoot = tempRootsPerTest();
let root: string;
beforeEach(() => {
  root = newRoot('codec');
});

describe('packDir → applyTar round trip', () => {
  it('keeps every lstat field, content, hard links, devices and binary xattrs', async () => {
    const src = path.join(root, 'src');
    const dst = path.join(root, 'dst');
    fs.mkdirSync(src);
    fs.mkdirSync(dst);
    makeTree(src);
    const tar = await collect(packDir(src, { whiteouts: 'none' }));
    const result = await applyTar(bufferStream(tar), dst, { whiteouts: 'merge' });
    expect(result.warnings).toEqual([]);
    expect(result.size).toBe(fs.statSync(path.join(src, 'bin/ping')).size + 19 + 1 + 15 + 15 + 6 + 10 + 10);

    const before = snapshot(src);
    const after = snapshot(dst);
    expect(after).toEqual(before);
    // the shapes themselves, so that an equal-but-empty snapshot cannot pass
    expect(after['etc/owned']).toMatchObject({ uid: BIG_ID, gid: BIG_ID });
    expect(after['bin/ping']!.xattrs['security.capability']).toBe(CAPABILITY.toString('hex'));
    expect(after['etc/binary-xattr']!.xattrs['user.blob']).toBe(BINARY_XATTR.toString('hex'));
    expect(after['hl/two']).toMatchObject({ nlink: 3, inode: 'hl/one' });
    expect(after['dev/null']).toMatchObject({ type: 'char', rdev: (0x103).toString(16), mode: '666' });
    expect(after['dev/loop0']).toMatchObject({ type: 'block', rdev: (0x700).toString(16) });
    expect(after['dev/fifo']).toMatchObject({ type: 'fifo', mode: '620' });
    expect(after['bin/su']!.mode).toBe('4755');
    expect(after['bin/wall']!.mode).toBe('2755');
    expect(after['tmp']!.mode).toBe('1777');
    expect(after['shared']).toMatchObject({ mode: '2775', uid: 1000, gid: 50 });
    expect(after[NAME_300]!.sha256).toBe(before[NAME_300]!.sha256);
    expect(after['deep/long-target']!.target).toBe(LONG_TARGET);
    expect(after['etc']!.mtime).toBe(T + 3);

    // the diffID covers every byte, trailing zero blocks included
    const { diffID, size } = await layerDigest(src, { whiteouts: 'none' });
    expect(size).toBe(tar.length);
    expect(result.diffID).toBe(diffID);
  });

  it('is deterministic: same dir twice, and a copy with the same metadata, give the same bytes', async () => {
    const src = path.join(root, 'src');
    fs.mkdirSync(src);
    makeTree(src);
    const a = await collect(packDir(src, { whiteouts: 'none' }));
    const b = await collect(packDir(src, { whiteouts: 'none' }));
    expect(a.equals(b)).toBe(true);
    const copy = path.join(root, 'copy');
    execFileSync('cp', ['-a', '--preserve=all', src, copy]);
    fs.lutimesSync(copy, fs.lstatSync(src).atime, fs.lstatSync(src).mtime);
    const digestSrc = await layerDigest(src, { whiteouts: 'none' });
    const digestCopy = await layerDigest(copy, { whiteouts: 'none' });
    expect(digestCopy).toEqual(digestSrc);
    expect(digestSrc.diffID).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('writes sorted names without ./, dirs with a slash, and clamps mtimes (SOURCE_DATE_EPOCH)', async () => {
    const src = path.join(root, 'src');
    fs.mkdirSync(path.join(src, 'a/b'), { recursive: true });
    for (const f of ['a-c', 'a/b/z', 'a/b/B', 'a/é', 'Z']) fs.writeFileSync(path.join(src, f), f);
    fs.lutimesSync(path.join(src, 'Z'), 100, 100);
    const headers = await listTar(packDir(src, { whiteouts: 'none', clampMtime: 1000 }));
    expect(headers.map((h) => h.name)).toEqual(['Z', 'a/', 'a/b/', 'a/b/B', 'a/b/z', 'a/é', 'a-c']);
    expect(headers.find((h) => h.name === 'Z')!.mtime).toBe(100);
    expect(headers.filter((h) => h.name !== 'Z').every((h) => h.mtime === 1000)).toBe(true);
    expect(headers.every((h) => h.uname === '' && h.gname === '')).toBe(true);
    const only = await listTar(packDir(src, { whiteouts: 'none', include: (p) => p !== 'a/b' }));
    expect(only.map((h) => h.name)).toEqual(['Z', 'a/', 'a/é', 'a-c']);
  });

  it('refuses a file that shrinks while it is packed', async () => {
    const src = path.join(root, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), Buffer.alloc(3 * 1024 * 1024));
    const stream = packDir(src, { whiteouts: 'none' });
    const first = await new Promise<Buffer>((resolve) => stream.once('data', resolve));
    expect(first.length).toBeGreaterThan(0);
    fs.truncateSync(path.join(src, 'f'), 10);
    const err = await errorOf(() => collect(stream));
    expect(err.message).toMatch(/entry "f": content is \d+ bytes, its header says 3145728/);
  });
});

describe('GNU tar 1.34 reads our output', () => {
  it('lists big owners and extracts the binary capability', async () => {
    const src = path.join(root, 'src');
    fs.mkdirSync(src);
    makeTree(src);
    const tarFile = path.join(root, 'layer.tar');
    fs.writeFileSync(tarFile, await collect(packDir(src, { whiteouts: 'none' })));
    const listing = execFileSync('tar', ['--numeric-owner', '-tvf', tarFile], { encoding: 'utf8' });
    expect(listing).toMatch(/^-rw-r--r-- 1000000\/1000000 +19 .* etc\/owned$/m);
    expect(listing).toMatch(/^-rwsr-xr-x 0\/0 .* bin\/su$/m);
    expect(listing).toMatch(/^crw-rw-rw- 0\/0 +1,3 .* dev\/null$/m);
    expect(listing).toMatch(/^brw-rw---- 0\/0 +7,0 .* dev\/loop0$/m);
    expect(listing).toContain(`${NAME_300}\n`);
    expect(listing).toContain(`${NAME_150}\n`);
    expect(listing).toMatch(/^hrw-r--r-- 0\/0 +0 .* hl\/three link to hl\/one$/m);
    expect(listing).toContain(`deep/long-target -> ${LONG_TARGET}`);

    const out = path.join(root, 'gnu');
    fs.mkdirSync(out);
    execFileSync('tar', ['--xattrs', "--xattrs-include=*", '--numeric-owner', '-xpf', tarFile, '-C', out]);
    const dump = execFileSync('getfattr', ['-d', '-m', '-', '-e', 'hex', path.join(out, 'bin/ping'), path.join(out, 'etc/binary-xattr')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(dump).toContain(`security.capability=0x${CAPABILITY.toString('hex')}`);
    expect(dump).toContain(`user.blob=0x${BINARY_XATTR.toString('hex')}`);
    expect(fs.statSync(path.join(out, 'etc/owned')).uid).toBe(BIG_ID);
  });

  it('and we read what GNU tar writes (gnu format long names, posix format, sparse-free)', async () => {
    const src = path.join(root, 'src');
    fs.mkdirSync(src);
    makeTree(src);
    for (const format of ['gnu', 'posix', 'ustar']) {
      const tarFile = path.join(root, `${format}.tar`);
      const args = ['--format', format, '--numeric-owner', '--sort=name', '-C', src, '-cf', tarFile];
      if (format === 'ustar') {
        // ustar cannot hold the long names, big ids or devices beyond its limits: a small subset
        execFileSync('tar', [...args, 'bin/su', 'dev/null', 'hl']);
      } else {
        execFileSync('tar', [...args, ...(format === 'posix' ? ['--xattrs', '--xattrs-include=*'] : []), '.']);
      }
      const headers = await listTar(fs.createReadStream(tarFile));
      const byName = new Map(headers.map((h) => [h.name.replace(/^\.\//, ''), h]));
      if (format !== 'ustar') {
        expect(byName.get(NAME_300)?.size).toBe(15);
        expect(byName.get(NAME_150)?.type).toBe('file');
        expect(byName.get('etc/owned')).toMatchObject({ uid: BIG_ID, gid: BIG_ID });
        expect(byName.get('deep/long-target')?.linkname).toBe(LONG_TARGET);
      }
      expect(byName.get('dev/null')).toMatchObject({ type: 'char', devmajor: 1, devminor: 3 });
      expect(byName.get('bin/su')?.mode).toBe(0o4755);
      if (format === 'posix') expect(byName.get('bin/ping')?.xattrs.get('security.capability')).toEqual(CAPABILITY);
    }
  });
});

describe('tar writer', () => {
  it('uses pax and base-256 for ids above 0o7777777 and sizes above 8 GiB', async () => {
    const header = encodeEntryHeader({ name: 'huge', type: 'file', uid: 0o7777777 + 1, gid: 3_000_000_000, size: 10 * 2 ** 30, mtime: 2 ** 34 });
    expect(header.length).toBe(3 * 512); // pax header, its records, the ustar header
    const records = header.subarray(512, 1024).toString('latin1');
    expect(records).toContain('uid=2097152\n');
    expect(records).toContain('gid=3000000000\n');
    expect(records).toContain('size=10737418240\n');
    expect(records).toContain('mtime=17179869184\n');
    expect(header[1024 + 108]).toBe(0x80); // base-256 marker in the ustar uid field
    // read it back: the header is right, then the missing content is reported
    const iter = readTar(bufferStream(Buffer.concat([header, Buffer.alloc(4096)])));
    const first = await iter.next();
    expect(first.value!.header).toMatchObject({ name: 'huge', uid: 2097152, gid: 3_000_000_000, size: 10 * 2 ** 30, mtime: 2 ** 34 });
    const err = await errorOf(() => first.value!.drain());
    expect(err.message).toMatch(/^unexpected end of tar stream at offset \d+ \(in the content of "huge"\)/);
  });

  it('splits long names into the ustar prefix when they fit, else pax path', async () => {
    const fits = `${'d'.repeat(120)}/${'f'.repeat(90)}`;
    const h = encodeEntryHeader({ name: fits, type: 'file' });
    expect(h.length).toBe(512);
    expect(h.subarray(345, 345 + 120).toString()).toBe('d'.repeat(120));
    expect(encodeEntryHeader({ name: 'é', type: 'file' }).length).toBe(3 * 512); // non-ASCII: pax path
    const names = (await listTar(bufferStream(buildTar([{ header: { name: fits, type: 'file' } }, { header: { name: NAME_150, type: 'file' } }])))).map((x) => x.name);
    expect(names).toEqual([fits, NAME_150]);
  });

  it('streams with backpressure: a body is pulled only as the consumer reads', async () => {
    let pulled = 0;
    async function* body() {
      for (let i = 0; i < 64; i++) {
        pulled++;
        yield Buffer.alloc(64 * 1024, i);
      }
    }
    const stream = tarStream([{ header: { name: 'big', type: 'file', size: 64 * 64 * 1024 }, body: body() }]);
    await new Promise((resolve) => stream.once('readable', resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(pulled).toBeLessThan(8);
    const all = await collect(stream);
    expect(pulled).toBe(64);
    expect(all.length).toBe(512 + 64 * 64 * 1024 + 1024);
  });

  it('rejects shapes it cannot write', () => {
    expect(() => encodeEntryHeader({ name: '', type: 'file' })).toThrow(/empty name/);
    expect(() => encodeEntryHeader({ name: 'a\0b', type: 'file' })).toThrow(/NUL/);
    expect(() => encodeEntryHeader({ name: 'l', type: 'symlink' })).toThrow(/needs a link name/);
    expect(() => encodeEntryHeader({ name: 'd', type: 'dir', size: 3 })).toThrow(/cannot have content/);
    expect(() => encodeEntryHeader({ name: 'x', type: 'file', xattrs: { 'a=b': 'v' } })).toThrow(/pax record/);
  });
});

describe('tar reader', () => {
  it('reads GNU long names, global pax headers, v7 dirs and base-256 numbers, in tiny chunks', async () => {
    const long = `${'L'.repeat(200)}/file`;
    const tar = makeTar([
      globalPaxEntry({ uname: 'global', 'SCHILY.xattr.user.g': Buffer.from([0xfe]) }),
      gnuLongEntry('L', long),
      gnuLongEntry('K', `${'K'.repeat(150)}`),
      { raw: { typeflag: '1', name: 'truncated-name', linkname: 'truncated-link', format: 'gnu' } },
      paxEntry({ path: 'pax/name', uid: '4000000000', 'SCHILY.xattr.user.bin': Buffer.from([0, 0xff]) }),
      { raw: { typeflag: '0', name: 'ignored', data: 'abc' } },
      { raw: { typeflag: '\0', name: 'olddir/', format: 'v7' } },
      { name: 'after', content: 'z' },
    ]);
    const seen: Array<{ name: string; type: string; linkname: string; uid: number; body: string; x: string[] }> = [];
    for await (const e of readTar(chunked(tar, 7))) {
      seen.push({
        name: e.header.name,
        type: e.header.type,
        linkname: e.header.linkname,
        uid: e.header.uid,
        body: (await collect(e.body)).toString(),
        x: [...e.header.xattrs].map(([k, v]) => `${k}=${v.toString('hex')}`),
      });
    }
    expect(seen).toEqual([
      { name: long, type: 'hardlink', linkname: 'K'.repeat(150), uid: 0, body: '', x: ['user.g=fe'] },
      { name: 'pax/name', type: 'file', linkname: '', uid: 4_000_000_000, body: 'abc', x: ['user.g=fe', 'user.bin=00ff'] },
      { name: 'olddir/', type: 'dir', linkname: '', uid: 0, body: '', x: ['user.g=fe'] },
      { name: 'after', type: 'file', linkname: '', uid: 0, body: 'z', x: ['user.g=fe'] },
    ]);
  });

  it('names the offset of a bad checksum and of a truncation', async () => {
    const bad = makeTar([{ name: 'ok', content: 'x' }, { raw: { typeflag: '0', name: 'bad', badChecksum: true } }]);
    const err = await errorOf(() => listTar(bufferStream(bad)));
    expect(err).toBeInstanceOf(TarFormatError);
    expect(err.message).toMatch(/^invalid tar header at offset 1024: checksum mismatch/);

    const good = makeTar([{ name: 'file', content: 'y'.repeat(1000) }]);
    for (const cut of [100, 600, 1300, 1600]) {
      const e = await errorOf(() => listTar(bufferStream(good.subarray(0, cut))));
      expect(e.message).toMatch(/^unexpected end of tar stream at offset \d+/);
    }
    // ending exactly after an entry, without the zero blocks, is accepted (as GNU tar and Go do)
    expect((await listTar(bufferStream(good.subarray(0, 1536)))).map((h) => h.name)).toEqual(['file']);
    const gz = await errorOf(() => listTar(bufferStream(Buffer.from('1f8b0800000000000003', 'hex'))));
    expect(gz.message).toMatch(/unexpected end of tar stream at offset 0/);
  });

  it('skips unread bodies and reads the input to its end after the zero blocks', async () => {
    const tar = Buffer.concat([makeTar([{ name: 'a', content: 'A'.repeat(5000) }, { name: 'b', content: 'B' }]), Buffer.alloc(10 * 512)]);
    const names: string[] = [];
    let consumed = 0;
    async function* counting() {
      for (const c of [tar.subarray(0, 3000), tar.subarray(3000)]) {
        consumed += c.length;
        yield c;
      }
    }
    for await (const e of readTar(counting())) names.push(e.header.name);
    expect(names).toEqual(['a', 'b']);
    expect(consumed).toBe(tar.length);
  });

  // Found by the tar fuzzer (test/fuzz): an empty pax header read block by block crashed in ByteSource.
  it('reads an empty pax header (global or local) whatever the chunking', async () => {
    const tar = makeTar([globalPaxEntry({}), paxEntry({}), { name: 'after', content: 'x' }]);
    for (const chunk of [1, 7, 512, tar.length]) {
      expect((await listTar(chunked(tar, chunk))).map((h) => h.name)).toEqual(['after']);
    }
  });

  // Found by the tar fuzzer: a libarchive xattr name that is not URL-encoded threw a URIError.
  it('refuses a malformed LIBARCHIVE.xattr name with a TarFormatError', async () => {
    const tar = makeTar([paxEntry({ 'LIBARCHIVE.xattr.%': '' }), { name: 'x', content: '' }]);
    const err = await errorOf(() => listTar(bufferStream(tar)));
    expect(err).toBeInstanceOf(TarFormatError);
    expect(err.message).toMatch(/"LIBARCHIVE\.xattr\.%" is not a URL-encoded xattr name/);
  });

  it('refuses GNU sparse files clearly', async () => {
    const tar = makeTar([paxEntry({ 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0' }), { name: 'sparse', content: '' }]);
    const err = await errorOf(() => listTar(bufferStream(tar)));
    expect(err.message).toMatch(/GNU sparse files are not supported/);
  });
});
