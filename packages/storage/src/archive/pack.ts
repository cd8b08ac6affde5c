// A deterministic layer tar of a directory tree (a layer's diff dir, a rootfs): names sorted bytewise
// within each dir (parents first, GNU `tar --sort=name` order), numeric owners, whole-second mtimes,
// the xattrs a layer keeps (xattrs.ts), hard links by inode, overlay whiteouts converted to OCI ones.
import * as fs from 'node:fs';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash, lgetxattr } from '@tsbuild/native';
import { tarStream, type TarBody, type TarWriteEntry } from './tar-writer';
import { decodeName, fsPath } from '../names';
import { overlayOpaqueXattr, WHITEOUT_OPAQUE, WHITEOUT_PREFIX, whiteoutNameFor } from './whiteout';
import { layerKeepsXattr, readXattrs } from './xattrs';

export interface PackOptions {
  /** 'overlay': the dir is an overlay upper: char 0/0 → `.wh.<name>`, opaque xattr → `.wh..wh..opq`. */
  whiteouts: 'overlay' | 'none';
  /** SOURCE_DATE_EPOCH rewrite: mtimes later than this (seconds) become this. */
  clampMtime?: number | undefined;
  /** Called with each path relative to the dir (no trailing '/'); false skips it and, for a dir, everything below. */
  include?: (relPath: string, isDir: boolean) => boolean;
}

const READ_CHUNK = 1024 * 1024;
/**
 * Files up to this size are read with one synchronous read: a libuv pool round trip costs ~50 µs per
 * call on the project VM (open+read+close ≈ 150 µs) against a few µs inline, and layers are mostly
 * small files. Larger files stream asynchronously in READ_CHUNK pieces.
 */
const SYNC_READ_MAX = 256 * 1024;
const NS_PER_S = 1_000_000_000n;

/** Linux dev_t → major/minor (glibc's gnu_dev_major/minor). */
export function devMajor(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n));
}
export function devMinor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n));
}

function floorSeconds(ns: bigint): number {
  let s = ns / NS_PER_S;
  if (ns < 0n && s * NS_PER_S !== ns) s -= 1n;
  return Number(s);
}

/**
 * The file's content: a small file is read synchronously straight into the tar's output buffers when
 * the writer gets to it (see SYNC_READ_MAX), a larger one as fresh buffers read as the consumer pulls.
 * Never more than `size` bytes.
 */
