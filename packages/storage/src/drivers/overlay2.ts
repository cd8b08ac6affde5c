// overlay2 with Docker's on-disk layout (moby/moby:daemon/graphdriver/overlay2), so the tree reads like
// /var/lib/docker/overlay2:
//   <root>/overlay2/l/<26-char short id>  -> ../<id>/diff
//   <root>/overlay2/<id>/diff/      the layer (overlay whiteouts: 0/0 char devices, opaque xattrs)
//   <root>/overlay2/<id>/link       its short id
//   <root>/overlay2/<id>/lower      l/A:l/B..., nearest parent first (absent for a base layer)
//   <root>/overlay2/<id>/work/      0700, only with a parent
//   <root>/overlay2/<id>/merged/    created by get, removed by put
//   <root>/overlay2/<id>/committed  read-only from now on (written into a parent when a child appears)
// Committed layers mount without an upper dir (moby/moby#39780); RW layers get upper+work.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import type { Digest } from '../digest';
import { applyLayerTar, packLayerDir } from './layer-tar';
import { BaseDriver, readTextOrNull, removeDoomed, touch, type DriverOptions } from './base';
import { REMOVING_SUFFIX, SHORT_ID_RE, checkLayerId, shortId } from './ids';
import { mountsUnder, readMountInfo } from './mountinfo';
import { detach } from './perform';
import { assertOverlay, isStaleProbe, baseOverlayOptions, type OverlayFeatures } from './probe';
import type { DriverCreateOptions, DiffOptions, DriverRemoveOptions, MountPlan, RepairReport } from './types';
import { TsbuildError } from '../errors';
import { mkdirpSync } from '../atomic';

/** overlay's `volatile` mount option came with Linux 5.10; an older kernel refuses the mount. */
export function volatileSupported(release = os.release()): boolean {
  const [major = 0, minor = 0] = release.split('.').map((n) => parseInt(n, 10));
  return major > 5 || (major === 5 && minor >= 10);
}

/** The kernel's OVL_MAX_STACK: lower layers one overlay mount can stack. */
export const MAX_LOWERS = 500;

export class MaxDepthError extends TsbuildError {
  constructor(readonly depth: number) {
    super('EMAXDEPTH', `max depth exceeded: ${depth} layers, the limit is ${MAX_LOWERS}`);
  }
}

export interface OverlayPlanInput {
  id: string;
  /** <root>/overlay2 */
  home: string;
  /** The layer's short id. */
  link: string;
  /** The `lower` file's entries (`l/<short>`), nearest first; empty for a base layer. */
  lower: string[];
  committed: boolean;
  options: string[];
}

/**
 * The pure heart of mounts(): a base layer is its own diff dir; a committed layer stacks its own diff
 * on its lowers with no upper; a RW layer gets diff as upper and work as workdir.
 */
export function overlayMountPlan(p: OverlayPlanInput): MountPlan {
  const dir = path.join(p.home, p.id);
  if (p.lower.length === 0) return { id: p.id, target: path.join(dir, 'diff'), mounts: [], readOnly: p.committed };
  const lowers = p.lower.map((l) => path.join(p.home, l));
  const target = path.join(dir, 'merged');
  if (p.committed) {
    const lower = [path.join(p.home, 'l', p.link), ...lowers];
    if (lower.length > MAX_LOWERS) throw new MaxDepthError(lower.length);
    return { id: p.id, target, readOnly: true, mounts: [{ type: 'overlay', lower, options: [...p.options] }] };
  }
  if (lowers.length > MAX_LOWERS) throw new MaxDepthError(lowers.length);
  return {
    id: p.id,
    target,
    readOnly: false,
    mounts: [{ type: 'overlay', lower: lowers, upper: path.join(dir, 'diff'), work: path.join(dir, 'work'), options: [...p.options] }],
  };
}

export interface Overlay2Options extends DriverOptions {
  /** Skip the mount probe and use these features (tests of pure plans on hosts without overlay). */
  features?: OverlayFeatures;
}

export class Overlay2Driver extends BaseDriver {
  readonly name = 'overlay2' as const;
  /** <root>/overlay2 */
  readonly home: string;
  readonly features: OverlayFeatures;
  private readonly options: string[];

