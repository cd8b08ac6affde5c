import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { statfs } from '../src/fsops';
import type { OverlayMountSpec } from '../src/types';
import { mountOverlay, mountOverlaySync, overlayApi, umount } from '../src/mount';
import { mountLine, rejection, withoutNative } from './syscall-helpers';
import { destroyRoot } from '../../../test/helpers/temp';

let root: string;



/** Creates root/<name>/ with the given files; returns its path. */
function layer(name: string, files: Record<string, string> = {}): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), content);
  return dir;
}

/** Runs fn with the legacy mount(2) path forced, the way TSBUILD_OVERLAY_API=mount does for users. */
async function withLegacyApi<T>(fn: () => T | Promise<T>): Promise<T> {
  const saved = process.env.TSBUILD_OVERLAY_API;
  process.env.TSBUILD_OVERLAY_API = 'mount';
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.TSBUILD_OVERLAY_API;
    else process.env.TSBUILD_OVERLAY_API = saved;
  }
}


beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-overlay-'));
});
afterEach(() => {
  destroyRoot(root);
});

/** Three lowers and an upper: precedence, copy-up, whiteouts, options and flags, clean unmount. */
async function checkThreeLayerOverlay(names: { top: string; mid: string; bottom: string }): Promise<'fsconfig' | 'mount'> {
  const top = layer(names.top, { shared: 'top', 'top-only': 't' });
  const mid = layer(names.mid, { shared: 'mid', 'mid-only': 'm' });
  const bottom = layer(names.bottom, { shared: 'bottom', 'bottom-only': 'b' });
  const upper = layer('upper');
  const work = layer('work');
  const target = layer('merged');

  const { api } = await mountOverlay({
    lower: [top, mid, bottom], upper, work, target, options: ['index=off', 'uuid=off', 'volatile'], flags: ['nodev', 'nosuid'],
  });
  expect(statfs(target).typeName).toBe('overlay');
  expect(mountLine(target)).toMatch(/ rw,nosuid,nodev[, ]/);
  expect(mountLine(target)).toMatch(/,uuid=off,fsync=volatile/); // key=value and bare flag options both reach the kernel
  expect(fs.readdirSync(target).sort()).toEqual(['bottom-only', 'mid-only', 'shared', 'top-only']);
  expect(fs.readFileSync(path.join(target, 'shared'), 'utf8')).toBe('top');
  expect(fs.readFileSync(path.join(target, 'bottom-only'), 'utf8')).toBe('b');

  fs.writeFileSync(path.join(target, 'new'), 'written');
  fs.appendFileSync(path.join(target, 'mid-only'), '+');
  fs.unlinkSync(path.join(target, 'bottom-only'));
  expect(fs.readFileSync(path.join(upper, 'new'), 'utf8')).toBe('written');
  expect(fs.readFileSync(path.join(upper, 'mid-only'), 'utf8')).toBe('m+');
  expect(fs.readFileSync(path.join(mid, 'mid-only'), 'utf8')).toBe('m');
  const whiteout = fs.lstatSync(path.join(upper, 'bottom-only'));
  expect(whiteout.isCharacterDevice()).toBe(true);
  expect(whiteout.rdev).toBe(0);
  expect(fs.existsSync(path.join(bottom, 'bottom-only'))).toBe(true);

  await umount(target);
  expect(mountLine(target)).toBeUndefined();
  expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(root);
  return api;
}

