// Buffers in and out of streams.
import { Readable } from 'node:stream';

/** Everything a stream yields, as one Buffer. */
export async function collect(stream: AsyncIterable<Buffer | Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/** A byte stream of `buf`. */
export function bufferStream(buf: Buffer): Readable {
  return Readable.from([buf], { objectMode: false });
}
