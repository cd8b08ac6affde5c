// The items of one COPY/ADD source, packed: a plan keeps them for the whole build, and a node_modules
// COPY holds 100,000 of them. An object per item (three path strings, four BigInts) cost ~500 bytes;
// here an item is its base name plus ~70 bytes of typed-array columns, and each directory's path is
// stored once. at() builds the plain CopyItem when a pass needs one.
import type * as fs from 'node:fs';
import { type ContextEntry, type EntryType, entryType } from './entry';
import { joinRel } from './paths';

/** One item to copy for a source. */
export interface CopyItem extends ContextEntry {
  /** Path relative to the source's root item ('' for the root itself). */
  rel: string;
  /**
   * For a regular file with several links: the context path (`path`) of the first item in the same
   * resolveSources() result with the same (dev, ino); the executor links to its copy.
   */
  hardlinkTo?: string;
}

const TYPE_CODES: readonly EntryType[] = ['file', 'dir', 'symlink', 'fifo', 'socket', 'char', 'block'];
const CODE_OF: ReadonlyMap<EntryType, number> = new Map(TYPE_CODES.map((t, i) => [t, i]));
const INITIAL_CAPACITY = 16;

/** `name` inside the host directory `dir`, as path.join gives it for a plain name. */
export function childAbs(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/**
 * The root item first, then (for a directory) every visible descendant, depth-first in byte order; a
 * directory comes before its children. Directories are numbered in item order (the root, when it is
 * one, is directory 0), and each item records its parent's number.
 */
export class CopyItems implements Iterable<CopyItem> {
  length = 0;
  private capacity = 0;
  private readonly names: string[] = [];
  /** The parent's directory number; -1 for the root item. */
  private parents = new Int32Array(0);
  private types = new Uint8Array(0);
  private modes = new Uint16Array(0);
  private uids = new Uint32Array(0);
  private gids = new Uint32Array(0);
  private sizes = new Float64Array(0);
  private nlinks = new Float64Array(0);
  private rdevs = new Float64Array(0);
  private devs = new BigUint64Array(0);
  private inos = new BigUint64Array(0);
  private mtimes = new BigInt64Array(0);
  private ctimes = new BigInt64Array(0);
  /** Per directory number: its path below the root item, and its host path. */
  private readonly dirRels: string[] = [];
  private readonly dirAbses: string[] = [];
  /** Sparse: symlink targets and hardlinkTo, by item index. */
  private readonly linkTargets = new Map<number, string>();
  private readonly hardlinks = new Map<number, string>();

  constructor(
    /** The root item's context path. */
    readonly rootPath: string,
    /** The root item's host path. */
    readonly rootAbs: string,
  ) {}

  /** Adds the root item; returns its directory number, or -1 when it is not a directory. */
  addRoot(st: fs.BigIntStats, linkTarget?: string): number {
    if (this.length !== 0) throw new Error('internal: the root item comes first');
    return this.append(-1, '', st, linkTarget, '', this.rootAbs);
  }

  /** Adds an item named `name` in directory `parentDir`; returns its directory number, or -1. */
  add(parentDir: number, name: string, st: fs.BigIntStats, linkTarget?: string): number {
    return this.append(parentDir, name, st, linkTarget, joinRel(this.dirRels[parentDir]!, name), childAbs(this.dirAbses[parentDir]!, name));
  }

  /** Drops the last item (a directory that turned out to show nothing). */
  dropLast(): void {
    const i = --this.length;
    this.names.pop();
    if (this.types[i] === CODE_OF.get('dir')) {
      this.dirRels.pop();
      this.dirAbses.pop();
    }
    this.linkTargets.delete(i);
    this.hardlinks.delete(i);
  }

  typeOf(i: number): EntryType {
    return TYPE_CODES[this.types[i]!]!;
  }

  nlinkOf(i: number): number {
    return this.nlinks[i]!;
  }

  /** The parent's directory number (-1 for the root item). */
  parentOf(i: number): number {
    return this.parents[i]!;
  }

  nameOf(i: number): string {
    return this.names[i]!;
  }

  /** A directory's path below the root item. */
  dirRel(dir: number): string {
    return this.dirRels[dir]!;
  }

  /** A directory's host path. */
  dirAbs(dir: number): string {
    return this.dirAbses[dir]!;
  }

  hardlinkToOf(i: number): string | undefined {
    return this.hardlinks.get(i);
  }

  setHardlinkTo(i: number, contextPath: string): void {
    this.hardlinks.set(i, contextPath);
  }

  /** Item `i` as a fresh object. */
  at(i: number): CopyItem {
    if (!(i >= 0 && i < this.length)) throw new RangeError(`no item ${i} of ${this.length}`);
    const parent = this.parents[i]!;
    const name = this.names[i]!;
    const rel = parent < 0 ? '' : joinRel(this.dirRels[parent]!, name);
    const item: CopyItem = {
      path: rel === '' ? this.rootPath : joinRel(this.rootPath, rel),
      absPath: parent < 0 ? this.rootAbs : childAbs(this.dirAbses[parent]!, name),
      type: TYPE_CODES[this.types[i]!]!,
      mode: this.modes[i]!,
      uid: this.uids[i]!,
      gid: this.gids[i]!,
      size: this.sizes[i]!,
      nlink: this.nlinks[i]!,
      dev: this.devs[i]!,
      ino: this.inos[i]!,
      rdev: this.rdevs[i]!,
      mtimeNs: this.mtimes[i]!,
      ctimeNs: this.ctimes[i]!,
      rel,
    };
    const target = this.linkTargets.get(i);
    if (target !== undefined) item.linkTarget = target;
    const hardlinkTo = this.hardlinks.get(i);
    if (hardlinkTo !== undefined) item.hardlinkTo = hardlinkTo;
    return item;
  }

  *[Symbol.iterator](): Iterator<CopyItem> {
    for (let i = 0; i < this.length; i++) yield this.at(i);
  }

  private append(parent: number, name: string, st: fs.BigIntStats, linkTarget: string | undefined, rel: string, abs: string): number {
    if (this.length === this.capacity) this.grow();
    const i = this.length++;
    const mode = Number(st.mode);
    const type = entryType(mode);
    this.names.push(name);
    this.parents[i] = parent;
    this.types[i] = CODE_OF.get(type)!;
    this.modes[i] = mode & 0o7777;
    this.uids[i] = Number(st.uid);
    this.gids[i] = Number(st.gid);
    this.sizes[i] = type === 'file' ? Number(st.size) : 0;
    this.nlinks[i] = Number(st.nlink);
    this.rdevs[i] = type === 'char' || type === 'block' ? Number(st.rdev) : 0;
    this.devs[i] = st.dev;
    this.inos[i] = st.ino;
    this.mtimes[i] = st.mtimeNs;
    this.ctimes[i] = st.ctimeNs;
    if (linkTarget !== undefined) this.linkTargets.set(i, linkTarget);
    if (type !== 'dir') return -1;
    this.dirRels.push(rel);
    this.dirAbses.push(abs);
    return this.dirRels.length - 1;
  }

  private grow(): void {
    const n = Math.max(INITIAL_CAPACITY, this.capacity * 2);
    this.parents = resized(this.parents, new Int32Array(n));
    this.types = resized(this.types, new Uint8Array(n));
    this.modes = resized(this.modes, new Uint16Array(n));
    this.uids = resized(this.uids, new Uint32Array(n));
    this.gids = resized(this.gids, new Uint32Array(n));
    this.sizes = resized(this.sizes, new Float64Array(n));
    this.nlinks = resized(this.nlinks, new Float64Array(n));
    this.rdevs = resized(this.rdevs, new Float64Array(n));
    this.devs = resized(this.devs, new BigUint64Array(n));
    this.inos = resized(this.inos, new BigUint64Array(n));
    this.mtimes = resized(this.mtimes, new BigInt64Array(n));
    this.ctimes = resized(this.ctimes, new BigInt64Array(n));
    this.capacity = n;
  }
}

function resized<T extends { set(from: T): void }>(from: T, to: T): T {
  to.set(from);
  return to;
}
