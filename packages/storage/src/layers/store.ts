// The layer store: committed layers keyed by chainID, RW layers by name, files kept by a graph driver.
// On-disk layout (Docker's layerdb shape, plain files):
//   <root>/layers/sha256/<chainHex>/diff      "sha256:<diffID>"
//   <root>/layers/sha256/<chainHex>/parent    parent chainID (absent for a base layer)
//   <root>/layers/sha256/<chainHex>/size      bytes of the uncompressed tar
//   <root>/layers/sha256/<chainHex>/cache-id  the driver's id for the layer's files (absent while lazy)
//   <root>/layers/sha256/<chainHex>/remote    a lazily held layer (a shared build cache's hit): where its
//                                             blob is (`{"location":"registry:REF"|"local:DIR","blob":…}`);
//                                             without cache-id the files are not fetched yet
//   <root>/layers/sha256/<chainHex>/clamp-mtime  SOURCE_DATE_EPOCH the tar was made with (only when set)
//   <root>/layers/sha256/<chainHex>/rebuildable  present when the tar is our own packing of the diff
//                                             directory (built layers), so fsck can rebuild and compare
//   <root>/layers/sha256/<chainHex>/tree-digest  other layers: the digest of our packing of the diff
//                                             directory, once fsck found it equal to the original tar's
//   <root>/layers/mounts/<name>/{mount-id,init-id,parent}   RW layers (init-id only with an init layer)
//   <root>/layers/mounts.json                 mount refcounts per driver id and holder process
//   <root>/layers/tmp/<pid>.<start>-<rand>/   staging (and trash, and markers) owned by a process
//   <root>/layers/repaired                    stamp of the last full repair (format and boot id)
//   <root>/layers/layers.lock                 the store lock (flock)
// Crash safety: every layer and RW entry is assembled in tmp/ and renamed into place; removal renames
// into tmp/ first. A lazy layer is fetched (ensurePresent) into a driver layer staged under tmp/, verified
// against its blob digest and diffID, and becomes present when its cache-id is renamed into its metadata
// directory; a crash before that leaves a staged entry and an orphan driver layer that open removes.
// The blob is downloaded first, verified against its digest into the image store's content
// (RemoteHooks.keep), extracted from there and recorded as the layer's compressed form before the layer
// becomes present: a fetched layer no longer depends on its cache.
// The full repair, under the lock: tmp/ entries of dead processes are deleted, driver layers no metadata
// refers to are removed, stale mounts are unmounted, dead holders' mount counts dropped, and every
// committed layer's driver commit is re-applied. It costs a look at every layer, so open runs it only
// on evidence (repairReason): every change a kill -9 can tear runs while an entry of its process is in
// tmp/ (a staging dir, a trash dir, or an empty marker dir around a window that has neither: a publish
// from its rename to the driver's commit, an unmount from its count to the unmount, the full repair),
// and a held mount is a count in mounts.json. An entry or a count of a dead process, a driver's own
// leftover (Driver.needsRepair) or a missing or old `layers/repaired` stamp (written by a full repair
// with the boot id: stores of older versions, and markers that a power loss may not have kept) makes
// open repair in full; otherwise open only reads tmp/, mounts.json and the stamp. fsck and repairNow
// always repair in full.
//
// Liveness: one model, reachability. A committed layer lives while a root reaches it (its chain or a
// chain above it); Store.collectLayers (store.ts) marks from the roots under this store's lock and
// removes the rest, children first. The roots, all read from disk by storage itself (no caller has
// to pass them):
//   - images: the top chain of every image in the image store's index.json;
//   - RW layers: the parent of every entry under mounts/ (containers, build steps in progress);
//   - build-cache records: the chain every <root>/builder/cache record names (cache/store.ts), until
//     `builder prune` or `tsbuild prune` drops the record;
//   - leases: chains held by live processes (<root>/leases, lease.ts), e.g. a build between
//     committing a layer and writing its image; a dead process's lease is no root.
// Lazy layers are layers for all of this: roots reach them, the sweep removes them (no files to drop).
// Besides, remove() refuses a layer with children or mounts. There are no reference counts: a count
// cannot survive a kill -9 consistently, a sweep is always right. (Layers of older stores may still
// hold a `refs` file; nothing reads it.)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestMismatchError, HashingStream, digestHex, isDigest, settleQuietly, sha256OfBuffer, verifyingStream, type Digest } from '../digest';
import { StoreLock } from '../lock';
import type { LayerBlobSource } from '../content/types';
import type { LayerImporter } from '../transport/load';
import { defaultWarn, readTextOrNull, type DriverOptions } from '../drivers/base';
import { randomLayerId } from '../drivers/ids';
import { detach } from '../drivers/perform';
import { isAlive, ownedName, ownerIsGone, ownerOf } from '../drivers/proc';
import { openDriver, type DriverChoice } from '../drivers/select';
import type { Driver, RepairReport } from '../drivers/types';
import { MountState } from './mountstate';
import {
  DiffIDMismatchError, LayerNotFoundError, type CommitOptions, type CreateRWOptions, type Layer, type RemoteLayer, type RWLayer,
} from './types';
import { decompress } from '../archive/decompress';
import { TsbuildError, withContext } from '../errors';
import { checkDescriptor } from '../image/decode';
import { chainInto } from '../image/local';
import { mkdirpSync, writeFileAtomic } from '../atomic';
import { TarContentCounter } from '../archive/content-size';
import { randomBytes } from '@tsbuild/native';

/** The sha256 of everything a stream yields. */
async function digestOfStream(stream: Readable): Promise<Digest> {
  const hash = new HashingStream();
  await pipeline(stream, hash, new Writable({ write: (_c, _e, cb) => cb() }));
  return hash.digest();
}

/** The OCI chainID of a layer with diffID `diffID` on top of the chain `parent`. */
export function chainID(parent: Digest | null, diffID: Digest): Digest {
  return parent === null ? diffID : sha256OfBuffer(`${parent} ${diffID}`);
}

export interface LayerStoreOptions extends DriverOptions {
  /** A driver instance, or which one to open under the same root (default 'auto'). */
  driver?: Driver | DriverChoice;
  /** Repair what a crash left at open (default true; fsck looks first, then calls repairNow). */
  repair?: boolean;
}

/** Opens a lazy layer's blob as its location holds it (compressed), verified against its digest. */
export type RemoteBlobOpener = (remote: RemoteLayer) => Promise<Readable>;

