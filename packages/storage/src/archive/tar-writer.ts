// Our own ustar + pax tar writer for layers. tar-stream clamps uid/gid above 262143 and mangles binary
// xattr values; layers need both (REFERENCE §6). Deterministic: the same entries give the same bytes
// (empty uname/gname, sorted pax records, fixed pax header names, no atime/ctime). Streaming: content
// flows through as the consumer pulls, never buffered whole.
import { compareNames, encodeName } from '../names';
import { Readable } from 'node:stream';
import {
  BLOCK,
  TYPEFLAG,
  encodeHeader,
  encodePaxRecord,
  isHeaderOnlyType,
  maxOctal,
  paddingFor,
  PAX_XATTR_PREFIX,
  type TarEntryType,
} from './tar-format';

export interface TarWriteHeader {
  name: string;
  type: TarEntryType;
  /** Permission bits incl. setuid/setgid/sticky; masked with 0o7777. Default 0o644 (0o755 for dirs). */
  mode?: number;
  uid?: number;
  gid?: number;
  /** Content length; required for files with content, ignored (0) for header-only types. */
  size?: number;
  /** Seconds since the epoch (fractions are dropped). Default 0. */
  mtime?: number;
  linkname?: string | undefined;
  devmajor?: number | undefined;
  devminor?: number | undefined;
  /** Extended attributes, written as pax `SCHILY.xattr.<name>` with the raw bytes. */
  xattrs?: Map<string, Buffer> | Record<string, Buffer | string> | undefined;
}

/**
 * Content read synchronously into the writer's own buffers (a small file): tarStream reads it straight
 * into its output, with no buffer or promise per file.
 */
export interface SyncReadBody {
  /** Reads up to `length` bytes into `target` at `offset`; 0 at the end. */
  readInto(target: Buffer, offset: number, length: number): number;
  /** Called once when the writer is done with the body, also after a failure. */
  close(): void;
}

export type TarBody = Buffer | Uint8Array | string | AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array> | SyncReadBody;

export interface TarWriteEntry {
  header: TarWriteHeader;
  /** File content; must be exactly `header.size` bytes. */
  body?: TarBody | undefined;
}

const USTAR_NAME = 100;
const USTAR_PREFIX = 155;
const MAX_ID = maxOctal(8);
const MAX_SIZE = maxOctal(12);

function isAscii(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i]! >= 0x80) return false;
  return true;
}

/** Splits a long ASCII path into ustar prefix + name at the last '/' that lets both fit (as Go does). */
function splitUstar(name: Buffer): { prefix: Buffer; name: Buffer } | null {
  if (name.length <= USTAR_NAME || !isAscii(name)) return null;
  let limit = Math.min(name.length, USTAR_PREFIX + 1);
  if (limit === name.length && name[limit - 1] === 0x2f) limit--;
  const slash = name.subarray(0, limit).lastIndexOf(0x2f);
  if (slash <= 0) return null;
  const rest = name.length - slash - 1;
  if (rest === 0 || rest > USTAR_NAME || slash > USTAR_PREFIX) return null;
  return { prefix: name.subarray(0, slash), name: name.subarray(slash + 1) };
}

