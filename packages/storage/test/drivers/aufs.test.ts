import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import * as native from '@tsbuild/native';
import { buildTar, listTar } from '../../src/archive';
import {
  AufsDriver, AufsUnsupportedError, assertAufs, aufsKernelMounts, aufsMountPlan, probeAufs, type AufsBackend,
} from '../../src/drivers/aufs';
import { mountsUnder, readMountInfo } from '../../src/drivers/mountinfo';
import { fuseOverlayCommand, performPlan } from '../../src/drivers/perform';
import { processToken } from '../../src/drivers/proc';
import { existingDriver, openDriver } from '../../src/drivers/select';
import type { FuseOverlayMount, GenericMount } from '../../src/drivers/types';
import { driverConformance } from './conformance';
import { destroyRoot, tempRoot } from '../../../../test/helpers/temp';

driverConformance('aufs', (root) => AufsDriver.open(root, { warn: () => {} }));

const FUSE_ENV = { FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT: '1' };
const KERNEL: AufsBackend = { kind: 'aufs', dirperm1: false, pageSize: 4096 };
const FLAG_WORDS = new Set(['ro', 'remount']);

/** The data string mount(2) gets for a generic mount (what perform.ts builds). */
function dataOf(m: GenericMount): string {
  return m.options.filter((o) => !FLAG_WORDS.has(o)).join(',');
}

/** Branch paths in the order the kernel aufs mounts stack them (top first). */
function branchesOf(mounts: GenericMount[]): string[] {
  const out: string[] = [];
  for (const m of mounts) {
    for (const o of m.options) {
      if (o.startsWith('br:')) out.push(...o.slice(3).split(':').map((b) => b.slice(0, b.lastIndexOf('='))));
      if (o.startsWith('append:')) out.push(o.slice(7, o.lastIndexOf('=')));
    }
  }
  return out;
}

interface DaemonInfo {
  pid: number;
  ppid: number;
  state: string;
  cmdline: string;
}

