// USER resolution from the image's own passwd/group text (no NSS), Docker's forms.
import { afterAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readRootfsEtcFile, resolveUser } from '../src/runtime/users';

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  '# a comment',
  'broken-line',
  'app:x:1000:1000:app:/home/app:/bin/sh',
  'svc:x:1001:1001::/srv:/bin/false',
].join('\n');
const GROUP = ['root:x:0:', 'wheel:x:10:root,app', 'app:x:1000:', 'svc:x:1001:', 'docker:x:999:app, svc'].join('\n');

describe('resolveUser', () => {
  it('defaults to root with root supplementary groups', () => {
    expect(resolveUser(undefined, PASSWD, GROUP)).toEqual({ uid: 0, gid: 0, additionalGids: [10], home: '/root' });
    expect(resolveUser('', PASSWD, GROUP).uid).toBe(0);
  });

  it('resolves a name, a uid, and both with a group', () => {
    expect(resolveUser('app', PASSWD, GROUP)).toEqual({ uid: 1000, gid: 1000, additionalGids: [10, 999], home: '/home/app' });
    // ' svc' (with the space) is not 'svc': member lists are not trimmed, as in libc and moby/sys/user.
    expect(resolveUser('1001', PASSWD, GROUP)).toEqual({ uid: 1001, gid: 1001, additionalGids: [], home: '/srv' });
    expect(resolveUser('app:docker', PASSWD, GROUP)).toMatchObject({ uid: 1000, gid: 999 });
    expect(resolveUser('1000:4242', PASSWD, GROUP)).toMatchObject({ uid: 1000, gid: 4242 });
    expect(resolveUser(':4242', PASSWD, GROUP)).toMatchObject({ uid: 0, gid: 4242 });
  });

  it('accepts a uid without an entry (gid 0, home /)', () => {
    expect(resolveUser('5000', PASSWD, GROUP)).toEqual({ uid: 5000, gid: 0, additionalGids: [], home: '/' });
  });

  it('rejects unknown names with a clear message', () => {
    expect(() => resolveUser('ghost', PASSWD, GROUP)).toThrow("unable to find user ghost: no matching entries in the image's /etc/passwd");
    expect(() => resolveUser('app:nogroup', PASSWD, GROUP)).toThrow('unable to find group nogroup');
  });
});

describe('readRootfsEtcFile', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-users-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('reads a regular file and refuses symlinks out of the rootfs', () => {
    const root = path.join(tmp, 'a');
    fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/passwd'), PASSWD);
    expect(readRootfsEtcFile(root, 'passwd')).toBe(PASSWD);
    fs.symlinkSync('/etc/passwd', path.join(root, 'etc/group'));
    expect(readRootfsEtcFile(root, 'group')).toBe('');

    const evil = path.join(tmp, 'b');
    fs.mkdirSync(evil);
    fs.symlinkSync('/etc', path.join(evil, 'etc'));
    expect(readRootfsEtcFile(evil, 'passwd')).toBe('');
    expect(readRootfsEtcFile(path.join(tmp, 'missing'), 'passwd')).toBe('');
  });
});
