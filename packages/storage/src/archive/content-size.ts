// The size docker shows for a layer (`docker images`, `docker history`): the bytes of the files in it,
// not of its tar. Counted from the tar stream on its way through (a commit's hash, an import's
// extraction), so no second walk is needed: regular files count their size, symlinks the length of
// their target (what lstat reports), hard links and directories nothing, as moby's directory.Size.
import { Transform, type TransformCallback } from 'node:stream';

const BLOCK = 512;

function octal(buf: Buffer, offset: number, length: number): number {
  // GNU base-256 for values that do not fit in octal digits.
  if ((buf[offset]! & 0x80) !== 0) {
    let v = 0;
    for (let i = offset + 1; i < offset + length; i++) v = v * 256 + buf[i]!;
    return v;
  }
  const text = buf.toString('latin1', offset, offset + length).replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function cString(buf: Buffer, offset: number, length: number): number {
  const end = buf.indexOf(0, offset);
  return (end < 0 || end > offset + length ? offset + length : end) - offset;
}

/** Pax records that change the next entry's size or link target. */
function paxOverrides(data: Buffer): { size?: number; linkLength?: number } {
  const out: { size?: number; linkLength?: number } = {};
  let i = 0;
  while (i < data.length) {
    const space = data.indexOf(0x20, i);
    if (space < 0) break;
    const len = parseInt(data.toString('latin1', i, space), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const record = data.subarray(space + 1, i + len - 1);
    const eq = record.indexOf(0x3d);
    const key = record.toString('latin1', 0, eq);
    if (key === 'size') out.size = Number(record.toString('latin1', eq + 1));
    if (key === 'linkpath') out.linkLength = record.length - eq - 1;
    i += len;
  }
  return out;
}

/** Passes a tar stream through unchanged and counts its content bytes (`bytes` once it ended). */
export class TarContentCounter extends Transform {
  bytes = 0;
  private pending = Buffer.alloc(0);
  /** Data bytes of the current entry still to skip (with padding). */
  private skip = 0;
  /** Data of a pax or GNU long-link header being collected. */
  private collect: { kind: 'pax' | 'longlink'; left: number; parts: Buffer[]; padded: number } | null = null;
  private next: { size?: number; linkLength?: number } = {};
  private ended = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.ended) this.scan(chunk);
    cb(null, chunk);
  }

  private scan(chunk: Buffer): void {
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    let pos = 0;
    for (;;) {
      if (this.collect) {
        const take = Math.min(this.collect.left, buf.length - pos);
        this.collect.parts.push(buf.subarray(pos, pos + take));
        this.collect.left -= take;
        pos += take;
        if (this.collect.left > 0) break;
        const data = Buffer.concat(this.collect.parts);
        if (this.collect.kind === 'pax') this.next = { ...this.next, ...paxOverrides(data) };
        else this.next.linkLength = cString(data, 0, data.length);
        this.skip = this.collect.padded;
        this.collect = null;
      }
      if (this.skip > 0) {
        const take = Math.min(this.skip, buf.length - pos);
        this.skip -= take;
        pos += take;
        if (this.skip > 0) break;
      }
      if (buf.length - pos < BLOCK) break;
      const header = buf.subarray(pos, pos + BLOCK);
      pos += BLOCK;
      if (header.every((b) => b === 0)) {
        this.ended = true; // the end-of-archive blocks
        break;
      }
      const type = String.fromCharCode(header[156]!);
      const headerSize = octal(header, 124, 12);
      const pad = (n: number) => (BLOCK - (n % BLOCK)) % BLOCK;
      if (type === 'x' || type === 'K') {
        // Extended headers of the next entry: read them.
        this.collect = { kind: type === 'x' ? 'pax' : 'longlink', left: headerSize, parts: [], padded: pad(headerSize) };
        continue;
      }
      if (type === 'g' || type === 'L') {
        // Global pax records and GNU long names change nothing counted here.
        this.skip = headerSize + pad(headerSize);
        continue;
      }
      const size = this.next.size ?? headerSize;
      const padding = pad(size);
      if (type === '0' || type === '\0' || type === '7') this.bytes += size;
      else if (type === '2') this.bytes += this.next.linkLength ?? cString(header, 157, 100);
      this.next = {};
      this.skip = size + padding;
    }
    this.pending = Buffer.from(buf.subarray(pos));
    if (this.ended) this.pending = Buffer.alloc(0);
  }
}
