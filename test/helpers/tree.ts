// File trees as plain data, for comparing two trees exactly. `captureTree` compares root filesystems
// made by different tools (path, type, mode, owner, size, content digest, link target, hardlink group,
// xattrs; times left out on purpose: no two builders agree on them, and no parity rule depends on
// them). `snapshot` and `snapshotTree` compare what a layer round trip must keep, times included.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { lgetxattr, llistxattr } from '@tsbuild/native';

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block' | 'socket';

export interface TreeEntry {
  /** Relative to the tree's root, '/'-separated; the root itself is '.'. */
  path: string;
  type: EntryType;
  /** Permission bits including setuid, setgid and sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Regular files only. */
  size?: number;
  sha256?: string;
  linkTarget?: string;
  /** Device numbers of char/block devices, `major:minor`. */
  rdev?: string;
  /** For regular files sharing an inode with another file in the tree: the group's first path (sorted). */
  hardlinkGroup?: string;
  /** name → hex value; absent when the entry has none. */
  xattrs?: Record<string, string>;
  /** The text of a small printable file, shown (not compared: sha256 is) when contents differ. */
  preview?: string;
}

export interface CaptureOptions {
  /** Paths (relative, as in TreeEntry.path) to leave out together with everything below them. */
  skip?: (rel: string) => boolean;
  /** Read xattrs (one getfattr run over the whole tree). Default true. */
  xattrs?: boolean;
}

/** Walks `dir` without following symlinks and returns its entries sorted by path. */
export function captureTree(dir: string, opts: CaptureOptions = {}): TreeEntry[] {
  const root = path.resolve(dir);
  const entries: TreeEntry[] = [];
  const inodes = new Map<string, TreeEntry[]>();
  const visit = (abs: string, rel: string): void => {
    if (rel !== '.' && opts.skip?.(rel)) return;
    const st = fs.lstatSync(abs, { bigint: true });
    const entry: TreeEntry = { path: rel, type: typeOf(st), mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid) };
    entries.push(entry);
    switch (entry.type) {
      case 'file': {
        entry.size = Number(st.size);
        const data = fs.readFileSync(abs);
        entry.sha256 = crypto.createHash('sha256').update(data).digest('hex');
        if (data.length <= 256 && /^[\x20-\x7e\t\n]*$/.test(data.toString('latin1'))) entry.preview = data.toString('latin1');
        const key = `${st.dev}:${st.ino}`;
        const group = inodes.get(key) ?? [];
        group.push(entry);
        inodes.set(key, group);
        break;
      }
      case 'symlink':
        entry.linkTarget = fs.readlinkSync(abs);
        break;
      case 'char':
      case 'block': {
        const rdev = Number(st.rdev);
        entry.rdev = `${Math.floor(rdev / 256) & 0xfff}:${(rdev & 0xff) | ((rdev >> 12) & 0xfff00)}`;
        break;
      }
      case 'dir':
        for (const name of fs.readdirSync(abs).sort()) visit(path.join(abs, name), rel === '.' ? name : `${rel}/${name}`);
        break;
      default:
        break;
    }
  };
  visit(root, '.');
  for (const group of inodes.values()) {
    if (group.length < 2) continue;
    const first = group.map((e) => e.path).sort()[0]!;
    for (const e of group) e.hardlinkGroup = first;
  }
  if (opts.xattrs !== false) {
    const byPath = new Map(entries.map((e) => [e.path, e]));
    for (const [rel, attrs] of readXattrs(root)) {
      const e = byPath.get(rel);
      if (e) e.xattrs = attrs;
    }
  }
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function typeOf(st: fs.BigIntStats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return 'socket';
}

/** Every xattr under `root` (symlinks not followed), keyed by relative path; values in hex. */
function readXattrs(root: string): Map<string, Record<string, string>> {
  const r = spawnSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  });
  if (r.error) throw new Error(`getfattr could not run (apt-get install attr): ${r.error.message}`);
  const out = new Map<string, Record<string, string>>();
  let current: Record<string, string> | undefined;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      const abs = unescapeOctal(line.slice('# file: '.length));
      const rel = abs === root ? '.' : path.relative(root, abs).split(path.sep).join('/');
      current = {};
      out.set(rel, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (current && eq > 0) current[line.slice(0, eq)] = line.slice(eq + 1).replace(/^0x/, '');
  }
  for (const [k, v] of out) if (Object.keys(v).length === 0) out.delete(k);
  return out;
}

