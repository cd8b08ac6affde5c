import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listTar } from '../../src/archive';
import { VfsDriver } from '../../src/drivers/vfs';
import { driverConformance } from './conformance';
import { tempRootsPerTest } from '../../../../test/helpers/temp';

driverConformance('vfs', (root) => VfsDriver.open(root, { warn: () => {} }));

describe('vfs specifics', () => {
  const tempRoot = tempRootsPerTest();

  it('sees a rewrite that kept size and mtime (same clock tick) through the ctime baseline', async () => {
    const d = VfsDriver.open(tempRoot('vfs'));
    await d.create('a', null, { readWrite: true });
    fs.writeFileSync(path.join(d.diffPath('a'), 'f'), 'one');
    fs.writeFileSync(path.join(d.diffPath('a'), 'same'), 'same');
    await d.commit('a');
    await d.create('b', 'a', { readWrite: true });
    const f = path.join(d.diffPath('b'), 'f');
    const t = Number(fs.statSync(path.join(d.diffPath('a'), 'f'), { bigint: true }).mtimeNs / 1000n) / 1e6;
    fs.writeFileSync(f, 'two');
    fs.utimesSync(f, t, t);
    const drift = fs.statSync(f, { bigint: true }).mtimeNs - fs.statSync(path.join(d.diffPath('a'), 'f'), { bigint: true }).mtimeNs;
    expect(drift <= 2000n && drift >= -2000n).toBe(true); // mtime and size say: unchanged
    const names = (await listTar(d.diff('b'))).map((h) => h.name);
    expect(names).toEqual(['f']);
  });

  it('keeps full copies under vfs/dir and never mounts', async () => {
    const root = tempRoot('vfs');
    const d = VfsDriver.open(root);
    await d.create('a', null, { readWrite: true });
    fs.writeFileSync(path.join(d.diffPath('a'), 'x'), 'x');
    await d.commit('a');
    await d.create('b', 'a', { readWrite: true });
    expect(d.diffPath('b')).toBe(path.join(root, 'vfs', 'dir', 'b'));
    expect(fs.readFileSync(path.join(root, 'vfs', 'dir', 'b', 'x'), 'utf8')).toBe('x');
    expect(d.mounts('b')).toEqual({ id: 'b', target: path.join(root, 'vfs', 'dir', 'b'), mounts: [], readOnly: false });
    // A crash mid-copy leaves only tmp/ debris of a dead process, which repair removes.
    fs.mkdirSync(path.join(root, 'vfs', 'tmp', '999999.1-c-0123'), { recursive: true });
    fs.mkdirSync(path.join(root, 'vfs', 'dir', 'old-removing'));
    const report = await VfsDriver.open(root).repair(() => false);
    expect(report.removed.sort()).toEqual([path.join(root, 'vfs', 'dir', 'old-removing'), path.join(root, 'vfs', 'tmp', '999999.1-c-0123')]);
    expect(d.list()).toEqual(['a', 'b']);
  });
});
