// Image archives (docker save, podman save, OCI archives) through the layer tar codec (archive/):
// members are read one at a time with their bodies streamed (never the whole archive in memory), and
// written sequentially into a file staged next to its target, then renamed.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { fsyncDir, tmpSibling } from '../atomic';
import { paddingFor } from '../archive/tar-format';
import { END_OF_ARCHIVE, encodeEntryHeader } from '../archive/tar-writer';
import { TarFormatError, readTar } from '../archive/tar-reader';
import type { Digest } from '../digest';
import { TsbuildError, quoteName, shortName, userError, withContext } from '../errors';

/** pax and GNU long-name headers in an image archive: names of blobs and metadata files are short. */
const ARCHIVE_META_MAX = 1 << 20;

export type MemberType = 'file' | 'dir' | 'symlink' | 'link' | 'other';

export interface ArchiveMember {
  /** The member's path, normalized (`./a/b/` → `a/b`). */
  name: string;
  type: MemberType;
  size: number;
  linkname: string;
  /** The member's bytes; valid until the next member is requested. */
  body: AsyncIterable<Buffer>;
}

/** The members of an uncompressed tar; a member's body must be read (or is skipped) before the next. */
export async function* readArchiveMembers(source: AsyncIterable<Buffer>): AsyncGenerator<ArchiveMember> {
  try {
    for await (const entry of readTar(source, { maxMetaSize: ARCHIVE_META_MAX, stopAtEnd: true })) {
      const h = entry.header;
      const type: MemberType = h.type === 'hardlink' ? 'link' : h.type === 'file' || h.type === 'dir' || h.type === 'symlink' ? h.type : 'other';
      yield { name: normalizeName(h.name), type, size: type === 'file' || type === 'other' ? h.size : 0, linkname: h.linkname, body: entry.body };
    }
  } catch (err) {
    // The first header's checksum is what tells a tar from anything else.
    if (err instanceof TarFormatError && /checksum/.test(err.message)) {
      throw new TsbuildError('ETARFORMAT', `not a tar archive (bad header checksum at offset ${err.offset})`, { cause: err });
    }
    throw err;
  }
}

/** `./a/b/` → `a/b` */
export function normalizeName(name: string): string {
  let n = name;
  while (n.startsWith('./')) n = n.slice(2);
  while (n.startsWith('/')) n = n.slice(1);
  while (n.endsWith('/')) n = n.slice(0, -1);
  return n;
}

export function blobMember(d: Digest): string {
  return `blobs/sha256/${d.slice(7)}`;
}

/**
 * Writes archive members sequentially into an open file: regular files, with the directories above
 * them (once each; some readers want them). Owner 0:0 and a fixed mtime, so the same images give
 * the same archive bytes.
 */
export class ArchiveWriter {
  /** Bytes written so far. */
  written = 0;
  private readonly dirs = new Set<string>();

  constructor(
    private readonly fh: fsp.FileHandle,
    private readonly mtime = 0,
  ) {}

  private async put(buf: Buffer): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.fh.write(buf, off, buf.length - off);
      off += bytesWritten;
    }
    this.written += buf.length;
  }

  private async parents(name: string): Promise<void> {
    const parts = name.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/') + '/';
      if (this.dirs.has(dir)) continue;
      this.dirs.add(dir);
      await this.put(encodeEntryHeader({ name: dir, type: 'dir', mode: 0o755, mtime: this.mtime }));
    }
  }

  async addBuffer(name: string, data: Buffer | string): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    await this.parents(name);
    await this.put(encodeEntryHeader({ name, type: 'file', mode: 0o644, size: buf.length, mtime: this.mtime }));
    await this.put(buf);
    await this.pad(buf.length);
  }

  /** Adds a member of exactly `size` bytes read from `body` (a mismatch is an error). */
  async addStream(name: string, size: number, body: Readable | AsyncIterable<Buffer>, onBytes?: (n: number) => void): Promise<void> {
    await this.parents(name);
    await this.put(encodeEntryHeader({ name, type: 'file', mode: 0o644, size, mtime: this.mtime }));
    let n = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > size) throw new Error(`archive member ${name}: more than the announced ${size} bytes`);
      await this.put(chunk);
      onBytes?.(chunk.length);
    }
    if (n !== size) throw new Error(`archive member ${name}: got ${n} bytes, announced ${size}`);
    await this.pad(size);
  }

  private async pad(size: number): Promise<void> {
    const pad = paddingFor(size);
    if (pad) await this.put(Buffer.alloc(pad));
  }

  /** Writes the end-of-archive marker (two zero blocks). */
  async finish(): Promise<void> {
    await this.put(END_OF_ARCHIVE);
  }
}

/** Writes an archive to `out` atomically (tmp next to it, fsync, rename). */
export async function writeArchiveFile(out: string, mtime: number, fill: (w: ArchiveWriter) => Promise<void>): Promise<void> {
  const target = path.resolve(out);
  // As docker save: the directory must exist (no directories made on a typo).
  const dir = path.dirname(target);
  if (!(await fsp.stat(dir).catch(() => undefined))?.isDirectory()) {
    throw userError(`invalid output path: directory ${quoteName(dir)} does not exist`);
  }
  const tmp = tmpSibling(target);
  const fh = await fsp.open(tmp, 'wx', 0o644).catch((err: unknown) => {
    throw withContext(`cannot write ${shortName(out)}`, err);
  });
  try {
    const w = new ArchiveWriter(fh, mtime);
    await fill(w);
    await w.finish();
    await fh.sync();
    await fh.close();
    await fsp.rename(tmp, target);
    await fsyncDir(path.dirname(target));
  } catch (err) {
    await fh.close().catch(() => {});
    await fsp.rm(tmp, { force: true });
    // The machine's failures (a full disk) name the output; anything else keeps its own message.
    throw (err as NodeJS.ErrnoException).syscall ? withContext(`cannot write ${shortName(out)}`, err) : err;
  }
}
