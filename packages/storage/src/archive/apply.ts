// Safe extraction of a layer tar into a directory, converting whiteouts for the target format:
// an overlay upper dir, an aufs branch, or a full tree (vfs) on which the layer is merged.
// Every entry lands inside dest: names are cleaned (".." above the root is an error), parents are
// resolved through symlinks relative to dest (resolve.ts), the last component is never followed.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { createHash, lsetxattr, mknod } from '@tsbuild/native';
import type { ByteInput } from './byte-source';
import type { TarHeader } from './tar-format';
import { readTar, type TarEntry } from './tar-reader';
import { BreakoutError, cleanRelPath, resolveInRootSync } from './resolve';
import {
  overlayOpaqueXattr,
  WHITEOUT_LINK_DIR,
  WHITEOUT_META_PREFIX,
  WHITEOUT_OPAQUE,
  classifyWhiteout,
} from './whiteout';
import { isOverlayXattr, layerKeepsXattr } from './xattrs';
import { UnmappedIdError, lchownMapped } from '../rootless';
import { TsbuildError, describeSystemError, quoteName } from '../errors';
import { decodeName, fsPath } from '../names';

/**
 * - overlay: dest is an overlay upper dir: `.wh.x` becomes a char device 0/0, `.wh..wh..opq` the
 *   trusted.overlay.opaque=y xattr.
 * - aufs: dest is an aufs branch: whiteouts stay `.wh.` files.
 * - merge: dest is a full tree: whiteouts delete what they hide.
 */
export type ApplyWhiteouts = 'overlay' | 'aufs' | 'merge';

export interface ApplyOptions {
  whiteouts: ApplyWhiteouts;
  /** Leave owners alone (for non-root callers); default false: lchown to the numeric uid/gid. */
  noChown?: boolean;
  /**
   * A symlink on an entry's path whose `..` climbs above dest: 'clamp' stays at dest, as the
   * container will see it (default); 'error' rejects the entry, as moby/go-archive's os.Root does.
   */
  symlinkEscape?: 'clamp' | 'error';
}

export interface ApplyResult {
  /** sha256 of every byte of the (uncompressed) input, trailing blocks included. */
  diffID: string;
  /** Bytes of file content written. */
  size: number;
  /** Things skipped without failing (xattrs the filesystem refused, overlay-private xattrs). */
  warnings: string[];
}

/** An entry that cannot be extracted; the message names it. */
export class ApplyError extends TsbuildError {
  constructor(
    readonly entry: string,
    message: string,
    /** The errno code behind the failure, when there is one. */
    code = 'EAPPLY',
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/**
 * An entry's failure as a one-line ApplyError; anything but a system error escapes as a bug.
 */
function entryError(name: string, err: unknown): Error {
  if (err instanceof BreakoutError || err instanceof ApplyError || err instanceof UnmappedIdError) return err;
  if (err instanceof TsbuildError) return new ApplyError(name, `cannot extract tar entry ${quoteName(name)}: ${err.message}`, err.code, { cause: err });
  // A syscall failing on an entry: the archive (an overlong name, a symlink loop) or the machine (a full disk).
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code !== 'string' || typeof e.syscall !== 'string') return err as Error;
  return new ApplyError(name, `cannot extract tar entry ${quoteName(name)}: ${describeSystemError(e, false)}`, e.code, { cause: err });
}

function lstatOrNull(p: string): fs.Stats | null {
  return fs.lstatSync(fsPath(p), { throwIfNoEntry: false }) ?? null;
}

const XATTR_SOFT_ERRORS = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EPERM']);

interface PseudoLink {
  header: TarHeader;
  file: string;
  materialized?: string;
}

/**
 * Applies entries one by one. Filesystem metadata calls are synchronous on purpose: a libuv pool round
 * trip costs ~50 µs per call on the project VM against a few µs inline, and an entry needs about
 * eight of them (lstat, create, chown, chmod, xattrs, utimes). Only file contents are awaited, as they
 * stream in from the tar.
 */
class Extractor {
  size = 0;
  readonly warnings: string[] = [];
  /** Real paths this layer created (entries and implied dirs): whiteouts hide only lower layers. */
  private readonly written = new Set<string>();
  /** Real paths with something this layer created below them. */
  private readonly above = new Set<string>();
  /** Dir metadata applied at the end, once their children are in place (mode, times). */
  private readonly dirs = new Map<string, TarHeader>();
  /** Parent rel path → real dir, valid until something existing is removed. */
  private readonly parents = new Map<string, string>();
  private plnkDir: string | null = null;
  private readonly plnk = new Map<string, PseudoLink>();

  constructor(
    private readonly root: string,
    private readonly opts: ApplyOptions,
  ) {}

