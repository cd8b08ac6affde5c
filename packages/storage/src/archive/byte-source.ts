// Pull-based exact reads over an async stream of chunks; tracks the offset for error messages.

export type ByteInput = AsyncIterable<Buffer | Uint8Array | string>;

function toBuffer(c: Buffer | Uint8Array | string): Buffer {
  if (Buffer.isBuffer(c)) return c;
  if (typeof c === 'string') return Buffer.from(c, 'latin1');
  return Buffer.from(c.buffer, c.byteOffset, c.byteLength);
}

export class ByteSource {
  private readonly it: AsyncIterator<Buffer | Uint8Array | string>;
  private chunks: Buffer[] = [];
  private available = 0;
  private ended = false;
  /** Bytes handed out so far. */
  offset = 0;

  constructor(input: ByteInput) {
    this.it = input[Symbol.asyncIterator]();
  }

  /** Pulls one more chunk; false at the end of the input. */
  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    const b = toBuffer(r.value);
    if (b.length) {
      this.chunks.push(b);
      this.available += b.length;
    }
    return true;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length > n) {
      out = first.subarray(0, n);
      this.chunks[0] = first.subarray(n);
    } else if (first.length === n) {
      out = first;
      this.chunks.shift();
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - filled);
        c.copy(out, filled, 0, k);
        filled += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.available -= n;
    this.offset += n;
    return out;
  }

  /** Exactly n bytes; null when the input ends before the first of them; throws `partial` when it ends midway. */
  async readExact(n: number): Promise<Buffer | null> {
    if (n === 0) return Buffer.alloc(0); // (an empty pax header): nothing to take, even when no chunk is buffered
    while (this.available < n) {
      if (!(await this.fill())) {
        if (this.available === 0) return null;
        const got = this.available;
        const err = new Error(`input ended after ${got} of ${n} bytes`) as Error & { partial: number };
        err.partial = got;
        throw err;
      }
    }
    return this.take(n);
  }

  /** Between 1 and max bytes, whatever is cheapest; null at the end of the input. */
  async readSome(max: number): Promise<Buffer | null> {
    while (this.available === 0) {
      if (!(await this.fill())) return null;
    }
    return this.take(Math.min(max, this.available, this.chunks[0]!.length));
  }

  /** Skips n bytes; returns how many could be skipped before the input ended. */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      const b = await this.readSome(left);
      if (!b) break;
      left -= b.length;
    }
    return n - left;
  }

  /** Reads and discards everything up to the end of the input. */
  async drainToEnd(): Promise<void> {
    this.offset += this.available;
    this.chunks = [];
    this.available = 0;
    while (await this.fill()) {
      this.offset += this.available;
      this.chunks = [];
      this.available = 0;
    }
  }

  /** Stops pulling from the input (lets its producer clean up). */
  async close(): Promise<void> {
    if (!this.ended && this.it.return) {
      this.ended = true;
      await this.it.return();
    }
  }
}
