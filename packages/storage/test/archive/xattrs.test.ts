// The xattr policy (src/archive/xattrs.ts) on plain directories: packDir stores user.* and a binary
// security.capability and leaves out what overlayfs and fuse-overlayfs keep for themselves; applyTar
// sets the first and refuses the others (with a warning); the cache key counts what BuildKit counts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lsetxattr } from '@tsbuild/native';
import { applyTar, buildTar, cacheKeyCountsXattr, listTar, packDir, readXattrs } from '../../src/archive';
import { bufferStream, collect } from '../../../../test/helpers/streams';
import { tempRoot } from '../../../../test/helpers/temp';

const CAP_NET_RAW = Buffer.from('0100000200200000000000000000000000000000', 'hex');
const KEPT = { 'security.capability': CAP_NET_RAW, 'user.note': Buffer.from([0, 1, 2, 255]) };
const INTERNAL = {
  'trusted.overlay.origin': Buffer.from([1, 2]),
  'user.overlay.impure': Buffer.from('y'),
  'user.fuseoverlayfs.origin': Buffer.from([3]),
  'security.fuseoverlayfs.override_stat': Buffer.from('0:0:0755'),
};

describe('xattr policy', () => {
  const roots: string[] = [];
  afterEach(() => {
    for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
  });
  const root = (name: string) => {
    const r = tempRoot(name);
    roots.push(r);
    return r;
  };

  it('pack keeps user.* and security.capability, drops union filesystems\' own; apply restores the same', async () => {
    const src = root('xattr-src');
    fs.mkdirSync(path.join(src, 'd'));
    fs.writeFileSync(path.join(src, 'd/f'), 'x');
    for (const rel of ['d', 'd/f']) for (const [k, v] of Object.entries({ ...KEPT, ...INTERNAL })) lsetxattr(path.join(src, rel), k, v);
    const tar = await collect(packDir(src, { whiteouts: 'none' }));
    for (const h of await listTar(bufferStream(tar))) {
      expect(Object.fromEntries(h.xattrs)).toEqual(KEPT);
    }
    const dest = root('xattr-dest');
    await applyTar(bufferStream(tar), dest, { whiteouts: 'merge' });
    for (const rel of ['d', 'd/f']) expect(Object.fromEntries(readXattrs(path.join(dest, rel)))).toEqual(KEPT);
  });

  it('apply refuses overlay and fuse-overlayfs xattrs from a tar, naming each', async () => {
    const tar = buildTar([{ header: { name: 'f', type: 'file', xattrs: { ...KEPT, ...INTERNAL } }, body: 'x' }]);
    const dest = root('xattr-apply');
    const result = await applyTar(bufferStream(tar), dest, { whiteouts: 'merge' });
    expect(Object.fromEntries(readXattrs(path.join(dest, 'f')))).toEqual(KEPT);
    expect(result.warnings.sort()).toEqual([
      'f: fuse-overlayfs-private xattr security.fuseoverlayfs.override_stat ignored',
      'f: fuse-overlayfs-private xattr user.fuseoverlayfs.origin ignored',
      'f: overlay-private xattr trusted.overlay.origin ignored',
      'f: overlay-private xattr user.overlay.impure ignored',
    ]);
  });

  it('cache keys count user.*, trusted.* and security.capability, not the rest of security.* or system.*', () => {
    expect(['user.note', 'trusted.x', 'security.capability'].map(cacheKeyCountsXattr)).toEqual([true, true, true]);
    expect(['security.selinux', 'system.posix_acl_access'].map(cacheKeyCountsXattr)).toEqual([false, false]);
  });
});
