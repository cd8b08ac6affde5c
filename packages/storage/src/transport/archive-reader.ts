// A streaming reader for image archives (docker save, podman save, OCI archives): ustar, pax path/size/
// linkpath records and GNU long names. Members are yielded one at a time; a member's body must be read
// (or is skipped) before the next one is produced, so archives are never buffered whole.
// Layer tars are NOT read with this: they go to the layer codec.
import { TsbuildError } from '../errors';

const BLOCK = 512;

export type MemberType = 'file' | 'dir' | 'symlink' | 'link' | 'other';

export interface ArchiveMember {
  name: string;
  type: MemberType;
  size: number;
  linkname: string;
  /** The member's bytes; valid until the next member is requested. */
  body: AsyncIterable<Buffer>;
}

class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async more(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    return true;
  }

  /** Exactly n bytes, or fewer at the end of input. */
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n && (await this.more()));
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(out.length);
    return out;
  }

  /** Yields the next n bytes in chunks; throws if the input ends first. */
  async *chunks(n: number, what: string): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.more())) throw new TsbuildError('ETARFORMAT', `archive truncated inside ${what}`);
      const take = Math.min(left, this.buf.length);
      const out = this.buf.subarray(0, take);
      this.buf = this.buf.subarray(take);
      left -= take;
      yield out;
    }
  }

  async skip(n: number, what: string): Promise<void> {
    for await (const _ of this.chunks(n, what));
  }
}

function cstring(buf: Buffer, start: number, len: number): string {
  const slice = buf.subarray(start, start + len);
  const nul = slice.indexOf(0);
  return slice.subarray(0, nul < 0 ? slice.length : nul).toString('utf8');
}

function parseNumber(buf: Buffer, start: number, len: number): number {
  // Fields of a header block: every index is inside it.
  if (buf[start]! & 0x80) {
    let v = 0n;
    for (let i = start + 1; i < start + len; i++) v = (v << 8n) | BigInt(buf[i]!);
    v |= BigInt(buf[start]! & 0x7f) << BigInt(8 * (len - 1));
    return Number(v);
  }
  const s = cstring(buf, start, len).trim();
  return s === '' ? 0 : parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return parseNumber(h, 148, 8) === sum;
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp < 0) break;
    const len = parseInt(data.subarray(off, sp).toString('ascii'), 10);
    if (!(len > 0)) break;
    const rec = data.subarray(sp + 1, off + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    off += len;
  }
  return out;
}

const TYPES: Record<string, MemberType> = { '0': 'file', '\0': 'file', '7': 'file', '5': 'dir', '2': 'symlink', '1': 'link' };

export async function* readArchiveMembers(source: AsyncIterable<Buffer>): AsyncGenerator<ArchiveMember> {
  const r = new ByteReader(source[Symbol.asyncIterator]());
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const h = await r.read(BLOCK);
    if (h.length === 0) return; // no end marker: accept, like GNU tar
    if (h.length < BLOCK) throw new TsbuildError('ETARFORMAT', 'archive truncated inside a header');
    if (h.every((b) => b === 0)) return;
    if (!checksumOk(h)) throw new TsbuildError('ETARFORMAT', 'not a tar archive (bad header checksum)');
    const flag = String.fromCharCode(h[156]!);
    let size = parseNumber(h, 124, 12);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > 1 << 20) throw new TsbuildError('ETARFORMAT', `archive: ${flag} header of ${size} bytes is too large`);
      const data = await r.read(padded);
      if (data.length < padded) throw new TsbuildError('ETARFORMAT', 'archive truncated inside an extended header');
      const body = data.subarray(0, size);
      if (flag === 'x') pax = { ...pax, ...parsePax(body) };
      else if (flag === 'L') longName = cstring(body, 0, body.length);
      else if (flag === 'K') longLink = cstring(body, 0, body.length);
      continue;
    }
    let name = cstring(h, 0, 100);
    const magic = cstring(h, 257, 6);
    if (magic.startsWith('ustar')) {
      const prefix = cstring(h, 345, 155);
      if (prefix && magic === 'ustar') name = `${prefix}/${name}`;
    }
    if (longName !== undefined) name = longName;
    if (pax.path !== undefined) name = pax.path;
    let linkname = longLink ?? cstring(h, 157, 100);
    if (pax.linkpath !== undefined) linkname = pax.linkpath;
    if (pax.size !== undefined) size = parseInt(pax.size, 10);
    pax = {};
    longName = undefined;
    longLink = undefined;
    const type = TYPES[flag] ?? 'other';
    const bodySize = type === 'file' || type === 'other' ? size : 0;
    const dataSize = Math.ceil(bodySize / BLOCK) * BLOCK;
    let consumed = 0;
    const it = r.chunks(bodySize, name);
    const body: AsyncIterable<Buffer> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          const n = await it.next();
          if (!n.done) consumed += n.value.length;
          return n;
        },
      }),
    };
    yield { name: normalizeName(name), type, size: bodySize, linkname, body };
    // Skip what the consumer left, plus the block padding.
    for (let n = await it.next(); !n.done; n = await it.next()) consumed += n.value.length;
    await r.skip(dataSize - consumed, name);
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
