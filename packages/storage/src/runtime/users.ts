// USER resolution against the container's own /etc/passwd and /etc/group, parsed here: never NSS,
// which would load libraries from the untrusted rootfs into this process (CVE-2019-14271).
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface ExecUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  /** The passwd home directory, or '/' when the user has no entry. */
  home: string;
}

const ID_MAX = 0xfffffffe;

function parseId(text: string): number | null {
  if (!/^\d+$/.test(text)) return null;
  const n = Number(text);
  return n <= ID_MAX ? n : null;
}

/** Parses passwd(5) lines; malformed lines are skipped like libc does. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 7) continue;
    const uid = parseId(f[2]);
    const gid = parseId(f[3]);
    if (uid === null || gid === null) continue;
    out.push({ name: f[0], uid, gid, home: f[5], shell: f[6] });
  }
  return out;
}

/** Parses group(5) lines. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4) continue;
    const gid = parseId(f[2]);
    if (gid === null) continue;
    out.push({ name: f[0], gid, members: f[3] ? f[3].split(',').map((m) => m.trim()).filter(Boolean) : [] });
  }
  return out;
}

/**
 * Reads a file of the rootfs under /etc without following symlinks out of it: /etc must be a real
 * directory and the file a regular file (a symlinked /etc/passwd could point at the host's). Missing
 * files read as empty.
 */
export function readRootfsEtcFile(rootfs: string, name: string): string {
  const etc = path.join(rootfs, 'etc');
  try {
    if (!fs.lstatSync(etc).isDirectory()) return '';
    const fd = fs.openSync(path.join(etc, name), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      if (!fs.fstatSync(fd).isFile()) return '';
      return fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR') return '';
    throw err;
  }
}

/**
 * Resolves Docker's USER forms: '' (root), 'name', 'uid', 'name:group', 'uid:gid', ':gid'. A name must
 * exist in the rootfs's passwd (group names in group); numeric ids need not. Supplementary groups are
 * those of group(5) that list the user by name, as Docker does.
 */
export function resolveUser(spec: string | undefined, passwdText: string, groupText: string): ExecUser {
  const passwd = parsePasswd(passwdText);
  const groups = parseGroup(groupText);
  const [userPart, groupPart] = (spec ?? '').split(/:(.*)/s, 2) as [string, string | undefined];
  let entry: PasswdEntry | undefined;
  let uid = 0;
  if (userPart === '') {
    entry = passwd.find((p) => p.uid === 0);
  } else {
    const numeric = parseId(userPart);
    entry = numeric === null ? passwd.find((p) => p.name === userPart) : passwd.find((p) => p.uid === numeric);
    if (numeric === null && !entry) {
      throw new Error(`unable to find user ${userPart}: no matching entries in the image's /etc/passwd`);
    }
    uid = numeric ?? entry!.uid;
  }
  let gid = entry?.gid ?? 0;
  if (groupPart !== undefined && groupPart !== '') {
    const numeric = parseId(groupPart);
    if (numeric !== null) {
      gid = numeric;
    } else {
      const group = groups.find((g) => g.name === groupPart);
      if (!group) throw new Error(`unable to find group ${groupPart}: no matching entries in the image's /etc/group`);
      gid = group.gid;
    }
  }
  const additional = new Set<number>();
  if (entry) {
    for (const g of groups) if (g.members.includes(entry.name)) additional.add(g.gid);
  }
  return { uid, gid, additionalGids: [...additional], home: entry?.home || '/' };
}

/** resolveUser with the passwd and group files of a rootfs. */
export function resolveRootfsUser(rootfs: string, spec: string | undefined): ExecUser {
  return resolveUser(spec, readRootfsEtcFile(rootfs, 'passwd'), readRootfsEtcFile(rootfs, 'group'));
}
