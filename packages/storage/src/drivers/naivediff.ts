// The naive diff (moby/moby:daemon/graphdriver/fsdiff.go) for drivers that keep full copies: walk a
// layer and its parent side by side and stage the changes in overlay format, ready for packDir:
//   - added or changed non-directories: hard links into the staging dir (no data copied);
//   - added directories: copied whole; changed ones (mode, owner, xattrs) and the parents of any
//     change: recreated with the layer's metadata (mode, owner, xattrs, times);
//   - deleted entries: 0/0 character devices (overlay whiteouts).
// Change = type, mode, owner, xattrs differ, or for non-directories also mtime, size, rdev or the
// symlink target. Directory mtimes are ignored: adding a child changes them (moby/moby#9874).
// mtime and size alone miss a rewrite within one tick of the filesystem's clock, so a layer made by
// copying its parent also records a ctime baseline taken right after the copy: a non-directory whose
// ctime is later was touched after the copy (changed); one whose ctime equals the baseline may have
// been, and its content is compared.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as native from '@tsbuild/native';
import { copyXattrs, readXattrs, sameXattrs } from '../archive/xattrs';
import { decodeName, fsPath } from '../names';

type Stats = fs.BigIntStats;

const TYPE_MASK = 0o170000n;

/** ns → seconds for utimes, truncated to µs so that float rounding never reaches the next second. */
function seconds(ns: bigint): number {
  return Number(ns / 1_000_000_000n) + Number((ns % 1_000_000_000n) / 1000n) / 1e6;
}

function lstat(p: string): Stats | undefined {
  return fs.lstatSync(fsPath(p), { bigint: true, throwIfNoEntry: false });
}

/**
 * Node sets times through a double of seconds, so a copy's mtime can be off by up to a microsecond
 * (treecopy.ts truncates to µs). A real change never lands that close to the old time.
 */
const TIME_SLACK_NS = 2000n;

function sameTime(a: bigint, b: bigint): boolean {
  const d = a - b;
  return d <= TIME_SLACK_NS && d >= -TIME_SLACK_NS;
}

