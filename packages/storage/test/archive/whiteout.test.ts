// Whiteouts both ways: overlay on disk (char 0/0, trusted.overlay.opaque) ↔ OCI tar (.wh.x,
// .wh..wh..opq), through a real overlay mount; the ToDisk(ToTar(x)) == x property; aufs and merge modes.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lgetxattr, lsetxattr, mknod, mountOverlaySync, umountSync } from '@tsbuild/native';
import { applyTar, type ApplyWhiteouts } from '../../src/archive/apply';
import { packDir } from '../../src/archive/pack';
import { listTar } from '../../src/archive/tar-reader';
import { makeTar, type TarSpec } from '../../../../fixtures/tars';
import { errorOf } from '../../../../test/helpers/errors';
import { bufferStream, collect } from '../../../../test/helpers/streams';
import { tempRoot } from '../../../../test/helpers/temp';
import { snapshot } from '../../../../test/helpers/tree';

let root: string;
const mounts: string[] = [];
beforeEach(() => {
  root = tempRoot('whiteout');
});
afterEach(() => {
  for (const m of mounts.splice(0).reverse()) {
    try {
      umountSync(m, { detach: true });
    } catch {
      // already unmounted
    }
  }
  fs.rmSync(root, { recursive: true, force: true });
});

function mkdirs(...dirs: string[]): void {
  for (const d of dirs) fs.mkdirSync(d, { recursive: true });
}

function mountUnion(lower: string, upper: string, name: string): string {
  const work = path.join(root, `${name}-work`);
  const target = path.join(root, `${name}-merged`);
  mkdirs(work, target);
  mountOverlaySync({ lower: [lower], upper, work, target, options: ['index=off', 'redirect_dir=off'] });
  mounts.push(target);
  return target;
}

function unmount(target: string): void {
  umountSync(target);
  mounts.splice(mounts.indexOf(target), 1);
}

const isOverlayPrivate = (name: string) => name.startsWith('trusted.overlay.') && name !== 'trusted.overlay.opaque';

