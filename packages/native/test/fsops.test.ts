import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  flock, flockWait, lgetxattr, llistxattr, lremovexattr, lsetxattr, mknod, openPty, pipe, statfs,
} from '../src/fsops';
import { withoutNative } from './syscall-helpers';

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-fsops-'));
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});


describe('mknod', () => {
  it('makes a 0/0 whiteout, a fifo and /dev/null-like char 1:3', () => {
    mknod(path.join(root, 'wh'), { type: 'char', mode: 0o600, major: 0, minor: 0 });
    mknod(path.join(root, 'fifo'), { type: 'fifo', mode: 0o644 });
    mknod(path.join(root, 'null'), { type: 'char', mode: 0o666, major: 1, minor: 3 });
    const wh = fs.lstatSync(path.join(root, 'wh'));
    expect(wh.isCharacterDevice()).toBe(true);
    expect(wh.rdev).toBe(0);
    expect(wh.mode & 0o7777).toBe(0o600 & ~process.umask());
    expect(fs.lstatSync(path.join(root, 'fifo')).isFIFO()).toBe(true);
    const nul = fs.lstatSync(path.join(root, 'null'));
    expect(nul.isCharacterDevice()).toBe(true);
    expect(nul.rdev).toBe(fs.statSync('/dev/null').rdev);
  });

  it('reports EEXIST with syscall and path', () => {
    const p = path.join(root, 'f');
    fs.writeFileSync(p, '');
    expect(() => mknod(p, { type: 'fifo', mode: 0o644 })).toThrow(
      expect.objectContaining({ code: 'EEXIST', errno: os.constants.errno.EEXIST, syscall: 'mknod', path: p }),
    );
  });

  it('rejects bad arguments with a TypeError before calling C++', async () => {
    const p = path.join(root, 'x');
    await withoutNative('mknod', () => {
      expect(() => mknod('', { type: 'fifo', mode: 0o644 })).toThrow(TypeError);
      expect(() => mknod('a\0b', { type: 'fifo', mode: 0o644 })).toThrow(/NUL/);
      expect(() => mknod(p, { type: 'pipe' as never, mode: 0o644 })).toThrow(/type must be one of/);
      expect(() => mknod(p, { type: 'char', mode: 0o10000 })).toThrow(/mode must be an integer/);
      expect(() => mknod(p, { type: 'char', mode: 0o600, major: -1 })).toThrow(TypeError);
      expect(() => mknod(p, { type: 'fifo', mode: 0o600, minor: 3 })).toThrow(/only char and block/);
      expect(() => mknod(p, undefined as never)).toThrow(/options must be an object/);
    });
  });
});

describe('xattrs', () => {
  // struct vfs_cap_data, revision 2: magic_etc (VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE), then
  // {permitted, inheritable} for capabilities 0-31 and 32-63, all little-endian.
  function capabilityBlob(): Buffer {
    const CAP_NET_BIND_SERVICE = 10;
    const blob = Buffer.alloc(20);
    blob.writeUInt32LE(0x02000001, 0);
    blob.writeUInt32LE(1 << CAP_NET_BIND_SERVICE, 4);
    blob.writeUInt32LE(1 << CAP_NET_BIND_SERVICE, 8);
    return blob;
  }

  it('round-trips a binary security.capability byte for byte', () => {
    const file = path.join(root, 'ping');
    fs.writeFileSync(file, '');
    const blob = capabilityBlob();
    lsetxattr(file, 'security.capability', blob);
    expect(lgetxattr(file, 'security.capability')).toEqual(blob);
    expect(llistxattr(file)).toContain('security.capability');
    lremovexattr(file, 'security.capability');
    expect(lgetxattr(file, 'security.capability')).toBeNull();
    expect(llistxattr(file)).not.toContain('security.capability');
  });

  it('keeps 0x00 and 0xff bytes in user.* values and honours create/replace', () => {
    const file = path.join(root, 'f');
    fs.writeFileSync(file, '');
    const value = Buffer.from([0x00, 0xff, 0x00, 0x41, 0xff, 0xfe, 0x00]);
    lsetxattr(file, 'user.bin', value, 'create');
    lsetxattr(file, 'user.other', new Uint8Array([1, 2, 3]));
    expect(lgetxattr(file, 'user.bin')).toEqual(value);
    expect(llistxattr(file).sort()).toEqual(['user.bin', 'user.other']);
    expect(() => lsetxattr(file, 'user.bin', value, 'create')).toThrow(expect.objectContaining({ code: 'EEXIST', syscall: 'lsetxattr', path: file }));
    expect(() => lsetxattr(file, 'user.none', value, 'replace')).toThrow(expect.objectContaining({ code: 'ENODATA' }));
    lsetxattr(file, 'user.empty', Buffer.alloc(0));
    expect(lgetxattr(file, 'user.empty')).toEqual(Buffer.alloc(0));
  });

  it('acts on a symlink itself, not its target', () => {
    const link = path.join(root, 'link');
    fs.symlinkSync('/nonexistent', link);
    expect(llistxattr(link)).toEqual([]);
    expect(lgetxattr(link, 'trusted.x')).toBeNull();
    lsetxattr(link, 'trusted.overlay.opaque', Buffer.from('y'));
    expect(lgetxattr(link, 'trusted.overlay.opaque')?.toString()).toBe('y');
  });

  it('reports a missing file with code and path; rejects bad arguments before C++', async () => {
    const missing = path.join(root, 'missing');
    expect(() => lgetxattr(missing, 'user.x')).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'lgetxattr', path: missing }));
    await withoutNative('lsetxattr', () => {
      expect(() => lsetxattr(missing, 'user.x', 'text' as never)).toThrow(/value must be a Buffer/);
      expect(() => lsetxattr(missing, '', Buffer.alloc(1))).toThrow(TypeError);
      expect(() => lsetxattr(missing, 'user.' + 'x'.repeat(251), Buffer.alloc(1))).toThrow(/at most 255 bytes/);
      expect(() => lsetxattr(missing, 'user.x', Buffer.alloc(1), 'upsert' as never)).toThrow(/flags must be one of/);
      expect(() => lsetxattr(missing, 'user.x', Buffer.alloc(65537))).toThrow(/at most 65536 bytes/);
    });
  });
});