  private join(dir: string, base: string): string {
    return dir === '/' ? `/${base}` : `${dir}/${base}`;
  }

  private markWritten(p: string): void {
    this.written.add(p);
    for (let d = path.dirname(p); d.length > this.root.length && !this.above.has(d); d = path.dirname(d)) this.above.add(d);
  }

  /** Entry name → components below the root, or a BreakoutError naming the entry. */
  private parts(name: string, value: string, what: string): string[] {
    try {
      return cleanRelPath(value);
    } catch (err) {
      if (err instanceof BreakoutError) {
        throw new BreakoutError(name, `tar entry ${quoteName(name)}: ${what} ${quoteName(value)} climbs above the extraction root`);
      }
      throw err;
    }
  }

  /** Resolves rel inside the root; create: make missing parents (the caller makes the last one). */
  private resolve(name: string, rel: string, how: { followFinal: boolean; create: boolean }): string {
    try {
      return resolveInRootSync(this.root, rel, {
        followFinal: how.followFinal,
        createParents: how.create,
        escape: this.opts.symlinkEscape ?? 'clamp',
        onCreate: (d) => this.markWritten(d),
      });
    } catch (err) {
      if (err instanceof BreakoutError) {
        throw new BreakoutError(name, `tar entry ${quoteName(name)}: ${quoteName(rel)} resolves above the extraction root through a symlink`);
      }
      throw err;
    }
  }

  /** The real dir for parent components, created (0755) where missing. */
  private parentDir(name: string, parts: string[]): string {
    const key = parts.join('/');
    const cached = this.parents.get(key);
    if (cached !== undefined) return cached;
    const real = parts.length === 0 ? this.root : this.resolve(name, key, { followFinal: true, create: true });
    const st = lstatOrNull(real);
    if (!st) {
      fs.mkdirSync(fsPath(real));
      fs.chmodSync(fsPath(real), 0o755);
      this.markWritten(real);
    } else if (!st.isDirectory()) {
      throw new ApplyError(name, `cannot extract tar entry ${quoteName(name)}: its parent ${quoteName(key)} is not a directory`, 'ENOTDIR');
    }
    this.parents.set(key, real);
    return real;
  }

  /** The real dir for parent components if it exists (whiteouts never create anything). */
  private existingDir(name: string, parts: string[]): string | null {
    if (parts.length === 0) return this.root;
    const real = this.resolve(name, parts.join('/'), { followFinal: true, create: false });
    return lstatOrNull(real)?.isDirectory() ? real : null;
  }

  /** Removes whatever is at `p` (recursively for dirs) so a new entry can take its place. */
  private removeExisting(p: string, st: fs.Stats): void {
    if (st.isDirectory()) {
      fs.rmSync(fsPath(p), { recursive: true, force: true });
      for (const d of this.dirs.keys()) if (d === p || d.startsWith(`${p}/`)) this.dirs.delete(d);
    } else {
      fs.unlinkSync(fsPath(p));
      this.dirs.delete(p);
    }
    this.parents.clear();
  }

  async entry(e: TarEntry): Promise<void> {
    const h = e.header;
    const parts = this.parts(h.name, h.name, 'name');
    if (parts.length === 0) {
      if (h.type !== 'dir') {
        throw new ApplyError(h.name, `tar entry ${quoteName(h.name)} names the extraction root but is not a directory`);
      }
      this.chown(this.root, h);
      this.setXattrs(this.root, h);
      this.dirs.set(this.root, h);
      return;
    }
    const first = parts[0]!;
    const base = parts[parts.length - 1]!;
    const mode = this.opts.whiteouts;

    // aufs metadata at the top of the layer
    if (first.startsWith(WHITEOUT_META_PREFIX) && first !== WHITEOUT_OPAQUE) {
      if (first === WHITEOUT_LINK_DIR) {
        if (mode === 'aufs') return this.extract(e, parts);
        if (parts.length === 2 && h.type === 'file') return this.stashPseudoLink(e, base);
      }
      return;
    }

    const wo = classifyWhiteout(base);
    if (wo.kind === 'invalid') {
      throw new ApplyError(h.name, `invalid whiteout entry ${quoteName(h.name)}`, 'EINVAL');
    }
    if (wo.kind === 'meta') return;
    if (mode === 'aufs' || wo.kind === 'none') return this.extract(e, parts);

    const dirParts = parts.slice(0, -1);
    if (wo.kind === 'opaque') {
      if (mode === 'overlay') {
        lsetxattr(fsPath(this.parentDir(h.name, dirParts)), overlayOpaqueXattr(), Buffer.from('y'));
      } else {
        const dir = this.existingDir(h.name, dirParts);
        if (dir) this.removeHidden(dir);
      }
      return;
    }

    // a whiteout of wo.target
    if (mode === 'overlay') {
      const target = this.join(this.parentDir(h.name, dirParts), wo.target);
      if (this.written.has(target)) return; // whiteouts hide lower layers only
      const st = lstatOrNull(target);
      if (st) this.removeExisting(target, st);
      mknod(fsPath(target), { type: 'char', mode: 0, major: 0, minor: 0 });
      if (h.uid !== 0 || h.gid !== 0) this.chown(target, h);
      fs.lutimesSync(fsPath(target), h.mtime, h.mtime);
      this.markWritten(target);
    } else {
      const dir = this.existingDir(h.name, dirParts);
      if (!dir) return;
      const target = this.join(dir, wo.target);
      if (this.written.has(target) || this.above.has(target)) return;
      const st = lstatOrNull(target);
      if (st) this.removeExisting(target, st);
    }
  }

