// Content hashes of resolved sources and the persisted stat cache, on real files.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { lsetxattr, mknod } from '@tsbuild/native';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BuildContext } from '../../src/context/context';
import { hashSources, sha256File } from '../../src/context/hash';
import { RACY_WINDOW_NS, StatCache } from '../../src/context/statcache';
import { destroyRoot, tempRoot, writeTree, type TreeSpec as Tree } from '../../../../test/helpers/temp';

let tmp: string | undefined;

beforeEach(() => {
  tmp = tempRoot('hash');
});

afterEach(() => {
  if (tmp) destroyRoot(tmp);
  tmp = undefined;
});

const TREE: Tree = {
  Dockerfile: 'FROM scratch\n',
  'app/main.c': 'int main(void) { return 0; }\n',
  'app/lib/util.c': 'int util;\n',
  'app/lib/link': { link: 'util.c' },
  'app/empty': { dir: true },
  'app/big.bin': '',
};

function makeContext(name: string, tree: Tree = TREE): string {
  const dir = path.join(tmp!, name);
  writeTree(dir, tree);
  fs.writeFileSync(path.join(dir, 'app/big.bin'), Buffer.alloc(3 * 1024 * 1024 + 17, 7));
  return dir;
}

/** Waits past the racy window so that records made from now on are trusted. */
async function settle(): Promise<void> {
  await sleep(Number(RACY_WINDOW_NS / 1_000_000n) + 50);
}

async function hashOf(dir: string, cache?: StatCache, sources = ['app']) {
  const ctx = await BuildContext.open(dir);
  return hashSources(await ctx.resolveSources(sources), cache ? { statCache: cache } : {});
}

