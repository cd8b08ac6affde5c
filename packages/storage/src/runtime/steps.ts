// Docker's default container filesystem as spawn() setup steps (REFERENCE §4.1-4.2). Pure: it only
// builds data. Order: host trees are detached before pivot_root; everything else is mounted after it,
// so paths (and symlinks) in the untrusted rootfs resolve inside the container, never on the host.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { MountFlag, SetupStep } from '@tsbuild/native';

export interface BindMount {
  /** Host path (file or directory). */
  source: string;
  /** Absolute path inside the container. */
  target: string;
  readonly?: boolean;
}

export interface ContainerStepsOptions {
  rootfs: string;
  hostname: string;
  /** Host files bound over /etc/hosts, /etc/hostname and /etc/resolv.conf. */
  etcFiles?: { hosts: string; hostname: string; resolvConf: string };
  mounts?: BindMount[] | undefined;
  readonlyRootfs?: boolean | undefined;
  /** Created (mkdir -p) when missing, like Docker does for WORKDIR. */
  cwd?: string;
  /** Masked paths; defaults to Docker's list plus every cpuN/thermal_throttle. */
  maskedPaths?: string[];
  readonlyPaths?: string[];
  /** Allocate the container's terminal from its own devpts (the spawn then returns terminalFd). */
  console?: boolean;
  /** The container has its own network namespace: bring its `lo` up, as Docker and runc do. */
  ownNetwork?: boolean;
  /** Bytes of /dev/shm; default 64 MiB as Docker's. */
  shmSize?: number;
  /** Privileged: the host's device nodes are made in /dev too, and /sys is writable. */
  privileged?: boolean;
  /**
   * In a user namespace (the rootless mode): mknod is not allowed there, so the /dev nodes are bind
   * mounts of the host's; without a network namespace of its own, sysfs cannot be mounted and the
   * host's /sys is bound read-only instead (as rootless podman does).
   */
  rootless?: boolean;
}

/** Docker's masked paths (moby/moby:daemon/pkg/oci/defaults.go). */
export const DOCKER_MASKED_PATHS: readonly string[] = [
  '/proc/asound', '/proc/acpi', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
  '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

export const DOCKER_READONLY_PATHS: readonly string[] = [
  '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger',
];

/** Docker masks every cpuN/thermal_throttle too; they are the same in the container's sysfs. */
export function thermalThrottlePaths(sysCpu = '/sys/devices/system/cpu'): string[] {
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(sysCpu);
  } catch {
    return [];
  }
  return entries
    .filter((e) => /^cpu\d+$/.test(e) && fs.existsSync(path.join(sysCpu, e, 'thermal_throttle')))
    .map((e) => path.join(sysCpu, e, 'thermal_throttle'));
}

const NODEV_NOSUID_NOEXEC: MountFlag[] = ['nosuid', 'nodev', 'noexec'];

/** The /dev nodes every container gets (major, minor), created with mknod in the container's tmpfs. */
export const DEFAULT_DEVICES: readonly { name: string; major: number; minor: number }[] = [
  { name: 'null', major: 1, minor: 3 },
  { name: 'zero', major: 1, minor: 5 },
  { name: 'full', major: 1, minor: 7 },
  { name: 'random', major: 1, minor: 8 },
  { name: 'urandom', major: 1, minor: 9 },
  { name: 'tty', major: 5, minor: 0 },
];

function checkContainerPath(what: string, p: string): string {
  if (!path.isAbsolute(p) || p.includes('\0')) throw new TypeError(`${what} must be an absolute path inside the container (got ${JSON.stringify(p)})`);
  return path.posix.normalize(p);
}

/** Makes a mount point for a host file or directory at `target` (inside the container). */
function mountPoint(target: string, isDir: boolean): SetupStep[] {
  if (isDir) return [{ op: 'mkdir', path: target, parents: true }];
  const parent = path.posix.dirname(target);
  return [
    ...(parent === '/' ? [] : [{ op: 'mkdir', path: parent, parents: true } as SetupStep]),
    { op: 'writeFile', path: target, data: '', ifMissing: true },
  ];
}