  /** Opaque dir in merge mode: removes every child that this layer did not create. */
  private removeHidden(dir: string): void {
    for (const name of fs.readdirSync(fsPath(dir), { encoding: 'buffer' }).map(decodeName)) {
      const child = this.join(dir, name);
      const st = fs.lstatSync(fsPath(child));
      if (this.written.has(child) || this.above.has(child)) {
        if (st.isDirectory()) this.removeHidden(child);
      } else {
        this.removeExisting(child, st);
      }
    }
  }

  private async stashPseudoLink(e: TarEntry, base: string): Promise<void> {
    this.plnkDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-plnk-'));
    const file = path.join(this.plnkDir, base);
    fs.rmSync(fsPath(file), { force: true });
    await this.writeBody(file, e);
    this.plnk.set(base, { header: e.header, file });
  }

  private linkSource(h: TarHeader): string | PseudoLink {
    const parts = this.parts(h.name, h.linkname, 'hard link target');
    if (parts.length === 0) throw new ApplyError(h.name, `tar entry ${quoteName(h.name)}: a hard link cannot point at the extraction root`);
    if (this.opts.whiteouts !== 'aufs' && parts.length === 2 && parts[0] === WHITEOUT_LINK_DIR) {
      const p = this.plnk.get(parts[1]!);
      if (!p) throw new ApplyError(h.name, `tar entry ${quoteName(h.name)}: hard link target ${quoteName(h.linkname)} (an aufs pseudo-link) is not in the layer`, 'ENOENT');
      return p;
    }
    const src = this.resolve(h.name, parts.join('/'), { followFinal: false, create: false });
    const st = lstatOrNull(src);
    if (!st) throw new ApplyError(h.name, `tar entry ${quoteName(h.name)}: hard link target ${quoteName(h.linkname)} does not exist`, 'ENOENT');
    if (st.isDirectory()) throw new ApplyError(h.name, `tar entry ${quoteName(h.name)}: hard link target ${quoteName(h.linkname)} is a directory`, 'EPERM');
    return src;
  }

  private async extract(e: TarEntry, parts: string[]): Promise<void> {
    const h = e.header;
    if (h.type === 'other') {
      throw new ApplyError(h.name, `tar entry ${quoteName(h.name)} has an unsupported type '${h.typeflag}'`, 'ENOTSUP');
    }
    const dir = this.parentDir(h.name, parts.slice(0, -1));
    const target = this.join(dir, parts[parts.length - 1]!);
    const source = h.type === 'hardlink' ? this.linkSource(h) : undefined;
    if (source === target) {
      this.markWritten(target); // a hard link to itself
      return;
    }
    const st = lstatOrNull(target);
    const keepDir = h.type === 'dir' && st?.isDirectory();
    if (st && !keepDir) this.removeExisting(target, st);

    switch (h.type) {
      case 'dir':
        if (!keepDir) fs.mkdirSync(fsPath(target), { mode: 0o700 });
        this.chown(target, h);
        this.setXattrs(target, h);
        this.dirs.set(target, h);
        break;
      case 'file':
        this.size += await this.writeBody(target, e);
        this.metadata(target, h);
        break;
      case 'symlink':
        fs.symlinkSync(fsPath(h.linkname), fsPath(target));
        this.metadata(target, h);
        break;
      case 'hardlink':
        if (typeof source === 'string') fs.linkSync(fsPath(source), fsPath(target));
        else this.materializePseudoLink(source!, target);
        break;
      case 'char':
      case 'block':
        mknod(fsPath(target), { type: h.type, mode: 0o600, major: h.devmajor, minor: h.devminor });
        this.metadata(target, h);
        break;
      case 'fifo':
        mknod(fsPath(target), { type: 'fifo', mode: 0o600 });
        this.metadata(target, h);
        break;
    }
    this.markWritten(target);
  }

