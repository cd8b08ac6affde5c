import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  copyFiles, hashFiles, flock, flockWait, lgetxattr, llistxattr, lremovexattr, lsetxattr, mknod, openPty, pipe, statfs,
} from '../src/fsops';
import { mountSync, umountSync } from '../src/mount';
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

/** A regular file at `file` replaced by a fifo (as between a context walk and the copy); returns `file`. */
function fifoSwappedIn(file: string): string {
  fs.writeFileSync(file, 'was a file');
  fs.rmSync(file);
  mknod(file, { type: 'fifo', mode: 0o644 });
  return file;
}

/**
 * Unblocks a reader stuck opening the fifo (code without O_NONBLOCK), so a failing test ends: a
 * non-blocking open for writing succeeds only while someone has it open for reading.
 */
function releaseFifoReaders(fifo: string): void {
  try {
    fs.closeSync(fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
  } catch {
    // ENXIO: no reader, nothing blocked
  }
}

/**
 * The operation's outcome, or a failure when it has not settled after a while: an open that blocks on
 * a fifo never returns, and this turns that into a failed assertion instead of a hung test.
 */
async function settlesOrFails<T>(op: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('the operation never settled: blocked opening the fifo')), 10_000);
  });
  try {
    return await Promise.race([op, stuck]);
  } finally {
    clearTimeout(timer);
  }
}

describe('copyFiles', () => {
  const file = (over: Partial<Parameters<typeof copyFiles>[0][number]> & { source: string | Buffer; target: string | Buffer }) => ({
    mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n, ...over,
  });

  it('copies content, owner, mode (setuid kept after chown) and nanosecond times; says which sources have xattrs', async () => {
    const big = Buffer.alloc(600 * 1024 + 5); // more than the 256 KiB copy buffer
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    fs.writeFileSync(path.join(root, 'big'), big);
    fs.writeFileSync(path.join(root, 'empty'), '');
    const odd = Buffer.concat([Buffer.from(`${root}/`), Buffer.from([0x6e, 0xff, 0x01])]); // not UTF-8
    fs.writeFileSync(odd, 'odd');
    lsetxattr(path.join(root, 'empty'), 'user.note', Buffer.from('x'));
    fs.mkdirSync(path.join(root, 'out'));
    const mtimeNs = 1_600_000_000_123_456_789n;
    const result = await copyFiles([
      file({ source: path.join(root, 'big'), target: path.join(root, 'out/big'), mode: 0o4755, uid: 1234, gid: 5678, mtimeNs }),
      file({ source: path.join(root, 'empty'), target: path.join(root, 'out/empty'), mode: 0o600, mtimeNs: -1_500_000_000n }),
      file({ source: odd, target: Buffer.concat([Buffer.from(`${root}/out/`), Buffer.from([0x6e, 0xff, 0x01])]) }),
    ]);
    expect(result.error).toBeNull();
    expect(result.done).toBe(3);
    expect([...result.xattrs]).toEqual([0, 1, 0]);
    const st = fs.statSync(path.join(root, 'out/big'), { bigint: true }); // before a read moves atime
    expect([st.uid, st.gid, Number(st.mode & 0o7777n)]).toEqual([1234n, 5678n, 0o4755]);
    expect([st.mtimeNs, st.atimeNs]).toEqual([mtimeNs, mtimeNs]);
    expect(fs.readFileSync(path.join(root, 'out/big'))).toEqual(big);
    const empty = fs.statSync(path.join(root, 'out/empty'), { bigint: true });
    expect([empty.size, Number(empty.mode & 0o7777n), empty.mtimeNs]).toEqual([0n, 0o600, -1_500_000_000n]);
    expect(fs.readFileSync(Buffer.concat([Buffer.from(`${root}/out/`), Buffer.from([0x6e, 0xff, 0x01])]), 'utf8')).toBe('odd');
  });

  it('stops at the first failure and names its call and path: an existing target, a missing or symlinked source, a directory', async () => {
    fs.writeFileSync(path.join(root, 'a'), 'a');
    fs.writeFileSync(path.join(root, 'taken'), 'old');
    fs.symlinkSync('a', path.join(root, 'link'));
    fs.mkdirSync(path.join(root, 'dir'));
    const cases: [string, string, string, string, string][] = [
      // source, target, code, syscall, path named
      ['a', 'taken', 'EEXIST', 'open', 'taken'],
      ['missing', 'm', 'ENOENT', 'open', 'missing'],
      ['link', 'l', 'ELOOP', 'open', 'link'],
      ['dir', 'd', 'EISDIR', 'open', 'dir'],
    ];
    for (const [source, target, code, syscall, named] of cases) {
      const result = await copyFiles([
        file({ source: path.join(root, 'a'), target: path.join(root, `first-${target}`) }),
        file({ source: path.join(root, source), target: path.join(root, target) }),
        file({ source: path.join(root, 'a'), target: path.join(root, `after-${target}`) }),
      ]);
      expect(result.done).toBe(1);
      expect(result.error).toEqual(expect.objectContaining({ code, syscall, path: path.join(root, named) }));
      expect(result.error?.message).toContain(`${code}: `);
      expect(fs.readFileSync(path.join(root, `first-${target}`), 'utf8')).toBe('a');
      expect(fs.existsSync(path.join(root, `after-${target}`))).toBe(false);
    }
    expect(fs.readFileSync(path.join(root, 'taken'), 'utf8')).toBe('old');
  });

  it('refuses a fifo swapped in for a source file instead of blocking a pool thread on it', async () => {
    fs.writeFileSync(path.join(root, 'a'), 'a');
    const source = fifoSwappedIn(path.join(root, 'was-a-file'));
    try {
      const result = await settlesOrFails(copyFiles([
        file({ source: path.join(root, 'a'), target: path.join(root, 'first') }),
        file({ source, target: path.join(root, 'fifo-copy') }),
      ]));
      expect(result.done).toBe(1);
      expect(result.error).toEqual(expect.objectContaining({ code: 'EINVAL', syscall: 'open', path: source }));
      expect(result.error?.message).toContain('not a regular file but a fifo');
      expect(fs.existsSync(path.join(root, 'fifo-copy'))).toBe(false);
    } finally {
      releaseFifoReaders(source);
    }
  });

  it('names a failed write (ENOSPC on a full tmpfs)', async () => {
    const small = path.join(root, 'small-fs');
    fs.mkdirSync(small);
    mountSync({ source: 'tmpfs', target: small, type: 'tmpfs', data: 'size=64k' });
    try {
      fs.writeFileSync(path.join(root, 'big'), Buffer.alloc(512 * 1024, 1));
      const result = await copyFiles([file({ source: path.join(root, 'big'), target: path.join(small, 'big') })]);
      expect(result.done).toBe(0);
      expect(result.error).toEqual(expect.objectContaining({ code: 'ENOSPC', syscall: 'write', path: path.join(small, 'big') }));
    } finally {
      umountSync(small);
    }
  });

  it('rejects bad arguments with a TypeError before calling C++', async () => {
    const ok = { source: path.join(root, 'a'), target: path.join(root, 'b') };
    await withoutNative('copyFiles', () => {
      expect(() => copyFiles([file({ ...ok, source: '' })])).toThrow(TypeError);
      expect(() => copyFiles([file({ ...ok, target: 'a\0b' })])).toThrow(/NUL/);
      expect(() => copyFiles([file({ ...ok, mode: 0o10000 })])).toThrow(/mode must be an integer/);
      expect(() => copyFiles([file({ ...ok, uid: -1 })])).toThrow(/uid/);
      expect(() => copyFiles([file({ ...ok, mtimeNs: 5 as never })])).toThrow(/mtimeNs must be a bigint/);
    });
  });
});