  /**
   * Opens (creating) `<root>/overlay2`. Probes overlay on the root's filesystem first and throws
   * OverlayUnsupportedError ("overlay not supported on <fs> at <root>: <reason>") when it cannot work.
   */
  static open(root: string, opts: Overlay2Options = {}): Overlay2Driver {
    const features = opts.features ?? assertOverlay(root);
    return new Overlay2Driver(root, features, opts);
  }

  constructor(root: string, features: OverlayFeatures, opts: DriverOptions = {}) {
    super(path.resolve(root), opts);
    this.home = path.join(this.root, 'overlay2');
    this.features = features;
    this.options = baseOverlayOptions(features);
    mkdirpSync(path.join(this.home, 'l'), 0o700);
  }

  private dir(id: string): string {
    return path.join(this.home, checkLayerId(id));
  }

  exists(id: string): boolean {
    try {
      return fs.statSync(path.join(this.dir(id), 'diff')).isDirectory();
    } catch {
      return false;
    }
  }

  list(): string[] {
    return fs
      .readdirSync(this.home, { withFileTypes: true })
      .filter((e) => e.isDirectory() && e.name !== 'l' && !e.name.startsWith('.') && !e.name.endsWith(REMOVING_SUFFIX))
      .map((e) => e.name)
      .sort();
  }

  diffPath(id: string): string {
    return path.join(this.dir(id), 'diff');
  }

  private readLink(id: string): string {
    const link = readTextOrNull(path.join(this.dir(id), 'link'));
    if (!link || !SHORT_ID_RE.test(link)) throw new Error(`overlay2: layer ${id} has no valid link file`);
    return link;
  }

  private readLower(id: string): string[] {
    const lower = readTextOrNull(path.join(this.dir(id), 'lower'));
    return lower ? lower.split(':') : [];
  }

  private isCommitted(id: string): boolean {
    return fs.existsSync(path.join(this.dir(id), 'committed'));
  }

