// Content checksums of resolved COPY/ADD sources for cache keys. Each item contributes its path relative
// to its source, type, permission bits (with setuid/setgid/sticky), owner, size, symlink target, device
// number, hardlink and hashed xattrs, and for regular files the sha256 of the content. Timestamps are
// left out, so touching a file does not miss the cache. Files are streamed through the hash, and a
// StatCache skips files whose stat tuple is unchanged.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { CopyItem, SourceEntry } from './context';
import { ContextError } from './errors';
import { nowNs, type StatCache, type StatTuple } from './statcache';
import { defaultXattrReader, xattrCounts, type XattrReader } from './xattrs';
import { fsPath } from '@tsbuild/storage';

export interface HashOptions {
  /** Reuses content hashes of unchanged files; call its save() afterwards to persist it. */
  statCache?: StatCache;
  /**
   * Reads extended attributes; default: @tsbuild/native's when the addon exports llistxattr/lgetxattr,
   * otherwise xattrs are not hashed. Pass null to leave xattrs out.
   */
  readXattrs?: XattrReader | null;
  /** Files hashed in parallel (default 8). */
  concurrency?: number;
}

export interface HashResult {
  /** 'sha256:<hex>' over every source and item, in order. */
  digest: string;
  /** Regular files considered. */
  files: number;
  /** Regular files actually read (stat-cache misses). */
  filesRead: number;
  bytesRead: number;
  /** This call's stat-cache hits and misses. */
  cacheHits: number;
  cacheMisses: number;
}

const CHUNK = 1 << 20;
const FORMAT = 'tsbuild.context.v1';

/** The digest of resolved sources (see the file comment for what counts). */
export async function hashSources(sources: readonly SourceEntry[], opts: HashOptions = {}): Promise<HashResult> {
  const cache = opts.statCache;
  const hitsBefore = cache?.hits ?? 0;
  const missesBefore = cache?.misses ?? 0;
  const readXattrs = opts.readXattrs === undefined ? await defaultXattrReader() : opts.readXattrs;

  const files: CopyItem[] = [];
  for (const s of sources) for (const item of s.items) if (item.type === 'file') files.push(item);
  const contentHashes = new Map<CopyItem, string>();
  const stats = { filesRead: 0, bytesRead: 0 };
  let next = 0;
  const worker = async (): Promise<void> => {
    const buf = Buffer.allocUnsafe(CHUNK);
    while (next < files.length) {
      const item = files[next++]!;
      contentHashes.set(item, await contentHash(item, buf, cache, stats));
    }
  };
  const workers = Math.max(1, Math.min(opts.concurrency ?? 8, files.length));
  await Promise.all(Array.from({ length: workers }, worker));

  const h = crypto.createHash('sha256');
  h.update(JSON.stringify([FORMAT]) + '\n');
  for (const s of sources) {
    h.update(JSON.stringify(['source', s.matchedPath]) + '\n');
    for (const item of s.items) {
      const xattrs = readXattrs ? xattrList(readXattrs(item.absPath)) : [];
      const record = [
        item.rel, item.type, item.mode.toString(8), item.uid, item.gid, item.size,
        item.linkTarget ?? '', item.rdev, item.hardlinkTo ?? '', xattrs, contentHashes.get(item) ?? '',
      ];
      h.update(JSON.stringify(record) + '\n');
    }
  }
  return {
    digest: `sha256:${h.digest('hex')}`,
    files: files.length,
    filesRead: stats.filesRead,
    bytesRead: stats.bytesRead,
    cacheHits: (cache?.hits ?? 0) - hitsBefore,
    cacheMisses: (cache?.misses ?? 0) - missesBefore,
  };
}

/** The sha256 (hex) of one file's content, streamed; `buf` is scratch space for the reads. */
export async function sha256File(absPath: string, buf: Buffer = Buffer.allocUnsafe(CHUNK)): Promise<{ sha256: string; bytes: number }> {
  const fh = await fsp.open(fsPath(absPath), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    return await hashOpenFile(fh, buf);
  } finally {
    await fh.close();
  }
}

function xattrList(attrs: Map<string, Buffer>): [string, string][] {
  return [...attrs]
    .filter(([name]) => xattrCounts(name))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => [name, value.toString('base64')]);
}

function tupleOf(st: { dev: bigint; ino: bigint; size: bigint | number; mtimeNs: bigint; ctimeNs: bigint; mode: bigint | number }): StatTuple {
  return { dev: st.dev, ino: st.ino, size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, mode: Number(st.mode) & 0o7777 };
}

/**
 * Hashes an open file to its end. With `knownSize` (from fstat), a short read that ends exactly there
 * is taken as the end, which saves the read that returns 0 (one pool round trip per small file); a
 * file that grew is still read to its end.
 */
async function hashOpenFile(fh: fsp.FileHandle, buf: Buffer, knownSize?: number): Promise<{ sha256: string; bytes: number }> {
  const h = crypto.createHash('sha256');
  let bytes = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, null);
    if (bytesRead === 0) break;
    h.update(buf.subarray(0, bytesRead));
    bytes += bytesRead;
    if (bytesRead < buf.length && bytes === knownSize) break;
  }
  return { sha256: h.digest('hex'), bytes };
}

async function contentHash(item: CopyItem, buf: Buffer, cache: StatCache | undefined, stats: { filesRead: number; bytesRead: number }): Promise<string> {
  const walked = tupleOf(item);
  const cached = cache?.lookup(item.absPath, walked);
  if (cached !== undefined) return cached;

  const readStart = nowNs();
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(fsPath(item.absPath), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (err) {
    throw new ContextError('CHANGED_DURING_HASH', `failed to compute cache key: cannot read ${item.path}: ${(err as Error).message}`, undefined, item.absPath);
  }
  try {
    const before = await fh.stat({ bigint: true });
    if (before.dev !== item.dev || before.ino !== item.ino) {
      throw new ContextError('CHANGED_DURING_HASH', `failed to compute cache key: ${item.path} was replaced while the build was reading it`, undefined, item.absPath);
    }
    const { sha256, bytes } = await hashOpenFile(fh, buf, Number(before.size));
    stats.filesRead++;
    stats.bytesRead += bytes;
    const after = await fh.stat({ bigint: true });
    const tBefore = tupleOf(before);
    // Only a read that saw a stable file may be trusted later.
    if (cache && sameStat(tBefore, tupleOf(after))) cache.record(item.absPath, tBefore, sha256, readStart);
    return sha256;
  } finally {
    await fh.close();
  }
}

function sameStat(a: StatTuple, b: StatTuple): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.mode === b.mode;
}
