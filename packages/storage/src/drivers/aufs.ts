// aufs with Docker's on-disk layout (moby/moby:daemon/graphdriver/aufs, removed in Docker 24):
//   <root>/aufs/layers/<id>     ancestor ids, nearest first, one per line (empty for a base layer)
//   <root>/aufs/diff/<id>/      the branch: whiteouts are `.wh.<name>` files, opaque dirs hold `.wh..wh..opq`
//   <root>/aufs/mnt/<id>/       the union: created by get, removed by put
// and what Docker's layout has no place for:
//   <root>/aufs/committed/<id>  read-only from now on: mounted without a writable branch
//   <root>/aufs/work/<id>/      fuse-overlayfs' private work dir of a RW layer
// Kernel aufs stacks the branches itself. Without it (every mainline kernel) fuse-overlayfs stacks the
// same branches; with FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT=1 it reads and writes aufs-format whiteouts,
// so the branches on disk are the same either way (REFERENCE §3.8, §3.9).
// Required where used, not here: loading it is part of every command's start (README, Performance).
import type * as child from 'node:child_process';
import { randomBytes } from '@tsbuild/native';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import * as native from '@tsbuild/native';
import { OPAQUE_MARKER_XATTRS, WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, packDir } from '../archive';
import type { Digest } from '../digest';
import { BaseDriver, touch, type DriverOptions } from './base';
import { REMOVING_SUFFIX, checkLayerId } from './ids';
import { applyLayerTar } from './layer-tar';
import { isMountPoint, mountsUnder, readMountInfo } from './mountinfo';
import { detach, detachSync, performPlanSync, settleFuseDaemon, unmountAndRemoveSync, unmountFuse } from './perform';
import { isAlive, ownedName, ownerOf } from './proc';
import {
  isFuseOverlayMount, type DiffOptions, type DriverCreateOptions, type FuseOverlayMount, type GenericMount, type MountPlan,
  type RepairReport,
} from './types';
import { TsbuildError } from '../errors';
import { mkdirpSync } from '../atomic';

/** How the branches are stacked. */
export type AufsBackend =
  /** Kernel aufs. `dirperm1`: the kernel takes that option (permissions checked on the top branch only). */
  | { kind: 'aufs'; dirperm1: boolean; pageSize: number }
  | { kind: 'fuse-overlayfs' };

export interface AufsPlanInput {
  id: string;
  /** <root>/aufs */
  home: string;
  /** Ancestor ids, nearest first (the `layers/<id>` file). */
  parents: string[];
  committed: boolean;
  backend: AufsBackend;
}

/** The aufs xino file Docker used. */
const XINO = 'xino=/dev/shm/aufs.xino';
/** Docker keeps this much of the page for `,dio,xino=/dev/shm/aufs.xino` and the NUL. */
const AUFS_RESERVED = 54;

/** fuse-overlayfs mounts nodev by default; a rootfs needs its device nodes, like kernel aufs gives. */
const FUSE_OPTIONS = ['dev', 'suid'];
/** Makes fuse-overlayfs write `.wh.` files and `.wh..wh..opq` (aufs branch format), never 0/0 devices. */
const FUSE_ENV = { FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT: '1' };

function bytes(s: string): number {
  return Buffer.byteLength(s);
}

/**
 * Kernel aufs mounts of `top` over `ro` (Docker's aufsMount): the first mount(2) takes as many
 * branches as fit in pageSize − 54 (− len(",dirperm1")); MS_REMOUNT `append:` calls add the rest,
 * each within the same limit.
 */
export function aufsKernelMounts(top: string, topWritable: boolean, ro: string[], b: Extract<AufsBackend, { kind: 'aufs' }>): GenericMount[] {
  const limit = b.pageSize - AUFS_RESERVED - (b.dirperm1 ? bytes(',dirperm1') : 0);
  for (const p of [top, ...ro]) {
    // aufs splits options at ',' and branches at ':' with no escape
    if (/[:,]/.test(p)) throw new Error(`aufs cannot take the branch ${p}: aufs options have no escape for ':' or ','`);
  }
  const flags = topWritable ? [] : ['ro'];
  let br = `br:${top}=${topWritable ? 'rw' : 'ro+wh'}`;
  if (bytes(br) > limit) throw new Error(`aufs: the branch ${top} is longer than one mount call can hold`);
  let i = 0;
  for (; i < ro.length && bytes(br) + bytes(`:${ro[i]}=ro+wh`) <= limit; i++) br += `:${ro[i]}=ro+wh`;
  const mounts: GenericMount[] = [{ type: 'aufs', source: 'none', options: [...flags, br, 'dio', XINO, ...(b.dirperm1 ? ['dirperm1'] : [])] }];
  while (i < ro.length) {
    const appends: string[] = [];
    let size = 0;
    for (; i < ro.length; i++) {
      const word = `append:${ro[i]}=ro+wh`;
      const add = bytes(word) + (appends.length ? 1 : 0);
      if (size + add > limit) break;
      appends.push(word);
      size += add;
    }
    if (appends.length === 0) throw new Error(`aufs: the branch ${ro[i]} is longer than one mount call can hold`);
    mounts.push({ type: 'aufs', source: 'none', options: ['remount', ...flags, ...appends] });
  }
  return mounts;
}