function sameContent(a: string, b: string): boolean {
  const fa = fs.openSync(fsPath(a), 'r');
  const fb = fs.openSync(fsPath(b), 'r');
  try {
    const ba = Buffer.allocUnsafe(1 << 16);
    const bb = Buffer.allocUnsafe(1 << 16);
    for (;;) {
      const na = fs.readSync(fa, ba, 0, ba.length, null);
      const nb = fs.readSync(fb, bb, 0, bb.length, null);
      if (na !== nb || !ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
      if (na === 0) return true;
    }
  } finally {
    fs.closeSync(fa);
    fs.closeSync(fb);
  }
}

function changed(lowerPath: string, lo: Stats, upperPath: string, up: Stats, baseline: bigint | undefined): boolean {
  if (lo.mode !== up.mode || lo.uid !== up.uid || lo.gid !== up.gid) return true;
  if (!up.isDirectory()) {
    if (!sameTime(lo.mtimeNs, up.mtimeNs) || lo.size !== up.size || lo.rdev !== up.rdev) return true;
    if (up.isSymbolicLink() && decodeName(fs.readlinkSync(fsPath(lowerPath), { encoding: 'buffer' })) !== decodeName(fs.readlinkSync(fsPath(upperPath), { encoding: 'buffer' }))) return true;
    if (baseline !== undefined && up.ctimeNs > baseline) return true;
    if ((baseline === undefined || up.ctimeNs === baseline) && up.isFile() && !sameContent(lowerPath, upperPath)) return true;
  }
  return !sameXattrs(readXattrs(lowerPath), readXattrs(upperPath));
}

class Stager {
  /** Staged directories, to get their times once their children are in place. */
  private readonly dirs: Array<{ staged: string; st: Stats }> = [];
  private readonly madeDirs = new Set<string>();

  constructor(
    private readonly lower: string,
    private readonly upper: string,
    readonly staging: string,
    private readonly baseline: bigint | undefined,
  ) {}

  /** Recreates the upper dir `rel` (and its missing ancestors) in the staging dir. */
  private stageDir(rel: string): void {
    if (this.madeDirs.has(rel)) return;
    if (rel !== '') this.stageDir(path.dirname(rel) === '.' ? '' : path.dirname(rel));
    const src = path.join(this.upper, rel);
    const dst = path.join(this.staging, rel);
    const st = fs.lstatSync(fsPath(src), { bigint: true });
    if (rel !== '') fs.mkdirSync(fsPath(dst));
    fs.lchownSync(fsPath(dst), Number(st.uid), Number(st.gid));
    fs.chmodSync(fsPath(dst), Number(st.mode & 0o7777n));
    copyXattrs(src, dst);
    this.dirs.push({ staged: dst, st });
    this.madeDirs.add(rel);
  }

  private parentOf(rel: string): string {
    const d = path.dirname(rel);
    return d === '.' ? '' : d;
  }

  private stageLink(rel: string): void {
    this.stageDir(this.parentOf(rel));
    fs.linkSync(fsPath(path.join(this.upper, rel)), fsPath(path.join(this.staging, rel)));
  }

  private stageWhiteout(rel: string): void {
    const parent = this.parentOf(rel);
    this.stageDir(parent);
    const wh = path.join(this.staging, rel);
    native.mknod(fsPath(wh), { type: 'char', mode: 0, major: 0, minor: 0 });
    // Its time goes into the tar: take the deleted entry's, a function of the trees (never "now", and
    // not the parent dir's: the layer root's time is not carried by tars).
    const t = seconds(fs.lstatSync(fsPath(path.join(this.lower, rel)), { bigint: true }).mtimeNs);
    fs.utimesSync(fsPath(wh), t, t);
  }

  /** Stages `rel` and everything below it. */
  private stageTree(rel: string, st: Stats): void {
    if (!st.isDirectory()) {
      this.stageLink(rel);
      return;
    }
    this.stageDir(rel);
    for (const name of fs.readdirSync(fsPath(path.join(this.upper, rel)), { encoding: 'buffer' }).map(decodeName).sort()) {
      const child = path.join(rel, name);
      this.stageTree(child, fs.lstatSync(fsPath(path.join(this.upper, child)), { bigint: true }));
    }
  }

  /** Compares the directory `rel`, present as a directory on both sides. */
  walk(rel: string): void {
    const upperDir = path.join(this.upper, rel);
    const lowerDir = path.join(this.lower, rel);
    const upperNames = fs.readdirSync(fsPath(upperDir), { encoding: 'buffer' }).map(decodeName).sort();
    const lowerNames = new Set(fs.readdirSync(fsPath(lowerDir), { encoding: 'buffer' }).map(decodeName));
    for (const name of upperNames) {
      const child = path.join(rel, name);
      const up = fs.lstatSync(fsPath(path.join(upperDir, name)), { bigint: true });
      const lo = lowerNames.has(name) ? lstat(path.join(lowerDir, name)) : undefined;
      if (!lo || (lo.mode & TYPE_MASK) !== (up.mode & TYPE_MASK)) {
        this.stageTree(child, up);
      } else if (up.isDirectory()) {
        if (changed(path.join(lowerDir, name), lo, path.join(upperDir, name), up, this.baseline)) this.stageDir(child);
        this.walk(child);
      } else if (changed(path.join(lowerDir, name), lo, path.join(upperDir, name), up, this.baseline)) {
        this.stageLink(child);
      }
    }
    const present = new Set(upperNames);
    for (const name of [...lowerNames].sort()) {
      if (!present.has(name)) this.stageWhiteout(path.join(rel, name));
    }
  }

  /** Directory times last, deepest first: creating children bumped them. */
  finish(): void {
    for (const { staged, st } of this.dirs.reverse()) {
      fs.utimesSync(fsPath(staged), seconds(st.atimeNs), seconds(st.mtimeNs));
    }
  }

  run(): void {
    this.stageDir(''); // the root always carries the layer root's metadata
    this.walk('');
    this.finish();
  }
}

/**
 * Stages the changes from `lower` to `upper` (both full trees on the same filesystem as `staging`, an
 * empty directory) in overlay format. `baseline`: the ctime clock right after `upper` was copied from
 * `lower` (see ctimeNow); without it, files with equal mtime and size are compared by content. The
 * caller packs and then removes `staging`.
 */
export function stageChanges(lower: string, upper: string, staging: string, baseline?: bigint): void {
  new Stager(lower, upper, staging, baseline).run();
}

/** The filesystem's ctime clock now, as seen by a file created in `dir`. */
export function ctimeNow(dir: string, name: string): bigint {
  const probe = path.join(dir, name);
  fs.writeFileSync(probe, '');
  try {
    return fs.lstatSync(fsPath(probe), { bigint: true }).ctimeNs;
  } finally {
    fs.rmSync(fsPath(probe), { force: true });
  }
}
