// One conformance suite for every graph driver (containerd's snapshots/testsuite): each driver's test
// file calls driverConformance() with a factory. Changes are made the way builds make them: create a
// RW layer, get() it, change files through the returned rootfs, put(), commit().
import * as child from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as native from '@tsbuild/native';
import { buildTar, isUnionFsXattr, listTar } from '../../src/archive';
import type { Driver, OverlayMount } from '../../src/drivers/types';
import { isMountPoint } from '../../src/drivers/mountinfo';
import { LayerStore } from '../../src/layers/store';
import { destroyRoot, tempRoot } from '../../../../test/helpers/temp';
import { snapshotTree } from '../../../../test/helpers/tree';

/** A v2 security.capability blob granting cap_net_raw (bit 13) permitted+effective. */
const CAP_NET_RAW = Buffer.from('0100000200200000000000000000000000000000', 'hex');

export type DriverFactory = (root: string) => Driver;

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Waits for the wall clock to enter a new second, so that time-dependent output would show. */
async function nextSecond(): Promise<void> {
  const second = Math.floor(Date.now() / 1000);
  while (Math.floor(Date.now() / 1000) === second) await new Promise((r) => setTimeout(r, 50));
}

function sha256(b: Buffer): string {
  return `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;
}

export function driverConformance(name: string, make: DriverFactory): void {
  describe(`${name} driver conformance`, () => {
    const roots: string[] = [];
    const drivers: Driver[] = [];
    const procs: child.ChildProcess[] = [];
    const fds: number[] = [];
    let d: Driver;

    const newDriver = (): Driver => {
      const root = tempRoot(`${name}-conf`);
      roots.push(root);
      const driver = make(root);
      drivers.push(driver);
      return driver;
    };

    beforeEach(() => {
      d = newDriver();
    });

    afterEach(async () => {
      for (const fd of fds.splice(0)) fs.closeSync(fd);
      for (const p of procs.splice(0)) {
        if (p.exitCode === null && p.signalCode === null) {
          p.kill('SIGKILL');
          await new Promise((resolve) => p.once('exit', resolve));
        }
      }
      for (const driver of drivers.splice(0)) await driver.cleanup().catch(() => {});
      for (const root of roots.splice(0)) destroyRoot(root);
    });

    /** A committed layer made by changing a mounted RW layer. */
    async function layer(id: string, parent: string | null, change: (rootfs: string) => void | Promise<void>, driver = d) {
      await driver.create(id, parent, { readWrite: true });
      const rootfs = await driver.get(id);
      try {
        await change(rootfs);
      } finally {
        await driver.put(id);
      }
      await driver.commit(id);
    }

    /** The committed layer's rootfs, read-only, for `fn`. */
    async function view<T>(id: string, fn: (rootfs: string) => T | Promise<T>, driver = d): Promise<T> {
      const rootfs = await driver.get(id);
      try {
        return await fn(rootfs);
      } finally {
        await driver.put(id);
      }
    }

    it('adds, modifies and deletes files across layers', async () => {
      await layer('base', null, (r) => {
        fs.writeFileSync(path.join(r, 'a'), 'a1');
        fs.writeFileSync(path.join(r, 'b'), 'b1');
        fs.mkdirSync(path.join(r, 'd'));
        fs.writeFileSync(path.join(r, 'd', 'x'), 'x1');
        fs.writeFileSync(path.join(r, 'd', 'y'), 'y1');
      });
      await layer('mid', 'base', (r) => {
        fs.writeFileSync(path.join(r, 'a'), 'a2');
        fs.rmSync(path.join(r, 'b'));
        fs.writeFileSync(path.join(r, 'c'), 'c2');
        fs.rmSync(path.join(r, 'd', 'x'));
      });
      await view('mid', (r) => {
        expect(fs.readdirSync(r).sort()).toEqual(['a', 'c', 'd']);
        expect(fs.readFileSync(path.join(r, 'a'), 'utf8')).toBe('a2');
        expect(fs.readdirSync(path.join(r, 'd'))).toEqual(['y']);
      });
      await view('base', (r) => {
        expect(fs.readdirSync(r).sort()).toEqual(['a', 'b', 'd']);
        expect(fs.readFileSync(path.join(r, 'a'), 'utf8')).toBe('a1');
      });
      const names = (await listTar(d.diff('mid'))).map((h) => h.name).sort();
      expect(names).toEqual(['.wh.b', 'a', 'c', 'd/', 'd/.wh.x']);
      // A RW layer on top sees the same tree and can write without touching the layers below.
      await d.create('top', 'mid', { readWrite: true });
      const top = await d.get('top');
      fs.writeFileSync(path.join(top, 'c'), 'c3');
      expect(fs.readFileSync(path.join(top, 'a'), 'utf8')).toBe('a2');
      await d.put('top');
      await view('mid', (r) => expect(fs.readFileSync(path.join(r, 'c'), 'utf8')).toBe('c2'));
    });

    it('keeps lower files hidden in a directory deleted and recreated (opaque)', async () => {
      await layer('base', null, (r) => {
        fs.mkdirSync(path.join(r, 'd'));
        fs.writeFileSync(path.join(r, 'd', 'old1'), '1');
        fs.writeFileSync(path.join(r, 'd', 'old2'), '2');
        fs.writeFileSync(path.join(r, 'keep'), 'k');
      });
      await layer('re', 'base', (r) => {
        fs.rmSync(path.join(r, 'd'), { recursive: true });
        fs.mkdirSync(path.join(r, 'd'));
        fs.writeFileSync(path.join(r, 'd', 'new'), 'n');
      });
      await view('re', (r) => {
        expect(fs.readdirSync(path.join(r, 'd'))).toEqual(['new']);
        expect(fs.existsSync(path.join(r, 'keep'))).toBe(true);
      });
      const names = (await listTar(d.diff('re'))).map((h) => h.name);
      // Either form hides the old children: an opaque marker (native diff) or per-file whiteouts (naive).
      const hidden = names.includes('d/.wh..wh..opq') || (names.includes('d/.wh.old1') && names.includes('d/.wh.old2'));
      expect(hidden, names.join(' ')).toBe(true);
      // Applied elsewhere, the old files stay hidden too.
      const fresh = newDriver();
      await fresh.create('base', null, {});
      await fresh.applyDiff('base', d.diff('base'));
      await fresh.create('re', 'base', {});
      await fresh.applyDiff('re', d.diff('re'));
      await view('re', (r) => expect(fs.readdirSync(path.join(r, 'd'))).toEqual(['new']), fresh);
    });

    it('preserves hard links, xattrs (user.* and security.capability) and a chown to uid 1000000', async () => {
      await layer('base', null, (r) => {
        fs.writeFileSync(path.join(r, 'f'), 'linked');
        fs.linkSync(path.join(r, 'f'), path.join(r, 'g'));
        fs.writeFileSync(path.join(r, 'owned'), 'o');
        fs.writeFileSync(path.join(r, 'capped'), 'c');
      });
      await layer('meta', 'base', (r) => {
        fs.chownSync(path.join(r, 'owned'), 1000000, 1000000);
        native.lsetxattr(path.join(r, 'capped'), 'security.capability', CAP_NET_RAW);
        native.lsetxattr(path.join(r, 'capped'), 'user.note', Buffer.from([0, 1, 2, 255]));
        fs.writeFileSync(path.join(r, 'h1'), 'new link');
        fs.linkSync(path.join(r, 'h1'), path.join(r, 'h2'));
      });
      await view('meta', (r) => {
        expect(fs.statSync(path.join(r, 'f')).ino).toBe(fs.statSync(path.join(r, 'g')).ino);
        expect(fs.statSync(path.join(r, 'h1')).ino).toBe(fs.statSync(path.join(r, 'h2')).ino);
        const st = fs.statSync(path.join(r, 'owned'));
        expect([st.uid, st.gid]).toEqual([1000000, 1000000]);
        expect(native.lgetxattr(path.join(r, 'capped'), 'security.capability')).toEqual(CAP_NET_RAW);
        expect(native.lgetxattr(path.join(r, 'capped'), 'user.note')).toEqual(Buffer.from([0, 1, 2, 255]));
      });
      const headers = await listTar(d.diff('meta'));
      const h2 = headers.find((h) => h.name === 'h2' || h.name === 'h1');
      expect(headers.some((h) => h.type === 'hardlink' && ['h1', 'h2'].includes(h.linkname))).toBe(true);
      expect(h2).toBeDefined();
      expect(headers.find((h) => h.name === 'owned')?.uid).toBe(1000000);
      expect(headers.find((h) => h.name === 'capped')?.xattrs.get('security.capability')).toEqual(CAP_NET_RAW);
    });

    it('round-trips: diff then applyDiff into a fresh driver reproduces the tree', async () => {
      await layer('l1', null, (r) => {
        fs.mkdirSync(path.join(r, 'etc/conf.d'), { recursive: true });
        fs.writeFileSync(path.join(r, 'etc/conf.d/a.conf'), 'a');
        fs.writeFileSync(path.join(r, 'etc/passwd'), 'root:x:0:0\n');
        fs.symlinkSync('passwd', path.join(r, 'etc/pw'));
        fs.mkdirSync(path.join(r, 'dev'));
        native.mknod(path.join(r, 'dev/null'), { type: 'char', mode: 0o666, major: 1, minor: 3 });
        native.mknod(path.join(r, 'dev/fifo'), { type: 'fifo', mode: 0o600 });
        fs.writeFileSync(path.join(r, 'bin'), Buffer.alloc(70000, 7));
        fs.chmodSync(path.join(r, 'bin'), 0o4755);
        fs.linkSync(path.join(r, 'bin'), path.join(r, 'bin2'));
        fs.mkdirSync(path.join(r, 'tmp'), { mode: 0o1777 });
        fs.chmodSync(path.join(r, 'tmp'), 0o1777);
        fs.mkdirSync(path.join(r, 'gone/deep'), { recursive: true });
        fs.writeFileSync(path.join(r, 'gone/deep/file'), 'g');
      });
      await layer('l2', 'l1', (r) => {
        fs.rmSync(path.join(r, 'gone'), { recursive: true });
        fs.writeFileSync(path.join(r, 'etc/passwd'), 'root:x:0:0\napp:x:1000:1000\n');
        fs.rmSync(path.join(r, 'etc/conf.d'), { recursive: true });
        fs.mkdirSync(path.join(r, 'etc/conf.d'));
        fs.writeFileSync(path.join(r, 'etc/conf.d/b.conf'), 'b');
        fs.chownSync(path.join(r, 'etc/conf.d/b.conf'), 1000000, 1000001);
        native.lsetxattr(path.join(r, 'etc/passwd'), 'user.tag', Buffer.from('v'));
        fs.symlinkSync('/nowhere', path.join(r, 'dangling'));
      });
      await layer('l3', 'l2', (r) => {
        fs.rmSync(path.join(r, 'dangling'));
        fs.mkdirSync(path.join(r, 'dangling'));
        fs.writeFileSync(path.join(r, 'dangling/now-a-dir'), 'd');
        fs.rmSync(path.join(r, 'bin2'));
        native.lsetxattr(path.join(r, 'bin'), 'security.capability', CAP_NET_RAW);
      });
      await nextSecond(); // the fresh tree is made in another second: tars must not carry "now"
      const fresh = newDriver();
      let parent: string | null = null;
      for (const id of ['l1', 'l2', 'l3']) {
        const tar = await bytesOf(d.diff(id));
        expect(sha256(await bytesOf(d.diff(id)))).toBe(sha256(tar)); // deterministic
        await fresh.create(id, parent, {});
        const applied = await fresh.applyDiff(id, Readable.from([tar]));
        expect(applied).toEqual({ diffID: sha256(tar), size: tar.length });
        parent = id;
      }
      for (const id of ['l1', 'l2', 'l3']) {
        const want = await view(id, snapshotTree);
        const got = await view(id, snapshotTree, fresh);
        expect(got).toEqual(want);
      }
      const top = await view('l3', snapshotTree);
      expect(Object.keys(top)).not.toContain('gone');
      expect(Object.keys(top)).not.toContain('etc/conf.d/a.conf');
      expect(top['etc/conf.d/b.conf']).toContain('1000000:1000001');
      // The re-packed fresh layers give the same tars (ToTar(ToDisk(t)) = t for these tars).
      for (const id of ['l1', 'l2', 'l3']) {
        expect(sha256(await bytesOf(fresh.diff(id)))).toBe(sha256(await bytesOf(d.diff(id))));
      }
    });

    // The xattr policy (archive/xattrs.ts): user.* and a binary security.capability travel; overlayfs'
    // and fuse-overlayfs' own xattrs are never taken from a layer tar nor put into one.
    it('xattr policy: applies and diffs user.* and security.capability, drops union filesystems\' own', async () => {
      const keep = { 'user.note': Buffer.from([0, 1, 2, 255]), 'security.capability': CAP_NET_RAW };
      const internal = {
        'trusted.overlay.opaque': Buffer.from('y'),
        'user.overlay.origin': Buffer.from([9]),
        'user.fuseoverlayfs.opaque': Buffer.from('y'),
        'security.fuseoverlayfs.override_stat': Buffer.from('0:0:0755'),
      };
      const tar = buildTar([
        { header: { name: 'dir/', type: 'dir', mode: 0o755, xattrs: { ...keep, ...internal } } },
        { header: { name: 'dir/kept', type: 'file', mode: 0o644 }, body: 'k' },
        { header: { name: 'capped', type: 'file', mode: 0o755, xattrs: { ...keep, ...internal } }, body: 'c' },
      ]);
      await d.create('x', null, {});
      await d.applyDiff('x', Readable.from([tar]));
      await view('x', (r) => {
        for (const rel of ['dir', 'capped']) {
          for (const [name, value] of Object.entries(keep)) expect(native.lgetxattr(path.join(r, rel), name)).toEqual(value);
          for (const name of Object.keys(internal)) expect(native.lgetxattr(path.join(r, rel), name)).toBeNull();
        }
        expect(fs.readFileSync(path.join(r, 'dir/kept'), 'utf8')).toBe('k'); // not made opaque
      });
      const headers = await listTar(d.diff('x'));
      for (const rel of ['dir/', 'capped']) {
        const h = headers.find((e) => e.name === rel);
        expect(Object.fromEntries(h?.xattrs ?? [])).toEqual(keep);
      }
      expect(headers.some((h) => [...h.xattrs.keys()].some(isUnionFsXattr))).toBe(false);
    });

    it('mounts a 200-layer chain and reads the right version of every file', async () => {
      const depth = 200;
      let parent: string | null = null;
      for (let i = 0; i < depth; i++) {
        const id = `c${i}`;
        await d.create(id, parent, { readWrite: true });
        // Written straight into the layer's own dir: what a build step's upper dir holds.
        fs.writeFileSync(path.join(d.diffPath(id), `f${i}`), `file ${i}`);
        fs.writeFileSync(path.join(d.diffPath(id), 'shared'), `version ${i}`);
        await d.commit(id);
        parent = id;
      }
      const plan = d.mounts(`c${depth - 1}`);
      // overlay: one lower per layer, nearest first (12 KB of paths: only `lowerdir+` takes that many).
      if (plan.mounts.length > 0) expect((plan.mounts[0] as OverlayMount).lower.map((l) => fs.readFileSync(path.join(l, 'shared'), 'utf8'))).toEqual(
        Array.from({ length: depth }, (_, i) => `version ${depth - 1 - i}`),
      );
      await view(`c${depth - 1}`, (r) => {
        expect(fs.readFileSync(path.join(r, 'shared'), 'utf8')).toBe(`version ${depth - 1}`);
        for (let i = 0; i < depth; i++) expect(fs.readFileSync(path.join(r, `f${i}`), 'utf8')).toBe(`file ${i}`);
        expect(fs.readdirSync(r).length).toBe(depth + 1);
      });
      await view('c100', (r) => {
        expect(fs.readFileSync(path.join(r, 'shared'), 'utf8')).toBe('version 100');
        expect(fs.existsSync(path.join(r, 'f101'))).toBe(false);
      });
      // A RW layer on the whole chain.
      await d.create('rw', `c${depth - 1}`, { readWrite: true });
      const rw = await d.get('rw');
      fs.writeFileSync(path.join(rw, 'shared'), 'rw');
      expect(fs.readFileSync(path.join(rw, 'f0'), 'utf8')).toBe('file 0');
      await d.put('rw');
      expect(fs.readFileSync(path.join(d.diffPath('rw'), 'shared'), 'utf8')).toBe('rw');
    });

    it('refuses to remove a layer with children or a mounted layer (through the layer store)', async () => {
      const store = await LayerStore.open(d.root, { driver: d });
      await layer('src', null, (r) => fs.writeFileSync(path.join(r, 'x'), 'x'));
      const base = await store.register(null, d.diff('src'));
      const rw = await store.createRW(base.chainID, 'work');
      fs.writeFileSync(path.join(await rw.mount(), 'y'), 'y');
      await rw.unmount();
      const child = await store.commitRW(rw);
      await expect(store.remove(base.chainID)).rejects.toThrow(`layer ${base.chainID} has 1 child`);
      await store.mount(child.chainID);
      await expect(store.remove(child.chainID)).rejects.toThrow(`layer ${child.chainID} is mounted`);
      await store.unmount(child.chainID);
      await store.remove(child.chainID);
      await store.remove(base.chainID);
      expect(store.list()).toEqual([]);
      await d.remove('src');
      expect(d.list()).toEqual([]);
    });

    it('put() detaches a busy mount lazily without throwing', async () => {
      await layer('base', null, (r) => fs.mkdirSync(path.join(r, 'work')));
      await d.create('busy', 'base', { readWrite: true });
      const rootfs = await d.get('busy');
      fs.writeFileSync(path.join(rootfs, 'work', 'held'), 'open');
      fds.push(fs.openSync(path.join(rootfs, 'work', 'held'), 'r'));
      const sleeper = child.spawn('sleep', ['60'], { cwd: path.join(rootfs, 'work'), stdio: 'ignore' });
      procs.push(sleeper);
      await new Promise((resolve, reject) => sleeper.once('spawn', resolve).once('error', reject));
      await expect(d.put('busy')).resolves.toBeUndefined();
      expect(isMountPoint(rootfs)).toBe(false);
      if (d.mounts('busy').mounts.length > 0) expect(fs.existsSync(rootfs)).toBe(false);
      expect(d.isMounted('busy')).toBe(false);
      // The layer is still usable while the detached mount lingers.
      const again = await d.get('busy');
      expect(fs.readFileSync(path.join(again, 'work', 'held'), 'utf8')).toBe('open');
      await d.put('busy');
      await expect(d.remove('busy')).resolves.toBeUndefined();
      expect(d.exists('busy')).toBe(false);
    });

    it('mounts() is pure: it mounts nothing and get() returns its target', async () => {
      await layer('base', null, (r) => fs.writeFileSync(path.join(r, 'a'), 'a'));
      await d.create('rw', 'base', { readWrite: true });
      const plan = d.mounts('rw');
      expect(d.mounts('rw')).toEqual(plan);
      expect(isMountPoint(plan.target)).toBe(false);
      expect(d.isMounted('rw')).toBe(false);
      expect(plan.readOnly).toBe(false);
      const rootfs = await d.get('rw');
      expect(rootfs).toBe(plan.target);
      expect(d.isMounted('rw')).toBe(plan.mounts.length > 0);
      expect(await d.get('rw')).toBe(rootfs); // refcounted: a second get mounts nothing new
      await d.put('rw');
      expect(fs.readFileSync(path.join(rootfs, 'a'), 'utf8')).toBe('a');
      await d.put('rw');
      expect(d.isMounted('rw')).toBe(false);
      await expect(d.create('rw', null, {})).rejects.toThrow('already exists');
      await expect(d.create('x', 'missing', {})).rejects.toThrow('does not exist');
    });

    it('diffs stream without staging the tar and hash the same on every call', async () => {
      await layer('base', null, (r) => {
        fs.writeFileSync(path.join(r, 'big'), crypto.randomBytes(1 << 20));
        fs.writeFileSync(path.join(r, 'doomed'), 'x');
      });
      await layer('top', 'base', (r) => {
        fs.appendFileSync(path.join(r, 'big'), 'more');
        fs.rmSync(path.join(r, 'doomed'));
      });
      const digests: string[] = [];
      for (let i = 0; i < 2; i++) {
        if (i > 0) await nextSecond(); // nothing in the tar may depend on when it is made
        const h = crypto.createHash('sha256');
        await pipeline(d.diff('top'), new Writable({ write: (c, _e, cb) => (h.update(c), cb()) }));
        digests.push(h.digest('hex'));
      }
      expect(digests[0]).toBe(digests[1]);
    });
  });
}
