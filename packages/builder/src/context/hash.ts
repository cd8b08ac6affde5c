// Content checksums of resolved COPY/ADD sources for cache keys. Each item contributes its path relative
// to its source, type, permission bits (with setuid/setgid/sticky), owner, size, symlink target, device
// number, hardlink and hashed xattrs, and for regular files the sha256 of the content. Timestamps are
// left out, so touching a file does not miss the cache. Files are streamed through the hash, and a
// StatCache skips files whose stat tuple is unchanged.
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import * as path from 'node:path';
import type { SourceEntry } from './context';
import type { CopyItem, CopyItems } from './items';
import { ContextError } from './errors';
import { Background, SYNC_IO_MAX, timeSlicer } from './slices';
import { nowNs, type StatCache, type StatTuple } from './statcache';
import { defaultXattrReader, xattrCounts, type XattrReader } from './xattrs';
import { createHash, hashFiles } from '@tsbuild/native';
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
const openAsync = promisify(fs.open);
const readAsync = promisify(fs.read);

/** The digest of resolved sources (see the file comment for what counts). */
export async function hashSources(sources: readonly SourceEntry[], opts: HashOptions = {}): Promise<HashResult> {
  const cache = opts.statCache;
  const hitsBefore = cache?.hits ?? 0;
  const missesBefore = cache?.misses ?? 0;
  const readXattrs = opts.readXattrs === undefined ? await defaultXattrReader() : opts.readXattrs;

  // Every regular file of every source, in order, as (source, item index); their sha256s go into one
  // buffer, 32 bytes a file: nothing per file outlives the call but what the stat cache keeps.
  let fileCount = 0;
  for (const s of sources) for (let i = 0; i < s.items.length; i++) if (s.items.typeOf(i) === 'file') fileCount++;
  const fileSource = new Uint32Array(fileCount);
  const fileIndex = new Uint32Array(fileCount);
  let f = 0;
  for (const [n, s] of sources.entries()) {
    for (let i = 0; i < s.items.length; i++) {
      if (s.items.typeOf(i) !== 'file') continue;
      fileSource[f] = n;
      fileIndex[f++] = i;
    }
  }
  const digests = Buffer.alloc(fileCount * 32);
  const stats = { filesRead: 0, bytesRead: 0 };
  const hasher = new FileHasher(cache, stats, digests);
  let next = 0;
  const pause = timeSlicer();
  const worker = async (): Promise<void> => {
    while (next < fileCount) {
      const file = next++;
      await contentHash(sources[fileSource[file]!]!.items, fileIndex[file]!, cache, digests, file * 32, hasher);
      await pause();
    }
  };
  const workers = Math.max(1, Math.min(opts.concurrency ?? 8, fileCount));
  try {
    await Promise.all(Array.from({ length: workers }, worker));
  } finally {
    await hasher.finish();
  }

  const h = createHash('sha256');
  h.update(JSON.stringify([FORMAT]) + '\n');
  f = 0;
  for (const s of sources) {
    h.update(JSON.stringify(['source', s.matchedPath]) + '\n');
    for (const item of s.items) {
      const xattrs = readXattrs ? xattrList(readXattrs(item.absPath)) : [];
      const content = item.type === 'file' ? digests.toString('hex', f * 32, ++f * 32) : '';
      const record = [
        item.rel, item.type, item.mode.toString(8), item.uid, item.gid, item.size,
        item.linkTarget ?? '', item.rdev, item.hardlinkTo ?? '', xattrs, content,
      ];
      h.update(JSON.stringify(record) + '\n');
    }
  }
  return {
    digest: `sha256:${h.digest('hex')}`,
    files: fileCount,
    filesRead: stats.filesRead,
    bytesRead: stats.bytesRead,
    cacheHits: (cache?.hits ?? 0) - hitsBefore,
    cacheMisses: (cache?.misses ?? 0) - missesBefore,
  };
}