describe('statfs', () => {
  it('names the filesystem magic', () => {
    expect(statfs('/proc')).toEqual({ type: 0x9fa0, typeName: 'proc' });
    expect(statfs('/dev/shm').typeName).toBe('tmpfs');
    expect(statfs(root).type).toBe(fs.statfsSync(root).type);
    expect(() => statfs(path.join(root, 'none'))).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'statfs' }));
  });
});

describe('flock', () => {
  it('contends between two open file descriptions; flockWait resolves after unlock', async () => {
    const file = path.join(root, 'lock');
    fs.writeFileSync(file, '');
    const a = fs.openSync(file, 'r');
    const b = fs.openSync(file, 'r');
    try {
      expect(flock(a, 'exclusive')).toBe(true);
      expect(flock(b, 'exclusive', { nonBlocking: true })).toBe(false);
      expect(flock(b, 'shared', { nonBlocking: true })).toBe(false);
      let acquired = false;
      const waiting = flockWait(b, 'exclusive').then(() => {
        acquired = true;
      });
      await new Promise((resolve) => setImmediate(resolve));
      expect(acquired).toBe(false);
      expect(flock(a, 'unlock')).toBe(true);
      await waiting;
      expect(acquired).toBe(true);
      expect(flock(a, 'shared', { nonBlocking: true })).toBe(false);
    } finally {
      fs.closeSync(a);
      fs.closeSync(b);
    }
  });

  it('rejects a bad fd with EBADF, and bad arguments with TypeError', async () => {
    await expect(flockWait(999_999, 'shared')).rejects.toMatchObject({ code: 'EBADF', syscall: 'flock' });
    expect(() => flock(999_999, 'shared')).toThrow(expect.objectContaining({ code: 'EBADF' }));
    await withoutNative('flock', () => {
      expect(() => flock(-1, 'shared')).toThrow(TypeError);
      expect(() => flock(0, 'read' as never)).toThrow(/mode must be one of/);
      expect(() => flock(0, 'shared', { nonBlocking: 1 as never })).toThrow(/nonBlocking must be a boolean/);
    });
  });
});

const O_CLOEXEC = 0o2000000;
/** The open flags of one of our fds, from /proc (octal there). */
function fdFlags(fd: number): number {
  const m = /^flags:\s+([0-7]+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  return parseInt(m![1]!, 8);
}

describe('pipe and openPty', () => {
  it('makes a close-on-exec pipe that carries bytes', () => {
    const [r, w] = pipe();
    try {
      fs.writeSync(w, 'hello');
      const buf = Buffer.alloc(5);
      expect(fs.readSync(r, buf)).toBe(5);
      expect(buf.toString()).toBe('hello');
      for (const fd of [r, w]) expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);
    } finally {
      fs.closeSync(r);
      fs.closeSync(w);
    }
  });

  it('opens a pty pair whose slave echoes to the master', () => {
    const { master, slave, slavePath } = openPty();
    try {
      expect(slavePath).toMatch(/^\/dev\/pts\/\d+$/);
      for (const fd of [master, slave]) expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);
      expect(fs.fstatSync(slave).rdev).toBe(fs.statSync(slavePath).rdev);
      fs.writeSync(slave, 'hi\n');
      const buf = Buffer.alloc(16);
      const n = fs.readSync(master, buf);
      expect(buf.subarray(0, n).toString()).toBe('hi\r\n');
    } finally {
      fs.closeSync(master);
      fs.closeSync(slave);
    }
  });
});
