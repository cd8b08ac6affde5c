// Test helpers: a comparable snapshot of a directory tree (everything a layer carries), and cleanup.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as native from '@tsbuild/native';
import { mountsUnder } from '../../src/drivers/mountinfo';

function xattrText(p: string): string {
  const parts: string[] = [];
  for (const name of native.llistxattr(p).sort()) {
    if (name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.')) continue;
    parts.push(`${name}=${native.lgetxattr(p, name)?.toString('hex')}`);
  }
  return parts.length ? ` xattrs[${parts.join(',')}]` : '';
}

/**
 * path → "type mode uid:gid details" for every entry below `root` (the root itself excluded).
 * Files carry size, content hash and mtime seconds; hard links name the first path of their inode.
 */
export function snapshotTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const inodes = new Map<string, string>();
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(root, r);
      const st = fs.lstatSync(p, { bigint: true });
      const mode = (st.mode & 0o7777n).toString(8);
      let desc = `${mode} ${st.uid}:${st.gid}`;
      const mtime = st.mtimeNs / 1_000_000_000n;
      if (st.isDirectory()) {
        desc = `dir ${desc} mtime=${mtime}`;
      } else if (st.isFile()) {
        const hash = crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex').slice(0, 16);
        desc = `file ${desc} size=${st.size} sha=${hash} mtime=${mtime}`;
      } else if (st.isSymbolicLink()) {
        desc = `symlink ${desc} -> ${fs.readlinkSync(p)}`;
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        desc = `${st.isCharacterDevice() ? 'char' : 'block'} ${desc} rdev=${st.rdev}`;
      } else if (st.isFIFO()) {
        desc = `fifo ${desc}`;
      } else {
        desc = `other ${desc}`;
      }
      if (!st.isDirectory() && st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        const first = inodes.get(key);
        if (first) desc += ` link=${first}`;
        else inodes.set(key, r);
      }
      out[r] = desc + xattrText(p);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

export function tempRoot(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `tsbuild-${prefix}-`));
}

/** Detaches every mount below `root` and removes it (sync: the suites call it from sync hooks). */
export function destroyRoot(root: string): void {
  for (const m of mountsUnder(root)) {
    try {
      native.umountSync(m, { detach: true });
    } catch {
      // already gone
    }
  }
  fs.rmSync(root, { recursive: true, force: true });
}

/** A v2 security.capability blob granting cap_net_raw (bit 13) permitted+effective. */
export const CAP_NET_RAW = Buffer.from('0100000200200000000000000000000000000000', 'hex');
