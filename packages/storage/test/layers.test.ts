import * as child from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as native from '@tsbuild/native';
import { makeBusyboxTar } from '../../../fixtures/busybox';
import { buildTar, listTar } from '../src/archive';
import type { Digest } from '../src/digest';
import { mountsUnder } from '../src/drivers/mountinfo';
import { DiffIDMismatchError, LayerStore, chainID } from '../src/layers';
import { destroyRoot, tempRoot } from '../../../test/helpers/temp';

const repoRoot = path.resolve(__dirname, '..', '..', '..');

function sha256(data: Buffer | string): Digest {
  return `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
}

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function tarOf(files: Record<string, string>): Buffer {
  return buildTar(Object.entries(files).map(([name, body]) => ({ header: { name, type: 'file' as const, size: Buffer.byteLength(body), mtime: 1 }, body })));
}

/** Sets every time below `dir` (not following symlinks) to `t`. */
function setAllTimes(dir: string, t: number): void {
  for (const name of fs.readdirSync(dir)) {
    const p = path.join(dir, name);
    if (fs.lstatSync(p).isDirectory()) setAllTimes(p, t);
    fs.lutimesSync(p, t, t);
  }
}

let busyboxTar: Buffer;
const fixtureDir = tempRoot('layers-fixture');

beforeAll(() => {
  busyboxTar = fs.readFileSync(makeBusyboxTar(path.join(fixtureDir, 'busybox.tar')));
});
afterAll(() => {
  destroyRoot(fixtureDir);
});

describe('chainID', () => {
  it('follows the OCI formula', () => {
    const d0 = sha256('layer zero');
    const d1 = sha256('layer one');
    const d2 = sha256('layer two');
    expect(chainID(null, d0)).toBe(d0);
    const c1 = chainID(d0, d1);
    expect(c1).toBe(sha256(`${d0} ${d1}`));
    expect(chainID(c1, d2)).toBe(sha256(`${c1} ${d2}`));
    // Pinned, from the shell: a=sha256:$(printf a | sha256sum); b=...; printf '%s %s' "$a" "$b" | sha256sum
    expect(chainID(sha256('a'), sha256('b'))).toBe('sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676');
  });
});

describe.each(['overlay2', 'vfs'] as const)('layer store on %s', (driverName) => {
  const roots: string[] = [];
  const stores: LayerStore[] = [];
  async function openStore(root?: string): Promise<LayerStore> {
    if (!root) {
      root = tempRoot(`layers-${driverName}`);
      roots.push(root);
    }
    const s = await LayerStore.open(root, { driver: driverName, warn: () => {} });
    stores.push(s);
    return s;
  }
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close().catch(() => {});
    for (const r of roots.splice(0)) destroyRoot(r);
  });

  it('registers busybox, mounts it, commits a RW layer without copying and dedupes', async () => {
    const store = await openStore();
    expect(store.driver.name).toBe(driverName);
    const base = await store.register(null, Readable.from([busyboxTar]));
    expect(base).toMatchObject({ chainID: sha256(busyboxTar), diffID: sha256(busyboxTar), parent: null, size: busyboxTar.length });
    const rootfs = await store.mount(base.chainID);
    expect(fs.statSync(path.join(rootfs, 'bin/busybox')).mode & 0o111).toBeTruthy();
    expect(fs.readlinkSync(path.join(rootfs, 'bin/sh'))).toBe('busybox');
    await store.unmount(base.chainID);

    const rw = await store.createRW(base.chainID, 'build-1');
    expect(await store.hasChanges(rw)).toBe(false);
    const root = await rw.mount();
    fs.writeFileSync(path.join(root, 'hello'), 'world\n');
    fs.rmSync(path.join(root, 'bin/ls'));
    fs.chownSync(path.join(root, 'hello'), 1000000, 1000000);
    await expect(store.commitRW(rw)).rejects.toThrow('cannot commit RW layer build-1: it is mounted');
    await rw.unmount();
    expect(await store.hasChanges('build-1')).toBe(true);
    const layer = await store.commitRW(rw);
    expect(layer.parent).toBe(base.chainID);
    expect(layer.chainID).toBe(chainID(base.chainID, layer.diffID));
    expect(layer.cacheId).toBe(rw.id); // the RW layer's files became the layer: no copy
    expect(store.getRW('build-1')).toBeUndefined();
    const tar1 = await bytesOf(store.openTar(layer.chainID));
    const tar2 = await bytesOf(store.openTar(layer.chainID));
    expect(sha256(tar1)).toBe(layer.diffID);
    expect(sha256(tar2)).toBe(layer.diffID);
    expect(layer.size).toBe(tar1.length);
    expect(sha256(await bytesOf((await store.openLayerTar(layer.diffID))!))).toBe(layer.diffID);
    expect(store.openLayerTar(sha256('unknown'))).toBeNull();
    const view = await store.mount(layer.chainID);
    expect(fs.readFileSync(path.join(view, 'hello'), 'utf8')).toBe('world\n');
    expect(fs.existsSync(path.join(view, 'bin/ls'))).toBe(false);
    expect(fs.existsSync(path.join(view, 'bin/cat'))).toBe(true);
    if (driverName === 'overlay2') expect(() => fs.writeFileSync(path.join(view, 'x'), 'x')).toThrow(/EROFS/);
    await store.unmount(layer.chainID);

    // The same tar twice: one layer, the second copy discarded.
    const driverIds = store.driver.list();
    const again = await store.register(null, Readable.from([busyboxTar]));
    expect(again).toEqual(base);
    expect(store.list().map((l) => l.chainID).sort()).toEqual([base.chainID, layer.chainID].sort());
    expect(store.driver.list()).toEqual(driverIds);
    // No reference count is kept: liveness is the sweep's (Store.collectLayers).
    expect(fs.readdirSync(path.join(store.dir, 'sha256', base.chainID.slice(7)))).not.toContain('refs');

    // A layer with children stays; children first, then the parent.
    await expect(store.remove(base.chainID)).rejects.toThrow(`layer ${base.chainID} has 1 child`);
    await store.remove(layer.chainID);
    expect(store.has(layer.chainID)).toBe(false);
    await store.remove(base.chainID);
    expect(store.list()).toEqual([]);
    expect(store.driver.list()).toEqual([]);
  });

  it('dedupes the same change committed twice and drops the duplicate files', async () => {
    const store = await openStore();
    const base = await store.register(null, Readable.from([busyboxTar]));
    const change = async (name: string) => {
      const rw = await store.createRW(base.chainID, name);
      const r = await rw.mount();
      fs.writeFileSync(path.join(r, 'x'), 'same');
      fs.rmSync(path.join(r, 'bin/ls'));
      await rw.unmount();
      setAllTimes(rw.diffPath, 1000); // whiteouts and copied-up dirs carry the time of the change
      return rw;
    };
    const rw1 = await change('one');
    const l1 = await store.commitRW(rw1);
    const rw2 = await change('two');
    const l2 = await store.commitRW(rw2);
    expect(l2).toEqual(l1);
    expect(store.driver.exists(rw2.id)).toBe(false);
    expect(store.getRW('two')).toBeUndefined();
    expect(store.driver.list().sort()).toEqual([base.cacheId, rw1.id].sort());
  });

  it('commits with a SOURCE_DATE_EPOCH clamp recorded, so that openTar reproduces the diffID', async () => {
    const store = await openStore();
    const rw = await store.createRW(null, 'epoch');
    const r = await rw.mount();
    fs.mkdirSync(path.join(r, 'app'));
    fs.writeFileSync(path.join(r, 'app/new'), 'fresh');
    await rw.unmount();
    const layer = await store.commitRW(rw, { clampMtime: 1000 });
    expect(layer.clampMtime).toBe(1000);
    const headers = await listTar(store.openTar(layer.chainID));
    expect(headers.map((h) => [h.name, h.mtime])).toEqual([['app/', 1000], ['app/new', 1000]]);
    expect(sha256(await bytesOf(store.openTar(layer.chainID)))).toBe(layer.diffID);
    const reopened = await openStore(store.root);
    expect(reopened.get(layer.chainID).clampMtime).toBe(1000);
    expect(sha256(await bytesOf(reopened.openTar(layer.chainID)))).toBe(layer.diffID);
    expect(fs.statSync(path.join(reopened.driver.diffPath(layer.cacheId), 'app/new')).mtimeMs).toBeGreaterThan(1000_000); // disk untouched
  });

  it('gives RW layers an optional init layer that commits leave out', async () => {
    const store = await openStore();
    const base = await store.register(null, Readable.from([busyboxTar]));
    const rw = await store.createRW(base.chainID, 'ctr', {
      init: (dir) => {
        fs.mkdirSync(path.join(dir, 'etc'), { recursive: true });
        fs.writeFileSync(path.join(dir, 'etc/hostname'), 'box\n');
      },
    });
    expect(rw.initId).toBe(`${rw.id}-init`);
    const r = await rw.mount();
    expect(fs.readFileSync(path.join(r, 'etc/hostname'), 'utf8')).toBe('box\n');
    expect(fs.existsSync(path.join(r, 'bin/busybox'))).toBe(true);
    fs.writeFileSync(path.join(r, 'app'), 'app');
    await rw.unmount();
    const layer = await store.commitRW(rw);
    expect(layer.parent).toBe(base.chainID);
    const view = await store.mount(layer.chainID);
    expect(fs.readFileSync(path.join(view, 'app'), 'utf8')).toBe('app');
    expect(fs.existsSync(path.join(view, 'etc/hostname'))).toBe(false);
    await store.unmount(layer.chainID);
    expect(store.driver.list().sort()).toEqual([base.cacheId, layer.cacheId].sort()); // RW and init layers gone
  });

  it('imports layers verifying the diffID and leaves nothing behind on a mismatch', async () => {
    const store = await openStore();
    const t0 = tarOf({ a: 'a' });
    const t1 = tarOf({ b: 'b' });
    await store.importLayer(null, sha256(t0), () => Readable.from([t0]));
    const c0 = sha256(t0);
    expect(store.get(c0).diffID).toBe(c0);
    let opened = false;
    await store.importLayer(null, sha256(t0), () => {
      opened = true;
      return Readable.from([t0]);
    });
    expect(opened).toBe(false); // the chain exists: nothing to read
    const before = store.driver.list();
    const err = await store.importLayer(c0, sha256('something else'), () => Readable.from([t1])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiffIDMismatchError);
    expect((err as Error).message).toBe(`layer diffID mismatch: expected ${sha256('something else')}, got ${sha256(t1)}`);
    expect(store.driver.list()).toEqual(before);
    expect(store.list().map((l) => l.chainID)).toEqual([c0]);
    expect(fs.readdirSync(path.join(store.dir, 'tmp'))).toEqual([]);
    await expect(store.importLayer(sha256('no such parent'), sha256(t1), () => Readable.from([t1]))).rejects.toThrow(
      `layer ${sha256('no such parent')} not found`,
    );
    await store.importLayer(c0, sha256(t1), () => Readable.from([t1]));
    expect(store.get(chainID(c0, sha256(t1))).parent).toBe(c0);
  });

  it('repairs what crashes leave behind: staging, orphan driver layers, stale mounts and counts', async () => {
    const store = await openStore();
    const root = store.root;
    const base = await store.register(null, Readable.from([busyboxTar]));
    const top = await store.register(base.chainID, Readable.from([tarOf({ 'etc/motd': 'hi' })]));
    const rw = await store.createRW(top.chainID, 'container');
    // 1. a registration that died mid-way: staged metadata and a half-filled driver layer.
    const dead = '999999.1'; // no such process
    const halfId = 'f'.repeat(64);
    await store.driver.create(halfId, base.cacheId, {});
    fs.writeFileSync(path.join(store.driver.diffPath(halfId), 'partial'), 'x');
    const staged = path.join(store.dir, 'tmp', `${dead}-layer-0123`);
    fs.mkdirSync(staged);
    fs.writeFileSync(path.join(staged, 'cache-id'), halfId);
    fs.writeFileSync(path.join(staged, 'parent'), base.chainID);
    // 2. a driver layer with no metadata at all, 3. torn metadata dirs.
    await store.driver.create('orphan', null, {});
    fs.mkdirSync(path.join(store.dir, 'sha256', `${'a'.repeat(64)}-removing`));
    fs.mkdirSync(path.join(store.dir, 'mounts', 'torn'));
    // 4. a mount its process "forgot" (made behind the store's back), and 5. a count held by a dead process.
    const plan = store.driver.mounts(rw.id);
    const topPlan = store.driver.mounts(top.cacheId);
    if (driverName === 'overlay2') {
      for (const p of [plan, topPlan]) {
        fs.mkdirSync(p.target, { recursive: true });
        const m = p.mounts[0] as { lower: string[]; upper?: string; work?: string; options: string[] };
        await native.mountOverlay({ lower: m.lower, upper: m.upper, work: m.work, target: p.target, options: m.options });
      }
    }
    fs.writeFileSync(path.join(store.dir, 'mounts.json'), JSON.stringify({ [top.cacheId]: { [dead]: 2 } }));

    const reopened = await openStore(root);
    const rep = reopened.lastRepair;
    expect(rep.orphans.sort()).toEqual([halfId, 'orphan'].sort());
    expect(rep.staging).toEqual(expect.arrayContaining([staged, path.join(store.dir, 'mounts', 'torn')]));
    expect(rep.droppedMounts).toEqual([]);
    if (driverName === 'overlay2') expect(rep.unmounted.sort()).toEqual([plan.target, topPlan.target].sort());
    expect(mountsUnder(root)).toEqual([]);
    expect(fs.readdirSync(path.join(store.dir, 'tmp'))).toEqual([]);
    expect(JSON.parse(fs.readFileSync(path.join(store.dir, 'mounts.json'), 'utf8'))).toEqual({});
    expect(reopened.list().map((l) => l.chainID).sort()).toEqual([base.chainID, top.chainID].sort());
    expect(reopened.driver.list().sort()).toEqual([base.cacheId, top.cacheId, rw.id].sort());
    // ... and the store works.
    const again = reopened.getRW('container')!;
    const r = await again.mount();
    expect(fs.readFileSync(path.join(r, 'etc/motd'), 'utf8')).toBe('hi');
    fs.writeFileSync(path.join(r, 'new'), 'n');
    await again.unmount();
    const committed = await reopened.commitRW(again);
    expect(committed.parent).toBe(top.chainID);
    const more = await reopened.register(committed.chainID, Readable.from([tarOf({ more: 'm' })]));
    expect(more.parent).toBe(committed.chainID);
  });

  it('opens a clean store without looking at its layers; repairs in full on evidence of a crash or when asked', async () => {
    const store = await openStore();
    const root = store.root;
    expect(store.lastRepair.reason).toBe('no stamp of a full repair since boot'); // a new store
    let parent: Digest | null = null;
    const layers = [];
    for (let i = 0; i < 20; i++) {
      const layer = await store.register(parent, Readable.from([tarOf({ [`f${i}`]: String(i) })]));
      layers.push(layer);
      parent = layer.chainID;
    }
    const top = layers[layers.length - 1]!;
    expect((await openStore(root)).lastRepair.reason).toBeNull();
    // Metadata torn by hand (no crash leaves this): a cheap open does not read it, the full repair does.
    const topDir = path.join(store.dir, 'sha256', top.chainID.slice('sha256:'.length));
    fs.rmSync(path.join(topDir, 'diff'));
    const cheap = await openStore(root);
    expect(cheap.lastRepair).toEqual({ reason: null, unmounted: [], relinked: [], removed: [], staging: [], orphans: [], droppedMounts: [] });
    expect(fs.existsSync(topDir)).toBe(true);
    await cheap.repairNow();
    expect(cheap.lastRepair.reason).toBe('asked');
    expect(cheap.lastRepair.staging).toEqual([topDir]);
    expect(cheap.lastRepair.orphans).toEqual([top.cacheId]);
    expect(fs.existsSync(topDir)).toBe(false);
    // Evidence: an entry of a dead process in tmp/ (here an empty marker), a mount count of a dead process.
    const dead = '999999.1'; // no such process
    const marker = path.join(store.dir, 'tmp', `${dead}-publish-0123`);
    fs.mkdirSync(marker);
    const afterCrash = await openStore(root);
    expect(afterCrash.lastRepair.reason).toBe(`unfinished work of a dead process: tmp/${path.basename(marker)}`);
    expect(afterCrash.lastRepair.staging).toEqual([marker]);
    fs.writeFileSync(path.join(store.dir, 'mounts.json'), JSON.stringify({ [layers[0]!.cacheId]: { [dead]: 1 } }));
    const afterDeadHolder = await openStore(root);
    expect(afterDeadHolder.lastRepair).toMatchObject({ reason: 'mount counts of a dead process', droppedMounts: [] });
    expect(JSON.parse(fs.readFileSync(path.join(store.dir, 'mounts.json'), 'utf8'))).toEqual({});
    expect((await openStore(root)).lastRepair.reason).toBeNull();
    expect((await openStore(root)).list()).toHaveLength(19);
  });

  it('repairs in full once a store without the stamp (written by an older version)', async () => {
    const store = await openStore();
    const root = store.root;
    const base = await store.register(null, Readable.from([tarOf({ a: 'a' })]));
    const top = await store.register(base.chainID, Readable.from([tarOf({ b: 'b' })]));
    // What an older version's torn state may look like: a layer the full repair drops, nothing in tmp/.
    const topDir = path.join(store.dir, 'sha256', top.chainID.slice('sha256:'.length));
    fs.rmSync(path.join(topDir, 'cache-id'));
    fs.rmSync(path.join(store.dir, 'repaired'));
    const upgraded = await openStore(root);
    expect(upgraded.lastRepair).toMatchObject({ reason: 'no stamp of a full repair since boot', staging: [topDir], orphans: [top.cacheId] });
    expect(fs.readFileSync(path.join(store.dir, 'repaired'), 'utf8')).toMatch(/^markers 1 boot [0-9a-f-]{36}\n$/);
    expect((await openStore(root)).lastRepair.reason).toBeNull();
    // A stamp of another boot (markers a power loss may have dropped) is no stamp.
    fs.writeFileSync(path.join(store.dir, 'repaired'), 'markers 1 boot 00000000-0000-0000-0000-000000000000\n');
    expect((await openStore(root)).lastRepair.reason).toBe('no stamp of a full repair since boot');
    expect((await openStore(root)).list().map((l) => l.chainID)).toEqual([base.chainID]);
  });

  it('keeps mount counts across store instances (processes) and unmounts at the last put', async () => {
    const a = await openStore();
    const b = await openStore(a.root);
    const base = await a.register(null, Readable.from([busyboxTar]));
    const top = await a.register(base.chainID, Readable.from([tarOf({ x: 'x' })]));
    const p1 = await a.mount(top.chainID);
    const p2 = await b.mount(top.chainID);
    expect(p2).toBe(p1);
    const counts = JSON.parse(fs.readFileSync(path.join(a.dir, 'mounts.json'), 'utf8'));
    expect(Object.values(counts[top.cacheId] as Record<string, number>)).toEqual([2]);
    await a.unmount(top.chainID);
    expect(fs.readFileSync(path.join(p1, 'x'), 'utf8')).toBe('x'); // b still uses it
    await expect(b.remove(top.chainID)).rejects.toThrow(`layer ${top.chainID} is mounted`);
    await b.unmount(top.chainID);
    expect(a.driver.isMounted(top.cacheId)).toBe(false);
    await b.remove(top.chainID);
    expect(a.has(top.chainID)).toBe(false);
  });
});

describe('driver choice', () => {
  const roots: string[] = [];
  afterEach(() => {
    for (const r of roots.splice(0)) destroyRoot(r);
  });

  it('falls back to vfs with a notice where overlay cannot work, and keeps what a root already uses', async () => {
    const outer = await LayerStore.open(tempRoot('layers-outer'), { driver: 'overlay2' });
    roots.push(outer.root);
    const base = await outer.register(null, Readable.from([tarOf({ a: 'a' })]));
    const rw = await outer.createRW(base.chainID, 'host');
    const merged = await rw.mount();
    try {
      // overlay cannot use an overlay filesystem as its upper dir: a store inside one gets vfs.
      const inner = path.join(merged, 'store');
      await expect(LayerStore.open(inner, { driver: 'overlay2' })).rejects.toThrow(`overlay not supported on overlay at ${inner}: `);
      const auto = await LayerStore.open(inner);
      expect(auto.driver.name).toBe('vfs');
      expect(auto.notice).toMatch(new RegExp(`^overlay not supported on overlay at ${inner}: .+; using the vfs driver`));
      await auto.register(null, Readable.from([tarOf({ b: 'b' })]));
    } finally {
      await rw.unmount();
    }
    const vfsRoot = tempRoot('layers-vfs-kept');
    roots.push(vfsRoot);
    await (await LayerStore.open(vfsRoot, { driver: 'vfs' })).register(null, Readable.from([tarOf({ c: 'c' })]));
    const reopened = await LayerStore.open(vfsRoot);
    expect(reopened.driver.name).toBe('vfs');
    expect(reopened.notice).toBeUndefined();
  });
});

describe('layer store survives kill -9', () => {
  const dist = path.join(repoRoot, 'packages', 'storage', 'dist');
  let root: string;
  let proc: child.ChildProcess | undefined;

  beforeAll(() => {
    // The child runs the compiled package (vitest cannot be nested): build it first.
    try {
      child.execFileSync('npx', ['tsc', '-b', 'packages/storage'], { cwd: repoRoot, stdio: 'pipe', timeout: 120_000 });
    } catch {
      // Type errors elsewhere still emit; the existence check below is what matters.
    }
    expect(fs.existsSync(path.join(dist, 'layers', 'store.js'))).toBe(true);
    root = tempRoot('layers-kill');
  }, 150_000);
  afterAll(async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await new Promise((r) => proc!.once('exit', r));
    }
    destroyRoot(root);
  });

  /** The store at `root` with busybox and a layer holding /etc/motd on it. */
  async function busyboxWithMotd() {
    const store = await LayerStore.open(root, { driver: 'overlay2' });
    const base = await store.register(null, Readable.from([busyboxTar]));
    const top = await store.register(base.chainID, Readable.from([tarOf({ 'etc/motd': 'hi' })]));
    return { store, base, top };
  }

  /** Runs a node script and SIGKILLs it once its stdout holds `mark` (it stalls there). */
  async function killOnceItSays(mark: string, script: string, ...args: string[]): Promise<void> {
    const victim = child.spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = victim;
    let out = '';
    let err = '';
    victim.stdout.on('data', (d) => (out += d));
    victim.stderr.on('data', (d) => (err += d));
    const exited = new Promise<void>((resolve) => victim.once('exit', () => resolve()));
    while (!out.includes(mark)) {
      if (victim.exitCode !== null) throw new Error(`the child exited early (${victim.exitCode}): ${out} ${err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    victim.kill('SIGKILL');
    await exited;
  }

  it('killed between publishing a commit and the driver\'s commit: the next open finishes it', async () => {
    const store = await LayerStore.open(root, { driver: 'overlay2' });
    const base = await store.register(null, Readable.from([busyboxTar]));
    const script = path.join(root, 'victim-commit.cjs');
    // The driver's commit waits forever (once the layer is published): the window a kill -9 must not tear.
    fs.writeFileSync(
      script,
      `
const fs = require('node:fs');
const path = require('node:path');
const { LayerStore } = require(${JSON.stringify(path.join(dist, 'layers', 'store.js'))});
const { Overlay2Driver } = require(${JSON.stringify(path.join(dist, 'drivers', 'overlay2.js'))});
class StallingCommit extends Overlay2Driver {
  async commit(id) {
    process.stdout.write('committing\\n');
    setInterval(() => {}, 1000);
    await new Promise(() => {});
  }
}
(async () => {
  const [root, base] = process.argv.slice(2);
  const driver = new StallingCommit(root, Overlay2Driver.open(root).features);
  const store = await LayerStore.open(root, { driver });
  const rw = await store.createRW(base, 'committing');
  fs.writeFileSync(path.join(rw.diffPath, 'new'), 'n');
  await store.commitRW(rw);
  process.stdout.write('finished\\n');
})().catch((err) => { process.stderr.write(String(err && err.stack || err)); process.exit(1); });
`,
    );
    await killOnceItSays('committing', script, root, base.chainID);
    const rwId = fs.readFileSync(path.join(root, 'layers', 'mounts', 'committing', 'mount-id'), 'utf8');
    const layer = store.list().find((l) => l.cacheId === rwId)!;
    expect(layer.parent).toBe(base.chainID); // published, ...
    expect(fs.existsSync(path.join(root, 'overlay2', rwId, 'committed'))).toBe(false); // ... not committed

    const reopened = await LayerStore.open(root, { driver: 'overlay2' });
    expect(reopened.lastRepair.reason).toMatch(/^unfinished work of a dead process: tmp\/\d+\.\d+-publish-/);
    expect(fs.existsSync(path.join(root, 'overlay2', rwId, 'committed'))).toBe(true);
    expect(reopened.getRW('committing')).toBeUndefined(); // its files are the layer's now
    expect(reopened.driver.list()).toContain(rwId);
    expect(fs.readdirSync(path.join(reopened.dir, 'tmp'))).toEqual([]);
    expect((await LayerStore.open(root, { driver: 'overlay2' })).lastRepair.reason).toBeNull();
    const view = await reopened.mount(layer.chainID);
    expect(fs.readFileSync(path.join(view, 'new'), 'utf8')).toBe('n');
    expect(() => fs.writeFileSync(path.join(view, 'x'), 'x')).toThrow(/EROFS/);
    await reopened.unmount(layer.chainID);
    await reopened.remove(layer.chainID);
    await reopened.close();
  }, 60_000);

  it('killed between dropping a mount count and the unmount: the next open unmounts', async () => {
    const { store, top } = await busyboxWithMotd();
    const script = path.join(root, 'victim-unmount.cjs');
    // The store's own mount counter, except that it stalls once an unmount's count is dropped.
    fs.writeFileSync(
      script,
      `
const { LayerStore } = require(${JSON.stringify(path.join(dist, 'layers', 'store.js'))});
(async () => {
  const [root, top] = process.argv.slice(2);
  const store = await LayerStore.open(root, { driver: 'overlay2' });
  await store.mount(top);
  const counts = store.mountState;
  store.driver.setMountCounter({
    increment: (id) => counts.increment(id),
    decrement: async (id) => {
      await counts.decrement(id);
      process.stdout.write('unmounting\\n');
      setInterval(() => {}, 1000);
      await new Promise(() => {});
    },
  });
  await store.unmount(top);
  process.stdout.write('finished\\n');
})().catch((err) => { process.stderr.write(String(err && err.stack || err)); process.exit(1); });
`,
    );
    await killOnceItSays('unmounting', script, root, top.chainID);
    expect(JSON.parse(fs.readFileSync(path.join(root, 'layers', 'mounts.json'), 'utf8'))).toEqual({}); // no count left, ...
    const target = store.driver.mounts(top.cacheId).target;
    expect(mountsUnder(root)).toEqual([target]); // ... but the mount

    const reopened = await LayerStore.open(root, { driver: 'overlay2' });
    expect(reopened.lastRepair.reason).toMatch(/^unfinished work of a dead process: tmp\/\d+\.\d+-unmount-/);
    expect(reopened.lastRepair.unmounted).toEqual([target]);
    expect(mountsUnder(root)).toEqual([]);
    expect(fs.readdirSync(path.join(reopened.dir, 'tmp'))).toEqual([]);
    // An unmount that completes leaves nothing in tmp/: the next open is cheap.
    await reopened.mount(top.chainID);
    await reopened.unmount(top.chainID);
    expect(fs.readdirSync(path.join(reopened.dir, 'tmp'))).toEqual([]);
    expect((await LayerStore.open(root, { driver: 'overlay2' })).lastRepair.reason).toBeNull();
    await reopened.remove(top.chainID);
  }, 60_000);

  it('registering a 100 MB layer, killed mid-way: no incomplete layer, no mount, list() works', async () => {
    const { base, top } = await busyboxWithMotd();
    const script = path.join(root, 'victim.cjs');
    fs.writeFileSync(
      script,
      `
const { LayerStore } = require(${JSON.stringify(path.join(dist, 'layers', 'store.js'))});
const { tarStream } = require(${JSON.stringify(path.join(dist, 'archive', 'tar-writer.js'))});
(async () => {
  const [root, base, top] = process.argv.slice(2);
  const store = await LayerStore.open(root, { driver: 'overlay2' });
  const rw = await store.createRW(top, 'victim');
  await rw.mount();
  await store.mount(top);
  process.stdout.write('mounted\\n');
  const chunk = Buffer.alloc(1 << 20, 7);
  function* entries() {
    for (let i = 0; i < 100; i++) yield { header: { name: 'big/f' + i, type: 'file', size: chunk.length, mtime: 1 }, body: chunk };
  }
  await store.register(base, tarStream(entries()));
  process.stdout.write('finished\\n');
})().catch((err) => { process.stderr.write(String(err && err.stack || err)); process.exit(1); });
`,
    );
    proc = child.spawn(process.execPath, [script, root, base.chainID, top.chainID], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (err += d));
    const exited = new Promise<void>((resolve) => proc!.once('exit', () => resolve()));
    // Wait until the child has mounted and ~20 MB of the big layer are on disk, then SIGKILL it.
    const bigDirs = () => {
      const home = path.join(root, 'overlay2');
      return fs.readdirSync(home).filter((id) => fs.existsSync(path.join(home, id, 'diff', 'big')));
    };
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`the child exited early (${proc.exitCode}): ${out} ${err}`);
      const dirs = out.includes('mounted') ? bigDirs() : [];
      if (dirs.length === 1 && fs.readdirSync(path.join(root, 'overlay2', dirs[0]!, 'diff', 'big')).length >= 20) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    proc.kill('SIGKILL');
    await exited;
    expect(out).not.toContain('finished');
    expect(mountsUnder(root).length).toBe(2); // the RW and the read-only mount the child left

    const reopened = await LayerStore.open(root, { driver: 'overlay2' });
    expect(mountsUnder(root)).toEqual([]);
    expect(bigDirs()).toEqual([]);
    expect(reopened.list().map((l) => l.chainID).sort()).toEqual([base.chainID, top.chainID].sort());
    expect(fs.readdirSync(path.join(reopened.dir, 'tmp'))).toEqual([]);
    expect(JSON.parse(fs.readFileSync(path.join(reopened.dir, 'mounts.json'), 'utf8'))).toEqual({});
    expect(reopened.lastRepair.orphans).toHaveLength(1);
    // The RW layer the child created survives (it was complete) and works.
    const rw = reopened.getRW('victim')!;
    const r = await rw.mount();
    expect(fs.readFileSync(path.join(r, 'etc/motd'), 'utf8')).toBe('hi');
    await rw.unmount();
    await reopened.removeRW('victim');
    expect(reopened.driver.list().sort()).toEqual([base.cacheId, top.cacheId].sort());
  }, 60_000);
});
