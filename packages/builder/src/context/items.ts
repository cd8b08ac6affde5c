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
  /** One row per item; `parents` holds the parent's directory number, -1 for the root item. */
  private cols = {
    parents: new Int32Array(0),
    types: new Uint8Array(0),
    modes: new Uint16Array(0),
    uids: new Uint32Array(0),
    gids: new Uint32Array(0),
    sizes: new Float64Array(0),
    nlinks: new Float64Array(0),
    rdevs: new Float64Array(0),
    devs: new BigUint64Array(0),
    inos: new BigUint64Array(0),
    mtimes: new BigInt64Array(0),
    ctimes: new BigInt64Array(0),
  };
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
    if (this.cols.types[i] === CODE_OF.get('dir')) {
      this.dirRels.pop();
      this.dirAbses.pop();
    }
    this.linkTargets.delete(i);
    this.hardlinks.delete(i);
  }

  typeOf(i: number): EntryType {
    return TYPE_CODES[this.cols.types[i]!]!;
  }

  nlinkOf(i: number): number {
    return this.cols.nlinks[i]!;
  }

  /** The parent's directory number (-1 for the root item). */
  parentOf(i: number): number {
    return this.cols.parents[i]!;
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
    const parent = this.cols.parents[i]!;
    const name = this.names[i]!;
    const rel = parent < 0 ? '' : joinRel(this.dirRels[parent]!, name);
    const item: CopyItem = {
      path: rel === '' ? this.rootPath : joinRel(this.rootPath, rel),
      absPath: parent < 0 ? this.rootAbs : childAbs(this.dirAbses[parent]!, name),
      type: TYPE_CODES[this.cols.types[i]!]!,
      mode: this.cols.modes[i]!,
      uid: this.cols.uids[i]!,
      gid: this.cols.gids[i]!,
      size: this.cols.sizes[i]!,
      nlink: this.cols.nlinks[i]!,
      dev: this.cols.devs[i]!,
      ino: this.cols.inos[i]!,
      rdev: this.cols.rdevs[i]!,
      mtimeNs: this.cols.mtimes[i]!,
      ctimeNs: this.cols.ctimes[i]!,
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
    this.cols.parents[i] = parent;
    this.cols.types[i] = CODE_OF.get(type)!;
    this.cols.modes[i] = mode & 0o7777;
    this.cols.uids[i] = Number(st.uid);
    this.cols.gids[i] = Number(st.gid);
    this.cols.sizes[i] = type === 'file' ? Number(st.size) : 0;
    this.cols.nlinks[i] = Number(st.nlink);
    this.cols.rdevs[i] = type === 'char' || type === 'block' ? Number(st.rdev) : 0;
    this.cols.devs[i] = st.dev;
    this.cols.inos[i] = st.ino;
    this.cols.mtimes[i] = st.mtimeNs;
    this.cols.ctimes[i] = st.ctimeNs;
    if (linkTarget !== undefined) this.linkTargets.set(i, linkTarget);
    if (type !== 'dir') return -1;
    this.dirRels.push(rel);
    this.dirAbses.push(abs);
    return this.dirRels.length - 1;
  }

  private grow(): void {
    this.capacity = Math.max(INITIAL_CAPACITY, this.capacity * 2);
    this.cols = grownColumns(this.cols, this.capacity);
  }
}

type Column = Int32Array | Uint8Array | Uint16Array | Uint32Array | Float64Array | BigUint64Array | BigInt64Array;

/** Typed-array columns of `length` rows, each holding its old rows first (the rest zero). */
export function grownColumns<C extends Record<string, Column>>(from: C, length: number): C {
  const out: Record<string, Column> = {};
  for (const [name, column] of Object.entries(from)) {
    const grown = new (column.constructor as new (length: number) => Column)(length);
    (grown as { set(rows: Column): void }).set(column);
    out[name] = grown;
  }
  return out as C;
}
