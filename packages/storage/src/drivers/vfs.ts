// vfs: every layer is a full copy of its parent plus its own changes. Works on any filesystem, costs a
// copy per layer. Layout (Docker's, plus a small metadata file since diffs need the parent):
//   <root>/vfs/dir/<id>/        the layer's complete tree (the rootfs; never mounted)
//   <root>/vfs/meta/<id>.json   {"parent": id|null, "committed": bool}
//   <root>/vfs/tmp/             copies under construction and diff staging (cleared by repair)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough, pipeline, type Readable } from 'node:stream';
import type { Digest } from '../digest';
import { BaseDriver, type DriverOptions } from './base';
import { REMOVING_SUFFIX, checkLayerId } from './ids';
import { applyLayerTar, packLayerDir } from './layer-tar';
import { ctimeNow, stageChanges } from './naivediff';
import { copyTree } from './treecopy';
import { isAlive, ownedName, ownerIsGone, ownerOf } from './proc';
import type { DriverCreateOptions, DiffOptions, MountPlan, RepairReport } from './types';
import { mkdirpSync } from '../atomic';
import { randomBytes } from '@tsbuild/native';

interface VfsMeta {
  parent: string | null;
  committed: boolean;
  /** The ctime clock right after the parent's copy was made (ns, decimal): see naivediff.ts. */
  baseline?: string;
}

export class VfsDriver extends BaseDriver {
  readonly name = 'vfs' as const;
  /** <root>/vfs */
  readonly home: string;

  constructor(root: string, opts: DriverOptions = {}) {
    super(path.resolve(root), opts);
    this.home = path.join(this.root, 'vfs');
    for (const d of ['dir', 'meta', 'tmp']) mkdirpSync(path.join(this.home, d), 0o700);
  }

  static open(root: string, opts: DriverOptions = {}): VfsDriver {
    return new VfsDriver(root, opts);
  }

  private dir(id: string): string {
    return path.join(this.home, 'dir', checkLayerId(id));
  }

  private metaFile(id: string): string {
    return path.join(this.home, 'meta', `${checkLayerId(id)}.json`);
  }

  private readMeta(id: string): VfsMeta {
    try {
      return JSON.parse(fs.readFileSync(this.metaFile(id), 'utf8')) as VfsMeta;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { parent: null, committed: false };
      throw new Error(`vfs: bad metadata for layer ${id}: ${(err as Error).message}`);
    }
  }

  private writeMeta(id: string, meta: VfsMeta): void {
    const file = this.metaFile(id);
    const tmp = path.join(path.dirname(file), ownedName(`${id}.tmp`));
    fs.writeFileSync(tmp, JSON.stringify(meta));
    fs.renameSync(tmp, file);
  }

  /** A temporary path owned by this process (repair leaves the ones of live processes alone). */
  private tmpPath(prefix: string): string {
    return path.join(this.home, 'tmp', ownedName(`${prefix}-${randomBytes(8).toString('hex')}`));
  }

  exists(id: string): boolean {
    try {
      return fs.statSync(this.dir(id)).isDirectory();
    } catch {
      return false;
    }
  }