describe('hashFiles', () => {
  it('hashes files (empty, beyond the read buffer, a non-UTF-8 name) and gives fstat before and after', async () => {
    const big = Buffer.alloc(700 * 1024 + 3);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    fs.writeFileSync(path.join(root, 'big'), big);
    fs.writeFileSync(path.join(root, 'empty'), '');
    const odd = Buffer.concat([Buffer.from(`${root}/`), Buffer.from([0x6e, 0xff])]);
    fs.writeFileSync(odd, 'odd');
    const paths = [path.join(root, 'big'), path.join(root, 'empty'), odd];
    const result = await hashFiles(paths);
    expect(result.error).toBeNull();
    expect(result.done).toBe(3);
    paths.forEach((p, k) => {
      expect(result.digests.subarray(k * 32, k * 32 + 32).toString('hex')).toBe(crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
      const st = fs.statSync(p, { bigint: true });
      const expected = [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs, st.mode];
      expect([...result.stats.subarray(k * 12, k * 12 + 6)].map((v) => BigInt.asUintN(64, v))).toEqual(expected);
      expect([...result.stats.subarray(k * 12 + 6, k * 12 + 12)].map((v) => BigInt.asUintN(64, v))).toEqual(expected);
    });
  });

  it('stops at the first failure and names its call and path: a missing or symlinked file, a directory', async () => {
    fs.writeFileSync(path.join(root, 'a'), 'a');
    fs.symlinkSync('a', path.join(root, 'link'));
    fs.mkdirSync(path.join(root, 'dir'));
    for (const [name, code, syscall] of [['missing', 'ENOENT', 'open'], ['link', 'ELOOP', 'open'], ['dir', 'EISDIR', 'open']] as const) {
      const result = await hashFiles([path.join(root, 'a'), path.join(root, name), path.join(root, 'a')]);
      expect(result.done).toBe(1);
      expect(result.digests.subarray(0, 32).toString('hex')).toBe(crypto.createHash('sha256').update('a').digest('hex'));
      expect(result.error).toEqual(expect.objectContaining({ code, syscall, path: path.join(root, name) }));
    }
  });

  it('refuses a fifo swapped in for a file instead of blocking a pool thread on it', async () => {
    fs.writeFileSync(path.join(root, 'a'), 'a');
    const fifo = fifoSwappedIn(path.join(root, 'was-a-file'));
    try {
      const result = await settlesOrFails(hashFiles([path.join(root, 'a'), fifo]));
      expect(result.done).toBe(1);
      expect(result.error).toEqual(expect.objectContaining({ code: 'EINVAL', syscall: 'open', path: fifo }));
      expect(result.error?.message).toContain('not a regular file but a fifo');
    } finally {
      releaseFifoReaders(fifo);
    }
  });

  it('rejects bad paths with a TypeError before calling C++', async () => {
    await withoutNative('hashFiles', () => {
      expect(() => hashFiles([''])).toThrow(TypeError);
      expect(() => hashFiles(['a\0b'])).toThrow(/NUL/);
      expect(() => hashFiles([5 as never])).toThrow(/paths\[0\]/);
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
