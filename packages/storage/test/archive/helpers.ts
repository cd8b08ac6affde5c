// Shared test helpers: temp roots, a full lstat snapshot of a tree, buffering streams.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { lgetxattr, llistxattr } from '@tsbuild/native';

export function tempRoot(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `tsbuild-${prefix}-`));
}

export async function collect(stream: AsyncIterable<Buffer | Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

export function bufferStream(buf: Buffer): Readable {
  return Readable.from([buf], { objectMode: false });
}

export interface NodeSnapshot {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  rdev?: string;
  mtime: number;
  nlink: number;
  /** Index of the hard link group (first path of the inode, in sorted order). */
  inode?: string;
  sha256?: string;
  target?: string;
  xattrs: Record<string, string>;
}

function typeOf(st: fs.BigIntStats): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

/**
 * Every lstat field that a layer round trip must keep, content hashes, symlink targets and xattrs
 * (hex), keyed by relative path; hard links are grouped by the first path naming the inode.
 * `skipXattr` drops attributes (e.g. overlay's own) from the comparison.
 */
export function snapshot(root: string, opts: { skipXattr?: (name: string) => boolean; withRootMeta?: boolean } = {}): Record<string, NodeSnapshot> {
  const out: Record<string, NodeSnapshot> = {};
  const firstPath = new Map<string, string>();
  const walk = (rel: string): void => {
    const abs = rel ? path.join(root, rel) : root;
    const st = fs.lstatSync(abs, { bigint: true });
    const type = typeOf(st);
    const xattrs: Record<string, string> = {};
    for (const name of llistxattr(abs).sort()) {
      if (opts.skipXattr?.(name)) continue;
      xattrs[name] = lgetxattr(abs, name)?.toString('hex') ?? '';
    }
    const node: NodeSnapshot = {
      type,
      mode: (Number(st.mode) & 0o7777).toString(8),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtime: Number(st.mtimeNs / 1_000_000_000n),
      nlink: type === 'dir' ? 0 : Number(st.nlink),
      xattrs,
    };
    if (type === 'file') {
      node.size = Number(st.size);
      node.sha256 = crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
    }
    if (type === 'symlink') node.target = fs.readlinkSync(abs);
    if (type === 'char' || type === 'block') node.rdev = st.rdev.toString(16);
    if (type !== 'dir' && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      if (!firstPath.has(key)) firstPath.set(key, rel);
      node.inode = firstPath.get(key)!;
    }
    if (rel || opts.withRootMeta) out[rel || '.'] = node;
    if (type === 'dir') {
      for (const name of fs.readdirSync(abs).sort()) walk(rel ? `${rel}/${name}` : name);
    }
  };
  walk('');
  return out;
}

/** Runs `fn` and returns the error it throws (failing the test when it does not throw). */
export async function errorOf(fn: () => Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected an error, got none');
}
