// USER resolution against the container's own /etc/passwd and /etc/group, parsed here: never NSS,
// which would load libraries from the untrusted rootfs into this process (CVE-2019-14271).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lookupUser, type ExecUser } from './passwd';

export { lookupUser, parsePasswd, parseGroup, type ExecUser, type PasswdEntry, type GroupEntry } from './passwd';

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
 * Resolves Docker's USER forms ('' is root, 'name', 'uid', 'name:group', 'uid:gid', ':gid') against the
 * image's own passwd and group text (moby/sys/user semantics, see passwd.ts).
 */
export function resolveUser(spec: string | undefined, passwdText: string, groupText: string): ExecUser {
  try {
    return lookupUser(passwdText, groupText, spec ?? '');
  } catch (err) {
    throw new Error(`${(err as Error).message.replace(/ (passwd|group) file$/, " the image's /etc/$1")}`);
  }
}

/** resolveUser with the passwd and group files of a rootfs. */
export function resolveRootfsUser(rootfs: string, spec: string | undefined): ExecUser {
  return resolveUser(spec, readRootfsEtcFile(rootfs, 'passwd'), readRootfsEtcFile(rootfs, 'group'));
}
