// A stat cache for context hashing: a file whose (dev, ino, size, mtime, ctime, mode) is unchanged since
// it was last hashed is not read again. mtime stays out of the cache *key* (the digest); here it only
// decides whether the recorded content hash can be trusted. Persisted as JSON in a file the caller
// names, replaced atomically (tmp + fsync + rename).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { mkdirp } from '@tsbuild/storage';
import { fsPath } from '@tsbuild/storage';

/** The stat fields that must all be unchanged for a cached content hash to be reused. */
export interface StatTuple {
  dev: bigint;
  ino: bigint;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  mode: number;
}

interface StoredRecord {
  dev: string;
  ino: string;
  size: number;
  mtimeNs: string;
  ctimeNs: string;
  mode: number;
  sha256: string;
  /** Recorded while the file's timestamps were too recent to rule out a same-tick rewrite. */
  racy?: boolean;
}

const FORMAT_VERSION = 1;

/**
 * A file modified within this window before it was read might be modified again later without its
 * timestamps changing (coarse kernel clock ticks), like git's "racily clean" entries: such a record
 * is kept but not trusted.
 */
export const RACY_WINDOW_NS = 100_000_000n;

export class StatCache {
  /** Lookups answered from the cache since load. */
  hits = 0;
  /** Lookups that required reading the file. */
  misses = 0;
  private dirty = false;

  private constructor(
    /** The JSON file backing the cache, or null for a memory-only cache. */
    readonly file: string | null,
    private readonly records: Map<string, StoredRecord>,
  ) {}

  /** Loads the cache file; a missing or unreadable one starts an empty cache (it is only a speed-up). */
  static async load(file: string): Promise<StatCache> {
    const records = new Map<string, StoredRecord>();
    try {
      const data = JSON.parse(await fsp.readFile(file, 'utf8')) as { version?: number; entries?: Record<string, StoredRecord> };
      if (data.version === FORMAT_VERSION && data.entries && typeof data.entries === 'object') {
        for (const [p, r] of Object.entries(data.entries)) {
          if (isRecord(r)) records.set(p, r);
        }
      }
    } catch {
      // absent or corrupt: start empty
    }
    return new StatCache(path.resolve(file), records);
  }

  static inMemory(): StatCache {
    return new StatCache(null, new Map());
  }

  /** Number of recorded files. */
  get size(): number {
    return this.records.size;
  }

  /** The recorded sha256 (hex) when the file's stat tuple is unchanged; counts a hit or a miss. */
  lookup(absPath: string, st: StatTuple): string | undefined {
    const r = this.records.get(absPath);
    if (r && !r.racy && sameTuple(r, st)) {
      this.hits++;
      return r.sha256;
    }
    this.misses++;
    return undefined;
  }

  /** Records a content hash computed from a read that started at `readStartNs` (wall clock). */
  record(absPath: string, st: StatTuple, sha256: string, readStartNs: bigint): void {
    const latest = st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs;
    const r: StoredRecord = {
      dev: st.dev.toString(),
      ino: st.ino.toString(),
      size: st.size,
      mtimeNs: st.mtimeNs.toString(),
      ctimeNs: st.ctimeNs.toString(),
      mode: st.mode,
      sha256,
    };
    if (latest + RACY_WINDOW_NS >= readStartNs) r.racy = true;
    this.records.set(absPath, r);
    this.dirty = true;
  }

  /** Forgets one path. */
  delete(absPath: string): void {
    if (this.records.delete(absPath)) this.dirty = true;
  }

  /** Drops records of files that are gone or were replaced (another inode), so the file stays small. */
  async prune(): Promise<number> {
    let dropped = 0;
    await Promise.all(
      [...this.records].map(async ([p, r]) => {
        const st = await fsp.lstat(fsPath(p), { bigint: true }).catch(() => null);
        if (st && st.isFile() && st.dev.toString() === r.dev && st.ino.toString() === r.ino) return;
        this.records.delete(p);
        dropped++;
      }),
    );
    if (dropped > 0) this.dirty = true;
    return dropped;
  }

  /** Writes the cache file if anything changed (atomically; the directory is created). */
  async save(): Promise<void> {
    if (this.file === null || !this.dirty) return;
    const entries: Record<string, StoredRecord> = {};
    for (const [p, r] of this.records) entries[p] = r;
    await writeAtomic(this.file, JSON.stringify({ version: FORMAT_VERSION, entries }));
    this.dirty = false;
  }
}

/** The wall clock in nanoseconds (the clock file timestamps use). */
export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

function sameTuple(r: StoredRecord, st: StatTuple): boolean {
  return (
    r.dev === st.dev.toString() &&
    r.ino === st.ino.toString() &&
    r.size === st.size &&
    r.mtimeNs === st.mtimeNs.toString() &&
    r.ctimeNs === st.ctimeNs.toString() &&
    r.mode === st.mode
  );
}

function isRecord(r: unknown): r is StoredRecord {
  const o = r as StoredRecord;
  return (
    typeof o === 'object' && o !== null &&
    typeof o.dev === 'string' && typeof o.ino === 'string' && typeof o.size === 'number' &&
    typeof o.mtimeNs === 'string' && typeof o.ctimeNs === 'string' && typeof o.mode === 'number' &&
    typeof o.sha256 === 'string' && /^[0-9a-f]{64}$/.test(o.sha256)
  );
}

async function writeAtomic(file: string, data: string): Promise<void> {
  const dir = path.dirname(file);
  await mkdirp(dir);
  const tmp = path.join(dir, `.tmp-${path.basename(file)}-${crypto.randomBytes(6).toString('hex')}`);
  const fh = await fsp.open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    await fsp.rename(tmp, file);
  } catch (err) {
    await fh.close().catch(() => {});
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  const dh = await fsp.open(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