function xattrEntries(x: TarWriteHeader['xattrs']): Array<[string, Buffer]> {
  if (!x) return [];
  const pairs: Array<[string, Buffer | string]> = x instanceof Map ? [...x.entries()] : Object.entries(x);
  return pairs.map(([k, v]) => [k, Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8')]);
}

function checkInt(what: string, name: string, v: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(v) || v < 0 || v > max) {
    throw new Error(`tar: entry "${name}": invalid ${what} ${v}`);
  }
  return v;
}

/** The pax header (if needed) and ustar header blocks for one entry. */
export function encodeEntryHeader(h: TarWriteHeader): Buffer {
  const name = h.name;
  if (typeof name !== 'string' || name === '') throw new Error('tar: entry with an empty name');
  if (name.includes('\0')) throw new Error(`tar: entry name contains a NUL byte: ${JSON.stringify(name)}`);
  const flag = TYPEFLAG[h.type];
  if (!flag) throw new Error(`tar: entry "${name}": unknown type ${String(h.type)}`);
  const mode = checkInt('mode', name, h.mode ?? (h.type === 'dir' ? 0o755 : 0o644)) & 0o7777;
  const uid = checkInt('uid', name, h.uid ?? 0);
  const gid = checkInt('gid', name, h.gid ?? 0);
  const size = isHeaderOnlyType(h.type) ? 0 : checkInt('size', name, h.size ?? 0);
  if (isHeaderOnlyType(h.type) && h.size) {
    throw new Error(`tar: entry "${name}": a ${h.type} entry cannot have content (size ${h.size})`);
  }
  const mtime = Math.floor(h.mtime ?? 0);
  if (!Number.isSafeInteger(mtime)) throw new Error(`tar: entry "${name}": invalid mtime ${h.mtime}`);
  const linkname = h.linkname ?? '';
  if (linkname.includes('\0')) throw new Error(`tar: entry "${name}": link name contains a NUL byte`);
  if ((h.type === 'hardlink' || h.type === 'symlink') && linkname === '') {
    throw new Error(`tar: entry "${name}": a ${h.type} needs a link name`);
  }
  const isDev = h.type === 'char' || h.type === 'block';
  const devmajor = isDev ? checkInt('devmajor', name, h.devmajor ?? 0) : undefined;
  const devminor = isDev ? checkInt('devminor', name, h.devminor ?? 0) : undefined;

  const pax: Array<[string, Buffer | string]> = [];
  const nameBuf = encodeName(name);
  let ustarName: Buffer = nameBuf;
  let prefix: Buffer | undefined;
  if (nameBuf.length > USTAR_NAME || !isAscii(nameBuf)) {
    const split = splitUstar(nameBuf);
    if (split) {
      ustarName = split.name;
      prefix = split.prefix;
    } else {
      pax.push(['path', nameBuf]); // the name's bytes as they are, UTF-8 or not, as Go's archive/tar (Docker) writes
      ustarName = nameBuf.subarray(0, USTAR_NAME);
    }
  }
  const linkBuf = encodeName(linkname);
  if (linkBuf.length > USTAR_NAME || !isAscii(linkBuf)) pax.push(['linkpath', linkBuf]);
  if (uid > MAX_ID) pax.push(['uid', String(uid)]);
  if (gid > MAX_ID) pax.push(['gid', String(gid)]);
  if (size > MAX_SIZE) pax.push(['size', String(size)]);
  if (mtime < 0 || mtime > MAX_SIZE) pax.push(['mtime', String(mtime)]);
  for (const [k, v] of xattrEntries(h.xattrs)) {
    if (k === '' || k.includes('=') || k.includes('\0')) {
      throw new Error(`tar: entry "${name}": xattr name ${JSON.stringify(k)} cannot be stored in a pax record`);
    }
    pax.push([PAX_XATTR_PREFIX + k, v]);
  }

  const block = encodeHeader({
    name: ustarName,
    prefix,
    typeflag: flag,
    mode,
    uid,
    gid,
    size,
    mtime,
    linkname: linkBuf,
    devmajor,
    devminor,
  });
  if (pax.length === 0) return block;

  pax.sort((a, b) => compareNames(a[0], b[0]));
  const records = Buffer.concat(pax.map(([k, v]) => encodePaxRecord(k, v)));
  const base = name.replace(/\/+$/, '').split('/').pop() || 'entry';
  const paxBlock = encodeHeader({
    name: encodeName(`PaxHeaders.0/${base}`).subarray(0, USTAR_NAME),
    typeflag: 'x',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: records.length,
    mtime: 0,
  });
  return Buffer.concat([paxBlock, records, Buffer.alloc(paddingFor(records.length)), block]);
}

/** The end of an archive: two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

function isSyncReadBody(body: TarBody): body is SyncReadBody {
  return typeof (body as Partial<SyncReadBody>).readInto === 'function';
}

/** A SyncReadBody as one fresh buffer of at most `size` bytes. */
function* syncBodyChunks(body: SyncReadBody, size: number): Generator<Buffer> {
  try {
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const n = body.readInto(buf, got, size - got);
      if (n === 0) break;
      got += n;
    }
    if (got > 0) yield got === size ? buf : buf.subarray(0, got);
  } finally {
    body.close();
  }
}

function bodyChunks(body: TarBody | undefined, size: number): AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array> {
  if (body === undefined) return [];
  if (typeof body === 'string') return [Buffer.from(body, 'utf8')];
  if (body instanceof Uint8Array) return [body];
  if (isSyncReadBody(body)) return syncBodyChunks(body, size);
  return body;
}

