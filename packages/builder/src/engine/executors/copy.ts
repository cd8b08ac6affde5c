// COPY and ADD: resolve sources (context, stage or image), then write them into the mounted rootfs
// with Docker's rules: a directory source copies its contents; a file goes into a directory
// destination (trailing `/`, an existing directory, or several sources) under its own name, otherwise
// it becomes the destination. Every destination path is resolved inside the rootfs (symlinks in the
// image are re-rooted, never followed on the host). Owner: --chown, else 0:0 for context sources and
// the original owner for --from sources. Mode, mtime, xattrs and hardlinks are kept.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { copyFiles, createHash, type FileCopy, lgetxattr, llistxattr, lsetxattr, mknod, randomBytes } from '@tsbuild/native';
import { applyTar, decompress, explainChownError, fsPath, layerKeepsXattr, lchownMapped, resolveInRoot, mkdirp } from '@tsbuild/storage';
import type { AddInstruction, CopyInstruction } from '../../dockerfile';
import {
  BuildContext,
  StatCache,
  hashSources,
  parseChmod,
  parseChown,
  type ChmodFn,
  type CopyItem,
  type CopyItems,
  type Owner,
  type SourceEntry,
  Background,
  SYNC_IO_MAX,
  timeSlicer,
} from '../../context';
import { BuildError, lineMessage } from '../errors';
import type { LayerExecutor, PlanContext } from './executor';

/** COPY and ADD are one executor: ADD is COPY with URLs and archive extraction. */
export const copyExecutor: LayerExecutor<'copy' | 'add', CopySources | undefined> = {
  layer: true,

  async plan(instr, ctx) {
    const from = instr.kind === 'copy' ? instr.from : '';
    if (from !== '') {
      await ctx.dependOn(from, instr.startLine);
      return undefined; // resolved in the source's rootfs when the step runs
    }
    return planSources(instr, ctx);
  },

  async keyParts(step, ctx) {
    const config = step.configBefore.config;
    const parts: Record<string, string> = { user: config.User ?? '', workdir: config.WorkingDir ?? '' };
    if (step.planned) parts.content = step.planned.contentDigest;
    const from = step.instr.kind === 'copy' ? step.instr.from : '';
    if (from !== '') parts.from = (await ctx.chainOf(from)) ?? 'scratch';
    return parts;
  },

  async execute(step, rootfs, ctx) {
    const { instr } = step;
    const from = instr.kind === 'copy' ? instr.from : '';
    let source: SourceRoot = { dir: ctx.contextDir, fromStage: false, release: async () => {} };
    if (from !== '') {
      const view = await ctx.viewOf(from);
      source = { dir: view.rootfs, fromStage: true, release: () => view.release() };
    }
    await copyStep(rootfs, instr, step.planned, source, step.configBefore.config.WorkingDir || '/', ctx.workUpper);
  },

  history({ instr, original }) {
    if (instr.contents.length > 0) return original; // heredoc sources: the original text says more
    const flags = [
      ...(instr.kind === 'copy' && instr.from ? [`--from=${instr.from}`] : []),
      ...(instr.chown ? [`--chown=${instr.chown}`] : []),
      ...(instr.chmod ? [`--chmod=${instr.chmod}`] : []),
      ...(instr.link ? ['--link'] : []),
    ];
    return [instr.kind.toUpperCase(), ...flags, ...instr.sources, instr.dest].join(' ');
  },
};

async function planSources(instr: CopyInstruction | AddInstruction, ctx: PlanContext): Promise<CopySources> {
  try {
    return await (await ctx.contextSources()).plan(instr);
  } catch (err) {
    if (err instanceof BuildError) throw err;
    throw new BuildError(lineMessage(instr.startLine, (err as Error).message));
  }
}

export interface CopySources {
  entries: SourceEntry[];
  /** ADD's URL sources, fetched at plan time. */
  downloads?: Download[];
  /** Digest over the sources' names, metadata and bytes (not mtimes): the step's content key. */
  contentDigest: string;
}

