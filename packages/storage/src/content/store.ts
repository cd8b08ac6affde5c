// The content store: an OCI image layout directory (oci-layout, index.json, blobs/sha256/<hex>).
// Blobs are written through `ingest/<random>` staging files (fsync, then rename into place) and
// verified against their digest on every read. index.json belongs to the image store.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as native from '@tsbuild/native';
import { fsyncDir, mkdirpSync, writeFileAtomic } from '../atomic';
import {
  DigestMismatchError,
  digestHex,
  parseDigest,
  sha256OfBuffer,
  verifyingStream,
  type Digest,
} from '../digest';
import { MediaTypes, type Descriptor, type LayerBlobSource } from './types';
import { createHash, randomBytes } from '@tsbuild/native';

export const OCI_LAYOUT_FILE = 'oci-layout';
export const OCI_LAYOUT_VERSION = '1.0.0';
export const INDEX_FILE = 'index.json';
const INGEST_DIR = 'ingest';

export interface ContentStoreOptions {
  /** Produces built layers' tars when a manifest names a layer blob that is not on disk yet. */
  layerSource?: LayerBlobSource | undefined;
}

/** A staged blob write. Write to `stream`, then `commit` (which ends the stream if needed) or `abort`. */
export interface IngestWriter {
  readonly stream: Writable;
  /** Bytes written so far. */
  readonly bytes: number;
  /**
   * Verifies (when `expected` is given), fsyncs and renames the blob into place; `onCreated` hears
   * when the blob was not there before.
   */
  commit(expected?: Digest, mediaType?: string, onCreated?: OnCreated): Promise<Descriptor>;
  abort(): Promise<void>;
}

/** Told the digest of a blob a write put into the store (one that was not there before). */
export type OnCreated = (d: Digest) => void;

/** Writes into an fd while hashing; fsyncs in _final so that commit only has to rename. */
class StagingWritable extends Writable {
  readonly hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly fh: fsp.FileHandle) {
    super({ highWaterMark: 1 << 20 });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    writeAll(this.fh, chunk).then(() => cb(), cb);
  }
  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    const bufs = chunks.map((c) => c.chunk);
    for (const b of bufs) {
      this.hash.update(b);
      this.bytes += b.length;
    }
    writeAll(this.fh, Buffer.concat(bufs)).then(() => cb(), cb);
  }
  override _final(cb: (err?: Error | null) => void): void {
    this.fh.sync().then(() => cb(), cb);
  }
}