/** A fetched blob stored by the layer store's owner (verified against its digest), not yet recorded. */
export interface KeptBlob {
  /** Reads the stored copy (what the layer is extracted from). */
  open(): Promise<Readable>;
  /** Records it as the layer's compressed form, once the extraction matched the diffID. */
  record(): Promise<void>;
  /** Removes it again when the fetch fails (unless it was stored before). */
  discard(): Promise<void>;
}

/**
 * What the layer store asks of its owner around a lazy layer's fetch (Store.open sets them): `open`
 * reads the blob where it is; `keep` downloads it through `open` into the owner's content store,
 * verified against its digest, before anything is extracted: the fetched layer then has its own
 * compressed form, and saves and pushes no longer need the cache.
 */
export interface RemoteHooks {
  open: RemoteBlobOpener;
  keep?: (layer: Layer, open: () => Promise<Readable>) => Promise<KeptBlob>;
}

/** A `remote` metadata file, or undefined when it is not one (then the layer is torn). */
function parseRemote(text: string | null): RemoteLayer | undefined {
  if (text === null) return undefined;
  try {
    const doc = JSON.parse(text) as { location?: unknown; blob?: unknown };
    if (typeof doc.location !== 'string' || !/^(registry|local):./.test(doc.location)) return undefined;
    const blob = checkDescriptor(doc.blob, 'remote blob');
    return { location: doc.location, blob: { mediaType: blob.mediaType, digest: blob.digest, size: blob.size } };
  } catch {
    return undefined;
  }
}

/**
 * A remote blob decompressed, verified against the diffID the cache paired it with; a mismatch names
 * the blob and where it is (not the diff directory, which the generic materialize message blames).
 */
function verifiedRemoteTar(blob: Readable, diffID: Digest, remote: RemoteLayer): Readable {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const head = `layer ${diffID}: blob ${remote.blob.digest} from ${remote.location}`;
  chainInto(out, [decompress(blob), verifyingStream(diffID)], (err) =>
    err instanceof DigestMismatchError && err.expected === diffID
      ? new TsbuildError('EDIGEST', `${head} does not decompress to its diff_id: its tar hashes to ${err.actual}`, { cause: err })
      : new TsbuildError('EDIGEST', `${head}: ${err.message}`, { cause: err }));
  return out;
}

/** What LayerStore.checkDiff found about a layer's diff directory. */
export type DiffCheck =
  /** It gives the layer's tar again, or the same tree as its original tar extracted afresh. */
  | 'ok'
  /** It differs from what the diffID names. */
  | 'changed'
  /** It was changed and has been replaced by a fresh extraction of the original tar. */
  | 'repaired'
  /** Not a tar we can rebuild (imported, loaded, pulled) and no original tar to compare with. */
  | 'unverifiable';

/** What the last open() repaired (for logs and tests). */
export interface StoreRepairReport extends RepairReport {
  /** Why the full repair ran (null: open found no evidence and looked at no layer). */
  reason: string | null;
  /** Staged or half-removed metadata dirs deleted. */
  staging: string[];
  /** Driver layers that no metadata referred to, removed. */
  orphans: string[];
  /** Mount counts dropped (dead holders, mounts that vanished). */
  droppedMounts: string[];
}

function emptyReport(reason: string | null): StoreRepairReport {
  return { reason, unmounted: [], relinked: [], removed: [], staging: [], orphans: [], droppedMounts: [] };
}

/** What the stamp says: the marker format (bump it when a window changes) and this boot. */
function stampText(): string | null {
  try {
    return `markers 1 boot ${fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}\n`;
  } catch {
    return null; // no boot id: no proof that markers survived, so every open repairs in full
  }
}