/** Every fuse-overlayfs process on the machine (zombies included: their cmdline is empty). */
function fuseDaemons(): DaemonInfo[] {
  const out: DaemonInfo[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (comm !== 'fuse-overlayfs') continue;
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
      out.push({ pid: Number(name), ppid: Number(ppid), state: state!, cmdline });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Daemons of ours: serving something under `root`, or exited children not yet reaped. */
function ourDaemons(root: string): DaemonInfo[] {
  return fuseDaemons().filter((p) => p.cmdline.includes(root) || (p.ppid === process.pid && p.state === 'Z'));
}

/** Waits (bounded) until no daemon of ours is left under `root`, e.g. one exiting after a sync unmount. */
async function untilNoDaemons(root: string): Promise<void> {
  for (let i = 0; i < 500 && ourDaemons(root).length > 0; i++) await new Promise((r) => setTimeout(r, 10));
  expect(ourDaemons(root)).toEqual([]);
}

describe('aufs specifics', () => {
  const roots: string[] = [];
  const drivers: AufsDriver[] = [];
  const newRoot = (prefix = 'aufs') => {
    const r = tempRoot(prefix);
    roots.push(r);
    return r;
  };
  const open = (root: string, backend?: AufsBackend) => {
    const d = AufsDriver.open(root, { warn: () => {}, ...(backend ? { backend } : {}) });
    drivers.push(d);
    return d;
  };
  afterEach(async () => {
    for (const d of drivers.splice(0)) await d.cleanup().catch(() => {});
    for (const r of roots.splice(0)) destroyRoot(r);
  });

  it('computes fuse-overlayfs plans as pure data: lowers nearest first, upper only for RW layers', () => {
    const home = '/s/aufs';
    const fuse: AufsBackend = { kind: 'fuse-overlayfs' };
    expect(aufsMountPlan({ id: 'base', home, parents: [], committed: false, backend: fuse })).toEqual({
      id: 'base', target: '/s/aufs/diff/base', mounts: [], readOnly: false,
    });
    expect(aufsMountPlan({ id: 'c', home, parents: ['b', 'a'], committed: true, backend: fuse })).toEqual({
      id: 'c',
      target: '/s/aufs/mnt/c',
      readOnly: true,
      mounts: [{ type: 'fuse-overlayfs', lower: ['/s/aufs/diff/c', '/s/aufs/diff/b', '/s/aufs/diff/a'], options: ['dev', 'suid'], env: FUSE_ENV }],
    });
    expect(aufsMountPlan({ id: 'rw', home, parents: ['c', 'b', 'a'], committed: false, backend: fuse })).toEqual({
      id: 'rw',
      target: '/s/aufs/mnt/rw',
      readOnly: false,
      mounts: [{
        type: 'fuse-overlayfs',
        lower: ['/s/aufs/diff/c', '/s/aufs/diff/b', '/s/aufs/diff/a'],
        upper: '/s/aufs/diff/rw',
        work: '/s/aufs/work/rw',
        options: ['dev', 'suid'],
        env: FUSE_ENV,
      }],
    });
  });

  it('computes kernel aufs plans as pure data (br:, ro+wh, dio, xino, dirperm1, read-only commits)', () => {
    const home = '/s/aufs';
    expect(aufsMountPlan({ id: 'rw', home, parents: ['b', 'a'], committed: false, backend: KERNEL })).toEqual({
      id: 'rw',
      target: '/s/aufs/mnt/rw',
      readOnly: false,
      mounts: [{
        type: 'aufs', source: 'none',
        options: ['br:/s/aufs/diff/rw=rw:/s/aufs/diff/b=ro+wh:/s/aufs/diff/a=ro+wh', 'dio', 'xino=/dev/shm/aufs.xino'],
      }],
    });
    expect(aufsMountPlan({ id: 'c', home, parents: ['a'], committed: true, backend: { ...KERNEL, dirperm1: true } })).toEqual({
      id: 'c',
      target: '/s/aufs/mnt/c',
      readOnly: true,
      mounts: [{
        type: 'aufs', source: 'none',
        options: ['ro', 'br:/s/aufs/diff/c=ro+wh:/s/aufs/diff/a=ro+wh', 'dio', 'xino=/dev/shm/aufs.xino', 'dirperm1'],
      }],
    });
    expect(() => aufsKernelMounts('/s/a:b/diff/x', true, [], KERNEL)).toThrow("aufs cannot take the branch /s/a:b/diff/x: aufs options have no escape for ':' or ','");
    expect(() => aufsKernelMounts('/s/diff/x', true, ['/s/a,b/diff/y'], KERNEL)).toThrow('aufs cannot take the branch /s/a,b/diff/y');
  });

  // Port of moby's TestMountMoreThan42LayersMatchingPathLength: for every alignment of the page
  // boundary against the branch strings (in a path, in `=ro+wh`, between two), the first mount takes
  // as many branches as fit, MS_REMOUNT appends take the rest, nothing is lost, reordered or cut.
  it('batches 128 kernel aufs branches within a page for every path length', () => {
    const ids = Array.from({ length: 128 }, (_, i) => i.toString(16).padStart(64, '0'));
    for (let zeros = 1; zeros <= 90; zeros++) {
      for (const dirperm1 of [false, true]) {
        const home = path.join('/tmp/aufs-tests', '0'.repeat(zeros), 'aufs');
        const backend: AufsBackend = { kind: 'aufs', dirperm1, pageSize: 4096 };
        const limit = 4096 - 54 - (dirperm1 ? 9 : 0);
        const plan = aufsMountPlan({ id: ids[127]!, home, parents: ids.slice(0, 127).reverse(), committed: false, backend });
        const mounts = plan.mounts as GenericMount[];
        expect(branchesOf(mounts)).toEqual(ids.slice().reverse().map((id) => path.join(home, 'diff', id)));
        expect(mounts[0]!.options).not.toContain('remount');
        const br = mounts[0]!.options.find((o) => o.startsWith('br:'))!;
        expect(Buffer.byteLength(br)).toBeLessThanOrEqual(limit);
        // full: the next branch would not have fitted
        const next = branchesOf([mounts[0]!]).length;
        expect(Buffer.byteLength(br) + Buffer.byteLength(`:${path.join(home, 'diff', ids[126 - next + 1]!)}=ro+wh`)).toBeGreaterThan(limit);
        for (const m of mounts) expect(Buffer.byteLength(dataOf(m)) + 1).toBeLessThanOrEqual(4096); // + NUL: one page
        for (const m of mounts.slice(1)) {
          expect(m.options[0]).toBe('remount');
          expect(Buffer.byteLength(dataOf(m))).toBeLessThanOrEqual(limit);
        }
        expect(mounts.length).toBeGreaterThan(1);
      }
    }
  });

  it('escapes , and \\ for libfuse and names lowers relative to a cwd when a path holds a :', () => {
    const m: FuseOverlayMount = {
      type: 'fuse-overlayfs', lower: ['/s/a,b/diff/l2', '/s/a,b/diff/l1'], upper: '/s/a,b/diff/up', work: '/s/w\\k:1/up',
      options: ['dev', 'suid'], env: FUSE_ENV,
    };
    expect(fuseOverlayCommand(m, '/s/mnt,x')).toEqual({
      command: 'fuse-overlayfs',
      args: ['-f', '-o', 'lowerdir=/s/a\\,b/diff/l2:/s/a\\,b/diff/l1,upperdir=/s/a\\,b/diff/up,workdir=/s/w\\\\k:1/up,dev,suid', '/s/mnt,x'],
      env: FUSE_ENV,
    });
    // fuse-overlayfs splits lowerdir at every ':' (no escape): relative names from a cwd instead.
    const { upper: _upper, work: _work, ...lowersOnly } = m;
    const colon: FuseOverlayMount = { ...lowersOnly, lower: ['/s/x:y,z/aufs/diff/l2', '/s/x:y,z/aufs/diff/l1'] };
    expect(fuseOverlayCommand(colon, '/s/x:y,z/aufs/mnt/l2')).toEqual({
      command: 'fuse-overlayfs',
      args: ['-f', '-o', 'lowerdir=l2:l1,dev,suid', '/s/x:y,z/aufs/mnt/l2'],
      cwd: '/s/x:y,z/aufs/diff',
      env: FUSE_ENV,
    });
    expect(() => fuseOverlayCommand({ ...lowersOnly, work: m.work!, lower: ['/s/d/a:b', '/s/d/c'] }, '/s/m'))
      .toThrow("fuse-overlayfs cannot stack /s/d/a:b: it splits layer lists at every ':' and the name holds one");
    // ...and it splits the upper dir's real path too: that cannot be worked around.
    expect(() => fuseOverlayCommand({ ...m, upper: '/s/x:y/diff/up' }, '/s/m'))
      .toThrow("fuse-overlayfs cannot use the upper dir /s/x:y/diff/up: it splits the path at ':' and has no escape for it");
  });

  it('mounts for real under a root whose path holds , and \\', async () => {
    const root = newRoot('aufs-b,c\\d');
    const d = open(root);
    await d.create('a', null, { readWrite: true });
    fs.writeFileSync(path.join(d.diffPath('a'), 'one'), '1');
    fs.writeFileSync(path.join(d.diffPath('a'), 'gone'), 'g');
    await d.create('b', 'a', { readWrite: true });
    fs.writeFileSync(path.join(d.diffPath('b'), 'two'), '2');
    await d.commit('b');
    await d.create('rw', 'b', { readWrite: true });
    expect(fuseOverlayCommand(d.mounts('rw').mounts[0] as FuseOverlayMount, d.mounts('rw').target).args[2]).toContain('\\,');
    const r = await d.get('rw');
    expect(fs.readdirSync(r).sort()).toEqual(['gone', 'one', 'two']);
    fs.rmSync(path.join(r, 'gone'));
    fs.writeFileSync(path.join(r, 'three'), '3');
    await d.put('rw');
    expect(fs.readdirSync(d.diffPath('rw')).sort()).toEqual(['.wh.gone', 'three']);
    const view = await d.get('b');
    expect(fs.readdirSync(view).sort()).toEqual(['gone', 'one', 'two']);
    await d.put('b');
  });

  it('under a root whose path holds a : mounts read-only views, and refuses RW layers with the reason', async () => {
    const root = newRoot('aufs-a:b');
    expect(() => AufsDriver.open(root)).toThrow(
      `the aufs driver needs kernel aufs or fuse-overlayfs (apt-get install fuse-overlayfs): fuse-overlayfs cannot write branches under ${root}: it splits its upper dir's path at ':' (no escape); use a storage root without ':'`,
    );
    const d = open(root, { kind: 'fuse-overlayfs' });
    await d.create('a', null, {});
    fs.writeFileSync(path.join(d.diffPath('a'), 'one'), '1');
    await d.create('b', 'a', {});
    fs.writeFileSync(path.join(d.diffPath('b'), '.wh.one'), '');
    fs.writeFileSync(path.join(d.diffPath('b'), 'two'), '2');
    await d.create('c', 'b', {});
    const view = await d.get('c'); // lowers named relative to aufs/diff, the daemon's cwd
    expect(fs.readdirSync(view)).toEqual(['two']);
    await d.put('c');
    await d.create('rw', 'c', { readWrite: true });
    await expect(d.get('rw')).rejects.toThrow(`aufs: mounting layer rw at ${root}/aufs/mnt/rw: fuse-overlayfs cannot use the upper dir ${root}/aufs/diff/rw`);
    expect(mountsUnder(root)).toEqual([]);
  });

  it("uses Docker's layout: layers/<id> lists ancestors nearest first, branches under diff/, unions under mnt/", async () => {
    const root = newRoot();
    const d = open(root);
    await d.create('a', null, {});
    await d.create('b', 'a', {});
    await d.create('c', 'b', { readWrite: true });
    const home = path.join(root, 'aufs');
    expect(fs.readFileSync(path.join(home, 'layers', 'a'), 'utf8')).toBe('');
    expect(fs.readFileSync(path.join(home, 'layers', 'c'), 'utf8')).toBe('b\na\n');
    expect(d.parents('c')).toEqual(['b', 'a']);
    expect(fs.readdirSync(path.join(home, 'diff')).sort()).toEqual(['a', 'b', 'c']);
    expect(fs.statSync(d.diffPath('c')).mode & 0o777).toBe(0o755);
    expect(d.list()).toEqual(['a', 'b', 'c']);
    expect(existingDriver(root)).toBe('aufs');
    expect(openDriver(root).driver.name).toBe('aufs');
    // A base layer is its own branch, unmounted; others mount at mnt/<id>, which put removes.
    expect(await d.get('a')).toBe(d.diffPath('a'));
    await d.put('a');
    expect(await d.get('c')).toBe(path.join(home, 'mnt', 'c'));
    expect(readMountInfo().find((m) => m.mountPoint === path.join(home, 'mnt', 'c'))?.fsType).toBe('fuse.fuse-overlayfs');
    await d.put('c');
    expect(fs.readdirSync(path.join(home, 'mnt'))).toEqual([]);
    // Committed layers mount read-only: no writable branch.
    const ro = await d.get('b');
    expect(() => fs.writeFileSync(path.join(ro, 'x'), 'x')).toThrow(/EROFS/);
    await d.put('b');
    // The kernel aufs plan for the same layers (pure: this kernel has no aufs).
    const k = open(root, KERNEL);
    expect(k.mounts('c').mounts).toEqual([{
      type: 'aufs', source: 'none',
      options: [`br:${home}/diff/c=rw:${home}/diff/b=ro+wh:${home}/diff/a=ro+wh`, 'dio', 'xino=/dev/shm/aufs.xino'],
    }]);
    await d.remove('c');
    expect(fs.existsSync(path.join(home, 'layers', 'c'))).toBe(false);
    expect(fs.readdirSync(path.join(home, 'diff')).sort()).toEqual(['a', 'b']);
  });

  it('keeps the branch in aufs format: .wh.<name> files for deletions, .wh..wh..opq for a re-created dir', async () => {
    const d = open(newRoot());
    await d.create('base', null, { readWrite: true });
    const b = d.diffPath('base');
    fs.mkdirSync(path.join(b, 'dir/sub'), { recursive: true });
    fs.writeFileSync(path.join(b, 'dir/sub/old'), 'old');
    fs.writeFileSync(path.join(b, 'dir/keep'), 'k');
    fs.writeFileSync(path.join(b, 'file'), 'f');
    fs.writeFileSync(path.join(b, 'edit'), 'e');
    native.lsetxattr(path.join(b, 'edit'), 'user.mine', Buffer.from('v'));
    await d.commit('base');
    await d.create('top', 'base', { readWrite: true });
    const r = await d.get('top');
    fs.rmSync(path.join(r, 'file'));
    fs.rmSync(path.join(r, 'dir/sub'), { recursive: true });
    fs.mkdirSync(path.join(r, 'dir/sub'));
    fs.writeFileSync(path.join(r, 'dir/sub/new'), 'n');
    fs.appendFileSync(path.join(r, 'edit'), '2');
    fs.mkdirSync(path.join(r, 'fresh/deep'), { recursive: true });
    fs.writeFileSync(path.join(r, 'fresh/deep/f'), 'f');
    fs.mkdirSync(path.join(r, 'dir/newsub'));
    const freshMtime = Math.floor(fs.statSync(path.join(r, 'fresh')).mtimeMs / 1000);
    await d.put('top');

    const t = d.diffPath('top');
    const wh = fs.lstatSync(path.join(t, '.wh.file'));
    expect(wh.isFile() && wh.size === 0).toBe(true);
    expect(fs.existsSync(path.join(t, 'file'))).toBe(false);
    expect(fs.readdirSync(path.join(t, 'dir/sub')).sort()).toEqual(['.wh..wh..opq', 'new']);
    expect(fs.lstatSync(path.join(t, 'dir/sub/.wh..wh..opq')).isFile()).toBe(true);
    // fuse-overlayfs marks every dir it creates opaque; where no lower branch has anything to hide,
    // the marker (and its xattr) is dropped once the layer is unmounted, keeping the dir's times.
    for (const dir of ['fresh', 'fresh/deep', 'dir/newsub']) {
      expect(fs.readdirSync(path.join(t, dir))).not.toContain('.wh..wh..opq');
      expect(native.llistxattr(path.join(t, dir))).toEqual([]);
    }
    expect(Math.floor(fs.statSync(path.join(t, 'fresh')).mtimeMs / 1000)).toBe(freshMtime);
    // no overlay-style 0/0 devices anywhere in the branch
    const walk = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(path.join(dir, e.name)) : e.isCharacterDevice() ? [path.join(dir, e.name)] : []);
    expect(walk(t)).toEqual([]);
    // fuse-overlayfs marks copied-up files with its private origin xattr; the layer tar must not.
    expect(native.llistxattr(path.join(t, 'edit'))).toContain('user.fuseoverlayfs.origin');

    // aufs metadata in a branch (whiteout base, pseudo-links, orphans) never reaches the tar.
    fs.writeFileSync(path.join(t, '.wh..wh.aufs'), '');
    fs.mkdirSync(path.join(t, '.wh..wh.plnk'));
    fs.writeFileSync(path.join(t, '.wh..wh.plnk', '123.456'), 'x');
    fs.mkdirSync(path.join(t, '.wh..wh.orph'));
    const headers = await listTar(d.diff('top'));
    expect(headers.map((h) => h.name)).toEqual([
      '.wh.file', 'dir/', 'dir/newsub/', 'dir/sub/', 'dir/sub/.wh..wh..opq', 'dir/sub/new', 'edit', 'fresh/', 'fresh/deep/', 'fresh/deep/f',
    ]);
    const edit = headers.find((h) => h.name === 'edit')!;
    expect([...edit.xattrs.keys()]).toEqual(['user.mine']);
    expect(headers.every((h) => [...h.xattrs.keys()].every((k) => !k.includes('overlay')))).toBe(true);
  });

  it('applies OCI tars into branches as they are, aufs whiteouts included', async () => {
    const d = open(newRoot());
    await d.create('base', null, {});
    await d.applyDiff('base', Readable.from([buildTar([
      { header: { name: 'd/', type: 'dir', mode: 0o755 } },
      { header: { name: 'd/a', type: 'file', mode: 0o644 }, body: 'a' },
      { header: { name: 'd/b', type: 'file', mode: 0o644 }, body: 'b' },
      { header: { name: 'x', type: 'file', mode: 0o644 }, body: 'x' },
    ])]));
    const tar = buildTar([
      { header: { name: '.wh.x', type: 'file', mode: 0o600 } },
      { header: { name: 'd/', type: 'dir', mode: 0o755 } },
      { header: { name: 'd/.wh..wh..opq', type: 'file', mode: 0o755 } },
      { header: { name: 'd/c', type: 'file', mode: 0o644 }, body: 'c' },
    ]);
    await d.create('top', 'base', {});
    await d.applyDiff('top', Readable.from([tar]));
    expect(fs.readdirSync(d.diffPath('top')).sort()).toEqual(['.wh.x', 'd']);
    expect(fs.readdirSync(path.join(d.diffPath('top'), 'd')).sort()).toEqual(['.wh..wh..opq', 'c']);
    const r = await d.get('top');
    expect(fs.readdirSync(r)).toEqual(['d']);
    expect(fs.readdirSync(path.join(r, 'd'))).toEqual(['c']);
    await d.put('top');
    const chunks: Buffer[] = [];
    for await (const c of d.diff('top')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(tar)).toBe(true); // the same bytes back out
  });

  // Port of moby's TestMountMoreThan42Layers: 128 RW layers, each mounted and written in turn, every
  // tenth deleting its parent's file; the top sees exactly the files that were not deleted.
  it('mounts more than 42 layers: a 128-layer chain', async () => {
    const d = open(newRoot());
    let parent: string | null = null;
    let expected = 0;
    for (let i = 1; i <= 128; i++) {
      const current = `layer${i}`;
      await d.create(current, parent, { readWrite: true });
      const point = await d.get(current);
      fs.writeFileSync(path.join(point, current), '');
      expected++;
      if (i % 10 === 0) {
        fs.rmSync(path.join(point, parent!));
        expected--;
      }
      await d.put(current);
      parent = current;
    }
    expect(d.mounts('layer128').mounts[0]).toMatchObject({ lower: expect.any(Array) });
    expect((d.mounts('layer128').mounts[0] as FuseOverlayMount).lower).toHaveLength(127);
    const top = await d.get('layer128');
    expect(fs.readdirSync(top)).toHaveLength(expected);
    expect(fs.existsSync(path.join(top, 'layer9'))).toBe(false);
    expect(fs.existsSync(path.join(top, 'layer10'))).toBe(true);
    await d.put('layer128');
  });

  it('put leaves nothing in mountinfo and no fuse-overlayfs process', async () => {
    const root = newRoot();
    const d = open(root);
    await d.create('base', null, {});
    await d.create('mid', 'base', {});
    await d.create('rw', 'mid', { readWrite: true });
    await untilNoDaemons(root); // the probe's, which open() ran under root
    for (const id of ['mid', 'rw']) {
      const target = await d.get(id);
      expect(await d.get(id)).toBe(target); // refcounted: one mount, one daemon
      const daemons = ourDaemons(root);
      expect(daemons).toHaveLength(1);
      expect(daemons[0]!.ppid).toBe(process.pid); // our child, so it is reaped
      expect(daemons[0]!.cmdline).toContain(target);
      await d.put(id);
      expect(mountsUnder(root)).toEqual([target]);
      await d.put(id);
      expect(mountsUnder(root)).toEqual([]);
      expect(readMountInfo().some((m) => m.mountPoint.startsWith(root))).toBe(false);
      expect(ourDaemons(root)).toEqual([]);
      expect(fs.existsSync(`/proc/${daemons[0]!.pid}`)).toBe(false);
    }
  });

  it('repairs: unmounts stale mounts, removes half-removed, staged and orphaned entries', async () => {
    const root = newRoot();
    const d = open(root);
    await d.create('a', null, {});
    fs.writeFileSync(path.join(d.diffPath('a'), 'x'), 'x');
    await d.create('b', 'a', { readWrite: true });
    await d.create('c', 'a', { readWrite: true });
    const home = path.join(root, 'aufs');
    // A crashed process's mount: in place, never put.
    await untilNoDaemons(root);
    const stale = d.mounts('b');
    await performPlan(stale);
    const staleDaemon = ourDaemons(root)[0]!;
    // Debris of dead processes and interrupted removes; a live process's staged dir stays.
    const dead = '999999.1';
    const debris = [
      path.join(home, 'diff', `.${dead}-n`), path.join(home, 'layers', `.${dead}-n`), path.join(home, 'diff', 'gone-removing'),
      path.join(home, 'mnt', 'gone-removing'), path.join(home, 'work', 'gone-removing'), path.join(home, 'layers', 'nobranch'),
      path.join(home, 'diff', 'nolayersfile'), path.join(home, 'committed', 'nolayer'), path.join(home, 'work', 'nolayer'),
      path.join(home, 'mnt', 'c'), path.join(root, `.aufs-probe-${dead}-0a0b`),
    ];
    for (const p of debris) {
      if (p.includes('layers') || p.includes('committed')) fs.writeFileSync(p, '');
      else fs.mkdirSync(p, { recursive: true });
    }
    const live = path.join(home, 'diff', `.${processToken()}-m`);
    fs.mkdirSync(live);

    const fresh = open(root);
    const report = await fresh.repair(() => false);
    expect(report.unmounted).toEqual([stale.target]);
    expect(report.removed.sort()).toEqual([...debris, stale.target].sort());
    expect(fs.existsSync(live)).toBe(true);
    expect(fresh.list()).toEqual(['a', 'b', 'c']);
    expect(mountsUnder(root)).toEqual([]);
    expect(fs.existsSync(`/proc/${staleDaemon.pid}`)).toBe(false); // exited and reaped by repair
    // A mount in use survives repair; the layer still works.
    const rootfs = await fresh.get('b');
    expect(fs.readFileSync(path.join(rootfs, 'x'), 'utf8')).toBe('x');
    expect((await open(root).repair((id) => id === 'b')).unmounted).toEqual([]);
    expect(mountsUnder(root)).toEqual([rootfs]);
    await fresh.put('b');
  });

  it('probes by feature: fuse-overlayfs when the kernel has no aufs, and a clear error when neither works', () => {
    expect(probeAufs(newRoot())).toEqual({ supported: true, backend: { kind: 'fuse-overlayfs' } });
    // A kernel that claims aufs but cannot mount it falls back to fuse-overlayfs.
    const claims = newRoot();
    expect(probeAufs(claims, { filesystems: 'nodev\tsysfs\nnodev\taufs\n' })).toEqual({ supported: true, backend: { kind: 'fuse-overlayfs' } });
    expect(fs.readdirSync(claims)).toEqual([]); // probe dirs are cleaned up
    const savedPath = process.env.PATH;
    const empty = newRoot('aufs-nopath');
    process.env.PATH = empty;
    try {
      const root = newRoot();
      const probe = probeAufs(root, { filesystems: 'nodev\tsysfs\n' });
      expect(probe).toEqual({ supported: false, reason: 'fuse-overlayfs was not found on PATH' });
      expect(() => assertAufs(root, { filesystems: 'nodev\tsysfs\n' })).toThrow(
        'the aufs driver needs kernel aufs or fuse-overlayfs (apt-get install fuse-overlayfs): fuse-overlayfs was not found on PATH',
      );
      const err = new AufsUnsupportedError();
      expect(err.message).toBe('the aufs driver needs kernel aufs or fuse-overlayfs (apt-get install fuse-overlayfs)');
    } finally {
      process.env.PATH = savedPath;
    }
  });
});