/** The build context's side of COPY/ADD: resolution with .dockerignore, hashing with a stat cache. */
export class ContextSources {
  private readonly downloaded: string[] = [];

  private constructor(
    readonly context: BuildContext,
    private readonly statCache: StatCache,
    private readonly downloadsDir: string,
  ) {}

  /** Removes what plan() downloaded (call when the build is over). */
  async cleanup(): Promise<void> {
    for (const file of this.downloaded.splice(0)) await fsp.rm(file, { force: true });
  }

  static async open(contextDir: string, dockerfile: { path?: string; text?: string }, storageRoot: string): Promise<ContextSources> {
    const opts: { dockerfilePath?: string; dockerfileText?: string } = {};
    if (dockerfile.text !== undefined) opts.dockerfileText = dockerfile.text;
    else if (dockerfile.path !== undefined) opts.dockerfilePath = dockerfile.path;
    const context = await BuildContext.open(contextDir, opts);
    const id = createHash('sha256').update(context.root).digest('hex').slice(0, 32);
    const statCache = await StatCache.load(path.join(storageRoot, 'builder', 'statcache', `${id}.json`));
    return new ContextSources(context, statCache, path.join(storageRoot, 'builder', 'downloads'));
  }

  async plan(instr: CopyInstruction | AddInstruction): Promise<CopySources> {
    const local = instr.sources.filter((s) => !isRemote(s));
    const entries = await this.context.resolveSources(local, { excludes: instr.exclude });
    const hash = await hashSources(entries, { statCache: this.statCache });
    const h = createHash('sha256').update(hash.digest);
    const downloads: Download[] = [];
    for (const url of instr.sources.filter(isRemote)) {
      if (instr.kind !== 'add') throw new BuildError(`${instr.keyword} does not support URLs: ${url} (use ADD)`);
      // Fetched on every build, as BuildKit does: a changed resource must not hit the cache.
      const dl = await download(url, this.downloadsDir, instr.checksum);
      this.downloaded.push(dl.file);
      downloads.push(dl);
      h.update(`\0remote:${url}\0${dl.digest}\0${dl.mtime ?? ''}`);
    }
    for (const c of instr.contents) h.update(`\0heredoc:${c.path}\0${c.data}`);
    return { entries, downloads, contentDigest: `sha256:${h.digest('hex')}` };
  }

  /** A RUN --mount=type=bind source in the context: what .dockerignore leaves of it, hashed. */
  async planBind(source: string): Promise<CopySources> {
    const entries = await this.context.resolveSources([source || '.']);
    const hash = await hashSources(entries, { statCache: this.statCache });
    return { entries, contentDigest: hash.digest };
  }

  /** Whether a .dockerignore hides anything, i.e. whether context paths can be bound as they are. */
  get filtered(): boolean {
    return this.context.ignorePatterns.length > 0;
  }

  save(): Promise<void> {
    return this.statCache.save();
  }
}

/** Where sources come from: the context (already resolved at plan time) or a stage/image rootfs. */
export interface SourceRoot {
  dir: string;
  fromStage: boolean;
  release(): Promise<void>;
}

