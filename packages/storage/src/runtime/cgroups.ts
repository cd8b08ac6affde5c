// One cgroup per container under a `tsbuild` parent (REFERENCE §4.5). cgroup v1 (this project's hybrid
// machines): a directory in each controller, joined through cgroup.procs. cgroup v2: one directory,
// joined at birth with CLONE_INTO_CGROUP, controllers enabled down the tree.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mkdirpSync } from '../atomic';
import { TsbuildError } from '../errors';
import { inUserNamespace } from '../rootless';

export interface CgroupLimits {
  /** Memory limit in bytes. Swap: as much again (Docker's default when --memory-swap is unset). */
  memory?: number | undefined;
  /** CPUs as a fraction (1.5 = 150 ms of CPU time per 100 ms). */
  cpus?: number | undefined;
  /** Maximum number of tasks. */
  pidsLimit?: number | undefined;
  /** Every device may be used (privileged containers): the device cgroup allows `a`. */
  allDevices?: boolean;
}

export interface CgroupOptions {
  version?: 1 | 2;
  /** The cgroup mount root (default /sys/fs/cgroup). A v2 tree elsewhere can stand in for tests. */
  root?: string;
  /** The parent group name under the root (default 'tsbuild'). */
  parent?: string;
}

export interface ContainerCgroup {
  readonly version: 1 | 2;
  /** The container's cgroup directories (one per v1 controller, or the v2 one). */
  readonly dirs: string[];
  /** What spawn() needs to put the child there. */
  readonly spawnOptions: { cgroupProcs?: string[]; cgroupDir?: string };
  /** Whether the kernel's OOM killer killed a task of this group. */
  oomKilled(): boolean;
  /** SIGKILLs every task left in the group and waits until it is empty. */
  killAll(): Promise<void>;
  /** killAll, then removes the directories. */
  remove(): Promise<void>;
}

const CGROUP2_SUPER_MAGIC = 0x63677270;
const CFS_PERIOD_US = 100_000;
/** v1 controllers a container gets a group in (when mounted). cpuset is left out: it needs cpus/mems copied. */
const V1_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'pids', 'devices', 'freezer', 'blkio'];

/**
 * Docker's and runc's default device rules: the /dev nodes a container gets, the console and pty
 * devices, and mknod (not access) of anything.
 */
export const DEFAULT_DEVICE_RULES = [
  'c *:* m', 'b *:* m', 'c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 5:0 rwm',
  'c 5:1 rwm', 'c 5:2 rwm', 'c 136:* rwm', 'c 10:200 rwm',
];

/** cgroup2 at the root means unified; anything else (v1 or hybrid with an empty unified) means v1. */
export function detectCgroupVersion(root = '/sys/fs/cgroup'): 1 | 2 {
  return fs.statfsSync(root).type === CGROUP2_SUPER_MAGIC ? 2 : 1;
}

function write(file: string, value: string): void {
  writeEach(file, [value]);
}