describe('overlay ↔ OCI whiteouts through a real overlay mount', () => {
  it('packs an upper into .wh.file and dir/.wh..wh..opq, and applying that tar gives the same view', async () => {
    const lower = path.join(root, 'lower');
    mkdirs(path.join(lower, 'dir/sub'), path.join(lower, 'dir2'));
    fs.writeFileSync(path.join(lower, 'file'), 'lower file');
    fs.writeFileSync(path.join(lower, 'keep'), 'kept');
    fs.writeFileSync(path.join(lower, 'dir/old'), 'old');
    fs.writeFileSync(path.join(lower, 'dir/sub/deep'), 'deep');
    fs.writeFileSync(path.join(lower, 'dir2/x'), 'x');

    const upper = path.join(root, 'upper');
    mkdirs(upper);
    const merged = mountUnion(lower, upper, 'one');
    fs.rmSync(path.join(merged, 'file'));
    fs.rmSync(path.join(merged, 'dir'), { recursive: true });
    fs.mkdirSync(path.join(merged, 'dir'));
    fs.writeFileSync(path.join(merged, 'dir/new'), 'new');
    fs.writeFileSync(path.join(merged, 'dir2/y'), 'y');
    const view = snapshot(merged);
    expect(Object.keys(view).sort()).toEqual(['dir', 'dir/new', 'dir2', 'dir2/x', 'dir2/y', 'keep']);
    unmount(merged);

    // the kernel wrote overlay-format whiteouts
    expect(fs.lstatSync(path.join(upper, 'file')).isCharacterDevice()).toBe(true);
    expect(lgetxattr(path.join(upper, 'dir'), 'trusted.overlay.opaque')?.toString()).toBe('y');

    const tar = await collect(packDir(upper, { whiteouts: 'overlay' }));
    const headers = await listTar(bufferStream(tar));
    expect(headers.map((h) => h.name)).toEqual(['dir/', 'dir/.wh..wh..opq', 'dir/new', 'dir2/', 'dir2/y', '.wh.file'].sort(sortLikePack));
    const wh = headers.find((h) => h.name === '.wh.file')!;
    expect(wh).toMatchObject({ type: 'file', mode: 0o600, size: 0 });
    const dirHeader = headers.find((h) => h.name === 'dir/')!;
    expect([...dirHeader.xattrs.keys()].filter((k) => k.includes('overlay'))).toEqual([]);
    const opq = headers.find((h) => h.name === 'dir/.wh..wh..opq')!;
    expect(opq).toMatchObject({ type: 'file', size: 0, mode: dirHeader.mode & 0o777, uid: dirHeader.uid, gid: dirHeader.gid, mtime: dirHeader.mtime });

    const upper2 = path.join(root, 'upper2');
    mkdirs(upper2);
    await applyTar(bufferStream(tar), upper2, { whiteouts: 'overlay' });
    const whiteout = fs.lstatSync(path.join(upper2, 'file'));
    expect(whiteout.isCharacterDevice() && whiteout.rdev === 0).toBe(true);
    expect(lgetxattr(path.join(upper2, 'dir'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    expect(fs.existsSync(path.join(upper2, '.wh.file'))).toBe(false);
    expect(fs.existsSync(path.join(upper2, 'dir/.wh..wh..opq'))).toBe(false);

    const merged2 = mountUnion(lower, upper2, 'two');
    expect(snapshot(merged2)).toEqual(view);
    unmount(merged2);

    // and back to the same bytes
    expect((await collect(packDir(upper2, { whiteouts: 'overlay' }))).equals(tar)).toBe(true);
  });
});

/** packDir's order: bytewise within a dir, a dir's children right after it. */
function sortLikePack(a: string, b: string): number {
  const ka = a.split('/').filter(Boolean);
  const kb = b.split('/').filter(Boolean);
  for (let i = 0; i < Math.min(ka.length, kb.length); i++) {
    const c = Buffer.compare(Buffer.from(ka[i]!), Buffer.from(kb[i]!));
    if (c !== 0) return c;
  }
  return ka.length - kb.length;
}

describe('packDir whiteout conversion', () => {
  it('turns char 0/0 into .wh.<name> (0600, owner and time kept) and an opaque dir into a marker', async () => {
    const upper = path.join(root, 'upper');
    mkdirs(path.join(upper, 'opaque'));
    mknod(path.join(upper, 'gone'), { type: 'char', mode: 0, major: 0, minor: 0 });
    fs.lchownSync(path.join(upper, 'gone'), 5, 6);
    fs.lutimesSync(path.join(upper, 'gone'), 1000, 1000);
    mknod(path.join(upper, 'null'), { type: 'char', mode: 0o666, major: 1, minor: 3 });
    const opaque = path.join(upper, 'opaque');
    lsetxattr(opaque, 'trusted.overlay.opaque', Buffer.from('y'));
    lsetxattr(opaque, 'trusted.overlay.origin', Buffer.from([1, 2, 3]));
    lsetxattr(opaque, 'user.overlay.whatever', Buffer.from('z'));
    lsetxattr(opaque, 'user.keep', Buffer.from('kept'));
    fs.chmodSync(opaque, 0o2750);
    fs.chownSync(opaque, 7, 8);
    fs.lutimesSync(opaque, 2000, 2000);

    const overlay = await listTar(packDir(upper, { whiteouts: 'overlay' }));
    expect(overlay.map((h) => h.name)).toEqual(['.wh.gone', 'null', 'opaque/', 'opaque/.wh..wh..opq']);
    expect(overlay[0]).toMatchObject({ type: 'file', mode: 0o600, size: 0, uid: 5, gid: 6, mtime: 1000 });
    expect(overlay[1]).toMatchObject({ type: 'char', devmajor: 1, devminor: 3 });
    expect(overlay[2]).toMatchObject({ type: 'dir', mode: 0o2750, uid: 7, gid: 8, mtime: 2000 });
    expect([...overlay[2]!.xattrs.keys()]).toEqual(['user.keep']);
    expect(overlay[3]).toMatchObject({ type: 'file', mode: 0o750, size: 0, uid: 7, gid: 8, mtime: 2000 });

    const plain = await listTar(packDir(upper, { whiteouts: 'none' }));
    expect(plain.map((h) => `${h.type}:${h.name}`)).toEqual(['char:gone', 'char:null', 'dir:opaque/']);
    expect([...plain[2]!.xattrs.keys()]).toEqual(['user.keep']);
  });
});

/** A seeded PRNG (mulberry32), so the property trees are the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random overlay upper: files, dirs (some opaque), whiteouts, symlinks, hard links, xattrs, owners. */
function randomUpper(dir: string, seed: number): void {
  const rnd = prng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const dirs = [''];
  const files: string[] = [];
  for (let i = 0; i < 40; i++) {
    const parent = pick(dirs);
    const name = `${pick(['a', 'b', 'c', 'ü', 'x.y', '.hidden'])}${i}`;
    const rel = parent ? `${parent}/${name}` : name;
    const p = path.join(dir, rel);
    const kind = pick(['dir', 'dir', 'file', 'file', 'file', 'whiteout', 'symlink', 'hardlink']);
    if (kind === 'dir') {
      fs.mkdirSync(p);
      if (rnd() < 0.4) lsetxattr(p, 'trusted.overlay.opaque', Buffer.from('y'));
      fs.chmodSync(p, pick([0o755, 0o700, 0o2775, 0o1777]));
      dirs.push(rel);
    } else if (kind === 'file') {
      fs.writeFileSync(p, crypto.randomBytes(Math.floor(rnd() * 3000)));
      fs.chmodSync(p, pick([0o644, 0o600, 0o755, 0o4755]));
      if (rnd() < 0.3) lsetxattr(p, 'user.attr', Buffer.from([Math.floor(rnd() * 256), 0, 0xff]));
      files.push(rel);
    } else if (kind === 'whiteout') {
      mknod(p, { type: 'char', mode: 0, major: 0, minor: 0 });
    } else if (kind === 'symlink') {
      fs.symlinkSync(pick(['../x', '/abs/path', 'rel', '.']), p);
    } else if (files.length) {
      fs.linkSync(path.join(dir, pick(files)), p);
    } else continue;
    if (rnd() < 0.3) fs.lchownSync(p, Math.floor(rnd() * 3_000_000), Math.floor(rnd() * 3_000_000));
    fs.lutimesSync(p, 1_600_000_000 + i, 1_600_000_000 + i);
  }
  for (const d of dirs.slice(1).reverse()) fs.lutimesSync(path.join(dir, d), 1_500_000_000, 1_500_000_000);
}

describe('property: ToDisk(ToTar(x)) == x', () => {
  it.each([1, 2, 3, 4, 5])('random upper, seed %i', async (seed) => {
    const x = path.join(root, 'x');
    const y = path.join(root, 'y');
    mkdirs(x, y);
    randomUpper(x, seed);
    const tar = await collect(packDir(x, { whiteouts: 'overlay' }));
    await applyTar(bufferStream(tar), y, { whiteouts: 'overlay' });
    const sx = snapshot(x, { skipXattr: isOverlayPrivate });
    expect(Object.values(sx).some((n) => n.type === 'char')).toBe(true);
    expect(snapshot(y, { skipXattr: isOverlayPrivate })).toEqual(sx);
    // and ToTar(ToDisk(ToTar(x))) == ToTar(x)
    expect((await collect(packDir(y, { whiteouts: 'overlay' }))).equals(tar)).toBe(true);
  });
});

describe('invalid whiteout names', () => {
  it.each<ApplyWhiteouts>(['overlay', 'aufs', 'merge'])('are rejected in %s mode', async (mode) => {
    for (const name of ['.wh.', '.wh..', '.wh...', 'sub/.wh..']) {
      const dest = fs.mkdtempSync(path.join(root, 'dest-'));
      const err = await errorOf(() => applyTar(bufferStream(makeTar([{ name, mode: 0o600 }])), dest, { whiteouts: mode }));
      expect(err.message).toBe(`invalid whiteout entry ${JSON.stringify(name)}`);
    }
  });
});

describe('aufs mode', () => {
  it('keeps .wh. files and the opaque marker, extracts .wh..wh.plnk/, skips other aufs metadata', async () => {
    const dest = path.join(root, 'branch');
    mkdirs(dest);
    const entries: TarSpec[] = [
      { name: '.wh..wh.aufs', mode: 0o600 },
      { name: '.wh..wh.orph/', type: 'dir' },
      { name: '.wh..wh.orph/x', content: 'orphan' },
      { name: '.wh..wh.plnk/', type: 'dir', mode: 0o700 },
      { name: '.wh..wh.plnk/1234.5678', content: 'pseudo-linked', mode: 0o640 },
      { name: 'd/', type: 'dir' },
      { name: 'd/.wh..wh..opq', mode: 0o755 },
      { name: 'd/.wh..wh.meta', content: 'ignored' },
      { name: '.wh.gone', mode: 0o600 },
      { name: 'linked', type: 'hardlink', linkname: '.wh..wh.plnk/1234.5678' },
    ];
    await applyTar(bufferStream(makeTar(entries)), dest, { whiteouts: 'aufs' });
    expect(Object.keys(snapshot(dest)).sort()).toEqual(['.wh..wh.plnk', '.wh..wh.plnk/1234.5678', '.wh.gone', 'd', 'd/.wh..wh..opq', 'linked']);
    expect(fs.statSync(path.join(dest, '.wh.gone')).isFile()).toBe(true);
    expect(fs.statSync(path.join(dest, 'd/.wh..wh..opq')).size).toBe(0);
    expect(fs.statSync(path.join(dest, 'linked')).ino).toBe(fs.statSync(path.join(dest, '.wh..wh.plnk/1234.5678')).ino);
    expect(lgetxattr(path.join(dest, 'd'), 'trusted.overlay.opaque')).toBeNull();
  });
});

describe('packing an aufs branch', () => {
  it('writes .wh. files hard-linked to the whiteout base as plain empty files', async () => {
    const branch = path.join(root, 'branch');
    mkdirs(path.join(branch, 'd'));
    fs.writeFileSync(path.join(branch, '.wh..wh.aufs'), '');
    fs.linkSync(path.join(branch, '.wh..wh.aufs'), path.join(branch, '.wh.a'));
    fs.linkSync(path.join(branch, '.wh..wh.aufs'), path.join(branch, 'd/.wh.b'));
    fs.writeFileSync(path.join(branch, 'd/.wh..wh..opq'), '');
    const isMeta = (p: string) => p.split('/')[0]!.startsWith('.wh..wh.');
    const headers = await listTar(packDir(branch, { whiteouts: 'none', include: (p) => !isMeta(p) }));
    expect(headers.map((h) => `${h.type}:${h.name}`)).toEqual(['file:.wh.a', 'dir:d/', 'file:d/.wh..wh..opq', 'file:d/.wh.b']);
  });
});

/** Go's makeTestLayer: names ending in '/' are dirs, others files holding their own name. */
function layer(names: string[]): Buffer {
  return makeTar(names.map((n) => (n.endsWith('/') ? { name: n, type: 'dir' as const } : { name: n, content: n })));
}

function listTree(dir: string): string[] {
  return Object.entries(snapshot(dir))
    .map(([p, n]) => (n.type === 'dir' ? `${p}/` : p))
    .sort();
}

describe('merge mode', () => {
  it('applies whiteouts and opaque dirs like go-archive TestApplyLayerWhiteouts', async () => {
    const dest = path.join(root, 'tree');
    mkdirs(dest);
    const base = ['.baz', 'bar/', 'bar/bax', 'bar/bay/', 'baz', 'foo/', 'foo/.abc', 'foo/.bcd/', 'foo/.bcd/a', 'foo/cde/', 'foo/cde/def', 'foo/cde/efg', 'foo/fgh', 'foobar'];
    const cases: Array<[string[], string[]]> = [
      [base, base],
      [
        ['.bay', '.wh.baz', 'foo/', 'foo/.bce', 'foo/.wh..wh..opq', 'foo/cde/', 'foo/cde/efg'],
        ['.bay', '.baz', 'bar/', 'bar/bax', 'bar/bay/', 'foo/', 'foo/.bce', 'foo/cde/', 'foo/cde/efg', 'foobar'],
      ],
      [
        ['.bay', '.wh..baz', '.wh.foobar', 'foo/', 'foo/.abc', 'foo/.wh.cde', 'bar/'],
        ['.bay', 'bar/', 'bar/bax', 'bar/bay/', 'foo/', 'foo/.abc', 'foo/.bce'],
      ],
      [['.abc', '.wh..wh..opq', 'foobar'], ['.abc', 'foobar']],
    ];
    for (const [change, expected] of cases) {
      await applyTar(bufferStream(layer(change)), dest, { whiteouts: 'merge' });
      expect(listTree(dest)).toEqual([...expected].sort());
    }
  });

  it('keeps what the same layer wrote below an opaque dir, even through an implied parent', async () => {
    const dest = path.join(root, 'tree');
    mkdirs(path.join(dest, 'p/d'), path.join(dest, 'p/e'));
    fs.writeFileSync(path.join(dest, 'p/d/lower'), 'lower');
    fs.writeFileSync(path.join(dest, 'p/e/lower'), 'lower');
    fs.writeFileSync(path.join(dest, 'p/f'), 'lower');
    await applyTar(bufferStream(layer(['p/d/new', 'p/.wh..wh..opq', 'p/.wh.d', 'p/.wh.f'])), dest, { whiteouts: 'merge' });
    expect(listTree(dest)).toEqual(['p/', 'p/d/', 'p/d/new']);
  });

  it('turns hard links into aufs pseudo-links into real files, then links among themselves', async () => {
    const dest = path.join(root, 'tree');
    mkdirs(dest);
    const tar = makeTar([
      { name: '.wh..wh.plnk/', type: 'dir', mode: 0o700 },
      { name: '.wh..wh.plnk/1.2', content: 'shared', mode: 0o640, uid: 3 },
      { name: 'a', type: 'hardlink', linkname: '.wh..wh.plnk/1.2' },
      { name: 'b', type: 'hardlink', linkname: '/.wh..wh.plnk/1.2' },
    ]);
    const r = await applyTar(bufferStream(tar), dest, { whiteouts: 'merge' });
    expect(listTree(dest)).toEqual(['a', 'b']);
    const a = fs.statSync(path.join(dest, 'a'));
    expect(fs.readFileSync(path.join(dest, 'a'), 'utf8')).toBe('shared');
    expect(a).toMatchObject({ nlink: 2, uid: 3, mode: 0o100640 });
    expect(fs.statSync(path.join(dest, 'b')).ino).toBe(a.ino);
    expect(r.size).toBe(6);
  });
});

describe('overlay mode details', () => {
  it('replaces existing content with the whiteout, and ignores a whiteout of its own layer', async () => {
    const dest = path.join(root, 'upper');
    mkdirs(path.join(dest, 'olddir/inner'));
    fs.writeFileSync(path.join(dest, 'oldfile'), 'x');
    await applyTar(bufferStream(layer(['.wh.olddir', '.wh.oldfile', 'mine', '.wh.mine', 'sub/.wh.x'])), dest, { whiteouts: 'overlay' });
    for (const w of ['olddir', 'oldfile', 'sub/x']) {
      const st = fs.lstatSync(path.join(dest, w));
      expect(st.isCharacterDevice() && st.rdev === 0 && (st.mode & 0o7777) === 0).toBe(true);
    }
    expect(fs.readFileSync(path.join(dest, 'mine'), 'utf8')).toBe('mine');
    expect(fs.statSync(path.join(dest, 'sub')).mode & 0o7777).toBe(0o755);
  });
});