// Made by the container's own /dev setup, or mounts of their own: never copied from the host.
const OWN_DEV_ENTRIES = new Set(['pts', 'shm', 'mqueue', 'ptmx', 'console', 'fd', 'stdin', 'stdout', 'stderr', ...DEFAULT_DEVICES.map((d) => d.name)]);

/**
 * The host's device nodes as mknod steps, as Docker gives a privileged container (devices.HostDevices):
 * every char and block device under /dev, same path, mode and numbers.
 */
export function hostDeviceSteps(dev = '/dev'): SetupStep[] {
  const steps: SetupStep[] = [];
  const walk = (dir: string, rel: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (rel === '' && OWN_DEV_ENTRIES.has(e.name)) continue;
      const full = path.join(dir, e.name);
      const inside = path.posix.join('/dev', rel, e.name);
      if (e.isDirectory()) {
        steps.push({ op: 'mkdir', path: inside });
        walk(full, path.posix.join(rel, e.name));
      } else if (e.isCharacterDevice() || e.isBlockDevice()) {
        const st = fs.statSync(full, { bigint: true, throwIfNoEntry: false });
        if (!st) continue;
        const rdev = st.rdev; // glibc's gnu_dev_major/minor split
        steps.push({
          op: 'mknod', path: inside, type: e.isCharacterDevice() ? 'char' : 'block', mode: Number(st.mode) & 0o7777,
          major: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
          minor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
        });
      }
    }
  };
  walk(dev, '');
  return steps;
}