/** Writes each value with its own write(2) (devices.allow takes one rule per write) through one open. */
function writeEach(file: string, values: readonly string[]): void {
  let fd: number | undefined;
  let value = '';
  try {
    fd = fs.openSync(file, 'w');
    for (value of values) fs.writeSync(fd, value);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw Object.assign(new Error(`cgroup: writing ${JSON.stringify(value)} to ${file}: ${e.code} (${e.message})`), { code: e.code });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function readIfExists(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

function counter(text: string, key: string): number {
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

function checkLimits(limits: CgroupLimits): void {
  const positive = (name: string, v: number | undefined, integer: boolean) => {
    if (v === undefined) return;
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
      throw new RangeError(`cgroup: ${name} must be a positive ${integer ? 'integer' : 'number'} (got ${String(v)})`);
    }
  };
  positive('memory', limits.memory, true);
  positive('cpus', limits.cpus, false);
  positive('pidsLimit', limits.pidsLimit, true);
}

function checkId(id: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id)) {
    throw new TypeError(`cgroup: the container id ${JSON.stringify(id)} must be letters, digits, '_', '.', '-'`);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function procsOf(dir: string): number[] {
  return readIfExists(path.join(dir, 'cgroup.procs')).split('\n').filter(Boolean).map(Number);
}

/**
 * Kills every task of the container's groups. With a v1 freezer group the tasks are frozen first:
 * a frozen task can neither exit nor reap, so no pid read from cgroup.procs can be reused by an
 * unrelated host process before the kill lands (REFERENCE §4.5: freeze, kill, thaw).
 */
async function killUntilEmpty(dirs: string[]): Promise<void> {
  const freezer = dirs.find((d) => fs.existsSync(path.join(d, 'freezer.state')));
  for (let attempt = 0; attempt < 500; attempt++) {
    if (dirs.flatMap(procsOf).length === 0) return;
    const frozen = freezer !== undefined && (await freeze(freezer));
    for (const pid of dirs.flatMap(procsOf)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (frozen) fs.writeFileSync(path.join(freezer!, 'freezer.state'), 'THAWED');
    await sleep(attempt < 20 ? 2 : 10);
  }
  throw new Error(`cgroup: tasks remain in ${dirs.join(', ')} after SIGKILL`);
}

/** Freezes a v1 freezer group; false when it does not settle (the kill then proceeds unfrozen). */
async function freeze(dir: string): Promise<boolean> {
  const state = path.join(dir, 'freezer.state');
  try {
    fs.writeFileSync(state, 'FROZEN');
    for (let i = 0; i < 50; i++) {
      if (fs.readFileSync(state, 'utf8').trim() === 'FROZEN') return true;
      await sleep(1);
    }
    fs.writeFileSync(state, 'THAWED');
  } catch {
    // No freezer after all: kill without it.
  }
  return false;
}

async function rmdirRetrying(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      // A cgroup stays busy until its last (already killed) task has been released.
      if (code !== 'EBUSY' || attempt >= 200) {
        throw Object.assign(new Error(`cgroup: removing ${dir}: ${code}`), { code });
      }
      await sleep(5);
    }
  }
}

class V1Cgroup implements ContainerCgroup {
  readonly version = 1 as const;
  readonly dirs: string[] = [];
  private readonly byController = new Map<string, string>();

  constructor(root: string, parent: string, id: string, limits: CgroupLimits) {
    const byHierarchy = new Map<string, string>(); // co-mounted controllers (cpu,cpuacct) share one
    try {
      for (const controller of V1_CONTROLLERS) {
        const mount = path.join(root, controller);
        if (!fs.existsSync(path.join(mount, 'cgroup.procs'))) continue;
        const hierarchy = fs.realpathSync.native(mount); // one realpath(3), not an lstat per component
        let dir = byHierarchy.get(hierarchy);
        if (!dir) {
          mkdirpSync(path.join(hierarchy, parent));
          dir = path.join(hierarchy, parent, id);
          fs.mkdirSync(dir);
          this.dirs.push(dir);
          byHierarchy.set(hierarchy, dir);
        }
        this.byController.set(controller, dir);
      }
      this.applyLimits(limits);
    } catch (err) {
      for (const dir of this.dirs) {
        try {
          fs.rmdirSync(dir);
        } catch {
          // best effort: nothing has joined the group yet
        }
      }
      throw err;
    }
  }

  private need(controller: string, what: string): string {
    const dir = this.byController.get(controller);
    if (!dir) throw new Error(`cgroup: ${what} needs the v1 ${controller} controller, which is not mounted`);
    return dir;
  }

  private applyLimits(limits: CgroupLimits): void {
    if (limits.memory !== undefined) {
      const dir = this.need('memory', 'a memory limit');
      write(path.join(dir, 'memory.limit_in_bytes'), String(limits.memory));
      const memsw = path.join(dir, 'memory.memsw.limit_in_bytes');
      if (fs.existsSync(memsw)) write(memsw, String(limits.memory * 2));
    }
    if (limits.cpus !== undefined) {
      const dir = this.need('cpu', 'a CPU limit');
      write(path.join(dir, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
      write(path.join(dir, 'cpu.cfs_quota_us'), String(Math.max(1000, Math.round(limits.cpus * CFS_PERIOD_US))));
    }
    if (limits.pidsLimit !== undefined) {
      write(path.join(this.need('pids', 'a pids limit'), 'pids.max'), String(limits.pidsLimit));
    }
    const devices = this.byController.get('devices');
    if (devices) {
      if (limits.allDevices) {
        write(path.join(devices, 'devices.allow'), 'a');
      } else {
        write(path.join(devices, 'devices.deny'), 'a');
        writeEach(path.join(devices, 'devices.allow'), DEFAULT_DEVICE_RULES);
      }
    }
  }

  get spawnOptions() {
    return { cgroupProcs: this.dirs.map((d) => path.join(d, 'cgroup.procs')) };
  }

  oomKilled(): boolean {
    const dir = this.byController.get('memory');
    return dir ? counter(readIfExists(path.join(dir, 'memory.oom_control')), 'oom_kill') > 0 : false;
  }

  killAll(): Promise<void> {
    return killUntilEmpty(this.dirs);
  }

  async remove(): Promise<void> {
    await this.killAll();
    for (const dir of this.dirs) await rmdirRetrying(dir);
  }
}

class V2Cgroup implements ContainerCgroup {
  readonly version = 2 as const;
  readonly dirs: string[];
  private readonly dir: string;

  constructor(root: string, parent: string, id: string, limits: CgroupLimits) {
    const needed: string[] = [];
    if (limits.memory !== undefined) needed.push('memory');
    if (limits.cpus !== undefined) needed.push('cpu');
    if (limits.pidsLimit !== undefined) needed.push('pids');
    const available = readIfExists(path.join(root, 'cgroup.controllers')).split(/\s+/).filter(Boolean);
    for (const c of needed) {
      if (!available.includes(c)) {
        throw new Error(`cgroup: the v2 ${c} controller is not available in ${path.join(root, 'cgroup.controllers')}`);
      }
    }
    const parentDir = path.join(root, parent);
    mkdirpSync(parentDir);
    // Controllers are enabled top-down; a group with processes cannot enable them, so only leaves run.
    for (const dir of [root, parentDir]) {
      const enabled = readIfExists(path.join(dir, 'cgroup.subtree_control')).split(/\s+/).filter(Boolean);
      const missing = needed.filter((c) => !enabled.includes(c));
      if (missing.length) write(path.join(dir, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
    }
    this.dir = path.join(parentDir, id);
    fs.mkdirSync(this.dir);
    this.dirs = [this.dir];
    try {
      if (limits.memory !== undefined) {
        write(path.join(this.dir, 'memory.max'), String(limits.memory));
        write(path.join(this.dir, 'memory.swap.max'), String(limits.memory));
      }
      if (limits.cpus !== undefined) {
        write(path.join(this.dir, 'cpu.max'), `${Math.max(1000, Math.round(limits.cpus * CFS_PERIOD_US))} ${CFS_PERIOD_US}`);
      }
      if (limits.pidsLimit !== undefined) write(path.join(this.dir, 'pids.max'), String(limits.pidsLimit));
    } catch (err) {
      try {
        fs.rmdirSync(this.dir);
      } catch {
        // best effort
      }
      throw err;
    }
  }

  get spawnOptions() {
    return { cgroupDir: this.dir };
  }

  oomKilled(): boolean {
    return counter(readIfExists(path.join(this.dir, 'memory.events')), 'oom_kill') > 0;
  }

  async killAll(): Promise<void> {
    const kill = path.join(this.dir, 'cgroup.kill');
    if (fs.existsSync(kill) && procsOf(this.dir).length > 0) write(kill, '1');
    await killUntilEmpty([this.dir]);
  }

  async remove(): Promise<void> {
    await this.killAll();
    await rmdirRetrying(this.dir);
  }
}

/**
 * No group at all: the rootless mode, where the host's cgroup tree is not the user's to write. The
 * container's processes still die with its PID namespace.
 */
class NoCgroup implements ContainerCgroup {
  readonly dirs: string[] = [];
  readonly spawnOptions = {};
  constructor(readonly version: 1 | 2) {}
  oomKilled(): boolean {
    return false;
  }
  async killAll(): Promise<void> {}
  async remove(): Promise<void> {}
}

const LIMIT_FLAGS: Record<string, string> = { memory: '--memory', cpus: '--cpus', pidsLimit: '--pids-limit' };

/** Creates the container's cgroup(s) and applies the limits. */
export function createCgroup(id: string, limits: CgroupLimits = {}, opts: CgroupOptions = {}): ContainerCgroup {
  checkId(id);
  checkLimits(limits);
  if (inUserNamespace() && opts.root === undefined) {
    const version = opts.version ?? detectCgroupVersion();
    const asked = Object.keys(LIMIT_FLAGS).filter((k) => limits[k as keyof CgroupLimits] !== undefined);
    if (asked.length > 0) {
      // A delegated v2 subtree (systemd Delegate=yes) is the only place a user may set limits; v1 has none.
      throw new TsbuildError(
        'ECGROUPROOTLESS',
        `${asked.map((k) => LIMIT_FLAGS[k]).join(', ')}: resource limits in the rootless mode need a cgroup v2 subtree delegated to the user; ` +
          (version === 1 ? 'this host uses cgroup v1 (or hybrid), which has none' : 'tsbuild cannot use a delegated subtree yet'),
        { exitCode: 125 },
      );
    }
    return new NoCgroup(version);
  }
  const root = opts.root ?? '/sys/fs/cgroup';
  const parent = opts.parent ?? 'tsbuild';
  checkId(parent);
  const version = opts.version ?? detectCgroupVersion(root);
  return version === 2 ? new V2Cgroup(root, parent, id, limits) : new V1Cgroup(root, parent, id, limits);
}

/**
 * Removes container cgroups left by a tsbuild that was killed (its containers died with it, but nobody
 * removed their groups): empty groups under the parent older than `minAgeMs`, so a container that is
 * being set up right now is never touched. Returns how many directories were removed.
 */
export function removeStaleCgroups(opts: CgroupOptions & { minAgeMs?: number } = {}): number {
  let removed = 0;
  if (inUserNamespace() && opts.root === undefined) return 0; // rootless: no groups of ours
  for (const dir of staleCgroups(opts)) {
    try {
      fs.rmdirSync(dir);
      removed++;
    } catch {
      // Busy or already gone: not stale, or someone else cleaned it.
    }
  }
  return removed;
}

/**
 * Removes the (empty) groups of container `id`, whose tsbuild was killed, at once: the sweep above waits
 * a minute, and until then every store's fsck lists them. A busy or missing group is left to that sweep.
 */
function removeContainerCgroups(id: string): void {
  if (inUserNamespace()) return; // rootless: no groups of ours
  for (const parent of cgroupParents({})) {
    try {
      fs.rmdirSync(path.join(parent, id));
    } catch {
      // Gone, never made (another controller set), or still busy.
    }
  }
}

/**
 * The file in a container's state directory that names its cgroups (its id): a killed tsbuild's state
 * directory is removed by the next store open (Store.repairLeftovers), which removes these groups with it.
 */
export const CGROUP_ID_FILE = 'container-id';

/** Removes the groups the state directory `dir` of a dead tsbuild names (CGROUP_ID_FILE), if any. */
export function removeCgroupsNamedIn(dir: string): void {
  let id: string;
  try {
    id = fs.readFileSync(path.join(dir, CGROUP_ID_FILE), 'utf8');
  } catch {
    return;
  }
  if (/^[0-9a-f]{64}$/.test(id)) removeContainerCgroups(id);
}

/** The directories under which containers' groups are made: one per v1 hierarchy, or the v2 one. */
function cgroupParents(opts: CgroupOptions): string[] {
  const root = opts.root ?? '/sys/fs/cgroup';
  const parentName = opts.parent ?? 'tsbuild';
  return (opts.version ?? detectCgroupVersion(root)) === 2 ? [path.join(root, parentName)] : V1_CONTROLLERS.map((c) => path.join(root, c, parentName));
}

/** The groups removeStaleCgroups would remove. */
export function staleCgroups(opts: CgroupOptions & { minAgeMs?: number } = {}): string[] {
  const minAge = opts.minAgeMs ?? 60_000;
  const out: string[] = [];
  for (const parent of cgroupParents(opts)) {
    let children: fs.Dirent[];
    try {
      children = fs.readdirSync(parent, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const child of children) {
      if (!child.isDirectory() || !/^[0-9a-f]{64}$/.test(child.name)) continue;
      const dir = path.join(parent, child.name);
      try {
        if (Date.now() - fs.statSync(dir).mtimeMs < minAge) continue;
        if (fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').trim() !== '') continue;
        out.push(dir);
      } catch {
        // Gone meanwhile.
      }
    }
  }
  return out;
}
