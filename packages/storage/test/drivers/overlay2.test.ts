import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as native from '@tsbuild/native';
import { Overlay2Driver, MAX_LOWERS, overlayMountPlan, volatileSupported } from '../../src/drivers/overlay2';
import { OverlayUnsupportedError, baseOverlayOptions, overlayFeatures, probeOverlay } from '../../src/drivers/probe';
import { SHORT_ID_RE } from '../../src/drivers/ids';
import { processToken } from '../../src/drivers/proc';
import { isMountPoint } from '../../src/drivers/mountinfo';
import { driverConformance } from './conformance';
import { destroyRoot, tempRoot } from '../../../../test/helpers/temp';

driverConformance('overlay2', (root) => Overlay2Driver.open(root, { warn: () => {} }));

describe('overlay2 specifics', () => {
  const roots: string[] = [];
  const newRoot = () => {
    const r = tempRoot('ovl2');
    roots.push(r);
    return r;
  };
  afterEach(() => {
    for (const r of roots.splice(0)) destroyRoot(r);
  });

  it('computes plans as pure data: exact options, lowers nearest first', () => {
    const opts = ['index=off', 'metacopy=off', 'redirect_dir=off'];
    const home = '/s/overlay2';
    expect(overlayMountPlan({ id: 'base', home, link: 'AAAAAAAAAAAAAAAAAAAAAAAAAA', lower: [], committed: true, options: opts })).toEqual({
      id: 'base', target: '/s/overlay2/base/diff', mounts: [], readOnly: true,
    });
    expect(overlayMountPlan({ id: 'c', home, link: 'CCCCCCCCCCCCCCCCCCCCCCCCCC', lower: ['l/BBBBBBBBBBBBBBBBBBBBBBBBBB', 'l/AAAAAAAAAAAAAAAAAAAAAAAAAA'], committed: true, options: opts })).toEqual({
      id: 'c',
      target: '/s/overlay2/c/merged',
      readOnly: true,
      mounts: [{
        type: 'overlay',
        lower: ['/s/overlay2/l/CCCCCCCCCCCCCCCCCCCCCCCCCC', '/s/overlay2/l/BBBBBBBBBBBBBBBBBBBBBBBBBB', '/s/overlay2/l/AAAAAAAAAAAAAAAAAAAAAAAAAA'],
        options: ['index=off', 'metacopy=off', 'redirect_dir=off'],
      }],
    });
    expect(overlayMountPlan({ id: 'rw', home, link: 'RRRRRRRRRRRRRRRRRRRRRRRRRR', lower: ['l/CCCCCCCCCCCCCCCCCCCCCCCCCC'], committed: false, options: [...opts, 'volatile'] })).toEqual({
      id: 'rw',
      target: '/s/overlay2/rw/merged',
      readOnly: false,
      mounts: [{
        type: 'overlay',
        lower: ['/s/overlay2/l/CCCCCCCCCCCCCCCCCCCCCCCCCC'],
        upper: '/s/overlay2/rw/diff',
        work: '/s/overlay2/rw/work',
        options: ['index=off', 'metacopy=off', 'redirect_dir=off', 'volatile'],
      }],
    });
    const lower = Array.from({ length: MAX_LOWERS }, (_, i) => `l/${String(i).padStart(26, 'A')}`);
    expect(() => overlayMountPlan({ id: 'deep', home, link: 'DDDDDDDDDDDDDDDDDDDDDDDDDD', lower, committed: true, options: opts }))
      .toThrow('max depth exceeded: 501 layers, the limit is 500');
  });

  it("uses Docker's layout: diff, link, lower, work, committed, l/ short links", async () => {
    const root = newRoot();
    const d = Overlay2Driver.open(root);
    await d.create('a', null, {});
    await d.create('b', 'a', { readWrite: true });
    await d.create('c', 'b', {});
    const home = path.join(root, 'overlay2');
    expect(fs.readdirSync(path.join(home, 'a')).sort()).toEqual(['committed', 'diff', 'link']);
    expect(fs.readdirSync(path.join(home, 'b')).sort()).toEqual(['committed', 'diff', 'link', 'lower', 'work']); // committed: has a child
    expect(fs.statSync(path.join(home, 'b', 'work')).mode & 0o777).toBe(0o700);
    const link = (id: string) => fs.readFileSync(path.join(home, id, 'link'), 'utf8');
    for (const id of ['a', 'b', 'c']) {
      expect(link(id)).toMatch(SHORT_ID_RE);
      expect(fs.readlinkSync(path.join(home, 'l', link(id)))).toBe(`../${id}/diff`);
    }
    expect(fs.readFileSync(path.join(home, 'c', 'lower'), 'utf8')).toBe(`l/${link('b')}:l/${link('a')}`);
    const f = overlayFeatures();
    const options = [...(f.indexParam ? ['index=off'] : []), ...(f.metacopyParam ? ['metacopy=off'] : []), 'redirect_dir=off'];
    expect(d.mounts('c').mounts).toEqual([{
      type: 'overlay',
      lower: [path.join(home, 'l', link('c')), path.join(home, 'l', link('b')), path.join(home, 'l', link('a'))],
      options,
    }]);
    // A base layer is its diff dir, unmounted.
    expect(await d.get('a')).toBe(path.join(home, 'a', 'diff'));
    expect(isMountPoint(path.join(home, 'a', 'diff'))).toBe(false);
    await d.put('a');
  });

  it(`refuses chains deeper than ${MAX_LOWERS} layers with a clear error`, async () => {
    const d = Overlay2Driver.open(newRoot());
    let parent: string | null = null;
    for (let i = 0; i < MAX_LOWERS; i++) {
      await d.create(`l${i}`, parent, {});
      parent = `l${i}`;
    }
    fs.writeFileSync(path.join(d.diffPath('l0'), 'bottom'), 'b');
    fs.writeFileSync(path.join(d.diffPath(`l${MAX_LOWERS - 1}`), 'top'), 't');
    // 500 lowers mount (lowerdir+ per layer)...
    const rootfs = await d.get(`l${MAX_LOWERS - 1}`);
    expect(fs.readdirSync(rootfs).sort()).toEqual(['bottom', 'top']);
    await d.put(`l${MAX_LOWERS - 1}`);
    // ...the 501st does not.
    await expect(d.create('too-deep', `l${MAX_LOWERS - 1}`, {})).rejects.toThrow('max depth exceeded: 501 layers, the limit is 500');
    await d.create('rw-on-top', `l${MAX_LOWERS - 1}`, { readWrite: true }); // a RW layer adds an upper, not a lower
    expect(d.mounts('rw-on-top').mounts[0]).toMatchObject({ upper: path.join(d.home, 'rw-on-top', 'diff') });
  });

  it('repairs: rebuilds short links, removes unused merged dirs, unmounts stale mounts', async () => {
    const root = newRoot();
    const d = Overlay2Driver.open(root);
    await d.create('a', null, {});
    fs.writeFileSync(path.join(d.diffPath('a'), 'x'), 'x');
    await d.create('b', 'a', {});
    await d.create('c', 'b', { readWrite: true });
    const linkB = fs.readFileSync(path.join(d.home, 'b', 'link'), 'utf8');
    fs.rmSync(path.join(d.home, 'l', linkB));
    fs.mkdirSync(path.join(d.home, 'b', 'merged'));
    // A "crashed process" mount: mounted behind the driver's back, never put.
    const plan = d.mounts('c');
    fs.mkdirSync(plan.target);
    fs.rmSync(path.join(d.home, 'l', linkB), { force: true });
    fs.symlinkSync(`../b/diff`, path.join(d.home, 'l', linkB));
    const m = plan.mounts[0] as { lower: string[]; upper: string; work: string; options: string[] };
    await native.mountOverlay({ lower: m.lower, upper: m.upper, work: m.work, target: plan.target, options: m.options });
    fs.rmSync(path.join(d.home, 'l', linkB));
    fs.mkdirSync(path.join(d.home, 'gone-removing', 'diff'), { recursive: true });
    const staleProbe = path.join(root, '.overlay-probe-999999.1-0a0b');
    const liveProbe = path.join(root, `.overlay-probe-${processToken()}-0c0d`);
    fs.mkdirSync(staleProbe);
    fs.mkdirSync(liveProbe);

    const fresh = Overlay2Driver.open(root);
    const report = await fresh.repair(() => false);
    expect(report.relinked).toEqual([path.join(d.home, 'l', linkB)]);
    expect(report.unmounted).toEqual([plan.target]);
    expect(report.removed).toEqual(expect.arrayContaining([staleProbe, path.join(d.home, 'gone-removing'), path.join(d.home, 'b', 'merged'), plan.target]));
    expect(fs.existsSync(liveProbe)).toBe(true); // another live process may be probing right now
    expect(isMountPoint(plan.target)).toBe(false);
    expect(fs.existsSync(path.join(d.home, 'b', 'merged'))).toBe(false);
    const rootfs = await fresh.get('c');
    expect(fs.readFileSync(path.join(rootfs, 'x'), 'utf8')).toBe('x');
    await fresh.put('c');
    // A mount that is in use survives repair.
    await fresh.get('c');
    const kept = await Overlay2Driver.open(root).repair((id) => id === 'c');
    expect(kept.unmounted).toEqual([]);
    expect(isMountPoint(plan.target)).toBe(true);
    await fresh.put('c');
  });

  it('volatile RW layers remount after the kernel left its incompat marker', async () => {
    const d = Overlay2Driver.open(newRoot());
    await d.create('base', null, {});
    await d.create('tmp', 'base', { readWrite: true, volatile: true });
    expect(d.mounts('tmp').mounts[0]!.options).toContain('volatile');
    for (let i = 0; i < 2; i++) {
      const r = await d.get('tmp');
      fs.writeFileSync(path.join(r, `f${i}`), 'x');
      await d.put('tmp');
    }
    expect(fs.readdirSync(d.diffPath('tmp')).sort()).toEqual(['f0', 'f1']);
  });

  it('asks for volatile only from Linux 5.10 on, where the kernel knows it', () => {
    expect(['4.19.0', '5.4.120', '5.9.16'].map((r) => volatileSupported(r))).toEqual([false, false, false]);
    expect(['5.10.0', '5.15.0-91-generic', '6.18.44-fc-v1272'].map((r) => volatileSupported(r))).toEqual([true, true, true]);
  });

  it('probes the filesystem and explains why overlay cannot work', () => {
    const root = newRoot();
    const probe = probeOverlay(root);
    expect(probe).toMatchObject({ supported: true, fsType: expect.any(String), lowerdirPlus: true });
    expect(baseOverlayOptions(probe)).toContain('redirect_dir=off');
    // The probe cleans up after itself; only its record of the result stays.
    expect(fs.readdirSync(root)).toEqual(['.overlay-probe.json']);
    // overlay cannot use an overlay as its upper filesystem: probe inside a mounted overlay.
    const d = Overlay2Driver.open(root);
    return (async () => {
      await d.create('a', null, {});
      await d.create('b', 'a', { readWrite: true });
      const merged = await d.get('b');
      try {
        const inner = probeOverlay(path.join(merged, 'store'));
        expect(inner.supported).toBe(false);
        expect(inner.fsType).toBe('overlay');
        const err = new OverlayUnsupportedError(inner.fsType, path.join(merged, 'store'), inner.reason!);
        expect(err.message).toMatch(new RegExp(`^overlay not supported on overlay at ${merged}/store: `));
        expect(() => Overlay2Driver.open(path.join(merged, 'store'))).toThrow(err.message);
      } finally {
        await d.put('b');
      }
    })();
  });
});
