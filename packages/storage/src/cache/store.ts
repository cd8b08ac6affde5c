// The build cache's records: for each step key, the layer it made (or that it made none). They live
// in storage, not in the builder, because they are roots of the layer sweep (store.ts): a layer a
// record names stays until the record goes (`builder prune`, `tsbuild prune`), whoever opened the
// store. Beside them, the key parts of the last build at each step position ("lineage"), so a miss
// can say what changed. Layout (unchanged since the cache lived in the builder):
//   <root>/builder/cache/<key hex>      a CacheRecord (JSON), written atomically
//   <root>/builder/lineage/<lineage id>  the named key parts of the last build of that step (JSON)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mkdirp, writeFileAtomic } from '../atomic';

/** What a cache hit reuses. */
export interface CacheRecord {
  /** The chain the step produced; for an empty step, its parent's chain ('' on scratch). */
  chainID: string;
  diffID: string;
  size: number;
  /** The step changed no file: it made no layer. */
  empty: boolean;
  /** When the step ran: a fully cached build reproduces the same history and image ID. */
  created: string;
}

/** Named parts of a cache key, in order; values are canonical strings. */
export type KeyParts = Record<string, string>;

const KEY_HEX = /^[0-9a-f]{64}$/;

export class BuildCache {
  private readonly entries: string;
  private readonly lineage: string;

  /** The cache of the storage root `root`. */
  constructor(root: string) {
    this.entries = path.join(root, 'builder', 'cache');
    this.lineage = path.join(root, 'builder', 'lineage');
  }

  /** Chain IDs the records name: roots of the store's layer sweep. */
  async liveChains(): Promise<string[]> {
    const out: string[] = [];
    for (const name of await fs.promises.readdir(this.entries).catch(() => [] as string[])) {
      // Temporaries mid-rename count too: a record is about to be published.
      const record = await readJson<CacheRecord>(path.join(this.entries, name));
      if (record?.chainID) out.push(record.chainID);
    }
    return out;
  }

  /** Drops every record and the step history (`tsbuild prune`). */
  async clear(): Promise<void> {
    await fs.promises.rm(this.entries, { recursive: true, force: true });
    await fs.promises.rm(this.lineage, { recursive: true, force: true });
  }

  /** Every record with its key (for `builder prune` and `system df`). */
  async list(): Promise<{ key: string; record: CacheRecord }[]> {
    const out: { key: string; record: CacheRecord }[] = [];
    for (const name of await fs.promises.readdir(this.entries).catch(() => [] as string[])) {
      if (!KEY_HEX.test(name)) continue; // temporaries mid-rename
      const record = await this.lookup(`sha256:${name}`);
      if (record) out.push({ key: `sha256:${name}`, record });
    }
    return out;
  }

  /**
   * `builder prune`: drops records made before `before` (ms since 1970), then the oldest until the
   * records' layers add up to at most `keepBytes`. No option: every record. Returns what it dropped.
   */
  async prune(opts: { before?: number; keepBytes?: number } = {}): Promise<{ entries: number; bytes: number }> {
    const all = (await this.list()).sort((a, b) => Date.parse(a.record.created) - Date.parse(b.record.created));
    const drop = new Set<string>();
    if (opts.before === undefined && opts.keepBytes === undefined) for (const e of all) drop.add(e.key);
    if (opts.before !== undefined) for (const e of all) if (Date.parse(e.record.created) < opts.before) drop.add(e.key);
    if (opts.keepBytes !== undefined) {
      let total = all.filter((e) => !drop.has(e.key)).reduce((n, e) => n + e.record.size, 0);
      for (const e of all) {
        if (total <= opts.keepBytes) break;
        if (drop.has(e.key)) continue;
        drop.add(e.key);
        total -= e.record.size;
      }
    }
    let bytes = 0;
    for (const e of all) {
      if (!drop.has(e.key)) continue;
      await this.forget(e.key);
      bytes += e.record.size;
    }
    if (drop.size === all.length) await fs.promises.rm(this.lineage, { recursive: true, force: true });
    return { entries: drop.size, bytes };
  }

  lookup(key: string): Promise<CacheRecord | undefined> {
    return readJson<CacheRecord>(this.entryPath(key));
  }

  async store(key: string, record: CacheRecord): Promise<void> {
    await writeJsonAtomic(this.entryPath(key), record);
  }

  async forget(key: string): Promise<void> {
    await fs.promises.rm(this.entryPath(key), { force: true });
  }

  /** Drops the records whose layer is one of `chains` (fsck: a layer that cannot be trusted); returns how many. */
  async forgetChains(chains: ReadonlySet<string>): Promise<number> {
    let n = 0;
    for (const { key, record } of await this.list()) {
      if (!chains.has(record.chainID)) continue;
      await this.forget(key);
      n++;
    }
    return n;
  }

  /** The key parts the last build of this step position recorded (undefined: none yet). */
  lastParts(lineageId: string): Promise<KeyParts | undefined> {
    return readJson<KeyParts>(this.lineagePath(lineageId));
  }

  async recordLineage(lineageId: string, parts: KeyParts): Promise<void> {
    const file = this.lineagePath(lineageId);
    // A cache hit usually records what is already there: skip the write.
    const current = readTextOrUndefined(file);
    if (current === JSON.stringify(parts)) return;
    await writeJsonAtomic(file, parts);
  }

  private entryPath(key: string): string {
    return path.join(this.entries, key.replace(/^sha256:/, ''));
  }

  private lineagePath(id: string): string {
    return path.join(this.lineage, id);
  }
}

// Records are a few hundred bytes and a cached build reads two per step: synchronous reads, since a
// pool round trip costs more than the read (README, Performance).
function readTextOrUndefined(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** A JSON file's value; undefined when it is missing or torn. */
async function readJson<T>(file: string): Promise<T | undefined> {
  const text = readTextOrUndefined(file);
  try {
    return text === undefined ? undefined : (JSON.parse(text) as T);
  } catch {
    return undefined;
  }
}

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await mkdirp(path.dirname(file));
  await writeFileAtomic(file, JSON.stringify(value));
}
