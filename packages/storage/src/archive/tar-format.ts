// The tar format itself: ustar header blocks, numeric fields (octal and base-256), pax records with
// binary-safe values. Pure functions over Buffers; the streaming writer and reader build on these.
import { decodeName } from '../names';

export const BLOCK = 512;

/** Entry types a layer can hold. `other` (reader only) is any typeflag we do not interpret. */
export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  name: string;
  type: TarEntryType | 'other';
  /** The raw typeflag character ('0', '5', 'S', ...). */
  typeflag: string;
  /** Permission and setuid/setgid/sticky bits (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of content (0 for header-only types). */
  size: number;
  /** Seconds since the epoch; fractional only when a pax mtime said so. */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  uname: string;
  gname: string;
  /** Extended attributes (pax `SCHILY.xattr.<name>`), values as raw bytes. */
  xattrs: Map<string, Buffer>;
  /** Every pax record in effect for this entry (global then local), values decoded as UTF-8. */
  pax: Record<string, string>;
}

export const TYPEFLAG: Record<TarEntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

const TYPE_BY_FLAG: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file', // contiguous file: a regular file everywhere that matters
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

export function typeFromFlag(flag: string): TarEntryType | 'other' {
  return TYPE_BY_FLAG[flag] ?? 'other';
}

/** Types whose size field never announces content (as Go's archive/tar treats them). */
export function isHeaderOnlyType(type: TarEntryType | 'other'): boolean {
  return type !== 'file' && type !== 'other';
}

// ustar field offsets and widths
export const F = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
} as const;

/** The largest value the octal form of a field of `width` bytes holds (width-1 digits + NUL). */
export function maxOctal(width: number): number {
  return 8 ** (width - 1) - 1;
}

/** Writes `value` into a numeric field: octal when it fits, else base-256 (GNU/star extension). */
export function writeNumeric(buf: Buffer, offset: number, width: number, value: number): void {
  if (!Number.isSafeInteger(value)) throw new Error(`tar: numeric field value ${value} is not a safe integer`);
  if (value >= 0 && value <= maxOctal(width)) {
    buf.write(value.toString(8).padStart(width - 1, '0'), offset, width - 1, 'ascii');
    buf[offset + width - 1] = 0;
    return;
  }
  // base-256: first byte 0x80 (positive) or 0xff (negative, two's complement), big-endian
  let v = BigInt(value);
  if (v < 0n) v = (1n << BigInt(8 * width)) + v;
  for (let i = width - 1; i >= 1; i--) {
    buf[offset + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  buf[offset] = value < 0 ? 0xff : 0x80;
}

/** Reads a numeric field in octal (spaces/NULs around it) or base-256. */
export function readNumeric(buf: Buffer, offset: number, width: number): number {
  const first = buf[offset]!;
  if (first & 0x80) {
    // bit 7 flags base-256; the remaining bits are a two's complement number (bit 6 is the sign)
    let v = BigInt(first & 0x7f);
    for (let i = 1; i < width; i++) v = (v << 8n) | BigInt(buf[offset + i]!);
    if (first & 0x40) v -= 1n << BigInt(8 * width - 1);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new RangeError('base-256 number out of range');
    }
    return Number(v);
  }
  let i = offset;
  const end = offset + width;
  while (i < end && (buf[i] === 0x20 || buf[i] === 0)) i++;
  let v = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c === 0x20 || c === 0) break;
    if (c < 0x30 || c > 0x37) throw new RangeError(`invalid octal digit 0x${c.toString(16)}`);
    v = v * 8 + (c - 0x30);
    digits++;
  }
  for (; i < end; i++) {
    if (buf[i] !== 0x20 && buf[i] !== 0) throw new RangeError('garbage after octal number');
  }
  return digits === 0 ? 0 : v;
}

/** A NUL-terminated byte string field (any bytes kept: see names.ts). */
export function readString(buf: Buffer, offset: number, width: number): string {
  const field = buf.subarray(offset, offset + width);
  const nul = field.indexOf(0);
  return decodeName(field.subarray(0, nul < 0 ? width : nul));
}