function unescapeOctal(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const m = /^\\([0-7]{3})/.exec(s.slice(i));
    if (m) {
      bytes.push(parseInt(m[1]!, 8));
      i += 3;
    } else bytes.push(...Buffer.from(s[i]!, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** One line per difference, naming the two sides; empty when the trees match. */
export function diffTrees(a: TreeEntry[], b: TreeEntry[], names: [string, string] = ['a', 'b']): string[] {
  const mapA = new Map(a.map((e) => [e.path, e]));
  const mapB = new Map(b.map((e) => [e.path, e]));
  const out: string[] = [];
  for (const p of [...new Set([...mapA.keys(), ...mapB.keys()])].sort()) {
    const ea = mapA.get(p);
    const eb = mapB.get(p);
    if (!ea) {
      out.push(`${p}: only in ${names[1]} (${describe(eb!)})`);
      continue;
    }
    if (!eb) {
      out.push(`${p}: only in ${names[0]} (${describe(ea)})`);
      continue;
    }
    const fields: (keyof TreeEntry)[] = ['type', 'mode', 'uid', 'gid', 'size', 'sha256', 'linkTarget', 'rdev', 'hardlinkGroup', 'xattrs'];
    for (const f of fields) {
      const va = show(f, ea[f]);
      const vb = show(f, eb[f]);
      if (va !== vb) out.push(`${p}: ${f} ${names[0]}=${va} ${names[1]}=${vb}`);
    }
    if (ea.sha256 !== eb.sha256 && ea.preview !== undefined && eb.preview !== undefined) {
      out.push(`${p}: content ${names[0]}=${JSON.stringify(ea.preview)} ${names[1]}=${JSON.stringify(eb.preview)}`);
    }
  }
  return out;
}

function show(field: keyof TreeEntry, v: unknown): string {
  if (v === undefined) return '-';
  if (field === 'mode') return (v as number).toString(8).padStart(4, '0');
  if (field === 'sha256') return (v as string).slice(0, 12);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function describe(e: TreeEntry): string {
  return `${e.type} ${show('mode', e.mode)} ${e.uid}:${e.gid}${e.linkTarget !== undefined ? ` -> ${e.linkTarget}` : ''}`;
}

/** A readable listing (for failure messages and debugging). */
export function formatTree(entries: TreeEntry[]): string {
  return entries
    .map((e) => `${e.type.padEnd(7)} ${show('mode', e.mode)} ${e.uid}:${e.gid} ${e.path}${e.linkTarget !== undefined ? ` -> ${e.linkTarget}` : ''}${e.hardlinkGroup ? ` [link ${e.hardlinkGroup}]` : ''}`)
    .join('\n');
}

export interface NodeSnapshot {
  type: EntryType;
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  rdev?: string;
  mtime: number;
  nlink: number;
  /** The hard link group: the first path (in sorted order) naming the inode. */
  inode?: string;
  sha256?: string;
  target?: string;
  xattrs: Record<string, string>;
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

/** The xattrs of `p` as text, overlay's own left out. */
function xattrText(p: string): string {
  const parts: string[] = [];
  for (const name of llistxattr(p).sort()) {
    if (name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.')) continue;
    parts.push(`${name}=${lgetxattr(p, name)?.toString('hex')}`);
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
      const type = typeOf(st);
      const mtime = st.mtimeNs / 1_000_000_000n;
      let desc = `${type} ${(st.mode & 0o7777n).toString(8)} ${st.uid}:${st.gid}`;
      if (type === 'dir') desc += ` mtime=${mtime}`;
      else if (type === 'file') {
        const hash = crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex').slice(0, 16);
        desc += ` size=${st.size} sha=${hash} mtime=${mtime}`;
      } else if (type === 'symlink') desc += ` -> ${fs.readlinkSync(p)}`;
      else if (type === 'char' || type === 'block') desc += ` rdev=${st.rdev}`;
      if (type !== 'dir' && st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        const first = inodes.get(key);
        if (first) desc += ` link=${first}`;
        else inodes.set(key, r);
      }
      out[r] = desc + xattrText(p);
      if (type === 'dir') walk(r);
    }
  };
  walk('');
  return out;
}