  async create(id: string, parent: string | null, opts: DriverCreateOptions = {}): Promise<void> {
    checkLayerId(id);
    if (fs.existsSync(this.dir(id))) throw new Error(`overlay2: layer ${id} already exists`);
    let lower: string[] = [];
    if (parent !== null) {
      this.requireLayer(parent);
      lower = [`l/${this.readLink(parent)}`, ...this.readLower(parent)];
      const depth = lower.length + (opts.readWrite ? 0 : 1);
      if (depth > MAX_LOWERS) throw new MaxDepthError(depth);
    }
    const dir = this.dir(id);
    fs.mkdirSync(dir, { mode: 0o700 });
    let link: string | undefined;
    try {
      fs.mkdirSync(path.join(dir, 'diff'), { mode: 0o755 });
      fs.chmodSync(path.join(dir, 'diff'), 0o755); // not subject to the umask
      for (;;) {
        link = shortId();
        try {
          fs.symlinkSync(path.join('..', id, 'diff'), path.join(this.home, 'l', link));
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
      }
      fs.writeFileSync(path.join(dir, 'link'), link, { mode: 0o644 });
      if (parent !== null) {
        fs.writeFileSync(path.join(dir, 'lower'), lower.join(':'), { mode: 0o644 });
        fs.mkdirSync(path.join(dir, 'work'), { mode: 0o700 });
        touch(path.join(this.dir(parent), 'committed'));
      }
      if (opts.volatile && volatileSupported()) touch(path.join(dir, 'volatile'));
      if (!opts.readWrite) touch(path.join(dir, 'committed'));
    } catch (err) {
      if (link) fs.rmSync(path.join(this.home, 'l', link), { force: true });
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  mounts(id: string): MountPlan {
    this.requireLayer(id);
    const committed = this.isCommitted(id);
    const volatile = !committed && fs.existsSync(path.join(this.dir(id), 'volatile'));
    return overlayMountPlan({
      id,
      home: this.home,
      link: this.readLink(id),
      lower: this.readLower(id),
      committed,
      options: volatile ? [...this.options, 'volatile'] : this.options,
    });
  }

  protected override beforeMount(_id: string, plan: MountPlan): void {
    // A volatile mount leaves work/work/incompat/volatile, and the kernel refuses the next mount while
    // it exists. The layer is throwaway by contract, so we clear it.
    for (const m of plan.mounts) {
      if (m.type === 'overlay' && 'work' in m && m.work && m.options.includes('volatile')) {
        const incompat = path.join(m.work, 'work', 'incompat');
        // Looked for first: a fresh layer has none, and rmSync loads Node's rimraf even for nothing.
        if (fs.existsSync(incompat)) fs.rmSync(incompat, { recursive: true, force: true });
      }
    }
  }

  async commit(id: string): Promise<void> {
    this.requireLayer(id);
    if (this.isCommitted(id)) return;
    if (this.isMounted(id)) throw new Error(`overlay2: cannot commit layer ${id}: it is mounted at ${this.mounts(id).target}`);
    touch(path.join(this.dir(id), 'committed'));
    fs.rmSync(path.join(this.dir(id), 'volatile'), { force: true });
  }

  async remove(id: string, opts: DriverRemoveOptions = {}): Promise<void> {
    checkLayerId(id);
    const dir = this.dir(id);
    if (!fs.existsSync(dir)) return;
    const live = mountsUnder(dir);
    if (live.length > 0) throw new Error(`overlay2: cannot remove layer ${id}: it is mounted at ${live[live.length - 1]}`);
    const link = readTextOrNull(path.join(dir, 'link'));
    if (link && SHORT_ID_RE.test(link)) fs.rmSync(path.join(this.home, 'l', link), { force: true });
    // Rename first: a crash mid-delete leaves a `-removing` dir that repair finishes, never half a layer.
    const doomed = dir + REMOVING_SUFFIX;
    fs.rmSync(doomed, { recursive: true, force: true });
    fs.renameSync(dir, doomed);
    this.forgetOwn(id);
    await removeDoomed(doomed, opts);
  }

  diff(id: string, opts: DiffOptions = {}): Readable {
    this.requireLayer(id);
    return packLayerDir(this.diffPath(id), { whiteouts: 'overlay', clampMtime: opts.clampMtime });
  }

  async applyDiff(id: string, tar: Readable): Promise<{ diffID: Digest; size: number }> {
    this.requireLayer(id);
    return applyLayerTar(tar, this.diffPath(id), { whiteouts: 'overlay' });
  }

  /**
   * A dead process's mount probe. Layers, `-removing` dirs, links and `merged` dirs change only inside
   * the layer store's marked windows (registrations, removals, mounts), so their crashes show there.
   */
  needsRepair(): boolean {
    return fs.readdirSync(this.root).some(isStaleProbe);
  }

  async repair(inUse: (id: string) => boolean): Promise<RepairReport> {
    const report: RepairReport = { unmounted: [], relinked: [], removed: [] };
    mkdirpSync(path.join(this.home, 'l'), 0o700);
    const table = readMountInfo();
    const leftovers = [
      ...fs.readdirSync(this.root).filter(isStaleProbe).map((n) => path.join(this.root, n)),
      ...fs.readdirSync(this.home).filter((n) => n.endsWith(REMOVING_SUFFIX)).map((n) => path.join(this.home, n)),
    ];
    for (const p of leftovers) {
      for (const m of mountsUnder(p, table)) await detach(m);
      await fs.promises.rm(p, { recursive: true, force: true });
      report.removed.push(p);
    }
    for (const id of this.list()) {
      const dir = path.join(this.home, id);
      const link = readTextOrNull(path.join(dir, 'link'));
      if (link && SHORT_ID_RE.test(link)) {
        const linkPath = path.join(this.home, 'l', link);
        const want = path.join('..', id, 'diff');
        let have: string | null = null;
        try {
          have = fs.readlinkSync(linkPath);
        } catch {
          have = null;
        }
        if (have !== want) {
          fs.rmSync(linkPath, { force: true });
          fs.symlinkSync(want, linkPath);
          report.relinked.push(linkPath);
        }
      }
      const merged = path.join(dir, 'merged');
      const mounted = mountsUnder(merged, table);
      if (mounted.length > 0) {
        if (inUse(id)) continue;
        for (const m of mounted) await detach(m);
        report.unmounted.push(merged);
      }
      if (fs.existsSync(merged)) {
        // Not a mount point (anymore): an empty dir normally; whatever is in it was never part of a layer.
        await fs.promises.rm(merged, { recursive: true, force: true });
        report.removed.push(merged);
      }
    }
    for (const link of fs.readdirSync(path.join(this.home, 'l'))) {
      const linkPath = path.join(this.home, 'l', link);
      if (!fs.existsSync(linkPath)) {
        fs.rmSync(linkPath, { force: true }); // dangling: its layer is gone
        report.removed.push(linkPath);
      }
    }
    return report;
  }
}