describe('mountOverlay through the new mount API', () => {
  it('is the API this kernel (6.7+) gets', () => {
    expect(overlayApi()).toBe('fsconfig');
  });

  it('mounts 3 lowers + upper with precedence, copy-up and whiteouts', async () => {
    expect(await checkThreeLayerOverlay({ top: 'l1', mid: 'l2', bottom: 'l3' })).toBe('fsconfig');
  });

  it('takes paths with ":", "," and "\\" unescaped (each lowerdir+ is one value)', async () => {
    expect(await checkThreeLayerOverlay({ top: 'a:b', mid: 'c,d', bottom: 'e\\f' })).toBe('fsconfig');
  });

  it('mounts 500 read-only lowers; the 501st fails with the kernel log in the message', async () => {
    const lowers = Array.from({ length: 501 }, (_, i) => layer(`l/${i}`));
    fs.writeFileSync(path.join(lowers[0]!, 'top'), 'top layer');
    fs.writeFileSync(path.join(lowers[499]!, 'bottom'), 'bottom layer');
    const target = layer('merged');

    expect(await mountOverlay({ lower: lowers.slice(0, 500), target, flags: ['ro'] })).toEqual({ api: 'fsconfig' });
    try {
      expect(fs.readFileSync(path.join(target, 'top'), 'utf8')).toBe('top layer');
      expect(fs.readFileSync(path.join(target, 'bottom'), 'utf8')).toBe('bottom layer');
      expect(() => fs.writeFileSync(path.join(target, 'x'), '')).toThrow(expect.objectContaining({ code: 'EROFS' }));
    } finally {
      await umount(target);
    }

    const err = await rejection(mountOverlay({ lower: lowers, target }));
    expect(err).toMatchObject({ code: 'EINVAL', syscall: 'fsconfig', path: target });
    expect(err.message).toContain('too many lower directories, limit is 500');
    expect(err.message).toContain(`lowerdir+=${lowers[500]}`);
    expect(mountLine(target)).toBeUndefined();
  });

  it('reports kernel errors about a layer with its key, value and log', async () => {
    const lower = layer('lower');
    const target = layer('merged');
    const missing = path.join(root, 'missing');
    const err = await rejection(mountOverlay({ lower: [missing, lower], target }));
    expect(err).toMatchObject({ code: 'ENOENT', syscall: 'fsconfig', path: target });
    expect(err.message).toContain(`lowerdir+=${missing}`);
    const bad = await rejection(mountOverlay({ lower: [lower, lower], target, options: ['nonsense=1'] }));
    expect(bad).toMatchObject({ code: 'EINVAL', syscall: 'fsconfig' });
    expect(bad.message).toMatch(/nonsense=1: overlay: Unknown parameter 'nonsense'$/);
    expect(mountLine(target)).toBeUndefined();
  });

  it('reports the errno of a failing fsmount itself, not that of the kernel-log read after it', async () => {
    // noatime with strictatime: fsmount(2) rejects the attribute set with EINVAL. Reading the (empty)
    // kernel log afterwards fails with ENODATA, which used to be reported in its place.
    const target = layer('merged');
    const spec: OverlayMountSpec = { lower: [layer('a'), layer('b')], target, flags: ['noatime', 'strictatime'] };
    const expected = { code: 'EINVAL', errno: os.constants.errno.EINVAL, syscall: 'fsmount', path: target };
    expect(await rejection(mountOverlay(spec))).toMatchObject(expected);
    expect(() => mountOverlaySync(spec)).toThrow(expect.objectContaining(expected));
    expect(mountLine(target)).toBeUndefined();
  });

  it('reports each step of the new mount API with its own errno and syscall', async () => {
    const [a, b] = [layer('a'), layer('b')];
    const missing = path.join(root, 'missing');
    expect(await rejection(mountOverlay({ lower: [a, b], target: missing }))).toMatchObject({
      code: 'ENOENT', errno: os.constants.errno.ENOENT, syscall: 'move_mount', path: missing,
    });
    const target = layer('merged');
    expect(await rejection(mountOverlay({ lower: [a, b], target, options: ['nonsense'] }))).toMatchObject({
      code: 'EINVAL', errno: os.constants.errno.EINVAL, syscall: 'fsconfig', path: target,
    });
    expect(await rejection(mountOverlay({ lower: [missing, b], target }))).toMatchObject({
      code: 'ENOENT', errno: os.constants.errno.ENOENT, syscall: 'fsconfig', path: target,
    });
  });

  it('refuses a value over 255 bytes before calling the kernel', async () => {
    const longDir = layer('d'.repeat(200) + '/' + 'e'.repeat(60));
    const err = await rejection(mountOverlay({ lower: [longDir, longDir], target: layer('merged') }));
    expect(err).toMatchObject({ code: 'ENAMETOOLONG' });
    expect(err.message).toMatch(/lowerdir\+ value .* is \d+ bytes; fsconfig takes at most 255/);
  });
});

describe('mountOverlay through classic mount(2) (forced)', () => {
  it('mounts 3 lowers + upper, escaping ":", "," and "\\" in paths', async () => {
    expect(await withLegacyApi(() => checkThreeLayerOverlay({ top: 'a:b', mid: 'c,d', bottom: 'e\\f' }))).toBe('mount');
  });

  it('refuses an option string over one page instead of letting the kernel truncate it', async () => {
    // 130 layers of ~40-byte paths: about 5.5 KiB of lowerdir=, which mount(2) would cut at 4095 bytes.
    const lowers = Array.from({ length: 130 }, (_, i) => layer(`layers/${String(i).padStart(3, '0')}-${'x'.repeat(8)}`));
    const target = layer('merged');
    const err = await withLegacyApi(() => rejection(mountOverlay({ lower: lowers, upper: layer('u'), work: layer('w'), target })));
    expect(err).toMatchObject({ code: 'E2BIG' });
    expect(err.message).toMatch(/options for 130 lower layers are \d{4} bytes, but mount\(2\) takes at most 4095/);
    expect(err.message).toContain('lowerdir+ (Linux 6.7 or later)');
    expect(mountLine(target)).toBeUndefined();
  });
});

describe('mountOverlay argument checks', () => {
  it('rejects with a TypeError before calling C++', async () => {
    const target = root;
    const two = ['/l', '/m'];
    for (const name of ['fsmount', 'mount'] as const) {
      await withoutNative(name, async () => {
        await expect(mountOverlay({ lower: [], upper: '/u', work: '/w', target })).rejects.toThrow(/at least one directory/);
        await expect(mountOverlay({ lower: ['/l'], upper: '/u', target })).rejects.toThrow(/upper and work must be given together/);
        await expect(mountOverlay({ lower: ['/l', ''], target })).rejects.toThrow(TypeError);
        await expect(mountOverlay({ lower: ['/l'], target })).rejects.toThrow(/at least two directories without an upper/);
        await expect(mountOverlay({ lower: '/l' as never, target })).rejects.toThrow(/lower must be an array/);
        await expect(mountOverlay({ lower: two, target, options: ['lowerdir=/x'] })).rejects.toThrow(/not a layer/);
        await expect(mountOverlay({ lower: two, target, options: ['=x'] })).rejects.toThrow(TypeError);
        await expect(mountOverlay({ lower: two, target, flags: ['bind'] })).rejects.toThrow(/each of flags must be one of 'ro'/);
        await expect(mountOverlay({ lower: two, target: 'a\0b' })).rejects.toThrow(/NUL/);
        await expect(withLegacyApi(() => mountOverlay({ lower: two, target, options: ['context=a,b'] }))).rejects.toThrow(/free of commas/);
      });
    }
    await withoutNative('fsmountSync', () => {
      expect(() => mountOverlaySync({ lower: ['/l'], target })).toThrow(/mountOverlaySync: lower must be at least two directories/);
    });
  });
});
