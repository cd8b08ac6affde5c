// A stat cache for context hashing: a file whose (dev, ino, size, mtime, ctime, mode) is unchanged since
// it was last hashed is not read again. mtime stays out of the cache *key* (the digest); here it only
// decides whether the recorded content hash can be trusted. Persisted as JSON in a file the caller
// names, replaced atomically (tmp + fsync + rename).
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { mkdirp } from '@tsbuild/storage';
import { fsPath } from '@tsbuild/storage';
import { grownColumns } from './items';
import { randomBytes } from '@tsbuild/native';

/** The stat fields that must all be unchanged for a cached content hash to be reused. */
export interface StatTuple {
  dev: bigint;
  ino: bigint;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  mode: number;
}

/** A record as the JSON file holds it (format version 1). */
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
const INITIAL_CAPACITY = 64;
/** How much JSON save() assembles before writing it out. */
const SAVE_CHUNK = 256 * 1024;

/**
 * A file modified within this window before it was read might be modified again later without its
 * timestamps changing (coarse kernel clock ticks), like git's "racily clean" entries: such a record
 * is kept but not trusted.
 */
export const RACY_WINDOW_NS = 100_000_000n;

/**
 * The cache lives for the whole build and holds a record per context file, so records are packed:
 * keyed by directory, then base name (each directory's path is stored once, and the names are the
 * walk's own strings), with the stat tuple, racy flag and binary sha256 in typed-array columns
 * indexed by slot. An object per record with its numbers as strings cost ~450 bytes; this ~150.
 */
export class StatCache {
  /** Lookups answered from the cache since load. */
  hits = 0;
  /** Lookups that required reading the file. */
  misses = 0;
  private dirty = false;
  /** directory ('' for '/') → base name → slot. */
  private readonly slots = new Map<string, Map<string, number>>();
  private count = 0;
  private used = 0;
  private capacity = 0;
  /** One row per slot. */
  private cols = {
    devs: new BigUint64Array(0),
    inos: new BigUint64Array(0),
    mtimes: new BigInt64Array(0),
    ctimes: new BigInt64Array(0),
    sizes: new Float64Array(0),
    modes: new Float64Array(0),
    racy: new Uint8Array(0),
  };
  private digests = Buffer.alloc(0);

  private constructor(
    /** The JSON file backing the cache, or null for a memory-only cache. */
    readonly file: string | null,
  ) {}

  /** Loads the cache file; a missing or unreadable one starts an empty cache (it is only a speed-up). */
  static async load(file: string): Promise<StatCache> {
    const cache = new StatCache(path.resolve(file));
    try {
      const data = JSON.parse(await fsp.readFile(file, 'utf8')) as { version?: number; entries?: Record<string, StoredRecord> };
      if (data.version === FORMAT_VERSION && data.entries && typeof data.entries === 'object') {
        for (const [p, r] of Object.entries(data.entries)) {
          if (isRecord(r)) cache.put(p, r);
        }
      }
    } catch {
      // absent or corrupt: start empty
    }
    cache.dirty = false;
    return cache;
  }

  static inMemory(): StatCache {
    return new StatCache(null);
  }

  /** Number of recorded files. */
  get size(): number {
    return this.count;
  }

  /** The recorded sha256 (hex) when the file's stat tuple is unchanged; counts a hit or a miss. */
  lookup(absPath: string, st: StatTuple): string | undefined {
    const [dir, name] = splitPath(absPath);
    const out = Buffer.allocUnsafe(32);
    return this.lookupIn(dir, name, st, out, 0) ? out.toString('hex') : undefined;
  }

  /**
   * lookup() for the file `name` in the host directory `dir`: on a hit, copies the 32-byte sha256 to
   * `out` at `offset` and returns true.
   */
  lookupIn(dir: string, name: string, st: StatTuple, out: Buffer, offset: number): boolean {
    const slot = this.slots.get(dirKey(dir))?.get(name);
    if (slot !== undefined && this.cols.racy[slot] === 0 && this.sameTuple(slot, st)) {
      this.hits++;
      this.digests.copy(out, offset, slot * 32, slot * 32 + 32);
      return true;
    }
    this.misses++;
    return false;
  }