function asBuffer(chunk: Buffer | Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

function tooLong(name: string, size: number): Error {
  return new Error(`tar: entry "${name}": content is longer than its size ${size} (the file grew while packing?)`);
}

function sizeMismatch(name: string, written: number, size: number): Error {
  return new Error(`tar: entry "${name}": content is ${written} bytes, its header says ${size} (the file shrank while packing?)`);
}

/**
 * The blocks of a tar archive, pulled lazily: headers, content as the body yields it, padding, and the
 * two zero blocks at the end. Errors name the entry whose content does not match its size.
 */
export async function* tarChunks(entries: AsyncIterable<TarWriteEntry> | Iterable<TarWriteEntry>): AsyncGenerator<Buffer> {
  for await (const entry of entries) {
    const h = entry.header;
    yield encodeEntryHeader(h);
    const size = isHeaderOnlyType(h.type) ? 0 : (h.size ?? 0);
    let written = 0;
    for await (const chunk of bodyChunks(entry.body, size)) {
      const buf = asBuffer(chunk);
      written += buf.length;
      if (written > size) throw tooLong(h.name, size);
      if (buf.length) yield buf;
    }
    if (written !== size) throw sizeMismatch(h.name, written, size);
    const pad = paddingFor(size);
    if (pad) yield Buffer.alloc(pad);
  }
  yield END_OF_ARCHIVE;
}

/** Output blocks of the archive stream; chunks at least this big pass through without a copy. */
const OUT_BLOCK = 256 * 1024;
const PASS_THROUGH = 64 * 1024;

/** Assembles the archive into OUT_BLOCK buffers: headers, small bodies and padding are copied (or read) in. */
class BlockAssembler {
  private out = Buffer.allocUnsafe(OUT_BLOCK);
  private pos = 0;
  /** Blocks ready to be handed on, in order. */
  ready: Buffer[] = [];

  put(chunk: Buffer): void {
    if (chunk.length >= PASS_THROUGH) {
      this.flush();
      this.ready.push(chunk);
      return;
    }
    let from = 0;
    while (from < chunk.length) {
      const n = chunk.copy(this.out, this.pos, from);
      from += n;
      this.advance(n);
    }
  }

  zeros(count: number): void {
    while (count > 0) {
      const n = Math.min(count, OUT_BLOCK - this.pos);
      this.out.fill(0, this.pos, this.pos + n);
      count -= n;
      this.advance(n);
    }
  }

  /** Reads at most `size` bytes of `body` into the output; returns how many it gave. */
  read(body: SyncReadBody, size: number): number {
    let got = 0;
    try {
      while (got < size) {
        const n = body.readInto(this.out, this.pos, Math.min(size - got, OUT_BLOCK - this.pos));
        if (n === 0) break;
        got += n;
        this.advance(n);
      }
    } finally {
      body.close();
    }
    return got;
  }

  /** Hands on the partly filled block too (at the end, or before a pass-through chunk). */
  flush(): void {
    if (this.pos === 0) return;
    this.ready.push(this.out.subarray(0, this.pos));
    this.out = Buffer.allocUnsafe(OUT_BLOCK);
    this.pos = 0;
  }

  private advance(n: number): void {
    this.pos += n;
    if (this.pos === OUT_BLOCK) this.flush();
  }
}

/**
 * tarChunks' bytes in OUT_BLOCK pieces: a promise per block rather than per header, body chunk and
 * padding, and small bodies read in place.
 */
async function* tarBlocks(entries: AsyncIterable<TarWriteEntry> | Iterable<TarWriteEntry>): AsyncGenerator<Buffer> {
  const asm = new BlockAssembler();
  for await (const entry of entries) {
    const h = entry.header;
    asm.put(encodeEntryHeader(h));
    const size = isHeaderOnlyType(h.type) ? 0 : (h.size ?? 0);
    let written = 0;
    if (entry.body !== undefined && isSyncReadBody(entry.body)) {
      written = asm.read(entry.body, size);
    } else {
      for await (const chunk of bodyChunks(entry.body, size)) {
        const buf = asBuffer(chunk);
        written += buf.length;
        if (written > size) throw tooLong(h.name, size);
        if (buf.length) asm.put(buf);
        if (asm.ready.length) yield* asm.ready.splice(0);
      }
    }
    if (written !== size) throw sizeMismatch(h.name, written, size);
    asm.zeros(paddingFor(size));
    if (asm.ready.length) yield* asm.ready.splice(0);
  }
  asm.put(END_OF_ARCHIVE);
  asm.flush();
  yield* asm.ready.splice(0);
}

/** A byte stream of the archive with backpressure: bodies are read only as the consumer pulls. */
export function tarStream(entries: AsyncIterable<TarWriteEntry> | Iterable<TarWriteEntry>): Readable {
  return Readable.from(tarBlocks(entries), { objectMode: false });
}

/** A whole archive in memory, for small archives (tests, fixtures). Bodies must be buffers or strings. */
export function buildTar(entries: Iterable<{ header: TarWriteHeader; body?: Buffer | Uint8Array | string | undefined }>): Buffer {
  const parts: Buffer[] = [];
  for (const { header, body } of entries) {
    const content = body === undefined ? Buffer.alloc(0) : typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body);
    const h = { ...header, size: header.size ?? (isHeaderOnlyType(header.type) ? 0 : content.length) };
    parts.push(encodeEntryHeader(h));
    if (!isHeaderOnlyType(h.type)) {
      if (content.length !== h.size) {
        throw new Error(`tar: entry "${h.name}": content is ${content.length} bytes, its header says ${h.size}`);
      }
      parts.push(content, Buffer.alloc(paddingFor(content.length)));
    }
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}