async function copyStep(
  rootfs: string,
  instr: CopyInstruction | AddInstruction,
  planned: CopySources | undefined,
  sourceRoot: SourceRoot,
  workdir: string,
  upper: string | undefined,
): Promise<void> {
  try {
    let entries = planned?.entries;
    if (!entries) {
      const view = await BuildContext.open(sourceRoot.dir, { dockerfileText: '', ignoreFile: null, symlinks: 'root' });
      entries = await view.resolveSources(instr.sources, { excludes: instr.exclude });
    }
    const owner = instr.chown ? await resolveChown(rootfs, instr.chown) : undefined;
    const chmod = instr.chmod ? parseChmod(instr.chmod) : undefined;
    const opts: WriteOptions = { owner, chmod, keepOwner: sourceRoot.fromStage, dirMode: createdDirMode(instr.chmod), rootfs, upper };

    const sourceCount = entries.length + instr.contents.length + instr.sources.filter(isRemote).length;
    const destIsDir = instr.dest.endsWith('/') || instr.dest.endsWith('/.') || instr.dest === '.';
    const destPath = path.posix.isAbsolute(instr.dest) ? instr.dest : path.posix.join(workdir || '/', instr.dest);
    // Counted after wildcard expansion: `COPY target/*.jar app.jar` with one match names a file.
    if (sourceCount > 1 && !destIsDir) {
      const existing = await statInRoot(rootfs, destPath);
      if (!existing?.isDirectory()) {
        throw new BuildError(`When using ${instr.keyword} with more than one source file, the destination must be a directory and end with a /`);
      }
    }

    for (const entry of entries) {
      const rootItem = entry.root;
      if (instr.kind === 'copy' && instr.parents) {
        // --parents keeps the source's path (below a `/./` pivot when there is one) under the destination.
        await writeTree(rootfs, path.posix.join(destPath, keptParents(entry)), entry.items, opts);
        continue;
      }
      if (rootItem.type === 'dir') {
        await writeTree(rootfs, destPath, entry.items, opts);
        continue;
      }
      const intoDir = destIsDir || sourceCount > 1 || (await statInRoot(rootfs, destPath))?.isDirectory() === true;
      const target = intoDir ? path.posix.join(destPath, path.posix.basename(entry.matchedPath)) : destPath;
      if (instr.kind === 'add' && instr.unpack !== false && rootItem.type === 'file' && (await isArchive(rootItem.absPath))) {
        await extractArchive(rootfs, destIsDir || intoDir ? destPath : destPath, rootItem.absPath);
        continue;
      }
      await writeTree(rootfs, target, entry.items, opts);
    }

    for (const content of instr.contents) {
      const intoDir = destIsDir || sourceCount > 1 || (await statInRoot(rootfs, destPath))?.isDirectory() === true;
      const target = intoDir ? path.posix.join(destPath, content.path) : destPath;
      const host = await resolveCreating(rootfs, target, opts);
      await fsp.rm(host, { recursive: true, force: true });
      await fsp.writeFile(host, content.data, { mode: 0o644 });
      applyMeta(host, { mode: chmod ? chmod(0o100644) & 0o7777 : 0o644, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0 });
    }

    for (const dl of planned?.downloads ?? []) {
      const intoDir = destIsDir || (await statInRoot(rootfs, destPath))?.isDirectory() === true;
      await addRemote(rootfs, dl, intoDir, destPath, opts);
    }
  } finally {
    await sourceRoot.release();
  }
}

/** The part of a matched source path that COPY --parents keeps: all of it, or what follows `/./`. */
function keptParents(entry: SourceEntry): string {
  const matched = entry.matchedPath.replace(/^\/+/, '');
  const pivot = entry.source.replace(/^(\.\/)+/, '').indexOf('/./');
  if (pivot < 0) return matched;
  const prefix = path.posix.normalize(entry.source.replace(/^(\.\/)+/, '').slice(0, pivot)).replace(/^\/+/, '');
  return path.posix.relative(prefix, matched);
}

interface WriteOptions {
  owner: Owner | undefined;
  chmod: ChmodFn | undefined;
  /** Keep the source's uid/gid (COPY --from) instead of 0:0. */
  keepOwner: boolean;
  /** Mode of directories the copy creates (missing parents, a directory source's destination). */
  dirMode: number;
  /** The mounted rootfs, and the upper directory of its kernel overlay when it has one (WorkLayer.upper). */
  rootfs: string;
  upper: string | undefined;
}