export function containerSteps(o: ContainerStepsOptions): SetupStep[] {
  const mounts = (o.mounts ?? []).map((m, i) => {
    let isDir: boolean;
    try {
      isDir = fs.statSync(m.source).isDirectory();
    } catch (err) {
      throw new Error(`mount ${i}: the source ${m.source} cannot be used: ${(err as NodeJS.ErrnoException).code}`);
    }
    return { ...m, target: checkContainerPath(`mount ${i} target`, m.target), isDir };
  });
  const etc = o.etcFiles
    ? [
        { source: o.etcFiles.hosts, target: '/etc/hosts' },
        { source: o.etcFiles.hostname, target: '/etc/hostname' },
        { source: o.etcFiles.resolvConf, target: '/etc/resolv.conf' },
      ]
    : [];
  // Host trees attached after the pivot, in slot order: the /etc files, the user's mounts, then
  // (rootless) the device nodes and /sys.
  const devices = o.rootless
    ? DEFAULT_DEVICES.map((d) => ({ source: `/dev/${d.name}`, target: `/dev/${d.name}`, isDir: false, readonly: false }))
    : [];
  const sysBind = o.rootless && !o.ownNetwork ? [{ source: '/sys', target: '/sys', isDir: true, readonly: !o.privileged }] : [];
  const hostTrees = [...etc, ...mounts, ...devices, ...sysBind];
  const proc = (at: string): SetupStep[] => [
    { op: 'mkdir', path: `${at}/proc` },
    { op: 'mount', source: 'proc', target: `${at}/proc`, type: 'proc', flags: NODEV_NOSUID_NOEXEC },
  ];
  const sysfs = (at: string): SetupStep[] => [
    { op: 'mkdir', path: `${at}/sys` },
    { op: 'mount', source: 'sysfs', target: `${at}/sys`, type: 'sysfs', flags: o.privileged ? NODEV_NOSUID_NOEXEC : [...NODEV_NOSUID_NOEXEC, 'ro'] },
  ];
  if (hostTrees.length > 64) throw new RangeError(`at most ${64 - hostTrees.length + mounts.length} bind mounts are supported`);

  const steps: SetupStep[] = [
    // Modes below are exact (device nodes 0666, dirs 0755), whatever umask the caller has; the
    // container's own umask (022, as Docker's) is set last.
    { op: 'umask', mask: 0 },
    ...(o.ownNetwork ? [{ op: 'loopbackUp' } as SetupStep] : []),
    { op: 'mount', target: '/', flags: ['rec', 'slave'] },
    { op: 'mount', source: o.rootfs, target: o.rootfs, flags: ['bind', 'rec'] },
  ];
  // Detached copies of host trees, attached after the pivot.
  hostTrees.forEach((m, slot) => steps.push({ op: 'openTree', source: m.source, slot }));
  const attach = (m: { target: string; readonly?: boolean | undefined }, slot: number, flags: MountFlag[] = []): SetupStep => ({
    op: 'attachTree', slot, target: m.target, flags: m.readonly ? ['ro', ...flags] : flags,
  });
  steps.push(
    // proc and sysfs: in a user namespace the kernel mounts them only where the host's are visible
    // (mount_too_revealing), so before the pivot, at the rootfs paths runContainer checked are
    // directories; as root, after it.
    ...(o.rootless ? [...proc(o.rootfs), ...(sysBind.length > 0 ? [] : sysfs(o.rootfs))] : []),
    { op: 'pivotRoot', root: o.rootfs },
    ...(o.rootless ? [] : proc('')),
    { op: 'mkdir', path: '/dev' },
    { op: 'mount', source: 'tmpfs', target: '/dev', type: 'tmpfs', flags: ['nosuid', 'strictatime'], data: 'mode=755,size=65536k' },
    ...(o.rootless
      ? devices.flatMap((d, i): SetupStep[] => [...mountPoint(d.target, false), attach(d, etc.length + mounts.length + i, ['nosuid', 'noexec'])])
      : DEFAULT_DEVICES.map((d): SetupStep => ({ op: 'mknod', path: `/dev/${d.name}`, type: 'char', mode: 0o666, major: d.major, minor: d.minor }))),
    ...(o.privileged && !o.rootless ? hostDeviceSteps() : []),
    { op: 'symlink', target: '/proc/self/fd', path: '/dev/fd' },
    { op: 'symlink', target: '/proc/self/fd/0', path: '/dev/stdin' },
    { op: 'symlink', target: '/proc/self/fd/1', path: '/dev/stdout' },
    { op: 'symlink', target: '/proc/self/fd/2', path: '/dev/stderr' },
    { op: 'symlink', target: 'pts/ptmx', path: '/dev/ptmx' },
    { op: 'mkdir', path: '/dev/pts' },
    { op: 'mount', source: 'devpts', target: '/dev/pts', type: 'devpts', flags: ['nosuid', 'noexec'], data: 'newinstance,ptmxmode=0666,mode=0620,gid=5' },
    ...(o.console ? [{ op: 'consolePty' } as SetupStep] : []),
    { op: 'mkdir', path: '/dev/shm' },
    { op: 'mount', source: 'shm', target: '/dev/shm', type: 'tmpfs', flags: NODEV_NOSUID_NOEXEC, data: `mode=1777,size=${Math.ceil((o.shmSize ?? 64 * 1024 * 1024) / 1024)}k` },
    { op: 'mkdir', path: '/dev/mqueue' },
    { op: 'mount', source: 'mqueue', target: '/dev/mqueue', type: 'mqueue', flags: NODEV_NOSUID_NOEXEC },
    ...(o.rootless ? [] : sysfs('')),
    ...(sysBind.length > 0 ? [{ op: 'mkdir', path: '/sys' } as SetupStep, attach(sysBind[0]!, hostTrees.length - 1, NODEV_NOSUID_NOEXEC)] : []),
  );
  if (etc.length) steps.push({ op: 'mkdir', path: '/etc' });
  [...etc.map((m) => ({ ...m, isDir: false, readonly: false })), ...mounts].forEach((m, slot) => {
    steps.push(...mountPoint(m.target, m.isDir), attach(m, slot));
  });
  if (o.cwd) steps.push({ op: 'mkdir', path: checkContainerPath('cwd', o.cwd), parents: true });
  if (o.readonlyRootfs) steps.push({ op: 'mount', target: '/', flags: ['bind', 'remount', 'ro'] });
  for (const p of o.readonlyPaths ?? DOCKER_READONLY_PATHS) steps.push({ op: 'readonlyPath', path: p });
  for (const p of o.maskedPaths ?? [...DOCKER_MASKED_PATHS, ...thermalThrottlePaths()]) steps.push({ op: 'maskPath', path: p });
  steps.push({ op: 'sethostname', name: o.hostname }, { op: 'umask', mask: 0o022 });
  return steps;
}
