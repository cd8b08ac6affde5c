// A minimal ustar writer for image archives: regular files and directories with short names (blob
// digests, manifest.json, ...). Layer tars themselves come from the layer codec; this only wraps
// finished blobs. Owner 0:0, fixed mtime, so the same images give the same archive bytes.
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';

const BLOCK = 512;
const ZERO = Buffer.alloc(BLOCK * 2);

function writeOctal(buf: Buffer, offset: number, width: number, value: number): void {
  // width includes the trailing NUL
  buf.write(value.toString(8).padStart(width - 1, '0') + '\0', offset, width, 'ascii');
}

function writeSize(buf: Buffer, offset: number, value: number): void {
  if (value < 0o77777777777) {
    writeOctal(buf, offset, 12, value);
    return;
  }
  // GNU base-256 for sizes of 8 GiB and more.
  let v = BigInt(value);
  for (let i = offset + 11; i > offset; i--) {
    buf[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  buf[offset] = 0x80;
}

export function tarHeader(name: string, size: number, type: 'file' | 'dir', mtime: number): Buffer {
  const nameBytes = Buffer.byteLength(name);
  if (nameBytes === 0 || nameBytes > 100) throw new Error(`archive member name must be 1-100 bytes: ${name}`);
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  writeOctal(h, 100, 8, type === 'dir' ? 0o755 : 0o644);
  writeOctal(h, 108, 8, 0);
  writeOctal(h, 116, 8, 0);
  writeSize(h, 124, type === 'dir' ? 0 : size);
  writeOctal(h, 136, 12, Math.max(0, Math.floor(mtime)));
  h.fill(' ', 148, 156);
  h.write(type === 'dir' ? '5' : '0', 156, 1, 'ascii');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i]!;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

/** Writes archive members sequentially into an open file. */
export class ArchiveWriter {
  /** Bytes written so far. */
  written = 0;
  private readonly dirs = new Set<string>();

  constructor(
    private readonly fh: FileHandle,
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

  /** Adds the directory entries above `name` (once each); some readers want them. */
  private async parents(name: string): Promise<void> {
    const parts = name.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/') + '/';
      if (this.dirs.has(dir)) continue;
      this.dirs.add(dir);
      await this.put(tarHeader(dir, 0, 'dir', this.mtime));
    }
  }

  async addBuffer(name: string, data: Buffer | string): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    await this.parents(name);
    await this.put(tarHeader(name, buf.length, 'file', this.mtime));
    await this.put(buf);
    await this.pad(buf.length);
  }

  /** Adds a member of exactly `size` bytes read from `body` (a mismatch is an error). */
  async addStream(name: string, size: number, body: Readable | AsyncIterable<Buffer>, onBytes?: (n: number) => void): Promise<void> {
    await this.parents(name);
    await this.put(tarHeader(name, size, 'file', this.mtime));
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
    const rem = size % BLOCK;
    if (rem !== 0) await this.put(ZERO.subarray(0, BLOCK - rem));
  }

  /** Writes the end-of-archive marker (two zero blocks). */
  async finish(): Promise<void> {
    await this.put(ZERO);
  }
}