/** 0755, or the bits of an octal --chmod (BuildKit applies those to the directories it creates too). */
function createdDirMode(chmod: string | undefined): number {
  return chmod && /^[0-7]+$/.test(chmod) ? parseInt(chmod, 8) & 0o7777 : 0o755;
}

/**
 * Resolves `p` inside the rootfs and creates its missing parents as Docker does (classic and
 * BuildKit): with the directory mode, owned by the --chown owner, else by root.
 */
async function resolveCreating(rootfs: string, p: string, opts: WriteOptions, followFinal = false): Promise<string> {
  const created: string[] = [];
  const host = await resolveInRoot(rootfs, p, { createParents: true, followFinal, onCreate: (dir) => created.push(dir) });
  for (const dir of created) applyMeta(dir, { mode: opts.dirMode, uid: opts.owner?.uid ?? 0, gid: opts.owner?.gid ?? 0 });
  return host;
}

/** Large files copied at once by a COPY (through the pool; small files are copied synchronously). */
const FILE_CONCURRENCY = 8;

/** Writes `items` (root first, depth-first) so that the root lands at `dest` inside `rootfs`. */
async function writeTree(rootfs: string, dest: string, items: CopyItems, opts: WriteOptions): Promise<void> {
  const hostOfDir: string[] = []; // by the items' directory number (their order)
  // A directory this tree creates under a kernel overlay gets its contents written straight into the
  // overlay's upper directory: creating a file through the mount cost ~3.5 times a plain create here
  // (cp -a of bigcopy's 4,000 files: 0.68 s through the mount, 0.24 s into the upper directory, 0.19 s
  // into a plain one). Only where nothing of a lower layer can show: the directory itself is made through
  // the mount (its parents copied up, a whiteout respected), and the step's mount reads none of it back;
  // the commit packs the upper directory. Regular files, directories and symlinks go this way; devices,
  // fifos and sockets still through the mount, and a tree with hardlinks entirely so.
  const upperOfDir: (string | undefined)[] = [];
  const linked = new Map<string, string>(); // context path of the first hardlink → its host copy
  const dirTimes: { host: string; mtimeNs: bigint }[] = [];
  // Large files are copied through the pool while this thread goes on with the small ones (both cores).
  const largeCopies = new Background(FILE_CONCURRENCY);
  // Small files go to the pool in batches (native copyFiles) while this thread creates the directories.
  const smallCopies = new Background(BATCHES_IN_FLIGHT);
  // Two batches creating files in one directory serialize on its lock, and the waiting pool thread spins
  // on it (`perf`: a fifth of a bigcopy build's samples, 4,000 files in one directory). So a batch whose
  // files mostly go where the running batch before it writes waits for that one; batches that only share
  // a boundary directory (many small directories, smallfiles) still run together, which gains more.
  let previous: { dirs: Set<number>; done: Promise<void> } | undefined;
  const startBatch = async (files: SmallFile[]): Promise<void> => {
    const dirs = new Set(files.map((f) => f.dir));
    const before = previous;
    if (before && files.filter((f) => before.dirs.has(f.dir)).length * 2 > files.length) await before.done;
    let finished!: () => void;
    const done = new Promise<void>((resolve) => (finished = resolve));
    previous = { dirs, done };
    try {
      await smallCopies.start(() => copyBatch(files, opts).finally(finished));
    } catch (err) {
      finished(); // not started: an earlier batch failed
      throw err;
    }
  };
  let batch: SmallFile[] = [];
  const links: { host: string; item: CopyItem }[] = []; // hardlinks to a file written by this tree
  // Files of this tree that later items hardlink to (only those are remembered: a COPY can hold 100k files).
  const targets = new Set<string>();
  for (let i = 0; i < items.length; i++) {
    const target = items.hardlinkToOf(i);
    if (target !== undefined) targets.add(target);
  }
  const inTree = new Set<string>();
  if (targets.size > 0) for (const item of items) if (item.type === 'file' && item.hardlinkTo === undefined && targets.has(item.path)) inTree.add(item.path);
  const upperOf = (host: string): string | undefined => (opts.upper !== undefined && targets.size === 0 ? upperPathOf(host, opts) : undefined);
  const pause = timeSlicer();
  // In order: a parent exists before its children. Per-file metadata calls are synchronous (slices.ts);
  // large files are copied in the background, hardlinks to files of this tree after the walk.
  try {
    for (let i = 0; i < items.length; i++) {
      const item = items.at(i);
      const parent = items.parentOf(i);
      const parentUpper = parent < 0 ? undefined : upperOfDir[parent];
      const host =
        parent < 0
          ? // A directory's contents go where a symlink at the destination points, as BuildKit follows it.
            await resolveCreating(rootfs, dest, opts, item.type === 'dir')
          : parentUpper !== undefined && (item.type === 'file' || item.type === 'dir' || item.type === 'symlink')
            ? path.join(parentUpper, items.nameOf(i))
            : path.join(hostOfDir[parent] ?? (await resolveCreating(rootfs, path.posix.join(dest, items.dirRel(parent)), opts)), items.nameOf(i));
      if (item.type !== 'dir') {
        if (item.type === 'file' && item.hardlinkTo !== undefined && inTree.has(item.hardlinkTo)) links.push({ host, item });
        else if (item.type === 'file' && item.size > SYNC_IO_MAX) {
          await largeCopies.start(async () => {
            await writeNonDir(host, item, opts);
            if (inTree.has(item.path)) linked.set(item.path, host);
          });
        } else if (item.type === 'file') {
          batch.push({ host, item, dir: parent });
          if (inTree.has(item.path)) linked.set(item.path, host); // read once every copy is done
          if (batch.length === BATCH_FILES) {
            const full = batch;
            batch = [];
            await startBatch(full);
          }
        } else {
          writeNonDir(host, item, opts);
          if (inTree.has(item.path)) linked.set(item.path, host);
          await pause();
        }
        continue;
      }
      const existing = fs.lstatSync(fsPath(host), { throwIfNoEntry: false });
      const madeHere = !existing?.isDirectory();
      if (existing && madeHere) fs.rmSync(fsPath(host), { recursive: true, force: true });
      if (madeHere) fs.mkdirSync(fsPath(host));
      // Its contents go to the upper directory when it is there already (a parent went there) or was
      // made now through the mount; an existing directory may show a lower layer's files.
      hostOfDir.push(parentUpper !== undefined ? path.join(hostOfDir[parent]!, items.nameOf(i)) : host);
      upperOfDir.push(parentUpper !== undefined ? host : madeHere ? upperOf(host) : undefined);
      if (item.rel === '') {
        // A directory source copies its contents: the destination is not a copy of the source directory.
        // An existing one keeps its metadata; a new one is made like a missing parent (moby/buildkit#585).
        if (madeHere) applyMeta(host, { mode: opts.dirMode, uid: opts.owner?.uid ?? 0, gid: opts.owner?.gid ?? 0 });
        continue;
      }
      dirTimes.push({ host, mtimeNs: item.mtimeNs });
      applyMeta(host, ownership(item, opts));
      copyXattrs(item.absPath, host);
    }
    if (batch.length > 0) await startBatch(batch);
  } catch (err) {
    // nothing writes into the rootfs once the step has failed
    await Promise.all([largeCopies.settled(), smallCopies.settled()]);
    throw err;
  }
  await Promise.all([largeCopies.settled(), smallCopies.settled()]);
  await largeCopies.done();
  await smallCopies.done();
  // Hardlinks once the file they link to is written.
  for (const { host, item } of links) {
    fs.rmSync(fsPath(host), { recursive: true, force: true });
    fs.linkSync(fsPath(linked.get(item.hardlinkTo ?? '') ?? ''), fsPath(host));
    await pause();
  }
  // Directory times last, after their children were written.
  for (const { host, mtimeNs } of dirTimes.reverse()) setTimes(host, mtimeNs, false);
}