function fileBody(file: string, size: number): TarBody | undefined {
  if (size === 0) return undefined;
  if (size <= SYNC_READ_MAX) {
    let fd: number | undefined;
    return {
      readInto(target: Buffer, offset: number, length: number): number {
        fd ??= fs.openSync(fsPath(file), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
        return fs.readSync(fd, target, offset, length, null);
      },
      close(): void {
        if (fd !== undefined) fs.closeSync(fd);
        fd = undefined;
      },
    };
  }
  return fileChunks(file, size);
}

async function* fileChunks(file: string, size: number): AsyncGenerator<Buffer> {
  const fh = await fs.promises.open(fsPath(file), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  // One read ahead: the pool copies the next chunk out of the page cache while the consumer hashes this
  // one, so the two run on both cores instead of taking turns.
  let left = size;
  const readNext = (): Promise<Buffer> | undefined => {
    if (left <= 0) return undefined;
    const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
    return fh.read(buf, 0, buf.length, null).then(({ bytesRead }) => {
      left = bytesRead === 0 ? 0 : left - bytesRead;
      return bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    });
  };
  let pending = readNext();
  try {
    while (pending) {
      const chunk = await pending;
      if (chunk.length === 0) return; // shrank: the writer reports the short entry
      pending = readNext();
      yield chunk;
    }
  } finally {
    // A consumer that stopped early leaves a read in flight: let it land before the close.
    await pending?.catch(() => undefined);
    await fh.close();
  }
}

interface WalkState {
  opts: PackOptions;
  /** dev:ino → the path first written for that inode. */
  links: Map<string, string>;
}

function* entriesFor(abs: string, rel: string, st: fs.BigIntStats, state: WalkState): Generator<TarWriteEntry> {
  const { opts } = state;
  let mtime = floorSeconds(st.mtimeNs);
  if (opts.clampMtime !== undefined && mtime > opts.clampMtime) mtime = opts.clampMtime;
  const mode = Number(st.mode & 0o7777n);
  const uid = Number(st.uid);
  const gid = Number(st.gid);
  const slash = rel.lastIndexOf('/');
  const parent = slash < 0 ? '' : rel.slice(0, slash + 1);
  const base = rel.slice(slash + 1);

  if (isWhiteoutDevice(st, opts)) {
    // overlay whiteouts may share one inode: never hard links
    yield { header: { name: parent + whiteoutNameFor(base), type: 'file', mode: 0o600, uid, gid, mtime, size: 0 } };
    return;
  }

  if (st.isDirectory()) {
    const xattrs = readXattrs(abs, layerKeepsXattr);
    yield { header: { name: `${rel}/`, type: 'dir', mode, uid, gid, mtime, xattrs } };
    if (opts.whiteouts === 'overlay' && lgetxattr(fsPath(abs), overlayOpaqueXattr())?.toString() === 'y') {
      yield { header: { name: `${rel}/${WHITEOUT_OPAQUE}`, type: 'file', mode: mode & 0o777, uid, gid, mtime, size: 0 } };
    }
    return;
  }
  if (st.isSocket()) return; // tar cannot hold sockets (Docker skips them too)

  // aufs `.wh.` files are hard links to the branch's whiteout base: keep them plain empty files
  if (st.nlink > 1n && !base.startsWith(WHITEOUT_PREFIX)) {
    const key = `${st.dev}:${st.ino}`;
    const first = state.links.get(key);
    if (first !== undefined) {
      yield { header: { name: rel, type: 'hardlink', linkname: first, mode, uid, gid, mtime } };
      return;
    }
    state.links.set(key, rel);
  }

  const xattrs = readXattrs(abs, layerKeepsXattr);
  const common = { name: rel, mode, uid, gid, mtime, xattrs };
  if (st.isFile()) {
    const size = Number(st.size);
    yield { header: { ...common, type: 'file', size }, body: fileBody(abs, size) };
  } else if (st.isSymbolicLink()) {
    const target = decodeName(fs.readlinkSync(fsPath(abs), { encoding: 'buffer' }));
    yield { header: { ...common, type: 'symlink', linkname: target } };
  } else if (st.isCharacterDevice() || st.isBlockDevice()) {
    const type = st.isCharacterDevice() ? 'char' : 'block';
    yield { header: { ...common, type, devmajor: devMajor(st.rdev), devminor: devMinor(st.rdev) } };
  } else if (st.isFIFO()) {
    yield { header: { ...common, type: 'fifo' } };
  }
}

function isWhiteoutDevice(st: fs.BigIntStats, opts: PackOptions): boolean {
  return opts.whiteouts === 'overlay' && st.isCharacterDevice() && st.rdev === 0n;
}

// Synchronous generators: each entry reaches the tar writer without a promise per directory level.
function* walkDir(abs: string, rel: string, state: WalkState): Generator<TarWriteEntry> {
  const children: Array<{ name: string; key: Buffer; st: fs.BigIntStats }> = [];
  // metadata calls inline (see SYNC_READ_MAX): each is a few µs, a pool round trip ten times that
  for (const raw of fs.readdirSync(fsPath(abs), { encoding: 'buffer' })) {
    const name = decodeName(raw); // any bytes: see names.ts
    const st = fs.lstatSync(fsPath(`${abs}/${name}`), { bigint: true });
    // sorted by the name the entry gets in the tar (a whiteout `x` is `.wh.x`)
    const key = isWhiteoutDevice(st, state.opts) ? Buffer.from(whiteoutNameFor(name)) : raw;
    children.push({ name, key, st });
  }
  children.sort((a, b) => Buffer.compare(a.key, b.key));
  for (const { name, st } of children) {
    const childAbs = `${abs}/${name}`;
    const childRel = rel ? `${rel}/${name}` : name;
    const isDir = st.isDirectory();
    if (state.opts.include && !state.opts.include(childRel, isDir)) continue;
    yield* entriesFor(childAbs, childRel, st, state);
    if (isDir) yield* walkDir(childAbs, childRel, state);
  }
}

function* packEntries(dir: string, opts: PackOptions): Generator<TarWriteEntry> {
  const root = fs.realpathSync(dir);
  if (!fs.statSync(root).isDirectory()) throw new Error(`cannot pack ${dir}: not a directory`);
  yield* walkDir(root === '/' ? '' : root, '', { opts, links: new Map() });
}

/** The directory as a deterministic layer tar stream (the root itself is not an entry). */
export function packDir(dir: string, opts: PackOptions): Readable {
  if (opts?.whiteouts !== 'overlay' && opts?.whiteouts !== 'none') {
    throw new TypeError(`packDir: options.whiteouts must be 'overlay' or 'none', got ${JSON.stringify(opts?.whiteouts)}`);
  }
  return tarStream(packEntries(dir, opts));
}

export interface LayerDigest {
  /** sha256 of the uncompressed tar. */
  diffID: string;
  /** Bytes of the tar. */
  size: number;
}

/** Hashes (and counts) a byte stream on its way into `sink` (or nowhere). */
export async function digestLayerStream(input: Readable, sink?: Writable): Promise<LayerDigest> {
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  const out = sink ?? new Writable({ write: (_c, _e, cb) => cb() });
  await pipeline(input, tap, out);
  return { diffID: `sha256:${hash.digest('hex')}`, size };
}

/** Packs `dir` and returns the layer's diffID and size, streaming the tar into `sink` when given. */
export function layerDigest(dir: string, opts: PackOptions, sink?: Writable): Promise<LayerDigest> {
  return digestLayerStream(packDir(dir, opts), sink);
}
