// File names are bytes on Linux, and Docker keeps them byte for byte, but JS strings are UTF-16. A name
// that is not valid UTF-8 (`bad\xff\xfe`) is carried in a string losslessly the way Python's
// "surrogateescape" does: valid UTF-8 decodes as itself, each byte of an invalid sequence becomes the
// lone surrogate U+DC80+byte (a code point valid UTF-8 can never produce). UTF-8 names therefore stay
// the very same strings (cache keys, messages, matching), and the bytes come back exactly at the
// syscall: `fsPath` gives node:fs (and the addon) a Buffer when a path carries such escapes.
import { isUtf8 } from 'node:buffer';

const ESCAPE_BASE = 0xdc00;
const ESCAPED = /[\udc80-\udcff]/;

/** The byte length of the UTF-8 sequence starting at `i`, or 0 when it is not a valid one. */
function utf8SequenceAt(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number) => i + k < b.length && (b[i + k]! & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const c1 = b[i + 1]!;
    if (c === 0xe0 && c1 < 0xa0) return 0; // overlong
    if (c === 0xed && c1 >= 0xa0) return 0; // a surrogate
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const c1 = b[i + 1]!;
    if (c === 0xf0 && c1 < 0x90) return 0; // overlong
    if (c === 0xf4 && c1 >= 0x90) return 0; // above U+10FFFF
    return 4;
  }
  return 0;
}

/** Name bytes as a string, losslessly (see above). */
export function decodeName(bytes: Buffer | Uint8Array): string {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isUtf8(b)) return b.toString('utf8');
  let out = '';
  let start = 0; // start of the pending run of valid UTF-8
  for (let i = 0; i < b.length; ) {
    const n = utf8SequenceAt(b, i);
    if (n > 0) {
      i += n;
      continue;
    }
    out += b.subarray(start, i).toString('utf8') + String.fromCharCode(ESCAPE_BASE + b[i]!);
    i++;
    start = i;
  }
  return out + b.subarray(start).toString('utf8');
}

/** Whether a name carries escaped bytes (it was not valid UTF-8). */
export function hasEscapedBytes(name: string): boolean {
  return ESCAPED.test(name);
}

/** The bytes a name decoded by decodeName stands for. */
export function encodeName(name: string): Buffer {
  if (!hasEscapedBytes(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < name.length; i++) {
    const u = name.charCodeAt(i);
    if (u < 0xdc80 || u > 0xdcff) continue;
    // a low surrogate right after a high one is half of a real character, not an escape
    if (i > 0 && name.charCodeAt(i - 1) >= 0xd800 && name.charCodeAt(i - 1) <= 0xdbff) continue;
    parts.push(Buffer.from(name.slice(start, i), 'utf8'), Buffer.from([u - ESCAPE_BASE]));
    start = i + 1;
  }
  parts.push(Buffer.from(name.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

/** A path for node:fs and the addon: the string itself, or its bytes when it carries escapes. */
export function fsPath(p: string): string | Buffer {
  return hasEscapedBytes(p) ? encodeName(p) : p;
}

/** Byte order of two names (what a tar's sorted entries and BuildKit's walk use). */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(encodeName(a), encodeName(b));
}
