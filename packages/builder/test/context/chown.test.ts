// --chown, --chmod and USER resolution against passwd/group text.
import { describe, expect, it } from 'vitest';
import { parseChmod, parseChown } from '../../src/context/chown';
import { lookupUser, parseGroup, parsePasswd } from '@tsbuild/storage';

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'app:x:1000:1001:App:/home/app:/bin/sh',
  '  spaced:x:1002:1002::/home/spaced:/bin/sh  ',
  '',
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
  'app:x:2000:2000:duplicate, first wins:/x:/bin/sh',
].join('\n');

const GROUP = [
  'root:x:0:',
  'daemon:x:1:',
  'staff:x:50:app,other',
  'appgrp:x:1001:',
  'docker:x:999:app',
  'nogroup:x:65534:',
].join('\n');

describe('parsePasswd / parseGroup', () => {
  it('parses fields, trims passwd lines and skips blank ones', () => {
    const users = parsePasswd(PASSWD);
    expect(users.map((u) => u.name)).toEqual(['root', 'daemon', 'app', 'spaced', 'nobody', 'app']);
    expect(users[2]).toEqual({ name: 'app', password: 'x', uid: 1000, gid: 1001, gecos: 'App', home: '/home/app', shell: '/bin/sh' });
    expect(users[3]!.uid).toBe(1002);
  });

  it('reads malformed numbers as 0 and missing fields as empty', () => {
    expect(parsePasswd('weird:x:abc')[0]).toMatchObject({ name: 'weird', uid: 0, gid: 0, home: '', shell: '' });
  });

  it('splits group members', () => {
    const groups = parseGroup(GROUP);
    expect(groups.find((g) => g.name === 'staff')).toEqual({ name: 'staff', password: 'x', gid: 50, members: ['app', 'other'] });
    expect(groups[0]!.members).toEqual([]);
  });

  it('treats absent files as empty', () => {
    expect(parsePasswd(undefined)).toEqual([]);
    expect(parseGroup(undefined)).toEqual([]);
  });
});

describe('lookupUser (USER semantics of moby/sys/user GetExecUser)', () => {
  it('resolves a name with its primary gid, home and supplementary groups', () => {
    expect(lookupUser(PASSWD, GROUP, 'app')).toEqual({ uid: 1000, gid: 1001, additionalGids: [50, 999], home: '/home/app' });
  });

  it('resolves a uid that has an entry like its name', () => {
    expect(lookupUser(PASSWD, GROUP, '1000')).toEqual({ uid: 1000, gid: 1001, additionalGids: [50, 999], home: '/home/app' });
  });

  it('accepts a uid without an entry, with gid 0 and home /', () => {
    expect(lookupUser(PASSWD, GROUP, '4242')).toEqual({ uid: 4242, gid: 0, additionalGids: [], home: '/' });
  });

  it('an explicit group replaces the primary gid and drops supplementary groups', () => {
    expect(lookupUser(PASSWD, GROUP, 'app:staff')).toEqual({ uid: 1000, gid: 50, additionalGids: [], home: '/home/app' });
    expect(lookupUser(PASSWD, GROUP, 'app:7')).toEqual({ uid: 1000, gid: 7, additionalGids: [], home: '/home/app' });
    expect(lookupUser(PASSWD, GROUP, '1:999')).toEqual({ uid: 1, gid: 999, additionalGids: [], home: '/usr/sbin' });
  });

  it('an empty spec and an empty user part mean root', () => {
    expect(lookupUser(PASSWD, GROUP, '')).toEqual({ uid: 0, gid: 0, additionalGids: [], home: '/root' });
    expect(lookupUser(PASSWD, GROUP, ':staff')).toEqual({ uid: 0, gid: 50, additionalGids: [], home: '/root' });
  });

  it('the first of duplicate entries wins', () => {
    expect(lookupUser(PASSWD, GROUP, 'app').uid).toBe(1000);
  });

  it('works without passwd/group files for numeric specs only', () => {
    expect(lookupUser(undefined, undefined, '10:20')).toEqual({ uid: 10, gid: 20, additionalGids: [], home: '/' });
    expect(() => lookupUser(undefined, undefined, 'app')).toThrow('unable to find user app: no matching entries in passwd file');
  });

  it('names unknown users and groups in the error', () => {
    expect(() => lookupUser(PASSWD, GROUP, 'ghost')).toThrow('unable to find user ghost: no matching entries in passwd file');
    expect(() => lookupUser(PASSWD, GROUP, 'app:ghosts')).toThrow('unable to find group ghosts: no matching entries in group file');
  });

  it('rejects ids out of range', () => {
    expect(() => lookupUser(PASSWD, GROUP, '-1')).toThrow('uids and gids must be in range 0-2147483647');
    expect(() => lookupUser(PASSWD, GROUP, '0:4294967296')).toThrow('uids and gids must be in range');
  });
});

