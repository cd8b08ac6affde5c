// tsbuild fsck (issue 9): finds a planted poisoned layer blob, a truncated blob, a diff directory
// changed behind the store's back and a leftover mount; --repair fixes each; a second fsck is clean.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { MediaTypes, Store, type FsckReport } from '@tsbuild/storage';
import { build } from '@tsbuild/builder';
import { cli, mountsUnder, runImage, useTestRoot } from './helpers/roots';

const t = useTestRoot();
afterEach(() => {
  for (const m of mountsUnder(t.root)) execFileSync('umount', ['-l', m]);
});

/** fsck as the CLI runs it: a store opened without open's own clean-up. */
async function fsck(repair = false): Promise<FsckReport> {
  const store = await Store.open(t.root, { driver: 'overlay2', repair: false });
  try {
    return await store.fsck({ repair });
  } finally {
    await store.close();
  }
}

async function base() {
  const img = await t.store.images.resolve('busybox');
  const diffID = img.layers[0]!.diffID;
  const layer = t.store.layers.list().find((l) => l.diffID === diffID)!;
  return { diffID, layer, diffDir: t.store.layers.driver.diffPath(layer.cacheId) };
}

/** A tar holding one file. */
function tarOf(name: string, content: string): Buffer {
  const dir = fs.mkdtempSync(path.join(t.work, 'tar-'));
  fs.writeFileSync(path.join(dir, name), content);
  return execFileSync('tar', ['-C', dir, '-cf', '-', name]);
}