/**
 * The pure heart of mounts(): a base layer is its own branch, unmounted; a committed layer stacks its
 * branch read-only on its ancestors'; a RW layer's branch is the writable top.
 */
export function aufsMountPlan(p: AufsPlanInput): MountPlan {
  const branch = (id: string) => path.join(p.home, 'diff', id);
  if (p.parents.length === 0) return { id: p.id, target: branch(p.id), mounts: [], readOnly: p.committed };
  const target = path.join(p.home, 'mnt', p.id);
  const ro = p.parents.map(branch);
  if (p.backend.kind === 'aufs') {
    return { id: p.id, target, readOnly: p.committed, mounts: aufsKernelMounts(branch(p.id), !p.committed, ro, p.backend) };
  }
  const mount: FuseOverlayMount = p.committed
    ? { type: 'fuse-overlayfs', lower: [branch(p.id), ...ro], options: [...FUSE_OPTIONS], env: { ...FUSE_ENV } }
    : {
        type: 'fuse-overlayfs',
        lower: ro,
        upper: branch(p.id),
        work: path.join(p.home, 'work', p.id),
        options: [...FUSE_OPTIONS],
        env: { ...FUSE_ENV },
      };
  return { id: p.id, target, readOnly: p.committed, mounts: [mount] };
}

/** aufs metadata in a branch (whiteout base, pseudo-links, orphans): never part of a layer tar. */
function isAufsMeta(relPath: string): boolean {
  const base = relPath.slice(relPath.lastIndexOf('/') + 1);
  return base.startsWith(WHITEOUT_META_PREFIX) && base !== WHITEOUT_OPAQUE;
}

/**
 * fuse-overlayfs marks every directory it creates opaque, also where no lower branch has anything to
 * hide; in a layer tar those markers are noise (Docker's drivers never write them). Removes them, with
 * their xattrs, from an unmounted RW branch, keeping the dirs' times. A marker stays wherever some
 * lower branch has an entry on its path, or a non-directory above it (conservative either way).
 */
export function dropNeedlessOpaque(branch: string, lowers: string[]): void {
  const walk = (rel: string, below: string[]) => {
    const dir = rel ? path.join(branch, rel) : branch;
    const entries = fs.readdirSync(dir, { withFileTypes: true });
    if (rel && below.length === 0 && entries.some((e) => e.name === WHITEOUT_OPAQUE && e.isFile())) {
      const st = fs.lstatSync(dir);
      fs.rmSync(path.join(dir, WHITEOUT_OPAQUE));
      for (const name of OPAQUE_MARKER_XATTRS) {
        if (native.lgetxattr(dir, name) !== null) native.lremovexattr(dir, name);
      }
      fs.utimesSync(dir, st.atime, st.mtime);
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const next: string[] = [];
      let shadowed = false;
      for (const lower of below) {
        const st = fs.lstatSync(path.join(lower, e.name), { throwIfNoEntry: false });
        if (st?.isDirectory()) next.push(path.join(lower, e.name));
        else if (st) shadowed = true;
      }
      // Under a non-directory of some lower branch nothing is known to be empty: keep every marker.
      if (!shadowed) walk(rel ? `${rel}/${e.name}` : e.name, next);
    }
  };
  walk('', lowers);
}

// ---- probe ----

export class AufsUnsupportedError extends TsbuildError {
  constructor(readonly reason?: string) {
    super('EAUFSUNSUPPORTED', `the aufs driver needs kernel aufs or fuse-overlayfs (apt-get install fuse-overlayfs)${reason ? `: ${reason}` : ''}`);
  }
}