  /** Records a content hash computed from a read that started at `readStartNs` (wall clock). */
  record(absPath: string, st: StatTuple, sha256: string, readStartNs: bigint): void {
    const [dir, name] = splitPath(absPath);
    this.recordIn(dir, name, st, Buffer.from(sha256, 'hex'), readStartNs);
  }

  /** record() for the file `name` in the host directory `dir`, with the binary sha256. */
  recordIn(dir: string, name: string, st: StatTuple, sha256: Uint8Array, readStartNs: bigint): void {
    const slot = this.slotFor(dirKey(dir), name);
    const latest = st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs;
    this.cols.devs[slot] = st.dev;
    this.cols.inos[slot] = st.ino;
    this.cols.sizes[slot] = st.size;
    this.cols.mtimes[slot] = st.mtimeNs;
    this.cols.ctimes[slot] = st.ctimeNs;
    this.cols.modes[slot] = st.mode;
    this.cols.racy[slot] = latest + RACY_WINDOW_NS >= readStartNs ? 1 : 0;
    this.digests.set(sha256.subarray(0, 32), slot * 32);
    this.dirty = true;
  }

  /** Forgets one path. */
  delete(absPath: string): void {
    const [dir, name] = splitPath(absPath);
    const names = this.slots.get(dirKey(dir));
    if (!names?.delete(name)) return;
    if (names.size === 0) this.slots.delete(dirKey(dir));
    this.count--;
    this.dirty = true;
  }

  /** Drops records of files that are gone or were replaced (another inode), so the file stays small. */
  async prune(): Promise<number> {
    const gone: string[] = [];
    await Promise.all(
      [...this.paths()].map(async ([p, slot]) => {
        const st = await fsp.lstat(fsPath(p), { bigint: true }).catch(() => null);
        if (st && st.isFile() && st.dev === this.cols.devs[slot] && st.ino === this.cols.inos[slot]) return;
        gone.push(p);
      }),
    );
    for (const p of gone) this.delete(p);
    return gone.length;
  }

  /** Writes the cache file if anything changed (atomically; the directory is created). */
  async save(): Promise<void> {
    if (this.file === null || !this.dirty) return;
    await writeAtomic(this.file, this.json());
    this.dirty = false;
  }

  /**
   * The file's JSON, `{"version":1,"entries":{…}}` as JSON.stringify wrote it, encoded record by record
   * into one reused buffer of SAVE_CHUNK bytes, yielded whenever it fills: no string of the whole file
   * (30 MB for 100,000 files), and no rope of a piece's records living long enough to reach old space.
   */
  private *json(): Generator<Buffer> {
    const buf = Buffer.allocUnsafe(SAVE_CHUNK);
    let pos = 0;
    const put = function* (text: string): Generator<Buffer> {
      const length = Buffer.byteLength(text);
      if (pos > 0 && pos + length > buf.length) {
        yield buf.subarray(0, pos);
        pos = 0;
      }
      if (length > buf.length) yield Buffer.from(text); // one record longer than the buffer (a huge path)
      else pos += buf.write(text, pos);
    };
    yield* put(`{"version":${FORMAT_VERSION},"entries":{`);
    let first = true;
    for (const [p, slot] of this.paths()) {
      yield* put(`${first ? '' : ','}${JSON.stringify(p)}:${JSON.stringify(this.stored(slot))}`);
      first = false;
    }
    yield* put('}}');
    if (pos > 0) yield buf.subarray(0, pos);
  }

  private stored(slot: number): StoredRecord {
    const r: StoredRecord = {
      dev: this.cols.devs[slot]!.toString(),
      ino: this.cols.inos[slot]!.toString(),
      size: this.cols.sizes[slot]!,
      mtimeNs: this.cols.mtimes[slot]!.toString(),
      ctimeNs: this.cols.ctimes[slot]!.toString(),
      mode: this.cols.modes[slot]!,
      sha256: this.digests.toString('hex', slot * 32, slot * 32 + 32),
    };
    if (this.cols.racy[slot]) r.racy = true;
    return r;
  }