/** The sha256 (hex) of one file's content, streamed; `buf` is scratch space for the reads. */
export async function sha256File(absPath: string, buf: Buffer = Buffer.allocUnsafe(CHUNK)): Promise<{ sha256: string; bytes: number }> {
  const fd = await openAsync(fsPath(absPath), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const { digest, bytes } = await hashFd(fd, buf);
    return { sha256: digest.toString('hex'), bytes };
  } finally {
    fs.closeSync(fd);
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
 * is taken as the end, which saves the read that returns 0; a file that grew is still read to its end.
 * A file known to be small is read synchronously (see slices.ts), a larger one through the pool, one
 * read ahead into a second buffer: the pool copies the next chunk while this thread hashes the last.
 */
async function hashFd(fd: number, buf: Buffer, knownSize?: number): Promise<{ digest: Buffer; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  if (knownSize !== undefined && knownSize <= SYNC_IO_MAX) {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) {
      h.update(buf.subarray(0, n));
      bytes += n;
      if (n < buf.length && bytes === knownSize) break;
    }
    return { digest: h.digest(), bytes };
  }
  let filling: Buffer = buf;
  let spare: Buffer = Buffer.allocUnsafe(buf.length);
  let pending: Promise<{ bytesRead: number }> | undefined = readAsync(fd, filling, 0, filling.length, null);
  while (pending) {
    const { bytesRead }: { bytesRead: number } = await pending;
    if (bytesRead === 0) break;
    bytes += bytesRead;
    const filled = filling;
    const atEnd: boolean = bytesRead < filled.length && bytes === knownSize;
    filling = spare;
    spare = filled;
    pending = atEnd ? undefined : readAsync(fd, filling, 0, filling.length, null);
    h.update(filled.subarray(0, bytesRead));
  }
  return { digest: h.digest(), bytes };
}

/**
 * The content hash of the regular file `items.at(index)`, from the stat cache or read (open, fstat,
 * read, fstat, close), written to `out` at `offset` (32 bytes).
 */
async function contentHash(
  items: CopyItems,
  index: number,
  cache: StatCache | undefined,
  out: Buffer,
  offset: number,
  hasher: FileHasher,
): Promise<void> {
  const item = items.at(index);
  const walked = tupleOf(item);
  // The stat cache is keyed by directory and name: the walk's strings, shared rather than copied.
  const parent = items.parentOf(index);
  const dir = parent < 0 ? path.dirname(item.absPath) : items.dirAbs(parent);
  const name = parent < 0 ? path.basename(item.absPath) : items.nameOf(index);
  if (cache?.lookupIn(dir, name, walked, out, offset)) return;
  // Small files go in batches; a large one alone, read and hashed on a pool thread with no buffer of ours
  // (it was read into 1 MiB buffers and hashed on this thread: ~0.2 s of it and the GC for a 256 MB file).
  if (item.size <= SYNC_IO_MAX) return hasher.add({ item, walked, dir, name, offset });
  return hasher.hashAlone({ item, walked, dir, name, offset });
}

/** A file to hash on the pool, and where its digest goes. */
interface PooledFile {
  item: CopyItem;
  walked: StatTuple;
  dir: string;
  name: string;
  offset: number;
}

/** Small files hashed per native call, and how many calls run at once (the JS thread walks on). */
const HASH_BATCH_FILES = 64;
const HASH_BATCHES_IN_FLIGHT = 2;

/**
 * Hashes files on the pool (native hashFiles: open, fstat, read, fstat, close each), small ones in
 * batches, with the checks and stat-cache records contentHash makes for one file.
 */
class FileHasher {
  private batch: PooledFile[] = [];
  private readonly inFlight = new Background(HASH_BATCHES_IN_FLIGHT);

  constructor(
    private readonly cache: StatCache | undefined,
    private readonly stats: { filesRead: number; bytesRead: number },
    private readonly out: Buffer,
  ) {}

  add(file: PooledFile): Promise<void> | undefined {
    this.batch.push(file);
    if (this.batch.length < HASH_BATCH_FILES) return undefined;
    return this.send();
  }

  /** Hashes one (large) file in a call of its own, beside the batches. */
  hashAlone(file: PooledFile): Promise<void> {
    return this.run([file]);
  }

  /** Hashes what is left and waits for every batch; throws the first failure. */
  async finish(): Promise<void> {
    try {
      if (this.batch.length > 0) await this.send();
    } finally {
      await this.inFlight.settled();
    }
    await this.inFlight.done();
  }

  private send(): Promise<void> {
    const files = this.batch;
    this.batch = [];
    return this.inFlight.start(() => this.run(files));
  }

  private async run(files: readonly PooledFile[]): Promise<void> {
    const readStart = nowNs(); // before any of the reads: a file changed since is taken as racy
    const { done, digests, stats, error } = await hashFiles(files.map((f) => fsPath(f.item.absPath)));
    for (let k = 0; k < done; k++) {
      const { item, walked, dir, name, offset } = files[k]!;
      const before = statTuple(stats, k * 12);
      if (before.dev !== walked.dev || before.ino !== walked.ino) {
        throw new ContextError('CHANGED_DURING_HASH', `failed to compute cache key: ${item.path} was replaced while the build was reading it`, undefined, item.absPath);
      }
      this.stats.filesRead++;
      this.stats.bytesRead += before.size;
      const digest = digests.subarray(k * 32, k * 32 + 32);
      // Only a read that saw a stable file may be trusted later.
      if (this.cache && sameStat(before, statTuple(stats, k * 12 + 6))) this.cache.recordIn(dir, name, before, digest, readStart);
      digest.copy(this.out, offset);
    }
    if (!error) return;
    const { item } = files[done]!;
    if (error.syscall === 'open') {
      throw new ContextError('CHANGED_DURING_HASH', `failed to compute cache key: cannot read ${item.path}: ${error.message}`, undefined, item.absPath);
    }
    throw error;
  }
}

/** The stat tuple at `at` in hashFiles' stats (dev, ino, size, mtime ns, ctime ns, mode). */
function statTuple(stats: BigInt64Array, at: number): StatTuple {
  return {
    dev: BigInt.asUintN(64, stats[at]!),
    ino: BigInt.asUintN(64, stats[at + 1]!),
    size: Number(stats[at + 2]),
    mtimeNs: stats[at + 3]!,
    ctimeNs: stats[at + 4]!,
    mode: Number(stats[at + 5]) & 0o7777,
  };
}

function sameStat(a: StatTuple, b: StatTuple): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.mode === b.mode;
}
