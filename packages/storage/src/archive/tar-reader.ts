// Streaming tar reader: ustar, pax (x and g), GNU long names (L/K), base-256 numbers, binary xattrs.
// Each entry's body is a Readable pulled straight from the input, so memory stays bounded.
import { Readable } from 'node:stream';
import { ByteSource, type ByteInput } from './byte-source';
import {
  BLOCK,
  LIBARCHIVE_XATTR_PREFIX,
  PAX_XATTR_PREFIX,
  decodeHeader,
  isHeaderOnlyType,
  isZeroBlock,
  paddingFor,
  parsePaxRecords,
  typeFromFlag,
  type RawHeader,
  type TarHeader,
} from './tar-format';
import { TsbuildError } from '../errors';
import { decodeName } from '../names';

export type { TarHeader } from './tar-format';

/** A malformed or truncated archive. `offset` is the byte offset where the problem was found. */
export class TarFormatError extends TsbuildError {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super('ETARFORMAT', message);
  }
}

export interface TarEntry {
  header: TarHeader;
  /** Offset of the entry's first header block (its pax/GNU headers included). */
  offset: number;
  /**
   * The content. Read it (or call drain()) before asking for the next entry; whatever is left unread
   * when the iteration moves on is skipped and the stream destroyed.
   */
  body: Readable;
  /** Skips the rest of the content. */
  drain(): Promise<void>;
}

export interface ReadTarOptions {
  /** Largest pax or GNU long-name header accepted (default 8 MiB). */
  maxMetaSize?: number;
  /**
   * Stop reading at the end-of-archive block instead of reading the input to its end (default false:
   * a layer's trailing blocks count for its digest). Image archives stop, as GNU tar does: what
   * follows (tape padding, junk after a compressed stream) is not read.
   */
  stopAtEnd?: boolean;
}

const BODY_CHUNK = 256 * 1024;

function truncated(offset: number, where: string): TarFormatError {
  return new TarFormatError(`unexpected end of tar stream at offset ${offset} (${where})`, offset);
}

class EntryBody extends Readable {
  private pending: Promise<void> | null = null;
  remaining: number;

  constructor(
    private readonly src: ByteSource,
    size: number,
    private readonly entryName: string,
  ) {
    super();
    this.remaining = size;
  }

  override _read(): void {
    if (this.remaining === 0) {
      this.push(null);
      return;
    }
    this.pending = this.src.readSome(Math.min(this.remaining, BODY_CHUNK)).then(
      (chunk) => {
        this.pending = null;
        if (!chunk) {
          this.destroy(truncated(this.src.offset, `in the content of "${this.entryName}"`));
          return;
        }
        this.remaining -= chunk.length;
        if (this.destroyed) return;
        this.push(chunk);
        if (this.remaining === 0) this.push(null);
      },
      (err: unknown) => {
        this.pending = null;
        this.destroy(err as Error);
      },
    );
  }

  /** Skips whatever the consumer did not read; the stream ends (or is destroyed if data was left). */
  async skipRest(): Promise<void> {
    if (this.pending) await this.pending;
    if (this.remaining > 0) {
      const want = this.remaining;
      this.remaining = 0;
      if (!this.destroyed) this.destroy();
      const skipped = await this.src.skip(want);
      if (skipped < want) throw truncated(this.src.offset, `in the content of "${this.entryName}"`);
    }
  }
}

async function readMeta(src: ByteSource, raw: RawHeader, at: number, max: number): Promise<Buffer> {
  if (raw.size > max) {
    throw new TarFormatError(`tar header at offset ${at}: a '${raw.typeflag}' header of ${raw.size} bytes is larger than the limit of ${max}`, at);
  }
  let data: Buffer | null;
  try {
    data = await src.readExact(raw.size + paddingFor(raw.size));
  } catch (err) {
    if ((err as { partial?: number }).partial === undefined) throw err;
    data = null;
  }
  if (!data && raw.size > 0) throw truncated(src.offset, `in a '${raw.typeflag}' header`);
  return (data ?? Buffer.alloc(0)).subarray(0, raw.size);
}

/** A GNU long name: the bytes up to the first NUL. */
function cString(data: Buffer): string {
  const nul = data.indexOf(0);
  return decodeName(data.subarray(0, nul < 0 ? data.length : nul));
}

function paxInteger(key: string, value: string, at: number): number {
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new TarFormatError(`invalid pax header at offset ${at}: ${key}=${JSON.stringify(value)} is not a valid number`, at);
  }
  return Number(value);
}

/** Pax records that override a header field, by the field they set (mtime may be fractional: below). */
const PAX_TEXT_FIELDS = new Map<string, 'name' | 'linkname' | 'uname' | 'gname'>([
  ['path', 'name'],
  ['linkpath', 'linkname'],
  ['uname', 'uname'],
  ['gname', 'gname'],
]);
const PAX_INTEGER_FIELDS = new Map<string, 'uid' | 'gid' | 'size' | 'devmajor' | 'devminor'>([
  ['uid', 'uid'],
  ['gid', 'gid'],
  ['size', 'size'],
  ['SCHILY.devmajor', 'devmajor'],
  ['SCHILY.devminor', 'devminor'],
]);