/**
 * Where `host` (a resolved path in the mounted rootfs, no symlinks in it) is in the overlay's upper
 * directory, which holds it once it was made through the mount; undefined without an upper directory.
 */
function upperPathOf(host: string, opts: WriteOptions): string | undefined {
  if (opts.upper === undefined) return undefined;
  const rel = path.relative(opts.rootfs, host);
  if (rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) return undefined;
  const upper = path.join(opts.upper, rel);
  // The mount made it in the upper directory: anything else (a lower directory not copied up) stays out.
  return fs.lstatSync(fsPath(upper), { throwIfNoEntry: false })?.isDirectory() ? upper : undefined;
}

/** The owner and mode an item gets: --chown, else the source's (COPY --from) or 0:0; --chmod's mode. */
function ownership(item: CopyItem, opts: WriteOptions): { mode: number; uid: number; gid: number } {
  return {
    uid: opts.owner?.uid ?? (opts.keepOwner ? item.uid : 0),
    gid: opts.owner?.gid ?? (opts.keepOwner ? item.gid : 0),
    mode: opts.chmod ? opts.chmod(item.mode | typeBits(item), item.type === 'dir') & 0o7777 : item.mode,
  };
}

/** Small files copied by one native call on the pool, and how many such calls run at once. */
const BATCH_FILES = 64;
const BATCHES_IN_FLIGHT = 2;

