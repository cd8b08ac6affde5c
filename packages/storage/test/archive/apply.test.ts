// applyTar details: replacing what exists, dir metadata after children, owners, xattr warnings, errors
// that name the entry, and the diffID over every input byte.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { lgetxattr } from '@tsbuild/native';
import { ApplyError, applyTar } from '../../src/archive/apply';
import { TarFormatError } from '../../src/archive/tar-reader';
import { chunked, makeTar, paxEntry } from '../../../../fixtures/tars';
import { errorOf } from '../../../../test/helpers/errors';
import { bufferStream } from '../../../../test/helpers/streams';
import { tempRootsPerTest } from '../../../../test/helpers/temp';

const newRoot = tempRootsPerTest();
let root: string;
let dest: string;
beforeEach(() => {
  root = newRoot('apply');
  dest = path.join(root, 'dest');
  fs.mkdirSync(dest);
});

const apply = (tar: Buffer, opts: Partial<Parameters<typeof applyTar>[2]> = {}) =>
  applyTar(chunked(tar, 333), dest, { whiteouts: 'merge', ...opts });

describe('applyTar', () => {
  it('replaces existing nodes: file over dir, symlink over file, and keeps a dir under a dir entry', async () => {
    fs.mkdirSync(path.join(dest, 'was-dir/child'), { recursive: true });
    fs.writeFileSync(path.join(dest, 'was-file'), 'old');
    fs.mkdirSync(path.join(dest, 'kept'));
    fs.writeFileSync(path.join(dest, 'kept/lower'), 'lower');
    fs.symlinkSync('/nowhere', path.join(dest, 'was-link'));
    await apply(
      makeTar([
        { name: 'was-dir', content: 'now a file' },
        { name: 'was-file', type: 'symlink', linkname: 'target' },
        { name: 'kept/', type: 'dir', mode: 0o750, uid: 12, gid: 34, mtime: 777 },
        { name: 'kept/upper', content: 'upper', mtime: 5 },
        { name: 'was-link', type: 'dir', mode: 0o700 },
      ]),
    );
    expect(fs.readFileSync(path.join(dest, 'was-dir'), 'utf8')).toBe('now a file');
    expect(fs.readlinkSync(path.join(dest, 'was-file'))).toBe('target');
    expect(fs.readdirSync(path.join(dest, 'kept')).sort()).toEqual(['lower', 'upper']);
    const kept = fs.statSync(path.join(dest, 'kept'));
    expect(kept).toMatchObject({ mode: 0o40750, uid: 12, gid: 34 });
    expect(kept.mtimeMs).toBe(777_000); // set after its child was created
    expect(fs.lstatSync(path.join(dest, 'was-link')).isDirectory()).toBe(true);
  });

  it('sets read-only dir modes and times last, implied parents 0755, the root from a ./ entry', async () => {
    await apply(
      makeTar([
        { name: './', type: 'dir', mode: 0o711, mtime: 42 },
        { name: 'ro/', type: 'dir', mode: 0o555, mtime: 1000 },
        { name: 'ro/f', content: 'x', mode: 0o444, mtime: 2000 },
        { name: 'implied/deeper/f', content: 'y' },
      ]),
    );
    expect(fs.statSync(path.join(dest, 'ro'))).toMatchObject({ mode: 0o40555, mtimeMs: 1_000_000 });
    expect(fs.statSync(path.join(dest, 'ro/f'))).toMatchObject({ mode: 0o100444, mtimeMs: 2_000_000 });
    expect(fs.statSync(path.join(dest, 'implied/deeper')).mode).toBe(0o40755);
    expect(fs.statSync(dest)).toMatchObject({ mode: 0o40711, mtimeMs: 42_000 });
  });

  it('keeps setuid after chown and capabilities after both; noChown leaves owners alone', async () => {
    const cap = Buffer.from('0100000280240000000000000000000000000000', 'hex');
    const tar = makeTar([{ name: 'su', content: 'x', mode: 0o4755, uid: 7, gid: 8, xattrs: { 'security.capability': cap } }]);
    await apply(tar);
    expect(fs.statSync(path.join(dest, 'su'))).toMatchObject({ mode: 0o104755, uid: 7, gid: 8 });
    expect(lgetxattr(path.join(dest, 'su'), 'security.capability')).toEqual(cap);
    fs.rmSync(path.join(dest, 'su'));
    await apply(tar, { noChown: true });
    expect(fs.statSync(path.join(dest, 'su'))).toMatchObject({ uid: 0, gid: 0 });
  });

  it('warns instead of failing on xattrs a node cannot hold, and never takes overlay xattrs from a tar', async () => {
    const r = await apply(
      makeTar([
        { name: 'link', type: 'symlink', linkname: 'x', xattrs: { 'user.nope': 'v' } },
        { name: 'd/', type: 'dir', xattrs: { 'trusted.overlay.opaque': 'y', 'user.ok': 'fine' } },
      ]),
      { whiteouts: 'overlay' },
    );
    expect(r.warnings).toEqual(['link: xattr user.nope not set (EPERM)', 'd/: overlay-private xattr trusted.overlay.opaque ignored']);
    expect(lgetxattr(path.join(dest, 'd'), 'trusted.overlay.opaque')).toBeNull();
    expect(lgetxattr(path.join(dest, 'd'), 'user.ok')?.toString()).toBe('fine');
  });

  it('hashes every input byte into the diffID, extra zero blocks and trailing bytes included', async () => {
    const tar = Buffer.concat([makeTar([{ name: 'f', content: 'z'.repeat(3000) }]), Buffer.alloc(4096), Buffer.from('trailing')]);
    const r = await apply(tar);
    expect(r).toMatchObject({ diffID: `sha256:${crypto.createHash('sha256').update(tar).digest('hex')}`, size: 3000 });
  });

  it('names the entry in its errors', async () => {
    const cases: Array<[Buffer, RegExp]> = [
      [makeTar([{ name: 'dangling', type: 'hardlink', linkname: 'missing' }]), /^tar entry "dangling": hard link target "missing" does not exist$/],
      [makeTar([{ name: 'd/', type: 'dir' }, { name: 'l', type: 'hardlink', linkname: 'd' }]), /^tar entry "l": hard link target "d" is a directory$/],
      [makeTar([{ name: 'f', content: 'x' }, { name: 'f/g', content: 'y' }]), /^cannot extract tar entry "f\/g": its parent "f" is not a directory$/],
      [makeTar([{ raw: { typeflag: 'V', name: 'volume-label' } }]), /^tar entry "volume-label" has an unsupported type 'V'$/],
      [makeTar([{ name: './', content: '' }]), /names the extraction root but is not a directory/],
    ];
    for (const [tar, message] of cases) {
      const err = await errorOf(() => apply(tar));
      expect(err).toBeInstanceOf(ApplyError);
      expect(err.message).toMatch(message);
    }
    const truncated = makeTar([{ name: 'big', content: 'b'.repeat(5000) }]).subarray(0, 3000);
    const err = await errorOf(() => apply(truncated));
    expect(err.message).toMatch(/^cannot extract tar entry "big": unexpected end of tar stream at offset 3000/);
    const garbage = await errorOf(() => applyTar(bufferStream(Buffer.alloc(1024, 1)), dest, { whiteouts: 'merge' }));
    expect(garbage).toBeInstanceOf(TarFormatError);
    expect(garbage.message).toMatch(/^invalid tar header at offset 0/);
    expect((await errorOf(() => applyTar(bufferStream(Buffer.alloc(0)), path.join(root, 'missing'), { whiteouts: 'merge' }))).message).toMatch(/destination .*missing cannot be used: ENOENT/);
  });

  it('applies pax names, owners and times from the tar', async () => {
    await apply(makeTar([paxEntry({ path: 'from/pax', uid: '3000000', mtime: '1700000000.5', atime: '1600000000' }), { name: 'ignored', content: 'p' }]));
    const st = fs.statSync(path.join(dest, 'from/pax'));
    expect(st).toMatchObject({ uid: 3_000_000, mtimeMs: 1_700_000_000_500, atimeMs: 1_600_000_000_000 });
  });
});
