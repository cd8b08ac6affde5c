// The build cache: a step's key is a digest of its named parts (parent layer, instruction, env it
// sees, content of its sources…). Entries and the last key of every step position ("lineage") live
// under <root>/builder, so a miss can say which part changed since the previous build.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mkdirp, writeFileAtomic } from '@tsbuild/storage';

/** Ordered named parts of a cache key; values are canonical strings. */
export type KeyParts = Record<string, string>;

export interface CacheRecord {
  chainID: string;
  diffID: string;
  size: number;
  empty: boolean;
  /** When the step ran: a fully cached build reproduces the same history and image ID. */
  created: string;
}

const PART_LABELS: Record<string, string> = {
  parent: 'the parent layer changed',
  instruction: 'the instruction changed',
  env: 'the environment changed',
  args: 'a build argument changed',
  user: 'the user changed',
  workdir: 'the working directory changed',
  shell: 'the shell changed',
  network: 'the network mode changed',
  mounts: 'the RUN mounts changed',
  content: 'the content of the sources changed',
  from: 'the source stage or image changed',
  epoch: 'SOURCE_DATE_EPOCH changed',
};

export function cacheKey(parts: KeyParts): string {
  const h = crypto.createHash('sha256');
  h.update('tsbuild-cache-v1\n');
  for (const [name, value] of Object.entries(parts)) h.update(`${name}=${JSON.stringify(value)}\n`);
  return `sha256:${h.digest('hex')}`;
}

export class BuildCache {
  private readonly entries: string;
  private readonly lineage: string;

  constructor(root: string) {
    this.entries = path.join(root, 'builder', 'cache');
    this.lineage = path.join(root, 'builder', 'lineage');
  }

  /** Chain IDs the cache refers to: roots for the store's layer sweep. */
  async liveChains(): Promise<string[]> {
    const out: string[] = [];
    for (const name of await fs.promises.readdir(this.entries).catch(() => [] as string[])) {
      try {
        const record = JSON.parse(await fs.promises.readFile(path.join(this.entries, name), 'utf8')) as CacheRecord;
        if (record.chainID) out.push(record.chainID);
      } catch {
        // A temporary file mid-rename.
      }
    }
    return out;
  }

  /** Drops every cache entry and the step history (`tsbuild prune`). */
  async clear(): Promise<void> {
    await fs.promises.rm(this.entries, { recursive: true, force: true });
    await fs.promises.rm(this.lineage, { recursive: true, force: true });
  }

  /** Every entry with its key (for `builder prune` and `system df`). */
  async list(): Promise<{ key: string; record: CacheRecord }[]> {
    const out: { key: string; record: CacheRecord }[] = [];
    for (const name of await fs.promises.readdir(this.entries).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue; // temporaries mid-rename
      const record = await this.lookup(`sha256:${name}`);
      if (record) out.push({ key: `sha256:${name}`, record });
    }
    return out;
  }

  /**
   * `builder prune`: drops entries made before `before` (ms since 1970), then the oldest until the
   * entries' layers add up to at most `keepBytes`. No option: every entry. Returns what it dropped.
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

  async lookup(key: string): Promise<CacheRecord | undefined> {
    try {
      return JSON.parse(await fs.promises.readFile(this.entryPath(key), 'utf8')) as CacheRecord;
    } catch {
      return undefined;
    }
  }

  async store(key: string, record: CacheRecord): Promise<void> {
    await writeJsonAtomic(this.entryPath(key), record);
  }

  async forget(key: string): Promise<void> {
    await fs.promises.rm(this.entryPath(key), { force: true });
  }

  /** Says which parts differ from the last build of the same step position (undefined: first build). */
  async explainMiss(lineageId: string, parts: KeyParts): Promise<string | undefined> {
    let previous: KeyParts | undefined;
    try {
      previous = JSON.parse(await fs.promises.readFile(this.lineagePath(lineageId), 'utf8')) as KeyParts;
    } catch {
      return undefined;
    }
    const changed = Object.keys(parts).filter((name) => previous![name] !== parts[name]);
    for (const name of Object.keys(previous)) if (!(name in parts)) changed.push(name);
    if (changed.length === 0) return 'the cached layer is gone';
    return changed.map((name) => describeChange(name, previous![name], parts[name])).join('; ');
  }

  async recordLineage(lineageId: string, parts: KeyParts): Promise<void> {
    const file = this.lineagePath(lineageId);
    // A cache hit usually records what is already there: skip the write.
    const current = await fs.promises.readFile(file, 'utf8').catch(() => undefined);
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

function describeChange(name: string, before: string | undefined, after: string | undefined): string {
  const label = PART_LABELS[name] ?? `${name} changed`;
  if (name === 'env' || name === 'args') {
    const diff = diffAssignments(before, after);
    if (diff.length > 0) return `${label}: ${diff.join(', ')}`;
  }
  if (name === 'instruction' && before !== undefined && after !== undefined) return `${label} (was: ${truncate(before)})`;
  return label;
}

/** Names of KEY=value assignments that differ between two JSON arrays of them. */
function diffAssignments(before: string | undefined, after: string | undefined): string[] {
  const parse = (s: string | undefined) => {
    const map = new Map<string, string>();
    if (!s) return map;
    try {
      for (const kv of JSON.parse(s) as string[]) {
        const eq = kv.indexOf('=');
        map.set(eq < 0 ? kv : kv.slice(0, eq), eq < 0 ? '' : kv.slice(eq + 1));
      }
    } catch {
      // Not a list of assignments: fall back to the generic label.
    }
    return map;
  };
  const a = parse(before);
  const b = parse(after);
  const names = new Set([...a.keys(), ...b.keys()]);
  return [...names].filter((n) => a.get(n) !== b.get(n)).sort();
}

function truncate(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

export function lineageId(...parts: string[]): string {
  return crypto.createHash('sha256').update(parts.join('\0')).digest('hex');
}

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await mkdirp(path.dirname(file));
  await writeFileAtomic(file, JSON.stringify(value));
}