async function writeAll(fh: fsp.FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

export class ContentStore {
  private layerSource: LayerBlobSource | undefined;
  private readonly materializing = new Map<Digest, Promise<Descriptor | null>>();

  private constructor(
    /** The OCI layout directory. */
    readonly dir: string,
    opts: ContentStoreOptions,
  ) {
    this.layerSource = opts.layerSource;
  }

  /** Opens (creating if missing) the layout at `dir` and removes staging files left by a crash. */
  static async open(dir: string, opts: ContentStoreOptions = {}): Promise<ContentStore> {
    const store = new ContentStore(path.resolve(dir), opts);
    await store.init();
    return store;
  }

  setLayerSource(source: LayerBlobSource | undefined): void {
    this.layerSource = source;
  }

  get blobsDir(): string {
    return path.join(this.dir, 'blobs', 'sha256');
  }

  get ingestDir(): string {
    return path.join(this.dir, INGEST_DIR);
  }

  get indexPath(): string {
    return path.join(this.dir, INDEX_FILE);
  }

  /** The file that holds blob `d` (it may not exist). */
  blobPath(d: Digest): string {
    return path.join(this.blobsDir, digestHex(parseDigest(d)));
  }

  private async init(): Promise<void> {
    // Synchronous: a few small files every command opens (a pool round trip each costs more).
    mkdirpSync(this.blobsDir);
    mkdirpSync(this.ingestDir);
    const layoutFile = path.join(this.dir, OCI_LAYOUT_FILE);
    try {
      const layout = JSON.parse(fs.readFileSync(layoutFile, 'utf8'));
      if (layout?.imageLayoutVersion !== OCI_LAYOUT_VERSION) {
        throw new Error(`${layoutFile}: unsupported imageLayoutVersion ${JSON.stringify(layout?.imageLayoutVersion)}`);
      }
    } catch (err) {
      if (!isNotFound(err)) {
        if (err instanceof SyntaxError) throw new Error(`${layoutFile} is not valid JSON: ${err.message}`);
        throw err;
      }
      await writeFileAtomic(layoutFile, JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
    }
    if (!fs.existsSync(this.indexPath)) {
      await writeFileAtomic(this.indexPath, JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] }));
    }
    await this.removeStaleIngests();
  }

  /**
   * Removes staging files whose writer is gone. A live writer holds an flock on its staging file, so
   * one we can lock belongs to a crashed process.
   */
  async removeStaleIngests(): Promise<number> {
    let removed = 0;
    for (const name of fs.readdirSync(this.ingestDir)) {
      const file = path.join(this.ingestDir, name);
      let fd: number;
      try {
        fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
      } catch (err) {
        if (isNotFound(err)) continue;
        if ((err as NodeJS.ErrnoException).code === 'ELOOP' || (err as NodeJS.ErrnoException).code === 'EISDIR') {
          await fsp.rm(file, { recursive: true, force: true });
          removed++;
          continue;
        }
        throw err;
      }
      try {
        if (native.flock(fd, 'exclusive', { nonBlocking: true })) {
          await fsp.rm(file, { recursive: true, force: true });
          removed++;
        }
      } finally {
        fs.closeSync(fd);
      }
    }
    return removed;
  }

  async has(d: Digest): Promise<boolean> {
    try {
      await fsp.access(this.blobPath(d));
      return true;
    } catch {
      return false;
    }
  }

  /** Size of a stored blob; throws "blob ... not found" when absent. */
  async info(d: Digest): Promise<{ digest: Digest; size: number }> {
    try {
      const st = await fsp.stat(this.blobPath(d));
      return { digest: d, size: st.size };
    } catch (err) {
      if (isNotFound(err)) throw this.notFound(d);
      throw err;
    }
  }

  private notFound(d: Digest): Error {
    return Object.assign(new Error(`blob ${d} not found in ${this.dir}`), { code: 'ENOENT', digest: d });
  }

  /**
   * Streams a blob, verified against its digest: a corrupt blob errors at the end of the stream
   * naming the digest. A missing layer blob is first materialized through the layer source.
   */
  async open(d: Digest, opts: { size?: number } = {}): Promise<Readable> {
    parseDigest(d);
    let raw: fs.ReadStream;
    try {
      raw = await openReadStream(this.blobPath(d));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      if (!(await this.materialize(d))) throw this.notFound(d);
      raw = await openReadStream(this.blobPath(d));
    }
    const verify = verifyingStream(d, opts.size);
    raw.on('error', (err) => verify.destroy(err));
    verify.on('close', () => raw.destroy()); // a reader that stops early must not leak the fd
    return raw.pipe(verify);
  }

  /** Reads a whole blob into memory, verified. */
  async readBytes(d: Digest): Promise<Buffer> {
    let data: Buffer;
    try {
      data = await readWhole(this.blobPath(d));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      if (!(await this.materialize(d))) throw this.notFound(d);
      data = await readWhole(this.blobPath(d));
    }
    const actual = sha256OfBuffer(data);
    if (actual !== d) throw new DigestMismatchError(d, actual);
    return data;
  }

  async readJson<T = unknown>(d: Digest): Promise<T> {
    const data = await this.readBytes(d);
    try {
      return JSON.parse(data.toString('utf8')) as T;
    } catch (err) {
      throw new Error(`blob ${d} is not valid JSON: ${(err as Error).message}`);
    }
  }

  /** Starts a staged write. The staging file is flocked so that removeStaleIngests leaves it alone. */
  async ingest(): Promise<IngestWriter> {
    for (;;) {
      const file = path.join(this.ingestDir, randomBytes(12).toString('hex'));
      const fh = await fsp.open(file, 'wx', 0o644);
      // Between open and flock a cleaner may have locked or removed the file: then start over.
      const locked = native.flock(fh.fd, 'exclusive', { nonBlocking: true });
      if (locked && (await fh.stat()).nlink > 0) return this.makeWriter(file, fh);
      await fh.close();
    }
  }

  private makeWriter(file: string, fh: fsp.FileHandle): IngestWriter {
    const stream = new StagingWritable(fh);
    let done = false;
    const cleanup = async () => {
      done = true;
      await fh.close().catch(() => {});
      await fsp.rm(file, { force: true });
    };
    const finished = new Promise<void>((resolve, reject) => {
      stream.once('finish', resolve);
      stream.once('error', reject);
    });
    finished.catch(() => {});
    return {
      stream,
      get bytes() {
        return stream.bytes;
      },
      commit: async (expected?: Digest, mediaType: string = MediaTypes.octetStream, onCreated?: OnCreated): Promise<Descriptor> => {
        if (done) throw new Error('ingest: already committed or aborted');
        try {
          if (!stream.writableEnded) stream.end();
          await finished;
          const digest: Digest = `sha256:${stream.hash.digest('hex')}`;
          if (expected !== undefined && digest !== expected) throw new DigestMismatchError(parseDigest(expected), digest);
          const size = stream.bytes;
          const target = this.blobPath(digest);
          // Content-addressed: if the blob is already there, it is the same bytes.
          if (!fs.existsSync(target)) {
            await fsp.rename(file, target);
            await fsyncDir(this.blobsDir);
            onCreated?.(digest);
          }
          await cleanup();
          return { mediaType, digest, size };
        } catch (err) {
          await cleanup();
          throw err;
        }
      },
      abort: async () => {
        if (done) return;
        stream.destroy();
        await cleanup();
      },
    };
  }

  /** Stores everything `source` yields; verified against `expected` when given. */
  async putStream(source: Readable | AsyncIterable<Buffer>, expected?: Digest, mediaType?: string, onCreated?: OnCreated): Promise<Descriptor> {
    const w = await this.ingest();
    try {
      await pipeline(source, w.stream);
    } catch (err) {
      await w.abort();
      throw err;
    }
    return w.commit(expected, mediaType, onCreated);
  }

  async putBytes(data: Buffer | string, mediaType: string = MediaTypes.octetStream, expected?: Digest, onCreated?: OnCreated): Promise<Descriptor> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    const digest = sha256OfBuffer(buf);
    if (expected !== undefined && digest !== expected) throw new DigestMismatchError(parseDigest(expected), digest);
    if (!(await this.has(digest))) {
      const w = await this.ingest();
      w.stream.write(buf);
      return w.commit(digest, mediaType, onCreated);
    }
    return { mediaType, digest, size: buf.length };
  }

  /** Stores `obj` as canonical JSON (no spaces, keys in the order the object was built). */
  putJson(obj: unknown, mediaType: string, onCreated?: OnCreated): Promise<Descriptor> {
    return this.putBytes(Buffer.from(JSON.stringify(obj)), mediaType, undefined, onCreated);
  }

  /**
   * Writes a built layer's blob from the layer source (staged and verified), if the source knows
   * `diffID`. Returns the descriptor, or null when there is no source or the source does not know it.
   */
  async materialize(diffID: Digest): Promise<Descriptor | null> {
    if (await this.has(diffID)) return { mediaType: MediaTypes.ociLayer, ...(await this.info(diffID)) };
    const pending = this.materializing.get(diffID);
    if (pending) return pending;
    const p = this.materializeOnce(diffID).finally(() => this.materializing.delete(diffID));
    this.materializing.set(diffID, p);
    return p;
  }

  private async materializeOnce(diffID: Digest): Promise<Descriptor | null> {
    const opened = this.layerSource?.openLayerTar(diffID);
    if (!opened) return null;
    const stream = await opened;
    try {
      return await this.putStream(stream, diffID, MediaTypes.ociLayer);
    } catch (err) {
      if (err instanceof DigestMismatchError) {
        throw new Error(
          `layer ${diffID}: its tar was rebuilt from the diff directory but hashes to ${err.actual}; ` +
            `its files changed, or it came from elsewhere and its original blob is gone (tsbuild fsck tells which)`,
        );
      }
      throw err;
    }
  }

  async delete(d: Digest): Promise<boolean> {
    try {
      await fsp.unlink(this.blobPath(d));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Every stored blob. */
  async list(): Promise<Digest[]> {
    const names = await fsp.readdir(this.blobsDir);
    return names.filter((n) => /^[0-9a-f]{64}$/.test(n)).map((n) => `sha256:${n}` as Digest);
  }
}

/** Opens a read stream, surfacing ENOENT as a rejected promise instead of a later stream error. */
function openReadStream(file: string): Promise<fs.ReadStream> {
  return new Promise((resolve, reject) => {
    const s = fs.createReadStream(file, { highWaterMark: 1 << 20 });
    s.once('open', () => resolve(s));
    s.once('error', reject);
  });
}

/**
 * A file's bytes: manifests and configs (a few KB, several per command) synchronously, since a pool
 * round trip costs more than the read; anything larger through the pool.
 */
async function readWhole(file: string): Promise<Buffer> {
  const fd = fs.openSync(file, 'r');
  try {
    if (fs.fstatSync(fd).size > SMALL_READ_MAX) return await fsp.readFile(file);
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

const SMALL_READ_MAX = 256 * 1024;