  /** A hard link into aufs' `.wh..wh.plnk/`: the first becomes a copy, later ones link to it. */
  private materializePseudoLink(p: PseudoLink, target: string): void {
    if (p.materialized && lstatOrNull(p.materialized)?.isFile()) {
      fs.linkSync(fsPath(p.materialized), fsPath(target));
      return;
    }
    fs.copyFileSync(fsPath(p.file), fsPath(target), fs.constants.COPYFILE_EXCL);
    this.size += p.header.size;
    this.metadata(target, p.header);
    p.materialized = target;
  }

  /** Writes the entry's content into a new file; returns the bytes written. */
  private async writeBody(file: string, e: TarEntry): Promise<number> {
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
    const fd = fs.openSync(fsPath(file), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    let written = 0;
    try {
      for await (const chunk of e.body as AsyncIterable<Buffer>) {
        let off = 0;
        while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
        written += chunk.length;
      }
    } finally {
      fs.closeSync(fd);
    }
    return written;
  }

  private chown(p: string, h: TarHeader): void {
    // Rootless: an owner outside the namespace's ids is an error naming the file, never another owner.
    if (!this.opts.noChown) lchownMapped(fsPath(p), h.uid, h.gid, `/${cleanRelPath(h.name).join('/')}`);
  }

  private setXattrs(p: string, h: TarHeader): void {
    for (const [name, value] of h.xattrs) {
      if (!layerKeepsXattr(name)) {
        this.warnings.push(`${h.name}: ${isOverlayXattr(name) ? 'overlay' : 'fuse-overlayfs'}-private xattr ${name} ignored`);
        continue;
      }
      try {
        lsetxattr(fsPath(p), name, value);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (!XATTR_SOFT_ERRORS.has(code)) throw err;
        this.warnings.push(`${h.name}: xattr ${name} not set (${code})`);
      }
    }
  }

  /** Owner, then mode (chown clears setuid bits), then xattrs (chown clears file capabilities), then times. */
  private metadata(p: string, h: TarHeader): void {
    this.chown(p, h);
    if (h.type !== 'symlink') fs.chmodSync(fsPath(p), h.mode);
    this.setXattrs(p, h);
    fs.lutimesSync(fsPath(p), atimeOf(h), h.mtime);
  }

  /** Dir modes and times, once nothing more is created inside them. */
  finish(): void {
    for (const [dir, h] of [...this.dirs].reverse()) {
      fs.chmodSync(fsPath(dir), h.mode);
      fs.lutimesSync(fsPath(dir), atimeOf(h), h.mtime);
    }
  }

  cleanup(): void {
    if (this.plnkDir) fs.rmSync(this.plnkDir, { recursive: true, force: true });
  }
}

function atimeOf(h: TarHeader): number {
  const a = h.pax.atime !== undefined ? Number(h.pax.atime) : NaN;
  return Number.isFinite(a) ? a : h.mtime;
}

/**
 * Extracts an uncompressed layer tar into `dest` (which must exist). Reads the input to its end and
 * returns its diffID. On error nothing is rolled back: extract into a staging dir and rename.
 */
export async function applyTar(input: Readable | ByteInput, dest: string, opts: ApplyOptions): Promise<ApplyResult> {
  if (!['overlay', 'aufs', 'merge'].includes(opts?.whiteouts)) {
    throw new TypeError(`applyTar: options.whiteouts must be 'overlay', 'aufs' or 'merge', got ${JSON.stringify(opts?.whiteouts)}`);
  }
  const root = await fs.promises.realpath(dest).catch((err: NodeJS.ErrnoException) => {
    throw Object.assign(new Error(`applyTar: the destination ${dest} cannot be used: ${err.code ?? err.message}`), { code: err.code });
  });
  if (!(await fs.promises.stat(root)).isDirectory()) {
    throw Object.assign(new Error(`applyTar: the destination ${dest} is not a directory`), { code: 'ENOTDIR' });
  }
  const hash = createHash('sha256');
  async function* hashed(): AsyncGenerator<Buffer> {
    for await (const chunk of input as AsyncIterable<Buffer | string>) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
      hash.update(b);
      yield b;
    }
  }
  const ex = new Extractor(root, opts);
  try {
    for await (const e of readTar(hashed())) {
      try {
        await ex.entry(e);
      } catch (err) {
        throw entryError(e.header.name, err);
      }
      await e.drain();
    }
    ex.finish();
  } finally {
    ex.cleanup();
  }
  return { diffID: `sha256:${hash.digest('hex')}`, size: ex.size, warnings: ex.warnings };
}