export interface AufsProbe {
  supported: boolean;
  backend?: AufsBackend;
  /** Why neither kernel aufs nor fuse-overlayfs works, when !supported. */
  reason?: string;
}

export interface AufsProbeOptions {
  /** The text of /proc/filesystems (tests pretend a kernel without aufs). */
  filesystems?: string;
}

/** Probe dirs are named so that no layer id can match; repair removes the ones of dead processes. */
const PROBE_PREFIX = '.aufs-probe-';

/** A probe dir whose process is gone. */
function isStaleAufsProbe(name: string): boolean {
  if (!name.startsWith(PROBE_PREFIX)) return false;
  const owner = ownerOf(name.slice(PROBE_PREFIX.length));
  return !owner || !isAlive(owner);
}

function pageSize(): number {
  // The first mapping's KernelPageSize in smaps; Node has no getpagesize().
  try {
    const fd = fs.openSync('/proc/self/smaps', 'r');
    try {
      const buf = Buffer.alloc(4096);
      const text = buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, null)).toString();
      const kb = /KernelPageSize:\s+(\d+) kB/.exec(text);
      if (kb) return Number(kb[1]) * 1024;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // fall through
  }
  return 4096;
}

// The probes run inside AufsDriver.open, which is synchronous (as every driver's open is): they mount
// and unmount with the *Sync calls, which block the event loop for the few milliseconds a probe takes.
function withProbeDir<T>(root: string, fn: (dir: string) => T): T {
  const dir = path.join(root, `${PROBE_PREFIX}${ownedName(randomBytes(6).toString('hex'))}`);
  mkdirpSync(dir, 0o700);
  try {
    return fn(dir);
  } finally {
    try {
      for (const m of mountsUnder(dir)) detachSync(m);
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // a leftover probe dir is removed by the next repair
    }
  }
}

/** Kernel aufs: can it mount here, and does it take dirperm1 (Docker's useDirperm)? */
function probeKernelAufs(root: string): AufsBackend | null {
  return withProbeDir(root, (dir) => {
    const [rw, mnt] = [path.join(dir, 'rw'), path.join(dir, 'mnt')];
    fs.mkdirSync(rw);
    fs.mkdirSync(mnt);
    for (const dirperm1 of [true, false]) {
      const backend: AufsBackend = { kind: 'aufs', dirperm1, pageSize: pageSize() };
      try {
        performPlanSync({ id: 'probe', target: mnt, readOnly: false, mounts: aufsKernelMounts(rw, true, [], backend) });
      } catch {
        continue;
      }
      detachSync(mnt);
      return backend;
    }
    return null;
  });
}

/**
 * fuse-overlayfs, tested for what the driver relies on: `.wh.x` and `.wh..wh..opq` in a lower branch
 * hide, and deletions and re-created dirs land in the upper branch as aufs whiteouts.
 */