function applyPax(h: TarHeader, records: Array<[string, Buffer]>, at: number): void {
  for (const [key, raw] of records) {
    // UTF-8 by the standard, raw bytes with hdrcharset=BINARY: decoded losslessly either way
    const value = decodeName(raw);
    h.pax[key] = value;
    if (key.startsWith(PAX_XATTR_PREFIX)) {
      h.xattrs.set(key.slice(PAX_XATTR_PREFIX.length), raw);
      continue;
    }
    if (key.startsWith(LIBARCHIVE_XATTR_PREFIX)) {
      // libarchive: URL-encoded name, base64 value
      let name: string;
      try {
        name = decodeURIComponent(key.slice(LIBARCHIVE_XATTR_PREFIX.length));
      } catch {
        throw new TarFormatError(`invalid pax header at offset ${at}: ${JSON.stringify(key)} is not a URL-encoded xattr name`, at);
      }
      h.xattrs.set(name, Buffer.from(value, 'base64'));
      continue;
    }
    if (key.startsWith('GNU.sparse.')) {
      throw new TarFormatError(`unsupported tar entry at offset ${at}: GNU sparse files are not supported`, at);
    }
    const text = PAX_TEXT_FIELDS.get(key);
    if (text) {
      h[text] = value;
      continue;
    }
    const integer = PAX_INTEGER_FIELDS.get(key);
    if (integer) {
      h[integer] = paxInteger(key, value, at);
      continue;
    }
    if (key === 'mtime') {
      if (!/^-?[0-9]+(\.[0-9]*)?$/.test(value)) {
        throw new TarFormatError(`invalid pax header at offset ${at}: mtime=${JSON.stringify(value)}`, at);
      }
      h.mtime = Number(value);
    }
  }
}

/**
 * Iterates the entries of an uncompressed tar stream. Stops at the first zero block and then reads
 * the input to its end (trailing blocks count for digests). Errors: TarFormatError with
 * "invalid tar header at offset N" or "unexpected end of tar stream at offset N".
 */
export async function* readTar(input: Readable | ByteInput, opts: ReadTarOptions = {}): AsyncGenerator<TarEntry> {
  const maxMeta = opts.maxMetaSize ?? 8 * 1024 * 1024;
  const src = new ByteSource(input as ByteInput);
  let globalPax: Array<[string, Buffer]> = [];
  let localPax: Array<[string, Buffer]> = [];
  let longName: string | null = null;
  let longLink: string | null = null;
  let entryStart: number | null = null;
  let completed = false;
  try {
    for (;;) {
      const at = src.offset;
      let block: Buffer | null;
      try {
        block = await src.readExact(BLOCK);
      } catch (err) {
        if ((err as { partial?: number }).partial !== undefined) throw truncated(src.offset, 'in a header block');
        throw err;
      }
      if (!block) {
        if (entryStart !== null) throw truncated(at, 'after a pax or GNU long-name header');
        break;
      }
      if (isZeroBlock(block)) {
        if (opts.stopAtEnd) await src.close();
        else await src.drainToEnd();
        break;
      }
      let raw: RawHeader;
      try {
        raw = decodeHeader(block);
      } catch (err) {
        throw new TarFormatError(`invalid tar header at offset ${at}: ${(err as Error).message}`, at);
      }
      entryStart ??= at;
      switch (raw.typeflag) {
        case 'x':
        case 'g': {
          let records: Array<[string, Buffer]>;
          const data = await readMeta(src, raw, at, maxMeta);
          try {
            records = parsePaxRecords(data);
          } catch (err) {
            throw new TarFormatError(`invalid pax header at offset ${at}: ${(err as Error).message}`, at);
          }
          if (raw.typeflag === 'x') localPax = localPax.concat(records);
          else {
            globalPax = globalPax.concat(records);
            entryStart = null; // a global header stands alone
          }
          continue;
        }
        case 'L':
          longName = cString(await readMeta(src, raw, at, maxMeta));
          continue;
        case 'K':
          longLink = cString(await readMeta(src, raw, at, maxMeta));
          continue;
      }

      let name = raw.prefix ? `${raw.prefix}/${raw.name}` : raw.name;
      let typeflag = raw.typeflag;
      if (typeflag === '\0' && name.endsWith('/')) typeflag = '5'; // old tars mark dirs by the slash only
      const header: TarHeader = {
        name,
        type: typeFromFlag(typeflag),
        typeflag,
        mode: raw.mode,
        uid: raw.uid,
        gid: raw.gid,
        size: raw.size,
        mtime: raw.mtime,
        linkname: raw.linkname,
        devmajor: raw.devmajor,
        devminor: raw.devminor,
        uname: raw.uname,
        gname: raw.gname,
        xattrs: new Map(),
        pax: {},
      };
      if (longName !== null) header.name = longName;
      if (longLink !== null) header.linkname = longLink;
      applyPax(header, globalPax, at);
      applyPax(header, localPax, at);
      name = header.name;

      const start = entryStart;
      localPax = [];
      longName = null;
      longLink = null;
      entryStart = null;

      const bodySize = isHeaderOnlyType(header.type) ? 0 : header.size;
      const body = new EntryBody(src, bodySize, name);
      const finish = async (): Promise<void> => {
        await body.skipRest();
        const pad = paddingFor(bodySize);
        if (pad && (await src.skip(pad)) < pad) throw truncated(src.offset, `in the padding of "${name}"`);
      };
      let finished: Promise<void> | null = null;
      const once = (): Promise<void> => (finished ??= finish());
      yield { header, offset: start, body, drain: once };
      await once();
    }
    completed = true;
  } finally {
    // On an early exit, stop pulling the input so its producer can clean up.
    if (!completed) await src.close().catch(() => undefined);
  }
}

/** Convenience: every header of an archive, bodies skipped. */
export async function listTar(input: Readable | ByteInput): Promise<TarHeader[]> {
  const out: TarHeader[] = [];
  for await (const e of readTar(input)) {
    out.push(e.header);
    await e.drain();
  }
  return out;
}
