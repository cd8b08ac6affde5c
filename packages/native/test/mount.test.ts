import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { statfs } from '../src/fsops';
import { chroot, mount, mountSync, pivotRoot, setns, sethostname, umount, umountSync, unshare } from '../src/mount';
import { mountLine, withoutNative } from './syscall-helpers';
import { destroyRoot } from '../../../test/helpers/temp';

const nativeDir = path.resolve(__dirname, '..');
let root: string;




beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-mount-'));
});
afterEach(() => {
  destroyRoot(root);
});

describe('mount and umount', () => {
  it('mounts a tmpfs with flags and data, then unmounts it', async () => {
    const target = path.join(root, 'tmp');
    fs.mkdirSync(target);
    await mount({ source: 'tsbtest', target, type: 'tmpfs', flags: ['nosuid', 'nodev', 'noexec'], data: 'size=1m,mode=0710' });
    expect(statfs(target).typeName).toBe('tmpfs');
    const line = mountLine(target)!;
    expect(line).toMatch(/ rw,nosuid,nodev,noexec[, ]/);
    expect(line).toContain(' - tmpfs tsbtest ');
    expect(fs.statSync(target).mode & 0o7777).toBe(0o710);
    await umount(target);
    expect(mountLine(target)).toBeUndefined();
  });

  it('bind mounts and remounts read-only', async () => {
    const src = path.join(root, 'src');
    const target = path.join(root, 'dst');
    fs.mkdirSync(src);
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(src, 'f'), 'data');
    await mount({ source: src, target, flags: ['bind'] });
    await mount({ target, flags: ['remount', 'bind', 'ro'] });
    expect(fs.readFileSync(path.join(target, 'f'), 'utf8')).toBe('data');
    expect(() => fs.writeFileSync(path.join(target, 'g'), '')).toThrow(expect.objectContaining({ code: 'EROFS' }));
    const busy = fs.openSync(path.join(target, 'f'), 'r');
    try {
      await expect(umount(target)).rejects.toThrow(expect.objectContaining({ code: 'EBUSY', syscall: 'umount2', path: target }));
      await umount(target, { detach: true });
    } finally {
      fs.closeSync(busy);
    }
    expect(mountLine(target)).toBeUndefined();
  });

  it('reports syscall errors with code, errno, syscall and path', async () => {
    const einval = expect.objectContaining({ code: 'EINVAL', errno: os.constants.errno.EINVAL, syscall: 'umount2', path: root });
    await expect(umount(root)).rejects.toThrow(einval);
    expect(() => umountSync(root)).toThrow(einval);
    const missing = path.join(root, 'missing');
    const spec = { source: path.join(root, 'nosrc'), target: missing, flags: ['bind' as const] };
    const enoent = expect.objectContaining({
      code: 'ENOENT', errno: os.constants.errno.ENOENT, syscall: 'mount', path: missing,
      message: expect.stringContaining(`source '${path.join(root, 'nosrc')}'`),
    });
    await expect(mount(spec)).rejects.toThrow(enoent);
    expect(() => mountSync(spec)).toThrow(enoent);
  });

  it('returns promises from mount and umount, settled once the syscall is done', async () => {
    const target = path.join(root, 'tmp');
    fs.mkdirSync(target);
    const pending = mount({ source: 'tsbasync', target, type: 'tmpfs' });
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    expect(mountLine(target)).toContain(' - tmpfs tsbasync ');
    await umount(target);
    expect(mountLine(target)).toBeUndefined();
  });

  it('rejects bad arguments with TypeError (and oversized data) before calling C++', async () => {
    await withoutNative('mount', async () => {
      await expect(mount({ target: '' })).rejects.toThrow(TypeError);
      await expect(mount({ target: root, flags: ['readonly' as never] })).rejects.toThrow(/each of flags must be one of 'ro'/);
      await expect(mount({ target: root, flags: 'ro' as never })).rejects.toThrow(/flags must be an array/);
      await expect(mount({ target: root, type: 'tmp\0fs' })).rejects.toThrow(/NUL/);
      await expect(mount({ target: root, data: 'a\0' })).rejects.toThrow(TypeError);
      await expect(mount(null as never)).rejects.toThrow(/spec must be an object/);
      await expect(mount({ target: root, type: 'tmpfs', data: 'x'.repeat(4096) })).rejects.toThrow(
        expect.objectContaining({ code: 'E2BIG', message: expect.stringContaining('at most 4095') }),
      );
    });
    await withoutNative('mountSync', () => {
      expect(() => mountSync({ target: '' })).toThrow(/mountSync: target must be/);
    });
    await withoutNative('umount', async () => {
      await expect(umount(root, { detach: 'yes' as never })).rejects.toThrow(/detach must be a boolean/);
      await expect(umount(42 as never)).rejects.toThrow(TypeError);
    });
  });

  it('validates the namespace and root functions before calling C++', async () => {
    await withoutNative('unshare', () => {
      expect(() => unshare([])).toThrow(/non-empty/);
      expect(() => unshare(['time' as never])).toThrow(/must be one of 'mount'/);
    });
    await withoutNative('setns', () => {
      expect(() => setns(-1)).toThrow(TypeError);
      expect(() => setns('/proc/self/ns/uts', 'utc' as never)).toThrow(/type must be one of/);
    });
    await withoutNative('sethostname', () => expect(() => sethostname('h'.repeat(65))).toThrow(/at most 64 bytes/));
    await withoutNative('pivotRoot', () => expect(() => pivotRoot(root, '')).toThrow(TypeError));
    await withoutNative('chroot', () => expect(() => chroot('')).toThrow(TypeError));
  });
});