/** The unsigned checksum of a header block, counting the chksum field as spaces. */
export function headerChecksum(block: Buffer): { unsigned: number; signed: number } {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return { unsigned, signed };
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

export function paddingFor(size: number): number {
  const rem = size % BLOCK;
  return rem === 0 ? 0 : BLOCK - rem;
}

/** Fields of one raw header block (before pax/GNU long names are applied). */
export interface RawHeader
  extends Pick<TarHeader, 'name' | 'typeflag' | 'mode' | 'uid' | 'gid' | 'size' | 'mtime' | 'linkname' | 'uname' | 'gname' | 'devmajor' | 'devminor'> {
  prefix: string;
  format: 'ustar' | 'gnu' | 'v7';
}

/**
 * Decodes a header block; throws a plain Error with `reason` when the checksum or a field is wrong.
 * The caller words the user-facing message (it knows the offset).
 */
export function decodeHeader(block: Buffer): RawHeader {
  const sums = headerChecksum(block);
  let stored: number;
  try {
    stored = readNumeric(block, F.chksum[0], F.chksum[1]);
  } catch {
    throw new Error('unreadable checksum field');
  }
  if (stored !== sums.unsigned && stored !== sums.signed) {
    throw new Error(`checksum mismatch (stored ${stored}, computed ${sums.unsigned})`);
  }
  const magic = block.subarray(257, 263).toString('latin1');
  const version = block.subarray(263, 265).toString('latin1');
  const format: RawHeader['format'] =
    magic === 'ustar\0' ? 'ustar' : magic === 'ustar ' && version === ' \0' ? 'gnu' : 'v7';
  const num = (field: keyof typeof F): number => {
    const [off, width] = F[field];
    try {
      return readNumeric(block, off, width);
    } catch (err) {
      throw new Error(`bad ${field} field: ${(err as Error).message}`);
    }
  };
  const hasDevFields = format !== 'v7';
  return {
    name: readString(block, 0, 100),
    prefix: format === 'ustar' ? readString(block, F.prefix[0], F.prefix[1]) : '',
    typeflag: String.fromCharCode(block[156]!),
    mode: num('mode') & 0o7777,
    uid: num('uid'),
    gid: num('gid'),
    size: num('size'),
    mtime: num('mtime'),
    linkname: readString(block, F.linkname[0], F.linkname[1]),
    uname: hasDevFields ? readString(block, F.uname[0], F.uname[1]) : '',
    gname: hasDevFields ? readString(block, F.gname[0], F.gname[1]) : '',
    devmajor: hasDevFields ? num('devmajor') : 0,
    devminor: hasDevFields ? num('devminor') : 0,
    format,
  };
}

/** Input for encodeHeader: fields already decided by the writer (names already fitted). */
export interface HeaderBlockFields extends Pick<TarHeader, 'typeflag' | 'mode' | 'uid' | 'gid' | 'size' | 'mtime'> {
  name: Buffer;
  prefix?: Buffer | undefined;
  linkname?: Buffer | undefined;
  devmajor?: number | undefined;
  devminor?: number | undefined;
}

/** Encodes a POSIX ustar header block (magic "ustar\0", version "00", empty uname/gname). */
export function encodeHeader(h: HeaderBlockFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  h.name.copy(block, 0, 0, Math.min(h.name.length, 100));
  writeNumeric(block, 100, 8, h.mode);
  writeNumeric(block, 108, 8, h.uid);
  writeNumeric(block, 116, 8, h.gid);
  writeNumeric(block, 124, 12, h.size);
  writeNumeric(block, 136, 12, h.mtime);
  block.write(h.typeflag, 156, 1, 'latin1');
  if (h.linkname) h.linkname.copy(block, 157, 0, Math.min(h.linkname.length, 100));
  block.write('ustar\0', 257, 6, 'latin1');
  block.write('00', 263, 2, 'latin1');
  if (h.devmajor !== undefined) writeNumeric(block, 329, 8, h.devmajor);
  if (h.devminor !== undefined) writeNumeric(block, 337, 8, h.devminor);
  if (h.prefix) h.prefix.copy(block, 345, 0, Math.min(h.prefix.length, 155));
  const { unsigned } = headerChecksum(block);
  // six octal digits, NUL, space: the form every tar writes
  block.write(unsigned.toString(8).padStart(6, '0'), 148, 6, 'ascii');
  block[154] = 0;
  block[155] = 0x20;
  return block;
}

/** One pax record: `<len> <key>=<value>\n`, where len counts the whole record including itself. */
export function encodePaxRecord(key: string, value: Buffer | string): Buffer {
  if (key.includes('=') || key.includes('\n') || key.includes('\0') || key === '') {
    throw new Error(`tar: invalid pax key ${JSON.stringify(key)}`);
  }
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8'), Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'ascii'), body]);
}

/** Parses pax records into key → raw value bytes; throws on malformed records. */
export function parsePaxRecords(data: Buffer): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  let pos = 0;
  while (pos < data.length) {
    // GNU tar pads pax data with NULs in some cases; a NUL where a record would start ends it.
    if (data[pos] === 0) break;
    const space = data.indexOf(0x20, pos);
    if (space < 0 || space - pos > 20) throw new Error('malformed pax record length');
    const lenText = data.subarray(pos, space).toString('latin1');
    if (!/^[0-9]+$/.test(lenText)) throw new Error('malformed pax record length');
    const len = Number(lenText);
    const end = pos + len;
    if (len <= space - pos + 1 || end > data.length || data[end - 1] !== 0x0a) {
      throw new Error('malformed pax record');
    }
    const record = data.subarray(space + 1, end - 1);
    const eq = record.indexOf(0x3d);
    if (eq <= 0) throw new Error('malformed pax record (no key)');
    out.push([record.subarray(0, eq).toString('utf8'), Buffer.from(record.subarray(eq + 1))]);
    pos = end;
  }
  return out;
}

export const PAX_XATTR_PREFIX = 'SCHILY.xattr.';
export const LIBARCHIVE_XATTR_PREFIX = 'LIBARCHIVE.xattr.';