interface SmallFile {
  host: string;
  item: CopyItem;
  /** The item's directory (its parent's index; -1 for a file source). */
  dir: number;
}

/**
 * Copies a batch of small files on the pool (as writeSmallFile does each: created O_EXCL, owner, mode and
 * times through the descriptor), then their extended attributes here. A target that already exists (a
 * file of the image below: EEXIST, which only the O_EXCL create gives) is replaced on this thread, and
 * the rest of the batch goes on.
 */
async function copyBatch(files: readonly SmallFile[], opts: WriteOptions): Promise<void> {
  for (let from = 0; from < files.length; ) {
    const part = files.slice(from);
    const copies: FileCopy[] = part.map(({ host, item }) => ({ source: fsPath(item.absPath), target: fsPath(host), mtimeNs: item.mtimeNs, ...ownership(item, opts) }));
    const { done, xattrs, error } = await copyFiles(copies);
    for (let k = 0; k < done; k++) if (xattrs[k]) copyXattrs(part[k]!.item.absPath, part[k]!.host);
    if (!error) return;
    const failed = part[done]!;
    if (error.code === 'EEXIST') writeSmallFile(failed.host, failed.item, opts);
    else if (error.syscall === 'fchown') throw explainChownError(error, copies[done]!.uid, copies[done]!.gid, failed.host);
    else throw error;
    from += done + 1;
  }
}

/** Scratch space for small-file copies on this thread (a target that existed). */
let copyBuffer: Buffer | undefined;

/**
 * Copies a small file (at most SYNC_IO_MAX when walked; read to its end) to `host`, replacing what is
 * there, and sets owner, mode and times through the new file's descriptor: every path-based call walks
 * the whole overlay path again, so this makes 3 lookups per file instead of 8.
 */