// Namespace changes would leak into the test worker, so each case runs in a child node process that
// loads the wrappers compiled from src/ (into a temp dir next to a link to the built addon).
describe('namespaces and roots (in a child process)', () => {
  let compiled: string;

  beforeAll(() => {
    compiled = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-mount-js-'));
    fs.symlinkSync(path.join(nativeDir, 'build'), path.join(compiled, 'build'));
    const tsc = path.resolve(nativeDir, '..', '..', 'node_modules', '.bin', 'tsc');
    const sources = ['mount.ts', 'fsops.ts'].map((f) => path.join(nativeDir, 'src', f));
    const args = ['--ignoreConfig', '--module', 'nodenext', '--target', 'es2022', '--types', 'node', '--skipLibCheck', '--outDir', path.join(compiled, 'src'), ...sources];
    const result = spawnSync(tsc, args, { encoding: 'utf8' });
    expect(result.stdout + result.stderr).toBe('');
  });
  afterAll(() => fs.rmSync(compiled, { recursive: true, force: true }));

  /** Runs `body` (JS using `native`, `fs`, `os`, `path`) in a child; returns what it prints as JSON. */
  function inChild(body: string, env: Record<string, string> = {}): any {
    const script = path.join(root, 'child.js');
    fs.writeFileSync(script, [
      `const fs = require('fs'), os = require('os'), path = require('path');`,
      `const native = { ...require(${JSON.stringify(path.join(compiled, 'src', 'mount.js'))}), ...require(${JSON.stringify(path.join(compiled, 'src', 'fsops.js'))}) };`,
      `(async () => { ${body} })().then((out) => process.stdout.write(JSON.stringify(out)));`,
    ].join('\n'));
    const result = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, ...env } });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    return JSON.parse(result.stdout);
  }

  it('unshare uts + sethostname changes the hostname in the child only; setns goes back', () => {
    const out = inChild(`
      const before = os.hostname();
      const original = fs.openSync('/proc/self/ns/uts', 'r');
      native.unshare(['uts']);
      native.sethostname('tsb-child-host');
      const inside = os.hostname();
      native.setns(original, 'uts');
      return { before, inside, after: os.hostname() };
    `);
    expect(out.before).toBe(os.hostname());
    expect(out.inside).toBe('tsb-child-host');
    expect(out.after).toBe(os.hostname());
    expect(os.hostname()).not.toBe('tsb-child-host');
  });

  it('setns by path into another mount namespace (the calling thread unshares its fs first)', () => {
    const out = inChild(`
      const host = '/proc/self/ns/mnt';
      const hostFd = fs.openSync(host, 'r');
      native.unshare(['mount']);
      native.mountSync({ target: '/', flags: ['rec', 'private'] });
      native.mountSync({ source: 'tsbns', target: ${JSON.stringify(root)}, type: 'tmpfs' });
      fs.writeFileSync(${JSON.stringify(path.join(root, 'inside'))}, '');
      const inside = fs.readdirSync(${JSON.stringify(root)});
      native.setns(hostFd, 'mount');
      const back = fs.readdirSync(${JSON.stringify(root)}).sort();
      let wrongType;
      try { native.setns('/proc/self/ns/uts', 'mount'); } catch (e) { wrongType = { code: e.code, syscall: e.syscall, path: e.path }; }
      return { inside, back, wrongType };
    `);
    expect(out.inside).toEqual(['inside']);
    expect(out.back).toEqual(['child.js']);
    expect(out.wrongType).toEqual({ code: 'EINVAL', syscall: 'setns', path: '/proc/self/ns/uts' });
    expect(mountLine(root)).toBeUndefined();
  });

  it('mount() runs on a pool thread: after unshare() on the JS thread only mountSync acts in the new namespace', () => {
    const viaPool = path.join(root, 'pool');
    const viaJsThread = path.join(root, 'js');
    fs.mkdirSync(viaPool);
    fs.mkdirSync(viaJsThread);
    // libuv starts all its pool threads at the first request: started before unshare, they stay behind.
    inChild(`
      await fs.promises.stat('/');
      native.unshare(['mount']);
      native.mountSync({ target: '/', flags: ['rec', 'private'] });
      native.mountSync({ source: 'tsbjs', target: ${JSON.stringify(viaJsThread)}, type: 'tmpfs' });
      await native.mount({ source: 'tsbpool', target: ${JSON.stringify(viaPool)}, type: 'tmpfs' });
      return null;
    `);
    // libuv's threads stayed in this process's mount namespace (the test's): the async mount shows here.
    expect(mountLine(viaPool)).toContain(' - tmpfs tsbpool ');
    expect(mountLine(viaJsThread)).toBeUndefined();
  });

  it('unshare mount + private / + tmpfs + pivotRoot into a prepared dir', () => {
    const newRoot = path.join(root, 'newroot');
    fs.mkdirSync(newRoot);
    const out = inChild(`
      const newRoot = ${JSON.stringify(newRoot)};
      native.unshare(['mount']);
      native.mountSync({ target: '/', flags: ['rec', 'private'] });
      native.mountSync({ source: 'tsbroot', target: newRoot, type: 'tmpfs', data: 'mode=755' });
      fs.writeFileSync(path.join(newRoot, 'hello'), 'from the new root');
      fs.mkdirSync(path.join(newRoot, 'old'));
      native.pivotRoot(newRoot, path.join(newRoot, 'old'));
      process.chdir('/');
      const withOld = fs.readdirSync('/').sort();
      const oldHasProc = fs.existsSync('/old/proc/self');
      native.umountSync('/old', { detach: true });
      fs.rmdirSync('/old');
      let chrootError;
      try { native.chroot('/nonexistent'); } catch (e) { chrootError = e.code + ' ' + e.syscall + ' ' + e.path; }
      return { withOld, oldHasProc, after: fs.readdirSync('/'), hello: fs.readFileSync('/hello', 'utf8'), chrootError };
    `);
    expect(out).toEqual({
      withOld: ['hello', 'old'], oldHasProc: true, after: ['hello'], hello: 'from the new root',
      chrootError: 'ENOENT chroot /nonexistent',
    });
    expect(fs.readdirSync(newRoot)).toEqual([]);
    expect(mountLine(newRoot)).toBeUndefined();
  });
});