describe('parseChown (BuildKit --chown)', () => {
  it('numeric user alone: gid = uid', () => {
    expect(parseChown('1234', PASSWD, GROUP)).toEqual({ uid: 1234, gid: 1234 });
  });

  it('named user alone: the primary gid from passwd', () => {
    expect(parseChown('app', PASSWD, GROUP)).toEqual({ uid: 1000, gid: 1001 });
    expect(parseChown('daemon', PASSWD, GROUP)).toEqual({ uid: 1, gid: 1 });
  });

  it('user:group in every combination of names and numbers', () => {
    expect(parseChown('app:staff', PASSWD, GROUP)).toEqual({ uid: 1000, gid: 50 });
    expect(parseChown('1000:nogroup', PASSWD, GROUP)).toEqual({ uid: 1000, gid: 65534 });
    expect(parseChown('app:42', PASSWD, GROUP)).toEqual({ uid: 1000, gid: 42 });
    expect(parseChown('5:6', undefined, undefined)).toEqual({ uid: 5, gid: 6 });
  });

  it('root is 0 without any files; empty parts are 0', () => {
    expect(parseChown('root', undefined, undefined)).toEqual({ uid: 0, gid: 0 });
    expect(parseChown('app:root', PASSWD, undefined)).toEqual({ uid: 1000, gid: 0 });
    expect(parseChown(':staff', undefined, GROUP)).toEqual({ uid: 0, gid: 50 });
    expect(parseChown('app:', PASSWD, GROUP)).toEqual({ uid: 1000, gid: 0 });
  });

  it('unknown names are errors naming them', () => {
    expect(() => parseChown('ghost', PASSWD, GROUP)).toThrow('unable to find user ghost: no matching entries in passwd file');
    expect(() => parseChown('app:ghosts', PASSWD, GROUP)).toThrow('unable to find group ghosts: no matching entries in group file');
    expect(() => parseChown('app', undefined, undefined)).toThrow('unable to find user app');
  });

  it('a negative number is a name, not an id', () => {
    expect(() => parseChown('-1', PASSWD, GROUP)).toThrow('unable to find user -1');
  });
});

describe('parseChmod', () => {
  const FILE = 0o100000;
  const DIR = 0o040000;
  const apply = (spec: string, mode: number, isDir?: boolean) => parseChmod(spec)(mode, isDir);

  it('octal replaces all permission bits and keeps the type bits', () => {
    expect(apply('755', FILE | 0o600)).toBe(FILE | 0o755);
    expect(apply('0644', DIR | 0o7777)).toBe(DIR | 0o644);
    expect(apply('4755', 0o644)).toBe(0o4755);
    expect(apply('7777', 0)).toBe(0o7777);
    expect(apply('0', 0o777)).toBe(0);
  });

  it('octal beyond 07777 or with non-octal digits is refused like BuildKit', () => {
    const msg = "it should be octal string and between 0 and 07777";
    expect(() => parseChmod('10000')).toThrow(`invalid chmod parameter: '10000'. ${msg}`);
    expect(() => parseChmod('888')).toThrow(msg);
    expect(() => parseChmod('0o755')).toThrow(msg);
  });

  it('symbolic clauses', () => {
    expect(apply('u+x', 0o644)).toBe(0o744);
    expect(apply('g-w', 0o664)).toBe(0o644);
    expect(apply('o=r', 0o777)).toBe(0o774);
    expect(apply('a+rwx', 0)).toBe(0o777);
    expect(apply('+x', 0o644)).toBe(0o755);
    expect(apply('u+x,g-w,o=r', 0o666)).toBe(0o744);
    expect(apply('u=rwx,go=rx', 0)).toBe(0o755);
    expect(apply('go=', 0o777)).toBe(0o700);
    expect(apply('ug+w-x', 0o555)).toBe(0o665);
  });

  it('copies between classes', () => {
    expect(apply('go=u-w', 0o700)).toBe(0o755);
    expect(apply('g=u', 0o640)).toBe(0o660);
    expect(apply('o+g', 0o650)).toBe(0o655);
  });

  it('X adds execute only to directories and already-executable files', () => {
    expect(apply('+X', FILE | 0o644)).toBe(FILE | 0o644);
    expect(apply('+X', DIR | 0o644)).toBe(DIR | 0o755);
    expect(apply('a+X', FILE | 0o744)).toBe(FILE | 0o755);
    expect(apply('+X', 0o600, true)).toBe(0o711);
    expect(apply('a-X', FILE | 0o755)).toBe(FILE | 0o644);
  });

  it('setuid, setgid and sticky', () => {
    expect(apply('u+s', 0o755)).toBe(0o4755);
    expect(apply('g+s', 0o755)).toBe(0o2755);
    expect(apply('+t', 0o755)).toBe(0o1755);
    expect(apply('o+t', 0o755)).toBe(0o755);
    expect(apply('o+s', 0o755)).toBe(0o755);
    expect(apply('u-s', 0o4755)).toBe(0o755);
    expect(apply('a=r', 0o1755)).toBe(0o1444);
    expect(apply('=', 0o1755)).toBe(0o1000);
    expect(apply('u=rw', 0o4755)).toBe(0o655);
  });

  it('malformed symbolic modes are errors naming the value', () => {
    for (const bad of ['', 'u', 'a', 'u+z', 'x+', 'u+x,', 'rw', 'u+x,,g+w']) {
      expect(() => parseChmod(bad), bad).toThrow(`invalid chmod parameter: '${bad}'`);
    }
  });
});