function writeSmallFile(host: string, item: CopyItem, opts: WriteOptions): void {
  const { mode, uid, gid } = ownership(item, opts);
  // O_NONBLOCK and the check: a fifo swapped in since the walk neither blocks nor copies as an empty file
  const src = fs.openSync(fsPath(item.absPath), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    if (!fs.fstatSync(src).isFile()) throw new Error(`cannot copy ${item.absPath}: it is no longer a regular file`);
    const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
    let dst: number;
    try {
      dst = fs.openSync(fsPath(host), flags, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      fs.rmSync(fsPath(host), { recursive: true, force: true });
      dst = fs.openSync(fsPath(host), flags, 0o600);
    }
    try {
      copyBuffer ??= Buffer.allocUnsafe(SYNC_IO_MAX);
      for (let n; (n = fs.readSync(src, copyBuffer, 0, copyBuffer.length, null)) > 0; ) {
        for (let off = 0; off < n; ) off += fs.writeSync(dst, copyBuffer, off, n - off);
      }
      try {
        fs.fchownSync(dst, uid, gid);
      } catch (err) {
        throw explainChownError(err, uid, gid, host); // rootless: an unmapped --chown id, named
      }
      fs.fchmodSync(dst, mode); // after chown: chown clears setuid/setgid bits
      copyXattrs(item.absPath, host);
      const seconds = Number(item.mtimeNs) / 1e9;
      fs.futimesSync(dst, seconds, seconds);
    } finally {
      fs.closeSync(dst);
    }
  } finally {
    fs.closeSync(src);
  }
}

/**
 * Writes one item that is not a directory at `host`, replacing what is there. Synchronous but for a
 * regular file's content, which is copied through the pool (large files).
 */
function writeNonDir(host: string, item: CopyItem, opts: WriteOptions): Promise<void> | undefined {
  const { mode, uid, gid } = ownership(item, opts);
  if (fs.lstatSync(fsPath(host), { throwIfNoEntry: false })) fs.rmSync(fsPath(host), { recursive: true, force: true });
  switch (item.type) {
    case 'dir':
      throw new Error(`internal: ${item.path} is a directory`);
    case 'file': {
      const done = (): void => {
        applyMeta(host, { mode, uid, gid });
        copyXattrs(item.absPath, host);
        setTimes(host, item.mtimeNs, false);
      };
      return fsp.copyFile(fsPath(item.absPath), fsPath(host)).then(done);
    }
    case 'symlink':
      fs.symlinkSync(fsPath(item.linkTarget ?? ''), fsPath(host));
      fs.lchownSync(fsPath(host), uid, gid);
      setTimes(host, item.mtimeNs, true);
      return undefined;
    case 'fifo':
      mknod(fsPath(host), { type: 'fifo', mode: mode });
      break;
    case 'char':
    case 'block':
      mknod(fsPath(host), { type: item.type, mode, major: Math.floor(item.rdev / 256) & 0xfff, minor: item.rdev & 0xff });
      break;
    case 'socket':
      return undefined; // sockets are not copied, as with docker
  }
  applyMeta(host, { mode, uid, gid });
  copyXattrs(item.absPath, host);
  setTimes(host, item.mtimeNs, false);
  return undefined;
}

function typeBits(item: CopyItem): number {
  return item.type === 'dir' ? 0o040000 : 0o100000;
}

function applyMeta(host: string, meta: { mode: number; uid: number; gid: number }): void {
  lchownMapped(fsPath(host), meta.uid, meta.gid, host); // rootless: an unmapped --chown id, named
  // chmod after chown: chown clears setuid/setgid bits.
  fs.chmodSync(fsPath(host), meta.mode);
}

function setTimes(host: string, mtimeNs: bigint, isLink: boolean): void {
  const seconds = Number(mtimeNs) / 1e9;
  if (isLink) fs.lutimesSync(fsPath(host), seconds, seconds);
  else fs.utimesSync(fsPath(host), seconds, seconds);
}

function copyXattrs(from: string, to: string): void {
  let names: string[];
  try {
    names = llistxattr(fsPath(from));
  } catch {
    return;
  }
  for (const name of names) {
    if (!layerKeepsXattr(name)) continue;
    const value = lgetxattr(fsPath(from), name);
    if (value) lsetxattr(fsPath(to), name, value);
  }
}

async function statInRoot(rootfs: string, p: string): Promise<fs.Stats | undefined> {
  const host = await resolveInRoot(rootfs, p, { followFinal: true });
  return fsp.stat(host).catch(() => undefined);
}

async function resolveChown(rootfs: string, spec: string): Promise<Owner> {
  const read = async (p: string) => {
    const host = await resolveInRoot(rootfs, p, { followFinal: true });
    return fsp.readFile(host, 'utf8').catch(() => undefined);
  };
  try {
    return parseChown(spec, await read('/etc/passwd'), await read('/etc/group'));
  } catch (err) {
    throw new BuildError(`--chown=${spec}: ${(err as Error).message}`);
  }
}

/** A URL or a git remote; a local path ending in `.git` is just a path. */
function isRemote(source: string): boolean {
  return /^(https?|git|ssh):\/\//.test(source) || /^git@/.test(source);
}

/** A local tar (plain, gzip, bzip2, xz, zstd) by its magic bytes, as docker's ADD decides. */
async function isArchive(file: string): Promise<boolean> {
  const fh = await fsp.open(file, 'r');
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    const head = buf.subarray(0, bytesRead);
    if (head[0] === 0x1f && head[1] === 0x8b) return true;
    if (head.subarray(0, 3).toString('latin1') === 'BZh') return true;
    if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return true;
    if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return true;
    return bytesRead >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
  } finally {
    await fh.close();
  }
}

