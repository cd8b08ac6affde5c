// Leases: what a running operation holds, as one JSON list per operation in a directory, the file
// named after the owner process. A live owner's items are kept by garbage collection; a dead
// owner's lease is stale, so no count can drift after a `kill -9`.
import { randomBytes } from '@tsbuild/native';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isAlive, ownedName, ownerOf } from './drivers/proc';
import { mkdirp } from './atomic';
import { TsbuildError } from './errors';

export interface LeaseFile {
  /** Adds an item; resolves once the lease on disk holds it. */
  add(item: string): Promise<void>;
  /** Removes the lease. */
  release(): Promise<void>;
}

/** A new lease in `dir`, owned by this process. */
export async function createLease(dir: string): Promise<LeaseFile> {
  await mkdirp(dir, 0o700);
  const file = path.join(dir, `${ownedName(randomBytes(6).toString('hex'))}.json`);
  const items = new Set<string>();
  // Parallel callers add to one lease: writes go one after the other, each with the whole set.
  let writing: Promise<void> = Promise.resolve();
  let fd: number | undefined;
  // Rewritten in place, neither renamed nor synced: a lease matters only while its owner lives, and a
  // crash ends the owner. Items are only added, so each JSON text extends the last one's prefix and
  // covers it entirely; a reader that catches a write half done retries (readLeases). Synchronous: a
  // build step adds one item, and a pool round trip costs more than the write (README, Performance).
  const write = () => {
    fd ??= fs.openSync(file, 'w', 0o600);
    fs.writeSync(fd, JSON.stringify([...items]), 0);
  };
  return {
    add(item: string) {
      if (items.has(item)) return writing;
      items.add(item);
      writing = writing.then(write, write);
      return writing;
    },
    async release() {
      await writing.catch(() => {});
      if (fd !== undefined) fs.closeSync(fd);
      fd = undefined;
      await fs.promises.rm(file, { force: true });
    },
  };
}

/** Reads of a live lease that may find a rewrite in progress (each a moment apart). */
const TORN_READ_ATTEMPTS = 20;

/**
 * The items of the leases in `dir`: those of live owners, and those of dead owners, whose lease
 * files are removed.
 */
export async function readLeases(dir: string): Promise<{ live: string[]; dead: string[] }> {
  const out = { live: [] as string[], dead: [] as string[] };
  for (const name of await fs.promises.readdir(dir).catch(() => [] as string[])) {
    const owner = ownerOf(name);
    const file = path.join(dir, name);
    const alive = owner !== null && isAlive(owner);
    if (alive && name.endsWith('.tmp')) continue;
    let items: string[] | undefined;
    // A live owner may be halfway through rewriting its lease: read again until the text is whole. A
    // dead owner's lease may be torn for good, and is removed below anyway.
    for (let attempt = 0; items === undefined && attempt < (alive ? TORN_READ_ATTEMPTS : 1); attempt++) {
      items = await readLeaseItems(file);
      if (items === undefined && alive) await new Promise((resolve) => setTimeout(resolve, attempt));
    }
    // What a live owner holds is unknown: collecting now could remove it, so the caller stops instead.
    if (items === undefined && alive) {
      throw new TsbuildError('ELEASE', `lease ${file} of running process ${owner} cannot be read; nothing was removed (try again)`);
    }
    items ??= [];
    if (alive) out.live.push(...items);
    else {
      out.dead.push(...items);
      await fs.promises.rm(file, { force: true });
    }
  }
  return out;
}

/** A lease file's items, or undefined when it is not (yet) a whole JSON list of strings. */
async function readLeaseItems(file: string): Promise<string[] | undefined> {
  try {
    const items: unknown = JSON.parse(await fs.promises.readFile(file, 'utf8'));
    return Array.isArray(items) && items.every((i) => typeof i === 'string') ? items : undefined;
  } catch {
    return undefined;
  }
}