  list(): string[] {
    return fs
      .readdirSync(path.join(this.home, 'dir'), { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.endsWith(REMOVING_SUFFIX))
      .map((e) => e.name)
      .sort();
  }

  diffPath(id: string): string {
    return this.dir(id);
  }

  /** The parent layer id recorded at create time. */
  parentOf(id: string): string | null {
    return this.readMeta(id).parent;
  }

  async create(id: string, parent: string | null, opts: DriverCreateOptions = {}): Promise<void> {
    checkLayerId(id);
    if (fs.existsSync(this.dir(id))) throw new Error(`vfs: layer ${id} already exists`);
    if (parent !== null) this.requireLayer(parent);
    // Build under tmp/ and rename: a crash never leaves a half-copied layer under dir/.
    const staged = this.tmpPath(id);
    let baseline: bigint | undefined;
    try {
      if (parent !== null) {
        copyTree(this.dir(parent), staged);
        baseline = ctimeNow(path.join(this.home, 'tmp'), ownedName('clock'));
      } else {
        fs.mkdirSync(staged, { mode: 0o755 });
        fs.chmodSync(staged, 0o755);
      }
      fs.renameSync(staged, this.dir(id));
    } catch (err) {
      fs.rmSync(staged, { recursive: true, force: true });
      throw err;
    }
    // After the rename: repair deletes metadata without a layer dir, never a dir without metadata.
    this.writeMeta(id, { parent, committed: !opts.readWrite, ...(baseline !== undefined ? { baseline: String(baseline) } : {}) });
  }

  mounts(id: string): MountPlan {
    this.requireLayer(id);
    return { id, target: this.dir(id), mounts: [], readOnly: false };
  }

  async commit(id: string): Promise<void> {
    this.requireLayer(id);
    const meta = this.readMeta(id);
    if (!meta.committed) this.writeMeta(id, { ...meta, committed: true });
  }

  async remove(id: string): Promise<void> {
    checkLayerId(id);
    const dir = this.dir(id);
    if (fs.existsSync(dir)) {
      const doomed = dir + REMOVING_SUFFIX;
      fs.rmSync(doomed, { recursive: true, force: true });
      fs.renameSync(dir, doomed);
      this.forgetOwn(id);
      await fs.promises.rm(doomed, { recursive: true, force: true });
    }
    fs.rmSync(this.metaFile(id), { force: true });
  }

  diff(id: string, opts: DiffOptions = {}): Readable {
    this.requireLayer(id);
    const { parent, baseline } = this.readMeta(id);
    if (parent === null) return packLayerDir(this.dir(id), { whiteouts: 'none', clampMtime: opts.clampMtime });
    this.requireLayer(parent);
    const out = new PassThrough();
    const staging = this.tmpPath('diff');
    const removeStaging = () => fs.rm(staging, { recursive: true, force: true }, () => {});
    try {
      fs.mkdirSync(staging, { mode: 0o700 });
      stageChanges(this.dir(parent), this.dir(id), staging, baseline === undefined ? undefined : BigInt(baseline));
    } catch (err) {
      removeStaging();
      process.nextTick(() => out.destroy(err as Error));
      return out;
    }
    pipeline(packLayerDir(staging, { whiteouts: 'overlay', clampMtime: opts.clampMtime }), out, () => removeStaging());
    return out;
  }

  async applyDiff(id: string, tar: Readable): Promise<{ diffID: Digest; size: number }> {
    this.requireLayer(id);
    return applyLayerTar(tar, this.dir(id), { whiteouts: 'merge' });
  }

  /**
   * A dead process's entry in tmp/ (a diff staged for a push, a save or fsck, outside any registration).
   * Layer dirs and metadata change only inside the layer store's marked windows.
   */
  needsRepair(): boolean {
    return fs.readdirSync(path.join(this.home, 'tmp')).some(ownerIsGone);
  }

  async repair(_inUse: (id: string) => boolean): Promise<RepairReport> {
    const report: RepairReport = { unmounted: [], relinked: [], removed: [] };
    const tmp = path.join(this.home, 'tmp');
    for (const name of fs.readdirSync(tmp)) {
      const owner = ownerOf(name);
      if (owner && isAlive(owner)) continue;
      await fs.promises.rm(path.join(tmp, name), { recursive: true, force: true });
      report.removed.push(path.join(tmp, name));
    }
    const dirs = path.join(this.home, 'dir');
    for (const name of fs.readdirSync(dirs).filter((n) => n.endsWith(REMOVING_SUFFIX))) {
      await fs.promises.rm(path.join(dirs, name), { recursive: true, force: true });
      report.removed.push(path.join(dirs, name));
    }
    const ids = new Set(this.list());
    for (const name of fs.readdirSync(path.join(this.home, 'meta'))) {
      const id = name.replace(/\.json$/, '');
      const owner = ownerOf(name);
      if (owner && isAlive(owner)) continue;
      if (!name.endsWith('.json') || !ids.has(id)) {
        fs.rmSync(path.join(this.home, 'meta', name), { force: true });
        report.removed.push(path.join(this.home, 'meta', name));
      }
    }
    return report;
  }
}