async function extractArchive(rootfs: string, dest: string, archive: string): Promise<void> {
  const host = await resolveInRoot(rootfs, dest, { createParents: true, followFinal: true });
  await mkdirp(host);
  await applyTar(decompress(fs.createReadStream(archive)), host, { whiteouts: 'merge' });
}

/** A URL source fetched at plan time: its bytes are part of the step's key. */
export interface Download {
  url: string;
  file: string;
  name: string;
  digest: string;
  mtime?: number;
}

/** Fetches `url` into `dir` (hashing as it goes) and checks an ADD --checksum. */
export async function download(url: string, dir: string, checksum: string): Promise<Download> {
  if (!/^https?:\/\//.test(url)) throw new BuildError(`ADD from git (${url}) is not supported by tsbuild yet`);
  let response: Response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new BuildError(`failed to download ${url}: ${(err as Error).message}`);
  }
  if (!response.ok || !response.body) throw new BuildError(`failed to download ${url}: HTTP ${response.status}`);
  await mkdirp(dir, 0o700);
  const file = path.join(dir, randomBytes(8).toString('hex'));
  const hash = createHash('sha256');
  await pipeline(
    Readable.fromWeb(response.body as never),
    new Transform({
      transform(chunk, _enc, cb) {
        hash.update(chunk);
        cb(null, chunk);
      },
    }),
    fs.createWriteStream(file, { mode: 0o600 }),
  );
  const digest = `sha256:${hash.digest('hex')}`;
  if (checksum && checksum !== digest) {
    await fsp.rm(file, { force: true });
    throw new BuildError(`digest mismatch for ${url}: expected ${checksum}, got ${digest}`);
  }
  const modified = Date.parse(response.headers.get('last-modified') ?? '');
  return {
    url,
    file,
    name: path.posix.basename(new URL(url).pathname) || 'index.html',
    digest,
    ...(Number.isNaN(modified) ? {} : { mtime: modified / 1000 }),
  };
}

async function addRemote(rootfs: string, dl: Download, intoDir: boolean, destPath: string, opts: WriteOptions): Promise<void> {
  const target = intoDir ? path.posix.join(destPath, dl.name) : destPath;
  const host = await resolveCreating(rootfs, target, opts);
  await fsp.rm(host, { recursive: true, force: true });
  await fsp.copyFile(dl.file, host);
  const mode = opts.chmod ? opts.chmod(0o100600) & 0o7777 : 0o600;
  applyMeta(host, { mode, uid: opts.owner?.uid ?? 0, gid: opts.owner?.gid ?? 0 });
  if (dl.mtime !== undefined) await fsp.utimes(host, dl.mtime, dl.mtime);
}
