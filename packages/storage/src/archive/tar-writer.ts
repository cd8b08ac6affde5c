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

export type TarBody = Buffer | Uint8Array | string | AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>;

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

function bodyChunks(body: TarBody | undefined): AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array> {
  if (body === undefined) return [];
  if (typeof body === 'string') return [Buffer.from(body, 'utf8')];
  if (body instanceof Uint8Array) return [body];
  return body;
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
    for await (const chunk of bodyChunks(entry.body)) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      written += buf.length;
      if (written > size) {
        throw new Error(`tar: entry "${h.name}": content is longer than its size ${size} (the file grew while packing?)`);
      }
      if (buf.length) yield buf;
    }
    if (written !== size) {
      throw new Error(`tar: entry "${h.name}": content is ${written} bytes, its header says ${size} (the file shrank while packing?)`);
    }
    const pad = paddingFor(size);
    if (pad) yield Buffer.alloc(pad);
  }
  yield END_OF_ARCHIVE;
}

const COALESCE = 64 * 1024;

/** Joins small chunks (headers, small files, padding) into writes of up to COALESCE bytes. */
async function* coalesce(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let size = 0;
  for await (const c of chunks) {
    if (c.length >= COALESCE) {
      if (size) yield pending.length === 1 ? pending[0]! : Buffer.concat(pending, size);
      pending = [];
      size = 0;
      yield c;
      continue;
    }
    pending.push(c);
    size += c.length;
    if (size >= COALESCE) {
      yield Buffer.concat(pending, size);
      pending = [];
      size = 0;
    }
  }
  if (size) yield Buffer.concat(pending, size);
}

/** A byte stream of the archive with backpressure: bodies are read only as the consumer pulls. */
export function tarStream(entries: AsyncIterable<TarWriteEntry> | Iterable<TarWriteEntry>): Readable {
  return Readable.from(coalesce(tarChunks(entries)), { objectMode: false });
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