describe('fsck', () => {
  it('a fresh store with an imported and a built image is clean', async () => {
    const ctx = fs.mkdtempSync(path.join(t.work, 'ctx-'));
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo built > /built\n');
    await build({ context: ctx, tags: ['app:latest'] }, { store: t.store });
    const report = await fsck();
    expect(report.problems).toEqual([]);
    expect(report.notes).toEqual([]);
    expect(report.checked.layers).toBe(2);
    expect(report.checked.images).toBe(2);
  });

  it('finds a poisoned layer blob, a truncated blob, a changed diff directory and a leftover mount; --repair fixes each', async () => {
    const { diffID, layer, diffDir } = await base();
    // A compressed blob recorded for the base's diff_id that holds something else (what an
    // unverified load used to record).
    const poison = await t.store.images.content.putBytes(zlib.gzipSync(tarOf('BACKDOOR', 'owned\n')), MediaTypes.ociLayerGzip);
    await t.store.images.recordLayerBlob(diffID, poison);
    // A blob cut short on disk.
    const victim = await t.store.images.content.putBytes(Buffer.alloc(4096, 7));
    fs.truncateSync(t.store.images.content.blobPath(victim.digest), 1000);
    // A file slipped into the base layer's diff directory.
    fs.writeFileSync(path.join(diffDir, 'etc', 'injected'), 'not from the layer\n');
    // A mount left under the root by a process that died, over a host directory that must survive.
    const precious = fs.mkdtempSync(path.join(t.work, 'host-'));
    fs.writeFileSync(path.join(precious, 'keep'), 'host data\n');
    const leftover = path.join(t.root, 'tmp', '1.1-ctr-leftover');
    fs.mkdirSync(leftover, { recursive: true });
    execFileSync('mount', ['--bind', precious, leftover]);

    const found = await fsck();
    const messages = found.problems.map((p) => `${p.kind}: ${p.message}`);
    expect(messages).toContainEqual(expect.stringMatching(new RegExp(`^layer-blob: layer ${poison.digest} does not match its diff_id ${diffID}: its content hashes to sha256:[0-9a-f]{64}$`)));
    expect(messages).toContainEqual(expect.stringMatching(new RegExp(`^blob: blob ${victim.digest} is corrupt: its bytes hash to sha256:[0-9a-f]{64}$`)));
    expect(messages).toContain(`layer: layer ${layer.chainID}: its diff directory ${diffDir} no longer matches diff_id ${diffID}`);
    expect(messages).toContain(`mount: leftover mount at ${leftover}: no running tsbuild process holds it`);
    expect(messages).toContain(`leftover: scratch directory of a dead process: ${leftover}`);
    expect(found.problems.every((p) => p.repair === undefined)).toBe(true);
    // Looking changed nothing.
    expect(mountsUnder(t.root)).toEqual([leftover]);
    expect(fs.existsSync(path.join(diffDir, 'etc', 'injected'))).toBe(true);

    const repaired = await fsck(true);
    expect(repaired.problems.length).toBe(found.problems.length);
    for (const p of repaired.problems) expect(p.repair, p.message).toMatch(/^(removed|unmounted|replaced)/);
    expect(repaired.problems.find((p) => p.kind === 'layer')!.repair).toBe('replaced by a fresh extraction of its original tar');
    expect(mountsUnder(t.root)).toEqual([]);
    expect(fs.readFileSync(path.join(precious, 'keep'), 'utf8')).toBe('host data\n');
    expect(fs.existsSync(path.join(diffDir, 'etc', 'injected'))).toBe(false);
    expect(await t.store.images.content.has(poison.digest)).toBe(false);
    expect(await t.store.images.content.has(victim.digest)).toBe(false);
    expect((await t.store.images.blobInfo.get(diffID))?.compressed ?? []).toEqual([]);

    expect((await fsck()).problems).toEqual([]);
    const run = await runImage(t.store, 'busybox', ['sh', '-c', 'ls /etc/injected 2>&1; echo ok']);
    expect(run.stdout).toContain('ok');
    expect(run.stdout).toContain('No such file');
  });

  it('an ordinary open detaches a mount a dead process left in its scratch directory before removing it', async () => {
    const precious = fs.mkdtempSync(path.join(t.work, 'host-'));
    fs.writeFileSync(path.join(precious, 'keep'), 'host data\n');
    const leftover = path.join(t.root, 'tmp', '1.1-tmpfs-leftover');
    fs.mkdirSync(leftover, { recursive: true });
    execFileSync('mount', ['--bind', precious, leftover]);
    const again = await Store.open(t.root, { driver: 'overlay2' });
    await again.close();
    expect(mountsUnder(t.root)).toEqual([]);
    expect(fs.existsSync(leftover)).toBe(false);
    expect(fs.readFileSync(path.join(precious, 'keep'), 'utf8')).toBe('host data\n');
  });

  it('finds what dead processes left: a work layer, a container layer without its record, an orphan driver layer', async () => {
    const { layer } = await base();
    await t.store.layers.createRW(layer.chainID, '1.1-build-leftover');
    await t.store.layers.createRW(layer.chainID, `ctr-${'ab'.repeat(16)}`);
    // Older than a container being created right now (its layer comes before its record).
    const hourAgo = new Date(Date.now() - 3600_000);
    fs.utimesSync(path.join(t.root, 'layers', 'mounts', `ctr-${'ab'.repeat(16)}`), hourAgo, hourAgo);
    const orphan = path.join(t.root, 'overlay2', 'f'.repeat(64));
    fs.mkdirSync(path.join(orphan, 'diff'), { recursive: true });
    const found = (await fsck()).problems.map((p) => `${p.kind}: ${p.message}`);
    expect(found).toContain('leftover: work layer of a dead process: 1.1-build-leftover');
    expect(found).toContain(`leftover: container layer without a container: ctr-${'ab'.repeat(16)}`);
    expect(found).toContain(`leftover: overlay2 layer that nothing names: ${'f'.repeat(64)}`);
    const repaired = await fsck(true);
    for (const p of repaired.problems) expect(p.repair, p.message).toBe('removed');
    expect((await fsck()).problems).toEqual([]);
    expect(t.store.layers.listRW()).toEqual([]);
    expect(fs.existsSync(orphan)).toBe(false);
  });

  it('the CLI exits 1 and names each problem, --repair says what it did, then exits 0', async () => {
    const { layer, diffDir } = await base();
    fs.rmSync(path.join(diffDir, 'bin', 'ls'));
    const first = cli(t.root, ['fsck']);
    expect(first.status).toBe(1);
    expect(first.stdout).toContain(`layer: layer ${layer.chainID}: its diff directory ${diffDir} no longer matches diff_id`);
    expect(first.stdout).toMatch(/: 1 problem\n$/);
    const fix = cli(t.root, ['fsck', '--repair']);
    expect(fix.status).toBe(1);
    expect(fix.stdout).toContain('  repair: replaced by a fresh extraction of its original tar');
    const again = cli(t.root, ['fsck']);
    expect(again.stderr).toBe('');
    expect(again.stdout).toMatch(/: no problems\n$/);
    expect(again.status).toBe(0);
    expect(fs.existsSync(path.join(diffDir, 'bin', 'ls'))).toBe(true);
  });

  it('a built layer changed behind the store\'s back, with no original tar: --repair removes the image, its cache records and the layer', async () => {
    const ctx = fs.mkdtempSync(path.join(t.work, 'ctx-'));
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo built > /built\nRUN echo above > /above\n');
    const { imageId } = await build({ context: ctx, tags: ['app:latest'] }, { store: t.store });
    const img = await t.store.imageChain(imageId);
    const built = t.store.layers.get(t.store.layers.get(img.chainID!).parent!);
    fs.writeFileSync(path.join(t.store.layers.driver.diffPath(built.cacheId), 'built'), 'tampered\n');
    const found = await fsck();
    expect(found.problems.map((p) => p.message)).toEqual([`layer ${built.chainID}: its diff directory ${t.store.layers.driver.diffPath(built.cacheId)} no longer matches diff_id ${built.diffID}`]);
    // The build's cache records of the layer and of the one above it go too: a hit would reuse the wrong files.
    const repaired = await fsck(true);
    expect(repaired.problems[0]!.repair).toBe('removed app:latest; dropped 2 build cache records; removed the layer');
    expect(t.store.layers.has(built.chainID)).toBe(false);
    expect((await fsck()).problems).toEqual([]);
    expect((await t.store.images.list()).map((i) => i.ref)).toEqual(['busybox:latest']);
    // The next build runs the steps again: the layer comes back with the built file.
    const again = await build({ context: ctx, tags: ['app:latest'] }, { store: t.store });
    const rebuilt = t.store.layers.get(t.store.layers.get((await t.store.imageChain(again.imageId)).chainID!).parent!);
    expect(fs.readFileSync(path.join(t.store.layers.driver.diffPath(rebuilt.cacheId), 'built'), 'utf8')).toBe('built\n');
  });
});