const HEX64 = /^[0-9a-f]{64}$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** A small file written and fsynced (its directory is fsynced by the rename that publishes it). */
function writeSynced(file: string, data: string): void {
  const fd = fs.openSync(file, 'w', 0o644);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** A small file of a throwaway record: written, not fsynced. */
function writeUnsynced(file: string, data: string): void {
  fs.writeFileSync(file, data, { mode: 0o644 });
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

interface RWEntry {
  name: string;
  mountId: string;
  initId: string | null;
  parent: Digest | null;
}

export class LayerStore implements LayerBlobSource, LayerImporter {
  /** <root>/layers */
  readonly dir: string;
  readonly lock: StoreLock;
  /** Set when the driver choice fell back (overlay unsupported): print it. */
  readonly notice?: string;
  /** What open() found and fixed. */
  lastRepair: StoreRepairReport = emptyReport(null);
  private readonly mountState: MountState;
  private readonly cache = new Map<Digest, Layer>();
  private remoteHooks: RemoteHooks | undefined;
  /** Lazy layers this process is fetching: a second caller waits for the same fetch (and, if it fails, fetches itself). */
  private readonly fetching = new Map<Digest, Promise<void>>();

  private constructor(
    readonly root: string,
    readonly driver: Driver,
    notice: string | undefined,
    private readonly warn: (message: string) => void,
  ) {
    this.dir = path.join(root, 'layers');
    this.lock = new StoreLock(path.join(this.dir, 'layers.lock'));
    this.mountState = new MountState(path.join(this.dir, 'mounts.json'), path.join(this.dir, 'tmp'));
    if (notice) this.notice = notice;
    driver.setMountCounter(this.mountState);
  }

  /** Opens (creating) the store at `root`, takes the lock and repairs what a crash left (on evidence of one). */
  static async open(root: string, opts: LayerStoreOptions = {}): Promise<LayerStore> {
    const abs = path.resolve(root);
    for (const d of ['sha256', 'mounts', 'tmp']) mkdirpSync(path.join(abs, 'layers', d), 0o700);
    let driver: Driver;
    let notice: string | undefined;
    if (opts.driver && typeof opts.driver === 'object') {
      driver = opts.driver;
      if (path.resolve(driver.root) !== abs) {
        throw new Error(`layer store at ${abs}: the ${driver.name} driver lives under ${driver.root}, not the store root`);
      }
    } else {
      ({ driver, notice } = openDriver(abs, { driver: opts.driver, warn: opts.warn }));
    }
    const store = new LayerStore(abs, driver, notice, opts.warn ?? defaultWarn);
    if (opts.repair !== false) {
      await store.lock.withExclusive(async () => {
        const reason = store.repairReason();
        if (reason === null) store.lastRepair = emptyReport(null);
        else await store.repair(reason);
      });
    }
    return store;
  }

  /** Repairs in full what a crash left (what open does on evidence of one); the report is in lastRepair. */
  repairNow(): Promise<void> {
    return this.lock.withExclusive(() => this.repair('asked'));
  }

  private get stampFile(): string {
    return path.join(this.dir, 'repaired');
  }

  /**
   * Why open must repair in full, or null. Reads tmp/, mounts.json, the stamp and the driver's own
   * leftovers: nothing here grows with the number of layers.
   */
  private repairReason(): string | null {
    const stamp = stampText();
    if (stamp === null || readTextOrNull(this.stampFile) !== stamp.trim()) return 'no stamp of a full repair since boot';
    const dead = fs.readdirSync(path.join(this.dir, 'tmp')).find(ownerIsGone);
    if (dead !== undefined) return `unfinished work of a dead process: tmp/${dead}`;
    if (this.mountState.needsRepair()) return 'mount counts of a dead process';
    if (this.driver.needsRepair()) return `leftovers in ${this.driver.name}`;
    return null;
  }

  // ---- paths and metadata ----

  private layerDir(chain: Digest): string {
    return path.join(this.dir, 'sha256', digestHex(chain));
  }

  private rwDir(name: string): string {
    return path.join(this.dir, 'mounts', name);
  }

  /** A fresh dir in tmp/, named after this process so that repair leaves it alone while we live. */
  private newTmp(kind: string): string {
    const p = path.join(this.dir, 'tmp', ownedName(`${kind}-${randomBytes(8).toString('hex')}`));
    fs.mkdirSync(p, { mode: 0o700 });
    return p;
  }

  private readLayer(chain: Digest): Layer | null {
    const cached = this.cache.get(chain);
    // A lazy layer is read afresh: another process may have fetched it since.
    if (cached?.present && fs.existsSync(this.layerDir(chain))) return cached;
    this.cache.delete(chain);
    const dir = this.layerDir(chain);
    const diff = readTextOrNull(path.join(dir, 'diff'));
    const cacheId = readTextOrNull(path.join(dir, 'cache-id'));
    const remote = parseRemote(readTextOrNull(path.join(dir, 'remote')));
    if (diff === null || (cacheId === null && remote === undefined)) return null;
    const parent = readTextOrNull(path.join(dir, 'parent'));
    const clamp = readTextOrNull(path.join(dir, 'clamp-mtime'));
    const contentSize = readTextOrNull(path.join(dir, 'content-size'));
    const layer: Layer = {
      chainID: chain,
      diffID: diff as Digest,
      parent: parent ? (parent as Digest) : null,
      size: Number(readTextOrNull(path.join(dir, 'size')) ?? 0),
      cacheId: cacheId ?? '',
      present: cacheId !== null,
      ...(remote ? { remote } : {}),
      ...(clamp ? { clampMtime: Number(clamp) } : {}),
      ...(contentSize !== null ? { contentSize: Number(contentSize) } : {}),
    };
    this.cache.set(chain, layer);
    return layer;
  }

  has(chain: Digest): boolean {
    return isDigest(chain) && this.readLayer(chain) !== null;
  }

  /** The layer with this chainID; throws LayerNotFoundError. */
  get(chain: Digest): Layer {
    if (!isDigest(chain)) throw new Error(`invalid chainID ${JSON.stringify(chain)}`);
    const layer = this.readLayer(chain);
    if (!layer) throw new LayerNotFoundError(chain);
    return layer;
  }

  /** Every committed layer, sorted by chainID. */
  list(): Layer[] {
    const out: Layer[] = [];
    for (const hex of fs.readdirSync(path.join(this.dir, 'sha256')).sort()) {
      if (!HEX64.test(hex)) continue;
      const layer = this.readLayer(`sha256:${hex}`);
      if (layer) out.push(layer);
    }
    return out;
  }

  private readRW(name: string): RWEntry | null {
    const dir = this.rwDir(name);
    const mountId = readTextOrNull(path.join(dir, 'mount-id'));
    if (!mountId) return null;
    const parent = readTextOrNull(path.join(dir, 'parent'));
    return { name, mountId, initId: readTextOrNull(path.join(dir, 'init-id')) || null, parent: parent ? (parent as Digest) : null };
  }

  private rwEntries(): RWEntry[] {
    return fs
      .readdirSync(path.join(this.dir, 'mounts'))
      .filter((n) => NAME_RE.test(n))
      .map((n) => this.readRW(n))
      .filter((e): e is RWEntry => e !== null);
  }

  /** Layers being registered right now by live processes: their staged parent and driver ids. */
  private liveStaging(): Array<{ parent: Digest | null; ids: string[] }> {
    const out: Array<{ parent: Digest | null; ids: string[] }> = [];
    const tmp = path.join(this.dir, 'tmp');
    for (const name of fs.readdirSync(tmp)) {
      const owner = ownerOf(name);
      if (!owner || !isAlive(owner)) continue;
      const dir = path.join(tmp, name);
      const parent = readTextOrNull(path.join(dir, 'parent'));
      const ids = ['cache-id', 'mount-id', 'init-id'].map((f) => readTextOrNull(path.join(dir, f))).filter((x): x is string => !!x);
      out.push({ parent: parent ? (parent as Digest) : null, ids });
    }
    return out;
  }

  /** Committed layers, RW layers and in-flight registrations that sit directly on `chain`. */
  children(chain: Digest): number {
    let n = 0;
    for (const l of this.list()) if (l.parent === chain) n++;
    for (const rw of this.rwEntries()) if (rw.parent === chain) n++;
    for (const s of this.liveStaging()) if (s.parent === chain) n++;
    return n;
  }

  private isMountedId(id: string): boolean {
    return this.mountState.count(id) > 0 || (this.driver.exists(id) && this.driver.isMounted(id));
  }

  // ---- committed layers ----

  /**
   * Registers an uncompressed layer tar on top of `parent`: extracts it into a new driver layer,
   * hashing it on the way (diffID), then commits the metadata. When the chain already exists the new
   * copy is discarded. The layer lives while a root reaches it (see the header).
   */
  register(parent: Digest | null, tar: Readable): Promise<Layer> {
    return this.ingest(parent, () => tar);
  }

  /**
   * LayerImporter (transport/load.ts): registers the layer unless its chain exists (then `open` is never
   * called), and insists that the tar hashes to `diffID`. On a mismatch nothing is left behind.
   */
  async importLayer(parent: Digest | null, diffID: Digest, open: () => Readable): Promise<void> {
    await this.importLayerGet(parent, diffID, open);
  }

  /**
   * importLayer returning the layer. With `lease`, the layer (new or found) is leased under the lock,
   * so a sweep cannot take it before the image that will hold it is written (load, pull).
   */
  async importLayerGet(parent: Digest | null, diffID: Digest, open: () => Readable, lease?: CommitOptions['lease']): Promise<Layer> {
    const chain = chainID(parent, diffID);
    const existing = await this.lock.withExclusive(async () => {
      const found = this.readLayer(chain);
      if (found) await lease?.add(chain);
      return found;
    });
    if (existing) return existing;
    return this.ingest(parent, open, diffID, false, lease);
  }

  /** A LayerImporter whose layers `lease` holds until the caller releases it. */
  leasedImporter(lease: NonNullable<CommitOptions['lease']>): LayerImporter {
    return { importLayer: async (parent, diffID, open) => void (await this.importLayerGet(parent, diffID, open, lease)) };
  }

  private async ingest(
    parent: Digest | null,
    openTar: () => Readable,
    expected?: Digest,
    rebuildable = false,
    lease?: CommitOptions['lease'],
  ): Promise<Layer> {
    await this.ensurePresent(parent);
    const cacheId = randomLayerId();
    // Staged under the lock: from here on the parent counts this registration as a child.
    const { staging, parentCacheId } = await this.lock.withExclusive(() => {
      const parentCacheId = parent === null ? null : this.get(parent).cacheId;
      const staging = this.newTmp('layer');
      writeSynced(path.join(staging, 'cache-id'), cacheId);
      if (parent !== null) writeSynced(path.join(staging, 'parent'), parent);
      return { staging, parentCacheId };
    });
    try {
      await this.driver.create(cacheId, parentCacheId, {});
      const tar = settleQuietly(openTar());
      const counter = settleQuietly(new TarContentCounter());
      tar.on('error', (err) => counter.destroy(err));
      // A driver that gives up destroys the stream it read: release the source too.
      counter.on('close', () => {
        if (!tar.readableEnded) tar.destroy();
      });
      const { diffID, size } = await this.driver.applyDiff(cacheId, tar.pipe(counter));
      if (expected !== undefined && diffID !== expected) throw new DiffIDMismatchError(expected, diffID);
      return await this.publish(staging, parent, diffID, size, cacheId, {
        dedupe: () => this.driver.remove(cacheId),
        rebuildable,
        contentSize: counter.bytes,
        ...(lease ? { lease } : {}),
      });
    } catch (err) {
      // Once published (staging renamed away) the files belong to the layer: never discard them.
      if (fs.existsSync(staging)) await this.discard(staging, [cacheId]);
      throw err;
    }
  }

  /**
   * Under the lock: publishes the staged layer (or, when its chain already exists, returns the
   * existing one and calls `dedupe` to drop the new files).
   */
  private publish(
    staging: string,
    parent: Digest | null,
    diffID: Digest,
    size: number,
    cacheId: string,
    hooks: {
      dedupe: () => Promise<void>;
      check?: () => void;
      published?: () => Promise<void>;
      lease?: CommitOptions['lease'];
      clampMtime?: number;
      rebuildable?: boolean;
      /** Bytes of the files in the layer (docker's size), when counted. */
      contentSize?: number;
    },
  ): Promise<Layer> {
    const chain = chainID(parent, diffID);
    return this.lock.withExclusive(async () => {
      hooks.check?.();
      // Before it is visible, and for an existing chain too: that one may be unreferenced as well.
      await hooks.lease?.add(chain);
      const existing = this.readLayer(chain);
      if (existing) {
        await hooks.dedupe();
        await fs.promises.rm(staging, { recursive: true, force: true });
        return existing;
      }
      writeSynced(path.join(staging, 'cache-id'), cacheId);
      if (parent !== null) writeSynced(path.join(staging, 'parent'), parent);
      writeSynced(path.join(staging, 'diff'), diffID);
      writeSynced(path.join(staging, 'size'), String(size));
      if (hooks.contentSize !== undefined) writeSynced(path.join(staging, 'content-size'), String(hooks.contentSize));
      if (hooks.clampMtime !== undefined) writeSynced(path.join(staging, 'clamp-mtime'), String(hooks.clampMtime));
      // Empty: its existence is all it says, and the fsync of the directory below makes it durable.
      if (hooks.rebuildable) fs.writeFileSync(path.join(staging, 'rebuildable'), '');
      fsyncDir(staging);
      // From the rename to the driver's commit (and the RW entry's removal) nothing else is in tmp/:
      // the marker shows a crash in between, and the full repair re-commits and drops the entry.
      const window = this.newTmp('publish');
      fs.renameSync(staging, this.layerDir(chain));
      fsyncDir(path.join(this.dir, 'sha256'));
      // After the rename: a crash before it leaves a usable RW layer.
      await this.driver.commit(cacheId);
      await hooks.published?.();
      // Left in place when the commit failed: the next open after this process repairs in full.
      fs.rmdirSync(window);
      return this.get(chain);
    });
  }

  // ---- lazy layers ----

  /** How lazy layers' blobs are opened and kept (Store.open sets them: the transports know the locations). */
  setRemoteHooks(hooks: RemoteHooks): void {
    this.remoteHooks = hooks;
  }

  /**
   * Records a layer known from a shared build cache without its files: chain, diffID, size and where
   * its blob is. `hasLayer` is true for it; whatever needs its files calls ensurePresent, which
   * fetches them. The parent must exist (present or lazy). Leased before it is visible, as a commit.
   */
  registerRemote(parent: Digest | null, diffID: Digest, size: number, remote: RemoteLayer, opts: { lease?: CommitOptions['lease'] } = {}): Promise<Layer> {
    const chain = chainID(parent, diffID);
    return this.lock.withExclusive(async () => {
      await opts.lease?.add(chain);
      const existing = this.readLayer(chain);
      if (existing) return existing;
      if (parent !== null) this.get(parent);
      const staging = this.newTmp('remote');
      try {
        if (parent !== null) writeSynced(path.join(staging, 'parent'), parent);
        writeSynced(path.join(staging, 'diff'), diffID);
        writeSynced(path.join(staging, 'size'), String(size));
        writeSynced(path.join(staging, 'remote'), JSON.stringify(remote));
        fsyncDir(staging);
        fs.renameSync(staging, this.layerDir(chain));
      } catch (err) {
        await fs.promises.rm(staging, { recursive: true, force: true });
        throw err;
      }
      fsyncDir(path.join(this.dir, 'sha256'));
      return this.get(chain);
    });
  }

  /** LayerBlobSource: false for a lazy layer not fetched yet. */
  isPresent(chain: Digest): boolean {
    return !isDigest(chain) || (this.readLayer(chain)?.present ?? true);
  }

  /**
   * A lazy layer's remote blob for `diffID`: a compressed form pushes and saves reuse. With `lazyOnly`,
   * only while no layer of this diffID is present: once the files are here, the store serves the layer
   * from its own data, and a cache that is gone since cannot fail a save or push.
   */
  remoteForm(diffID: Digest, opts: { lazyOnly?: boolean } = {}): RemoteLayer | undefined {
    const layers = this.list().filter((l) => l.diffID === diffID);
    if (opts.lazyOnly && layers.some((l) => l.present)) return undefined;
    return layers.find((l) => l.remote)?.remote;
  }

  /** Opens a remote blob (compressed, verified against its digest). */
  openRemote(remote: RemoteLayer): Promise<Readable> {
    if (!this.remoteHooks) throw new TsbuildError('ENOLAYER', `blob ${remote.blob.digest} is at ${remote.location} and this store cannot fetch it`);
    return this.remoteHooks.open(remote);
  }

  /**
   * Makes sure the layer's files (and its parents') are on disk: a lazy layer's blob is fetched,
   * verified against its digest and its diffID while it is extracted into a staged driver layer, and
   * only then is the layer marked present. A failure leaves the layer lazy and nothing else behind.
   */
  async ensurePresent(chain: Digest | null, opts: { onFetch?: (layer: Layer) => void } = {}): Promise<void> {
    for (;;) {
      if (chain === null || this.get(chain).present) return;
      const running = this.fetching.get(chain);
      if (!running) break;
      // Another call's fetch runs with that call's registry options (Store.withRemoteAccess): its
      // failure (no credentials, say) is not ours, so this call then fetches with its own.
      await running.catch(() => undefined);
    }
    const fetch = this.fetch(this.get(chain), opts).finally(() => this.fetching.delete(chain));
    this.fetching.set(chain, fetch);
    await fetch;
  }

  private async fetch(layer: Layer, opts: { onFetch?: (layer: Layer) => void }): Promise<void> {
    await this.ensurePresent(layer.parent, opts);
    const remote = layer.remote!;
    opts.onFetch?.(layer);
    const cacheId = randomLayerId();
    const { staging, parentCacheId } = await this.lock.withExclusive(() => {
      const parentCacheId = layer.parent === null ? null : this.get(layer.parent).cacheId;
      const staging = this.newTmp('fetch');
      writeSynced(path.join(staging, 'cache-id'), cacheId);
      if (layer.parent !== null) writeSynced(path.join(staging, 'parent'), layer.parent);
      return { staging, parentCacheId };
    });
    let kept: KeptBlob | undefined;
    let recorded = false;
    try {
      await this.driver.create(cacheId, parentCacheId, {});
      const where = `blob ${remote.blob.digest} from ${remote.location}`;
      let openFailure: Error | undefined;
      const open = async () => {
        try {
          return await this.openRemote(remote);
        } catch (err) {
          throw (openFailure = new TsbuildError((err as { code?: string }).code ?? 'EFETCH', `layer ${layer.chainID}: cannot fetch ${where}: ${(err as Error).message}`, { cause: err }));
        }
      };
      let blob: Readable;
      try {
        if (this.remoteHooks?.keep) {
          kept = await this.remoteHooks.keep(layer, open);
          blob = await kept.open();
        } else {
          blob = await open();
        }
      } catch (err) {
        if (err === openFailure) throw err;
        throw new TsbuildError((err as { code?: string }).code ?? 'EFETCH', `layer ${layer.chainID}: ${where}: ${(err as Error).message}`, { cause: err });
      }
      // The driver may stop reading once it failed; a later error of the blob must not go uncaught.
      const counter = settleQuietly(new TarContentCounter());
      const tar = settleQuietly(decompress(blob));
      let tarBytes = 0;
      tar.on('data', (chunk: Buffer) => (tarBytes += chunk.length));
      tar.on('error', (err) => counter.destroy(err));
      counter.on('close', () => {
        if (!tar.readableEnded) tar.destroy();
      });
      let applied: { diffID: Digest };
      try {
        applied = await this.driver.applyDiff(cacheId, tar.pipe(counter));
      } catch (err) {
        throw new TsbuildError('EDIGEST', `layer ${layer.chainID}: ${where}: ${(err as Error).message}`, { cause: err });
      }
      if (applied.diffID !== layer.diffID) {
        throw new TsbuildError('EDIGEST', `layer ${layer.chainID}: ${where} does not match its diff_id ${layer.diffID}: its tar hashes to ${applied.diffID}`);
      }
      // The size is the cache record's claim, which the diffID does not cover; images built on the
      // layer name it with that size (a docker save announces it), so it must be the tar's.
      if (tarBytes !== layer.size) {
        throw new TsbuildError('EDIGEST', `layer ${layer.chainID}: ${where} is a tar of ${tarBytes} bytes; the cache record says ${layer.size}`);
      }
      // Recorded before the layer becomes present: a present fetched layer has its own compressed form.
      await kept?.record();
      recorded = true;
      await this.lock.withExclusive(async () => {
        const current = this.readLayer(layer.chainID);
        if (!current) throw new LayerNotFoundError(layer.chainID); // removed meanwhile: discarded below
        if (current.present) return; // another process fetched it first: ours is discarded below
        const dir = this.layerDir(layer.chainID);
        writeSynced(path.join(staging, 'content-size'), String(counter.bytes));
        fs.renameSync(path.join(staging, 'content-size'), path.join(dir, 'content-size'));
        // The rename of cache-id is what makes the layer present; until the driver's commit is done the
        // staging dir stays in tmp/, so a crash in between makes the next open repair (re-commit) in full.
        fs.renameSync(path.join(staging, 'cache-id'), path.join(dir, 'cache-id'));
        fsyncDir(dir);
        this.cache.delete(layer.chainID);
        await this.driver.commit(cacheId);
      });
    } finally {
      if (!recorded) await kept?.discard();
      if (this.readLayer(layer.chainID)?.cacheId === cacheId) await fs.promises.rm(staging, { recursive: true, force: true });
      else await this.discard(staging, [cacheId]);
    }
  }

  /** Best-effort removal of a failed registration's files. */
  private async discard(staging: string, ids: string[]): Promise<void> {
    for (const id of ids) {
      try {
        if (this.driver.exists(id)) await this.driver.remove(id);
      } catch {
        // The staging dir still names it; the next open removes it.
        return;
      }
    }
    await fs.promises.rm(staging, { recursive: true, force: true });
  }

  /** The layer's deterministic OCI tar (a function of its diff directory; hashes to its diffID). */
  openTar(chain: Digest): Readable {
    return this.tarOf(this.get(chain));
  }

  private tarOf(layer: Layer): Readable {
    if (!layer.present) throw new TsbuildError('ENOLAYER', `layer ${layer.chainID} is not fetched yet (held lazily from ${layer.remote?.location})`);
    return this.driver.diff(layer.cacheId, layer.clampMtime === undefined ? {} : { clampMtime: layer.clampMtime });
  }

  /**
   * LayerBlobSource: the tar of any layer with this diffID, or null: our packing of a built layer's
   * diff directory, else the diff directory of another present layer (a fetched one included: its
   * cache may be gone; the caller verifies the bytes), else a lazy layer's blob decompressed.
   */
  openLayerTar(diffID: Digest): Promise<Readable> | null {
    const layers = this.list().filter((l) => l.diffID === diffID);
    const built = layers.find((l) => l.present && this.isRebuildable(l.chainID));
    if (built) return Promise.resolve(this.tarOf(built));
    const layer = layers.find((l) => l.present);
    if (layer) return Promise.resolve(this.tarOf(layer));
    const remote = layers.find((l) => l.remote)?.remote;
    if (!remote) return null;
    return this.openRemote(remote).then(
      (blob) => verifiedRemoteTar(blob, diffID, remote),
      (err: Error) => {
        throw withContext(`layer ${diffID}: cannot read blob ${remote.blob.digest} from ${remote.location}`, err);
      },
    );
  }

  /** LayerBlobSource: the bytes of the layer's files, when counted at commit or import. */
  contentSize(chain: Digest): number | undefined {
    return isDigest(chain) ? (this.readLayer(chain)?.contentSize ?? undefined) : undefined;
  }

  /** Removes a layer; refuses when it has children or is mounted. The sweep decides what is unreachable. */
  async remove(chain: Digest): Promise<void> {
    await this.lock.withExclusive(() => this.removeLocked(chain));
  }

  private async removeLocked(chain: Digest): Promise<void> {
    const layer = this.get(chain);
    const n = this.children(chain);
    if (n > 0) throw new Error(`layer ${chain} has ${n} ${n === 1 ? 'child' : 'children'}`);
    if (layer.present && this.isMountedId(layer.cacheId)) throw new Error(`layer ${chain} is mounted`);
    const trash = this.newTmp('rm');
    fs.rmdirSync(trash);
    fs.renameSync(this.layerDir(chain), trash); // from here on the layer is gone; repair finishes a crash
    this.cache.delete(chain);
    if (layer.present) await this.driver.remove(layer.cacheId);
    await fs.promises.rm(trash, { recursive: true, force: true });
  }

  /** Mounts a committed layer's chain read-only (refcounted across processes); returns the rootfs. */
  async mount(chain: Digest): Promise<string> {
    await this.ensurePresent(chain);
    return this.lock.withExclusive(() => this.driver.get(this.get(chain).cacheId));
  }

  unmount(chain: Digest): Promise<void> {
    return this.lock.withExclusive(() => this.driver.put(this.get(chain).cacheId));
  }

  // ---- RW layers ----

  /** Creates a writable layer named `name` on top of `parent` (null: an empty base). */
  async createRW(parent: Digest | null, name: string, opts: CreateRWOptions = {}): Promise<RWLayer> {
    if (!NAME_RE.test(name)) throw new Error(`invalid RW layer name ${JSON.stringify(name)}: expected 1-128 characters of [A-Za-z0-9_.-]`);
    await this.ensurePresent(parent);
    return this.lock.withExclusive(async () => {
      if (fs.existsSync(this.rwDir(name))) throw new Error(`RW layer ${name} already exists`);
      let lower = parent === null ? null : this.get(parent).cacheId;
      const mountId = randomLayerId();
      const initId = opts.init ? `${mountId}-init` : null;
      const staging = this.newTmp('rw');
      // A volatile layer is throwaway: nothing of it has to survive a power loss (its mount does not
      // either), so its records skip the fsyncs. A kill -9 loses nothing: the page cache stays.
      const write = opts.volatile ? writeUnsynced : writeSynced;
      write(path.join(staging, 'mount-id'), mountId);
      write(path.join(staging, 'parent'), parent ?? '');
      if (initId) write(path.join(staging, 'init-id'), initId);
      try {
        if (initId) {
          await this.driver.create(initId, lower, { readWrite: true });
          await opts.init!(this.driver.diffPath(initId));
          await this.driver.commit(initId);
          lower = initId;
        }
        await this.driver.create(mountId, lower, { readWrite: true, volatile: opts.volatile });
        if (!opts.volatile) fsyncDir(staging);
        fs.renameSync(staging, this.rwDir(name));
      } catch (err) {
        await this.discard(staging, [mountId, ...(initId ? [initId] : [])]);
        throw err;
      }
      return this.rwHandle(this.readRW(name)!);
    });
  }

  private rwHandle(e: RWEntry): RWLayer {
    return {
      name: e.name,
      id: e.mountId,
      initId: e.initId,
      parent: e.parent,
      diffPath: this.driver.diffPath(e.mountId),
      mount: () => this.lock.withExclusive(() => this.driver.get(e.mountId)),
      unmount: () => this.lock.withExclusive(() => this.driver.put(e.mountId)),
    };
  }

  /** The RW layer named `name`, or undefined. */
  getRW(name: string): RWLayer | undefined {
    if (!NAME_RE.test(name)) return undefined;
    const e = this.readRW(name);
    return e ? this.rwHandle(e) : undefined;
  }

  /** When the RW layer named `name` was created (ms since the epoch), or undefined. */
  rwCreatedAt(name: string): number | undefined {
    if (!NAME_RE.test(name)) return undefined;
    try {
      return fs.statSync(this.rwDir(name)).mtimeMs;
    } catch {
      return undefined;
    }
  }

  listRW(): RWLayer[] {
    return this.rwEntries().map((e) => this.rwHandle(e));
  }

  /**
   * Turns a RW layer into a committed layer. The diffID comes from hashing the driver's diff stream
   * (never written to disk); the RW layer's files become the layer's files without a copy (a RW layer
   * with an init layer is the exception: its diff is registered as a new layer). The RW layer is gone
   * afterwards; it must not be mounted. The layer lives while a root reaches it (see the header).
   */
  async commitRW(rw: RWLayer | string, opts: CommitOptions = {}): Promise<Layer> {
    const name = typeof rw === 'string' ? rw : rw.name;
    const e = this.readRW(name);
    if (!e) throw new Error(`RW layer ${name} not found`);
    if (this.isMountedId(e.mountId)) throw new Error(`cannot commit RW layer ${name}: it is mounted (unmount it first)`);
    const diffOpts = opts.clampMtime === undefined ? {} : { clampMtime: opts.clampMtime };
    if (e.initId) {
      // The clamp is baked into the copied tar's bytes: the new layer's files carry the clamped times.
      const tar = this.driver.diff(e.mountId, diffOpts);
      const layer = await this.ingest(e.parent, () => tar, undefined, true, opts.lease);
      await this.removeRW(name);
      return layer;
    }
    const hash = new HashingStream();
    const counter = new TarContentCounter();
    await pipeline(this.driver.diff(e.mountId, diffOpts), counter, hash, new Writable({ write: (_c, _e, cb) => cb() }));
    const staging = await this.lock.withExclusive(() => this.newTmp('commit'));
    try {
      return await this.publish(staging, e.parent, hash.digest(), hash.bytes, e.mountId, {
        check: () => {
          if (this.isMountedId(e.mountId)) throw new Error(`cannot commit RW layer ${name}: it is mounted (unmount it first)`);
        },
        dedupe: () => this.removeRWLocked(name),
        published: () => this.dropRWEntry(name),
        rebuildable: true,
        contentSize: counter.bytes,
        ...diffOpts,
        ...(opts.lease ? { lease: opts.lease } : {}),
      });
    } catch (err) {
      await fs.promises.rm(staging, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Whether the RW layer holds any change (its diff tar has an entry). Cheap for overlay2 (an empty
   * upper dir); vfs walks the tree. Use it rather than looking at diffPath, which for vfs is a full tree.
   */
  async hasChanges(rw: RWLayer | string): Promise<boolean> {
    const name = typeof rw === 'string' ? rw : rw.name;
    const e = this.readRW(name);
    if (!e) throw new Error(`RW layer ${name} not found`);
    const tar = this.driver.diff(e.mountId);
    let seen = 0;
    try {
      for await (const chunk of tar) {
        seen += (chunk as Buffer).length;
        if (seen > 1024) return true; // more than the end-of-archive blocks: there is an entry
      }
      return false;
    } finally {
      tar.destroy();
    }
  }

  /** Deletes a RW layer entry whose files now belong to a committed layer. */
  private async dropRWEntry(name: string): Promise<void> {
    const trash = this.newTmp('rm');
    fs.rmdirSync(trash);
    fs.renameSync(this.rwDir(name), trash);
    fs.rmSync(path.join(trash, 'mount-id'), { force: true }); // the files are a layer's now: not trash
    await fs.promises.rm(trash, { recursive: true, force: true });
  }

  /** Removes a RW layer and its files; refuses while it is mounted. */
  async removeRW(name: string): Promise<void> {
    await this.lock.withExclusive(() => this.removeRWLocked(name));
  }

  private async removeRWLocked(name: string): Promise<void> {
    const e = this.readRW(name);
    if (!e) throw new Error(`RW layer ${name} not found`);
    if (this.isMountedId(e.mountId)) throw new Error(`cannot remove RW layer ${name}: it is mounted`);
    const trash = this.newTmp('rm');
    fs.rmdirSync(trash);
    fs.renameSync(this.rwDir(name), trash);
    await this.driver.remove(e.mountId);
    if (e.initId) await this.driver.remove(e.initId);
    // Two or three small record files: inline, not one pool round trip per file and directory.
    fs.rmSync(trash, { recursive: true, force: true });
  }

  /** Unmounts everything this process mounted through the store. */
  async close(): Promise<void> {
    await this.lock.withExclusive(() => this.driver.cleanup());
  }

  // ---- fsck ----

  /** Whether the layer's tar is our own packing of its diff directory (a built layer). */
  isRebuildable(chain: Digest): boolean {
    return fs.existsSync(path.join(this.layerDir(this.get(chain).chainID), 'rebuildable'));
  }

  /**
   * Whether the layer's diff directory still holds what its diffID names: the tar rebuilt from it
   * hashes to the diffID, or (a layer whose tar came from elsewhere) `original()`, its verified
   * uncompressed tar, extracted afresh on the same parent gives the same tree. With `repair`, a
   * changed directory is replaced by that fresh extraction (refused while any layer is mounted).
   */
  async checkDiff(chain: Digest, original: (() => Promise<Readable>) | undefined, opts: { repair?: boolean } = {}): Promise<DiffCheck> {
    const layer = this.get(chain);
    const rebuilt = await digestOfStream(this.tarOf(layer));
    if (rebuilt === layer.diffID) return 'ok';
    // The digest of our packing of a tree once verified against the original tar: a later check that
    // packs the same bytes needs no extraction.
    const treeFile = path.join(this.layerDir(chain), 'tree-digest');
    if (!this.isRebuildable(chain) && readTextOrNull(treeFile) === rebuilt) return 'ok';
    if (!original) return this.isRebuildable(chain) ? 'changed' : 'unverifiable';
    const remember = (digest: Digest) =>
      this.lock.withExclusive(async () => {
        if (!this.has(chain)) return;
        const tmp = `${treeFile}.${ownedName('tmp')}`;
        writeSynced(tmp, digest);
        fs.renameSync(tmp, treeFile);
      });
    const freshId = randomLayerId();
    const staging = await this.lock.withExclusive(() => {
      const dir = this.newTmp('fsck');
      writeSynced(path.join(dir, 'cache-id'), freshId);
      if (layer.parent !== null) writeSynced(path.join(dir, 'parent'), layer.parent);
      return dir;
    });
    try {
      await this.driver.create(freshId, layer.parent === null ? null : this.get(layer.parent).cacheId, {});
      const applied = await this.driver.applyDiff(freshId, await original());
      if (applied.diffID !== layer.diffID) throw new DiffIDMismatchError(layer.diffID, applied.diffID);
      const fresh = await digestOfStream(this.driver.diff(freshId, layer.clampMtime === undefined ? {} : { clampMtime: layer.clampMtime }));
      if (fresh === rebuilt) {
        await remember(fresh);
        return 'ok';
      }
      if (!opts.repair) return 'changed';
      await this.lock.withExclusive(async () => {
        const mounted = this.driver.list().filter((id) => this.isMountedId(id));
        if (mounted.length > 0) throw new Error(`layer ${chain}: cannot replace its diff directory while layers are mounted (${mounted.length}); stop containers and builds first`);
        // Swap the directories: the layer gets the fresh tree, the throwaway layer the changed one.
        const mine = this.driver.diffPath(layer.cacheId);
        const aside = `${mine}.fsck-${freshId}`;
        fs.renameSync(this.driver.diffPath(freshId), aside);
        fs.renameSync(mine, this.driver.diffPath(freshId));
        fs.renameSync(aside, mine);
      });
      await remember(fresh);
      return 'repaired';
    } finally {
      await this.discard(staging, [freshId]);
    }
  }

  /** Driver mount points that a live process holds through the mount counts. */
  heldMountTargets(): Set<string> {
    const out = new Set<string>();
    const table = this.mountState.load();
    for (const [id, holders] of Object.entries(table)) {
      const live = Object.entries(holders).some(([holder, n]) => n > 0 && isAlive(holder));
      if (!live || !this.driver.exists(id)) continue;
      try {
        out.add(this.driver.mounts(id).target);
      } catch {
        // No valid plan: nothing of ours can be mounted from it.
      }
    }
    return out;
  }

  /** Driver layers that no committed layer, RW layer or live registration names (repairNow removes them). */
  orphanDriverLayers(): string[] {
    const referenced = new Set(this.list().filter((l) => l.present).map((l) => l.cacheId));
    for (const e of this.rwEntries()) {
      referenced.add(e.mountId);
      if (e.initId) referenced.add(e.initId);
    }
    for (const s of this.liveStaging()) for (const id of s.ids) referenced.add(id);
    return this.driver.list().filter((id) => !referenced.has(id));
  }

  /** Staged entries of dead processes: what repairNow() removes. */
  staleStaging(): string[] {
    const tmp = path.join(this.dir, 'tmp');
    return fs.readdirSync(tmp).filter(ownerIsGone).map((name) => path.join(tmp, name));
  }

  // ---- repair ----

  private async repair(reason: string): Promise<void> {
    const report = emptyReport(reason);
    // Our own marker: a crash of this repair makes the next open repair in full again.
    const marker = this.newTmp('repair');
    this.cache.clear();
    const sha = path.join(this.dir, 'sha256');
    for (const name of fs.readdirSync(sha)) {
      const p = path.join(sha, name);
      if (HEX64.test(name) && this.readLayer(`sha256:${name}`)) continue;
      await fs.promises.rm(p, { recursive: true, force: true }); // not ours, or torn by hand
      report.staging.push(p);
    }
    const committedIds = new Set(this.list().filter((l) => l.present).map((l) => l.cacheId));
    const mounts = path.join(this.dir, 'mounts');
    for (const name of fs.readdirSync(mounts)) {
      const e = NAME_RE.test(name) ? this.readRW(name) : null;
      const keep = e !== null && !committedIds.has(e.mountId) && this.driver.exists(e.mountId) && (!e.initId || this.driver.exists(e.initId));
      if (keep) continue;
      await fs.promises.rm(path.join(mounts, name), { recursive: true, force: true });
      report.staging.push(path.join(mounts, name));
    }
    const referenced = new Set(committedIds);
    for (const e of this.rwEntries()) {
      referenced.add(e.mountId);
      if (e.initId) referenced.add(e.initId);
    }
    for (const s of this.liveStaging()) for (const id of s.ids) referenced.add(id);
    for (const p of this.staleStaging()) {
      await fs.promises.rm(p, { recursive: true, force: true });
      report.staging.push(p);
    }

    const table = await this.mountState.prune((id) => {
      let keep = false;
      try {
        keep = referenced.has(id) && this.driver.exists(id) && (this.driver.mounts(id).mounts.length === 0 || this.driver.isMounted(id));
      } catch {
        keep = false; // a layer without a valid plan cannot be mounted
      }
      if (!keep) report.droppedMounts.push(id);
      return keep;
    });
    const driverReport = await this.driver.repair((id) => (table[id] ? MountState.total(table[id]) > 0 : false));
    Object.assign(report, { unmounted: driverReport.unmounted, relinked: driverReport.relinked, removed: driverReport.removed });

    for (const id of this.driver.list()) {
      if (referenced.has(id)) continue;
      try {
        if (this.driver.isMounted(id)) await detach(this.driver.mounts(id).target);
      } catch {
        // A torn layer dir without a plan: nothing of ours is mounted from it.
      }
      try {
        await this.driver.remove(id);
        report.orphans.push(id);
      } catch (err) {
        this.warn(`layer store ${this.root}: cannot remove unused ${this.driver.name} layer ${id}: ${(err as Error).message}`);
      }
    }
    // commit() is idempotent: re-applying it finishes a publish that crashed right after its rename.
    // commit() returns at once for a committed layer, so the mount table is read only for the rare one
    // that is not.
    for (const id of committedIds) {
      if (!this.driver.exists(id)) continue;
      try {
        await this.driver.commit(id);
      } catch {
        // Mounted by a live process right now: its publish completed, the marker follows on a later open.
      }
    }
    const stamp = stampText();
    if (stamp !== null && readTextOrNull(this.stampFile) !== stamp.trim()) await writeFileAtomic(this.stampFile, stamp);
    fs.rmdirSync(marker);
    this.lastRepair = report;
  }
}