function probeFuseOverlay(root: string): string | null {
  const version = (require('node:child_process') as typeof child).spawnSync('fuse-overlayfs', ['--version'], { stdio: 'ignore' });
  if (version.error) return 'fuse-overlayfs was not found on PATH';
  if (fs.realpathSync(root).includes(':')) {
    return `fuse-overlayfs cannot write branches under ${fs.realpathSync(root)}: it splits its upper dir's path at ':' (no escape); use a storage root without ':'`;
  }
  try {
    fs.closeSync(fs.openSync('/dev/fuse', 'r+'));
  } catch (err) {
    return `/dev/fuse cannot be opened (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
  return withProbeDir(root, (dir): string | null => {
    const at = (d: string) => path.join(dir, d);
    const [l1, l2, upper, work, mnt] = [at('l1'), at('l2'), at('upper'), at('work'), at('mnt')];
    for (const d of [l1, l2, upper, work, mnt, path.join(l1, 'd'), path.join(l2, 'd'), path.join(l1, 'e')]) fs.mkdirSync(d);
    fs.writeFileSync(path.join(l1, 'a'), 'a');
    fs.writeFileSync(path.join(l1, 'x'), 'x');
    fs.writeFileSync(path.join(l1, 'd', 'old'), 'old');
    fs.writeFileSync(path.join(l1, 'e', 'old'), 'old');
    fs.writeFileSync(path.join(l2, '.wh.x'), '');
    fs.writeFileSync(path.join(l2, 'd', WHITEOUT_OPAQUE), '');
    fs.writeFileSync(path.join(l2, 'd', 'new'), 'new');
    const mount: FuseOverlayMount = { type: 'fuse-overlayfs', lower: [l2, l1], upper, work, options: [...FUSE_OPTIONS], env: { ...FUSE_ENV } };
    try {
      performPlanSync({ id: 'probe', target: mnt, readOnly: false, mounts: [mount] });
    } catch (err) {
      return (err as Error).message;
    }
    try {
      const top = fs.readdirSync(mnt).sort().join(',');
      if (top !== 'a,d,e') return `aufs whiteouts in lower branches are not honoured (saw ${top})`;
      const inD = fs.readdirSync(path.join(mnt, 'd')).join(',');
      if (inD !== 'new') return `aufs opaque directories are not honoured (saw ${inD})`;
      fs.rmSync(path.join(mnt, 'a'));
      fs.rmSync(path.join(mnt, 'e'), { recursive: true });
      fs.mkdirSync(path.join(mnt, 'e'));
      const wh = fs.lstatSync(path.join(upper, '.wh.a'), { throwIfNoEntry: false });
      if (!wh?.isFile()) return 'deletions are not recorded as .wh. files (FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT unsupported?)';
      if (!fs.existsSync(path.join(upper, 'e', WHITEOUT_OPAQUE))) return 're-created directories are not marked with .wh..wh..opq';
      return null;
    } finally {
      unmountAndRemoveSync(mnt, () => {}); // the daemon exits; the event loop reaps it
    }
  });
}

const probes = new Map<string, AufsProbe>();

function runProbe(root: string, filesystems: string): AufsProbe {
  if (filesystems.split('\n').some((l) => l.trim().split(/\s+/).pop() === 'aufs')) {
    const kernel = probeKernelAufs(root);
    if (kernel) return { supported: true, backend: kernel };
  }
  const why = probeFuseOverlay(root);
  return why ? { supported: false, reason: why } : { supported: true, backend: { kind: 'fuse-overlayfs' } };
}

/** Finds a way to stack aufs branches at `root`: kernel aufs, else fuse-overlayfs. Once per root. */
export function probeAufs(root: string, opts: AufsProbeOptions = {}): AufsProbe {
  const key = path.resolve(root);
  const cached = opts.filesystems === undefined ? probes.get(key) : undefined;
  if (cached) return cached;
  mkdirpSync(key);
  const result = runProbe(key, opts.filesystems ?? fs.readFileSync('/proc/filesystems', 'utf8'));
  if (opts.filesystems === undefined) probes.set(key, result);
  return result;
}

/** The probe's backend, or AufsUnsupportedError naming why neither works. */
export function assertAufs(root: string, opts: AufsProbeOptions = {}): AufsBackend {
  const p = probeAufs(root, opts);
  if (!p.supported || !p.backend) throw new AufsUnsupportedError(p.reason);
  return p.backend;
}

// ---- the driver ----

export interface AufsOptions extends DriverOptions {
  /** Skip the probe and use this backend (pure plan tests of kernel aufs on hosts without it). */
  backend?: AufsBackend;
}

export class AufsDriver extends BaseDriver {
  readonly name = 'aufs' as const;
  /** <root>/aufs */
  readonly home: string;
  readonly backend: AufsBackend;

  /**
   * Opens (creating) `<root>/aufs` after probing for kernel aufs or a working fuse-overlayfs; throws
   * AufsUnsupportedError ("the aufs driver needs kernel aufs or fuse-overlayfs ...") when neither works.
   */
  static open(root: string, opts: AufsOptions = {}): AufsDriver {
    const backend = opts.backend ?? assertAufs(root);
    return new AufsDriver(root, backend, opts);
  }

  constructor(root: string, backend: AufsBackend, opts: DriverOptions = {}) {
    super(path.resolve(root), opts);
    this.home = path.join(this.root, 'aufs');
    this.backend = backend;
    for (const d of ['layers', 'diff', 'mnt', 'committed', 'work']) mkdirpSync(path.join(this.home, d), 0o700);
  }

  private at(kind: 'layers' | 'diff' | 'mnt' | 'committed' | 'work', id: string): string {
    return path.join(this.home, kind, checkLayerId(id));
  }

  exists(id: string): boolean {
    try {
      return fs.statSync(this.at('diff', id)).isDirectory() && fs.statSync(this.at('layers', id)).isFile();
    } catch {
      return false;
    }
  }

  list(): string[] {
    return fs
      .readdirSync(path.join(this.home, 'layers'))
      .filter((n) => !n.startsWith('.') && !n.endsWith(REMOVING_SUFFIX) && this.exists(n))
      .sort();
  }

  diffPath(id: string): string {
    return this.at('diff', id);
  }

  /** The layer's ancestors, nearest first (its `layers/<id>` file). */
  parents(id: string): string[] {
    const file = this.at('layers', id);
    const ids = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
    for (const p of ids) {
      try {
        checkLayerId(p);
      } catch {
        throw new Error(`aufs: ${file} names an invalid layer id ${JSON.stringify(p)}`);
      }
    }
    return ids;
  }

  private isCommitted(id: string): boolean {
    return fs.existsSync(this.at('committed', id));
  }

  async create(id: string, parent: string | null, opts: DriverCreateOptions = {}): Promise<void> {
    checkLayerId(id);
    if (fs.existsSync(this.at('diff', id)) || fs.existsSync(this.at('layers', id))) throw new Error(`aufs: layer ${id} already exists`);
    let ancestors: string[] = [];
    if (parent !== null) {
      this.requireLayer(parent);
      ancestors = [parent, ...this.parents(parent)];
    }
    // Stage the branch, write the layers file, then rename: a crash leaves no half-made layer, only
    // debris that repair removes (a staged dir of a dead process, a layers file without a branch).
    const staged = path.join(this.home, 'diff', `.${ownedName(id)}`);
    const layersTmp = path.join(this.home, 'layers', `.${ownedName(id)}`);
    try {
      fs.mkdirSync(staged, { mode: 0o755 });
      fs.chmodSync(staged, 0o755); // not subject to the umask
      if (!opts.readWrite) touch(this.at('committed', id));
      else if (parent !== null) mkdirpSync(this.at('work', id), 0o700);
      fs.writeFileSync(layersTmp, ancestors.map((a) => `${a}\n`).join(''), { mode: 0o644 });
      fs.renameSync(layersTmp, this.at('layers', id));
      fs.renameSync(staged, this.at('diff', id));
    } catch (err) {
      for (const p of [staged, layersTmp, this.at('layers', id), this.at('committed', id), this.at('work', id)]) {
        fs.rmSync(p, { recursive: true, force: true });
      }
      throw err;
    }
    if (parent !== null) touch(this.at('committed', parent)); // a parent never changes under a child
  }

  mounts(id: string): MountPlan {
    this.requireLayer(id);
    return aufsMountPlan({ id, home: this.home, parents: this.parents(id), committed: this.isCommitted(id), backend: this.backend });
  }

  protected override beforeMount(_id: string, plan: MountPlan): void {
    for (const m of plan.mounts) {
      if ('work' in m && m.work) mkdirpSync(m.work, 0o700);
    }
  }

  override async put(id: string): Promise<void> {
    const plan = this.exists(id) ? this.mounts(id) : null;
    if (plan && this.backend.kind === 'aufs' && this.isMounted(id)) {
      // Docker's unmount: fold aufs pseudo-links back into the branch before the union goes away
      (require('node:child_process') as typeof child).spawnSync('auplink', [plan.target, 'flush'], { stdio: 'ignore' });
    }
    await super.put(id);
    if (!plan || !plan.mounts.some(isFuseOverlayMount)) return;
    if (!(await settleFuseDaemon(plan.target))) this.warn(`aufs: the fuse-overlayfs process of ${plan.target} did not exit`);
    if (plan.readOnly) return;
    await this.mutex.run(id, () => {
      if (this.exists(id) && !this.isMounted(id)) dropNeedlessOpaque(this.diffPath(id), this.parents(id).map((p) => this.diffPath(p)));
    });
  }

  async commit(id: string): Promise<void> {
    this.requireLayer(id);
    if (this.isCommitted(id)) return;
    if (this.isMounted(id)) throw new Error(`aufs: cannot commit layer ${id}: it is mounted at ${this.mounts(id).target}`);
    touch(this.at('committed', id));
  }

  async remove(id: string): Promise<void> {
    checkLayerId(id);
    const dirs = [this.at('diff', id), this.at('mnt', id), this.at('work', id)];
    const table = readMountInfo();
    for (const d of dirs) {
      const live = mountsUnder(d, table);
      if (live.length > 0) throw new Error(`aufs: cannot remove layer ${id}: it is mounted at ${live[live.length - 1]}`);
    }
    // Rename first (Docker's `<id>-removing`): a crash mid-delete leaves a dir that repair finishes.
    const doomed: string[] = [];
    for (const d of dirs) {
      if (!fs.existsSync(d)) continue;
      fs.rmSync(d + REMOVING_SUFFIX, { recursive: true, force: true });
      fs.renameSync(d, d + REMOVING_SUFFIX);
      doomed.push(d + REMOVING_SUFFIX);
    }
    fs.rmSync(this.at('layers', id), { force: true });
    fs.rmSync(this.at('committed', id), { force: true });
    this.forgetOwn(id);
    for (const d of doomed) await fs.promises.rm(d, { recursive: true, force: true });
  }

  diff(id: string, opts: DiffOptions = {}): Readable {
    this.requireLayer(id);
    // The branch is already in OCI whiteout form: `.wh.` files pass through as they are; packDir
    // leaves out fuse-overlayfs' private xattrs (the xattr policy, archive/xattrs.ts).
    return packDir(this.diffPath(id), {
      whiteouts: 'none',
      include: (rel) => !isAufsMeta(rel),
      ...(opts.clampMtime === undefined ? {} : { clampMtime: opts.clampMtime }),
    });
  }

  async applyDiff(id: string, tar: Readable): Promise<{ diffID: Digest; size: number }> {
    this.requireLayer(id);
    return applyLayerTar(tar, this.diffPath(id), { whiteouts: 'aufs' });
  }

  /**
   * A dead process's probe dir. Staged branches, layers files, `-removing` dirs and mount points change
   * only inside the layer store's marked windows (registrations, removals, mounts).
   */
  needsRepair(): boolean {
    return fs.readdirSync(this.root).some(isStaleAufsProbe);
  }

  async repair(inUse: (id: string) => boolean): Promise<RepairReport> {
    const report: RepairReport = { unmounted: [], relinked: [], removed: [] };
    const table = readMountInfo();
    // Unmounts (deepest first) without removing mount points: a nested one is a dir of some layer.
    const unmountAll = async (dir: string) => {
      for (const m of mountsUnder(dir)) {
        unmountFuse(m);
        for (let i = 0; i < 64 && isMountPoint(m); i++) await detach(m);
      }
    };
    const removeTree = async (p: string) => {
      await unmountAll(p);
      await fs.promises.rm(p, { recursive: true, force: true });
      report.removed.push(p);
    };
    // Probe dirs, staged branches and layers files of dead processes; half-removed dirs.
    for (const name of fs.readdirSync(this.root).filter(isStaleAufsProbe)) await removeTree(path.join(this.root, name));
    for (const kind of ['layers', 'diff', 'mnt', 'work'] as const) {
      const dir = path.join(this.home, kind);
      for (const name of fs.readdirSync(dir)) {
        const owner = name.startsWith('.') ? ownerOf(name.slice(1)) : null;
        const stale = name.endsWith(REMOVING_SUFFIX) || (name.startsWith('.') && (!owner || !isAlive(owner)));
        if (stale) await removeTree(path.join(dir, name));
      }
    }
    // A layer is its layers file plus its branch: either alone is the debris of a crash.
    const layerFiles = new Set(fs.readdirSync(path.join(this.home, 'layers')).filter((n) => !n.startsWith('.')));
    const branches = new Set(fs.readdirSync(path.join(this.home, 'diff')).filter((n) => !n.startsWith('.')));
    for (const id of layerFiles) if (!branches.has(id)) await removeTree(path.join(this.home, 'layers', id));
    for (const id of branches) if (!layerFiles.has(id)) await removeTree(path.join(this.home, 'diff', id));
    const ids = new Set(this.list());
    for (const kind of ['committed', 'work'] as const) {
      for (const id of fs.readdirSync(path.join(this.home, kind))) {
        if (!ids.has(id)) await removeTree(path.join(this.home, kind, id));
      }
    }
    // Mount points: stale mounts (nobody uses them) are unmounted, then the empty dirs go.
    for (const id of fs.readdirSync(path.join(this.home, 'mnt'))) {
      const mnt = path.join(this.home, 'mnt', id);
      const mounted = mountsUnder(mnt, table);
      if (mounted.length > 0) {
        if (ids.has(id) && inUse(id)) continue;
        await unmountAll(mnt);
        await settleFuseDaemon(mnt);
        report.unmounted.push(mnt);
      }
      if (fs.existsSync(mnt)) await removeTree(mnt);
    }
    return report;
  }
}