  /** Every recorded path with its slot. */
  private *paths(): Generator<[string, number]> {
    for (const [dir, names] of this.slots) for (const [name, slot] of names) yield [`${dir}/${name}`, slot];
  }

  private sameTuple(slot: number, st: StatTuple): boolean {
    return (
      this.cols.devs[slot] === st.dev &&
      this.cols.inos[slot] === st.ino &&
      this.cols.sizes[slot] === st.size &&
      this.cols.mtimes[slot] === st.mtimeNs &&
      this.cols.ctimes[slot] === st.ctimeNs &&
      this.cols.modes[slot] === st.mode
    );
  }

  /** A loaded record; one whose numbers do not fit the columns is dropped (the file is rewritten). */
  private put(absPath: string, r: StoredRecord): void {
    const dev = unsigned64(r.dev);
    const ino = unsigned64(r.ino);
    const mtimeNs = signed64(r.mtimeNs);
    const ctimeNs = signed64(r.ctimeNs);
    if (dev === undefined || ino === undefined || mtimeNs === undefined || ctimeNs === undefined) return;
    const [dir, name] = splitPath(absPath);
    const slot = this.slotFor(dirKey(dir), name);
    this.cols.devs[slot] = dev;
    this.cols.inos[slot] = ino;
    this.cols.sizes[slot] = r.size;
    this.cols.mtimes[slot] = mtimeNs;
    this.cols.ctimes[slot] = ctimeNs;
    this.cols.modes[slot] = r.mode;
    this.cols.racy[slot] = r.racy ? 1 : 0;
    this.digests.write(r.sha256, slot * 32, 32, 'hex');
  }

  /** The slot of a path, a new one when it has none yet. */
  private slotFor(dir: string, name: string): number {
    let names = this.slots.get(dir);
    if (names === undefined) {
      names = new Map();
      this.slots.set(dir, names);
    }
    const existing = names.get(name);
    if (existing !== undefined) return existing;
    if (this.used === this.capacity) this.grow();
    const slot = this.used++;
    names.set(name, slot);
    this.count++;
    return slot;
  }

  private grow(): void {
    this.capacity = Math.max(INITIAL_CAPACITY, this.capacity * 2);
    this.cols = grownColumns(this.cols, this.capacity);
    const digests = Buffer.alloc(this.capacity * 32);
    this.digests.copy(digests);
    this.digests = digests;
  }
}

/** An absolute path as (directory, base name); '/x' is ('', 'x'). */
function splitPath(absPath: string): [string, string] {
  const slash = absPath.lastIndexOf('/');
  return [absPath.slice(0, slash), absPath.slice(slash + 1)];
}

/** The slots key of a host directory: paths() joins it back with `/`, so '/' itself is ''. */
function dirKey(dir: string): string {
  return dir === '/' ? '' : dir;
}

const UINT64_MAX = (1n << 64n) - 1n;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

function unsigned64(s: string): bigint | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = BigInt(s);
  return n <= UINT64_MAX ? n : undefined;
}

function signed64(s: string): bigint | undefined {
  if (!/^-?\d+$/.test(s)) return undefined;
  const n = BigInt(s);
  return n >= INT64_MIN && n <= INT64_MAX ? n : undefined;
}

/** The wall clock in nanoseconds (the clock file timestamps use). */
export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
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

async function writeAtomic(file: string, data: Iterable<Buffer>): Promise<void> {
  const dir = path.dirname(file);
  await mkdirp(dir);
  const tmp = path.join(dir, `.tmp-${path.basename(file)}-${randomBytes(6).toString('hex')}`);
  const fh = await fsp.open(tmp, 'wx', 0o644);
  try {
    for (const piece of data) await fh.writeFile(piece); // at the current position, to its end
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