describe('hashSources', () => {
  it('gives identical trees the same digest, wherever they live', async () => {
    const a = await hashOf(makeContext('a'));
    const b = await hashOf(makeContext('b'));
    expect(a.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(b.digest).toBe(a.digest);
    expect(a).toMatchObject({ files: 3, filesRead: 3, cacheHits: 0, cacheMisses: 0 });
    expect(a.bytesRead).toBe(3 * 1024 * 1024 + 17 + 29 + 10);
  });

  // Small files are hashed in batches on the pool (native hashFiles): a file that goes away or is
  // replaced between the walk and the read is named, as before.
  it('names a file removed or replaced after the walk', async () => {
    const tree: Tree = { ...TREE };
    for (let i = 0; i < 150; i++) tree[`app/many/f${i}`] = `${i}\n`; // more than one batch
    const walked = async (name: string) => {
      const dir = makeContext(name, tree);
      return { dir, entries: await (await BuildContext.open(dir)).resolveSources(['app']) };
    };
    const gone = await walked('gone');
    fs.rmSync(path.join(gone.dir, 'app/many/f120'));
    await expect(hashSources(gone.entries, {})).rejects.toThrow(/^failed to compute cache key: cannot read app\/many\/f120: ENOENT/);
    const replaced = await walked('replaced');
    // Written while the old file still holds its inode, so the new one has another.
    fs.writeFileSync(path.join(replaced.dir, 'app/many/next'), 'new\n');
    fs.renameSync(path.join(replaced.dir, 'app/many/next'), path.join(replaced.dir, 'app/many/f120'));
    await expect(hashSources(replaced.entries, {})).rejects.toThrow('failed to compute cache key: app/many/f120 was replaced while the build was reading it');
    // A fifo swapped in is refused, not opened for a read that waits for a writer forever.
    const fifo = await walked('fifo');
    fs.rmSync(path.join(fifo.dir, 'app/many/f120'));
    mknod(path.join(fifo.dir, 'app/many/f120'), { type: 'fifo', mode: 0o644 });
    await expect(hashSources(fifo.entries, {})).rejects.toThrow(/^failed to compute cache key: cannot read app\/many\/f120: EINVAL: .*not a regular file but a fifo/);
  });

  it('ignores mtime; the stat cache re-reads only the touched file', async () => {
    const dir = makeContext('ctx');
    await settle();
    const cache = StatCache.inMemory();
    const first = await hashOf(dir, cache);
    expect(first).toMatchObject({ files: 3, filesRead: 3, cacheHits: 0, cacheMisses: 3 });

    const second = await hashOf(dir, cache);
    expect(second).toMatchObject({ digest: first.digest, filesRead: 0, bytesRead: 0, cacheHits: 3, cacheMisses: 0 });

    fs.utimesSync(path.join(dir, 'app/main.c'), new Date('2001-01-01'), new Date('2001-01-01'));
    await settle();
    const touched = await hashOf(dir, cache);
    expect(touched).toMatchObject({ digest: first.digest, filesRead: 1, cacheHits: 2, cacheMisses: 1 });

    const again = await hashOf(dir, cache);
    expect(again).toMatchObject({ digest: first.digest, filesRead: 0, cacheHits: 3 });
  });

  it('changes with content, even of the same size and with the old mtime restored', async () => {
    const dir = makeContext('ctx');
    await settle();
    const cache = StatCache.inMemory();
    const before = await hashOf(dir, cache);
    const file = path.join(dir, 'app/lib/util.c');
    const st = fs.statSync(file);
    fs.writeFileSync(file, 'int UTIL;\n');
    fs.utimesSync(file, st.atime, st.mtime);
    const after = await hashOf(dir, cache);
    expect(after.digest).not.toBe(before.digest);
    expect(after.filesRead).toBe(1);
  });

  it('changes with mode (including setuid), owner, symlink target and structure', async () => {
    const dir = makeContext('ctx');
    const base = (await hashOf(dir)).digest;
    const seen = new Set([base]);
    const expectNew = async (what: string) => {
      const d = (await hashOf(dir)).digest;
      expect(seen.has(d), what).toBe(false);
      seen.add(d);
    };
    fs.chmodSync(path.join(dir, 'app/main.c'), 0o755);
    await expectNew('chmod 755');
    fs.chmodSync(path.join(dir, 'app/main.c'), 0o4755);
    await expectNew('setuid');
    fs.chownSync(path.join(dir, 'app/lib/util.c'), 1000, 1000);
    await expectNew('chown file');
    fs.chownSync(path.join(dir, 'app/empty'), 1000, 0);
    await expectNew('chown dir');
    fs.unlinkSync(path.join(dir, 'app/lib/link'));
    fs.symlinkSync('../main.c', path.join(dir, 'app/lib/link'));
    await expectNew('symlink target');
    fs.renameSync(path.join(dir, 'app/empty'), path.join(dir, 'app/empty2'));
    await expectNew('rename');
    fs.linkSync(path.join(dir, 'app/main.c'), path.join(dir, 'app/hard'));
    await expectNew('hardlink');
  });

  it('counts user.* and security.capability xattrs but not other security.* ones', async () => {
    const dir = makeContext('ctx');
    const file = path.join(dir, 'app/main.c');
    const base = (await hashOf(dir)).digest;
    lsetxattr(file, 'security.tsbuildtest', Buffer.from('label'));
    expect((await hashOf(dir)).digest).toBe(base);
    lsetxattr(file, 'user.note', Buffer.from('x'));
    const withUser = (await hashOf(dir)).digest;
    expect(withUser).not.toBe(base);
    // A v2 capability blob: effective flag + CAP_NET_BIND_SERVICE permitted.
    const cap = Buffer.alloc(20);
    cap.writeUInt32LE(0x02000001, 0);
    cap.writeUInt32LE(1 << 10, 4);
    lsetxattr(file, 'security.capability', cap);
    expect((await hashOf(dir)).digest).not.toBe(withUser);
  });

  it('depends on which sources matched and in what order', async () => {
    const dir = makeContext('ctx');
    const one = (await hashOf(dir, undefined, ['app/main.c', 'app/lib/util.c'])).digest;
    const two = (await hashOf(dir, undefined, ['app/lib/util.c', 'app/main.c'])).digest;
    expect(one).not.toBe(two);
  });

  it('is the documented record format over every item, nested directories, links and several sources included', async () => {
    const dir = makeContext('ctx', { ...TREE, 'app/lib/deep/x.txt': 'x\n', 'app/lib/deep/y': { link: '../../main.c' } });
    fs.linkSync(path.join(dir, 'app/main.c'), path.join(dir, 'app/lib/hard'));
    const sources = ['app', 'app/main.c', 'app/lib'];
    const ctx = await BuildContext.open(dir);
    const got = await hashSources(await ctx.resolveSources(sources), { readXattrs: null });
    expect(got.digest).toBe(referenceDigest(dir, sources));
  });

  it('streams a file through sha256', async () => {
    const dir = makeContext('ctx');
    const file = path.join(dir, 'app/big.bin');
    const expected = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    const small = Buffer.alloc(4096);
    expect(await sha256File(file, small)).toEqual({ sha256: expected, bytes: fs.statSync(file).size });
  });
});

describe('StatCache persistence', () => {
  it('survives a reopen, written atomically as JSON', async () => {
    const dir = makeContext('ctx');
    const cacheFile = path.join(tmp!, 'root/builder/statcache/ctx.json');
    await settle();
    const cache = await StatCache.load(cacheFile);
    expect(cache.size).toBe(0);
    const first = await hashOf(dir, cache);
    await cache.save();
    expect(fs.readdirSync(path.dirname(cacheFile))).toEqual(['ctx.json']);
    const json = JSON.parse(fs.readFileSync(cacheFile, 'utf8'));
    expect(Object.keys(json.entries)).toHaveLength(3);
    const rec = json.entries[path.join(fs.realpathSync(dir), 'app/main.c')];
    expect(rec).toMatchObject({ size: 29, sha256: crypto.createHash('sha256').update(TREE['app/main.c'] as string).digest('hex') });
    expect(rec.racy).toBeUndefined();

    const reopened = await StatCache.load(cacheFile);
    expect(reopened.size).toBe(3);
    const second = await hashOf(dir, reopened);
    expect(second).toMatchObject({ digest: first.digest, filesRead: 0, cacheHits: 3, cacheMisses: 0 });
  });

  it('writes the version 1 JSON that earlier versions wrote and read, in pieces for many files', async () => {
    const dir = makeContext('ctx');
    const cacheFile = path.join(tmp!, 'cache.json');
    await settle();
    const cache = await StatCache.load(cacheFile);
    await hashOf(dir, cache);
    await cache.save();
    const text = fs.readFileSync(cacheFile, 'utf8');
    expect(text).toBe(JSON.stringify(JSON.parse(text)));
    const entries: Record<string, unknown> = {};
    for (const rel of ['app/main.c', 'app/lib/util.c', 'app/big.bin']) {
      const abs = path.join(fs.realpathSync(dir), rel);
      const st = fs.lstatSync(abs, { bigint: true });
      entries[abs] = {
        dev: st.dev.toString(), ino: st.ino.toString(), size: Number(st.size), mtimeNs: st.mtimeNs.toString(), ctimeNs: st.ctimeNs.toString(),
        mode: Number(st.mode & 0o7777n), sha256: crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex'),
      };
    }
    expect(JSON.parse(text)).toEqual({ version: 1, entries });

    // More records than one piece of the writer holds, under '/' too; racy ones keep their flag.
    const sha = 'ab'.repeat(32);
    const tuple = (n: number) => ({ dev: 2049n, ino: BigInt(n), size: n, mtimeNs: 1_700_000_000_000_000_000n + BigInt(n), ctimeNs: 1n, mode: 0o644 });
    const big = await StatCache.load(path.join(tmp!, 'many.json'));
    for (let n = 0; n < 20_000; n++) big.record(`/ctx/dir-${n % 997}/file-${n}.js`, tuple(n), sha, 2_000_000_000_000_000_000n);
    big.record('/top', tuple(1), sha, 0n);
    await big.save();
    const reread = await StatCache.load(path.join(tmp!, 'many.json'));
    expect(reread.size).toBe(20_001);
    expect(reread.lookup('/ctx/dir-5/file-19945.js', tuple(19945))).toBe(sha);
    expect(reread.lookup('/ctx/dir-5/file-19945.js', tuple(19946))).toBeUndefined();
    expect(reread.lookup('/top', tuple(1))).toBeUndefined(); // racy
    expect(JSON.parse(fs.readFileSync(path.join(tmp!, 'many.json'), 'utf8')).entries['/top']).toMatchObject({ racy: true, sha256: sha });
  });

  it('does not trust a record whose timestamps are too recent (racily clean)', async () => {
    const dir = makeContext('ctx');
    const future = new Date(Date.now() + 3600_000);
    fs.utimesSync(path.join(dir, 'app/main.c'), future, future);
    await settle();
    const cache = StatCache.inMemory();
    await hashOf(dir, cache);
    const again = await hashOf(dir, cache);
    expect(again).toMatchObject({ filesRead: 1, cacheHits: 2, cacheMisses: 1 });
  });

  it('prunes records of deleted or replaced files', async () => {
    const dir = makeContext('ctx');
    const cacheFile = path.join(tmp!, 'cache.json');
    const cache = await StatCache.load(cacheFile);
    await hashOf(dir, cache);
    expect(cache.size).toBe(3);
    fs.unlinkSync(path.join(dir, 'app/main.c'));
    fs.renameSync(path.join(dir, 'app/lib/util.c'), path.join(dir, 'moved'));
    fs.writeFileSync(path.join(dir, 'app/lib/util.c'), 'new inode\n');
    expect(await cache.prune()).toBe(2);
    await cache.save();
    expect((await StatCache.load(cacheFile)).size).toBe(1);
  });

  it('starts empty from a missing or corrupt file', async () => {
    const file = path.join(tmp!, 'bad.json');
    expect((await StatCache.load(file)).size).toBe(0);
    fs.writeFileSync(file, '{not json');
    expect((await StatCache.load(file)).size).toBe(0);
    fs.writeFileSync(file, JSON.stringify({ version: 1, entries: { '/x': { dev: '1', ino: '2', size: 3, mtimeNs: '4', ctimeNs: '5', mode: 6, sha256: 'zz' } } }));
    expect((await StatCache.load(file)).size).toBe(0);
  });
});

/**
 * The context digest as the hash.ts file comment documents it, from a plain recursive walk: what keeps
 * the cache keys of existing caches valid however the walk and hash are implemented. No xattrs.
 */
function referenceDigest(dir: string, sources: string[]): string {
  const h = crypto.createHash('sha256').update(JSON.stringify(['tsbuild.context.v1']) + '\n');
  const firstPath = new Map<string, string>();
  const visit = (rel: string, contextPath: string): void => {
    const abs = path.join(dir, contextPath);
    const st = fs.lstatSync(abs);
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file';
    let hardlinkTo = '';
    if (type === 'file' && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = firstPath.get(key);
      if (first === undefined) firstPath.set(key, contextPath);
      else if (first !== contextPath) hardlinkTo = first;
    }
    const content = type === 'file' ? crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex') : '';
    const target = type === 'symlink' ? fs.readlinkSync(abs) : '';
    const record = [rel, type, (st.mode & 0o7777).toString(8), st.uid, st.gid, type === 'file' ? st.size : 0, target, 0, hardlinkTo, [], content];
    h.update(JSON.stringify(record) + '\n');
    if (type === 'dir') for (const name of fs.readdirSync(abs).sort()) visit(rel === '' ? name : `${rel}/${name}`, `${contextPath}/${name}`);
  };
  for (const source of sources) {
    h.update(JSON.stringify(['source', source]) + '\n');
    visit('', source);
  }
  return `sha256:${h.digest('hex')}`;
}
