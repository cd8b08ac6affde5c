// Mounts and namespaces: mount(2), umount2, overlay through the new mount API (one `lowerdir+` per
// layer, so up to 500 layers fit), pivot_root, chroot, unshare, setns, sethostname.
import { binding } from './binding';
import type { NativeBinding } from './binding';
import type { MountFlag, MountSpec, Namespace, OverlayMountSpec, UmountOptions } from './types';
import {
  checkArray, checkFd, checkMaxBytes, checkName, checkObject, checkOptionalBoolean, checkOptionalObject,
  checkOptionalString, checkPath, checkString, fail, flagBits,
} from './validate';

/** MS_* values of mount(2) for each MountFlag. */
export const MOUNT_FLAGS: Readonly<Record<MountFlag, number>> = {
  ro: 0x1, nosuid: 0x2, nodev: 0x4, noexec: 0x8, sync: 0x10, remount: 0x20, noatime: 0x400,
  nodiratime: 0x800, bind: 0x1000, move: 0x2000, rec: 0x4000, silent: 0x8000, unbindable: 0x20000,
  private: 0x40000, slave: 0x80000, shared: 0x100000, relatime: 0x200000, strictatime: 0x1000000,
};

/** MOUNT_ATTR_* values of fsmount(2) for the flags an overlay mount accepts. */
const MOUNT_ATTRS: Readonly<Record<string, number>> = {
  ro: 0x1, nosuid: 0x2, nodev: 0x4, noexec: 0x8, noatime: 0x10, strictatime: 0x20, nodiratime: 0x80,
  relatime: 0x0,
};

/** CLONE_NEW* values for each Namespace. */
export const NAMESPACE_FLAGS: Readonly<Record<Namespace, number>> = {
  mount: 0x20000, cgroup: 0x2000000, uts: 0x4000000, ipc: 0x8000000, user: 0x10000000, pid: 0x20000000,
  net: 0x40000000,
};

const UMOUNT_FLAGS = { force: 0x1, detach: 0x2, noFollow: 0x8 } as const;

/** mount(2) copies its data string in one page, NUL included, and silently drops the rest. */
export const MOUNT_DATA_MAX = 4095;
/** fsconfig(2) rejects string values longer than this. */
export const FSCONFIG_VALUE_MAX = 255;
const HOST_NAME_MAX = 64;

/** Mount flag names to their MS_* bits (TypeError on an unknown name). Shared with spawn's setup steps. */
export function mountFlagBits(flags: unknown, fn = 'mount', what = 'flags'): number {
  return flagBits(fn, what, flags, MOUNT_FLAGS);
}

/** Namespace names to their CLONE_NEW* bits (TypeError on an unknown name). */
export function namespaceBits(namespaces: unknown, fn = 'unshare', what = 'namespaces'): number {
  return flagBits(fn, what, namespaces, NAMESPACE_FLAGS);
}

/** Checks a mount(2) data string: NUL-free and within one page, where the kernel would truncate it. */
export function checkMountData(fn: string, value: unknown): string | null {
  if (value === undefined || value === '') return null;
  if (typeof value !== 'string' || value.includes('\0')) fail(fn, 'data', 'a string without NUL bytes', value);
  const bytes = Buffer.byteLength(value);
  if (bytes > MOUNT_DATA_MAX) {
    throw limitError('E2BIG', `${fn}: the data string is ${bytes} bytes; mount(2) takes at most ${MOUNT_DATA_MAX} and would silently cut the rest`);
  }
  return value;
}

function limitError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

type MountArgs = Parameters<NativeBinding['mount']>;
type UmountArgs = Parameters<NativeBinding['umount']>;

function mountArgs(fn: string, spec: MountSpec): MountArgs {
  const s = checkObject(fn, 'spec', spec);
  const source = checkOptionalString(fn, 'source', s.source);
  const target = checkPath(fn, 'target', s.target);
  const type = checkOptionalString(fn, 'type', s.type);
  const flags = mountFlagBits(s.flags, fn);
  return [source, target, type, flags, checkMountData(fn, s.data)];
}

/**
 * mount(2) on a libuv pool thread (a mount can wait on a slow disk or a FUSE daemon). Flags by name,
 * e.g. `{ target, flags: ['rec', 'private'] }` or a tmpfs with `data`. Bad arguments reject with a
 * TypeError before any syscall.
 */
export async function mount(spec: MountSpec): Promise<void> {
  await binding.mount(...mountArgs('mount', spec));
}

/** mount() on the calling thread, for callers that cannot await (the host probes of a driver's open). */
export function mountSync(spec: MountSpec): void {
  binding.mountSync(...mountArgs('mountSync', spec));
}

function umountArgs(fn: string, target: string, opts: UmountOptions | undefined): UmountArgs {
  checkPath(fn, 'target', target);
  const o = checkOptionalObject(fn, 'options', opts);
  let flags = 0;
  for (const name of Object.keys(UMOUNT_FLAGS) as (keyof typeof UMOUNT_FLAGS)[]) {
    if (checkOptionalBoolean(fn, `options.${name}`, o[name])) flags |= UMOUNT_FLAGS[name];
  }
  return [target, flags];
}

/** umount2(2) on a libuv pool thread; `detach` is a lazy unmount (MNT_DETACH). */
export async function umount(target: string, opts?: UmountOptions): Promise<void> {
  await binding.umount(...umountArgs('umount', target, opts));
}

/** umount() on the calling thread, for callers that cannot await (the host probes of a driver's open). */
export function umountSync(target: string, opts?: UmountOptions): void {
  binding.umountSync(...umountArgs('umountSync', target, opts));
}

// ---- overlay ----

type OverlayApi = 'fsconfig' | 'mount';
let probedOverlayApi: OverlayApi | undefined;

/**
 * Which API mounts overlays here: 'fsconfig' when the kernel takes `lowerdir+` (Linux 6.7+), probed
 * once per process; otherwise classic mount(2). TSBUILD_OVERLAY_API=mount forces the classic path
 * (used by tests to exercise it for real).
 */
export function overlayApi(): OverlayApi {
  if (process.env.TSBUILD_OVERLAY_API === 'mount') return 'mount';
  probedOverlayApi ??= binding.fsconfigProbe('overlay', 'lowerdir+', '/') ? 'fsconfig' : 'mount';
  return probedOverlayApi!;
}

// Reserved keys: layers come from the spec's fields, never from options.
const LAYER_KEYS = new Set(['lowerdir', 'lowerdir+', 'upperdir', 'workdir', 'datadir+']);

interface OverlayPlan {
  lower: string[];
  upper: string | null;
  work: string | null;
  target: string;
  /** Extra options split at the first '=': [key, value] or [key, null] for a bare flag. */
  options: [string, string | null][];
  flagNames: string[];
}

function checkOverlaySpec(fn: string, spec: OverlayMountSpec): OverlayPlan {
  const s = checkObject(fn, 'spec', spec);
  const lower = checkArray(fn, 'lower', s.lower).map((p) => checkPath(fn, 'each lower', p));
  const upper = checkOptionalString(fn, 'upper', s.upper);
  const work = checkOptionalString(fn, 'work', s.work);
  if ((upper === null) !== (work === null)) fail(fn, 'upper and work', 'given together', upper ?? work);
  if (lower.length === 0) fail(fn, 'lower', 'at least one directory (overlay needs a lower layer)', s.lower);
  if (upper === null && lower.length < 2) {
    fail(fn, 'lower', 'at least two directories without an upper (bind-mount a single layer instead)', s.lower);
  }
  const options = checkArray(fn, 'options', s.options ?? []).map((o): [string, string | null] => {
    const opt = checkString(fn, 'each option', o);
    const eq = opt.indexOf('=');
    const key = eq < 0 ? opt : opt.slice(0, eq);
    if (key === '' || LAYER_KEYS.has(key)) fail(fn, 'each option', 'key or key=value, not a layer (use lower/upper/work)', opt);
    return [key, eq < 0 ? null : opt.slice(eq + 1)];
  });
  const flagNames = checkArray(fn, 'flags', s.flags ?? []).map((f) => {
    checkName(fn, 'each of flags', f, MOUNT_ATTRS);
    return f as string;
  });
  return { lower, upper, work, target: checkPath(fn, 'target', s.target), options, flagNames };
}

/** The one addon call that mounts an overlay: fsmount (new mount API) or mount(2). */
type OverlayCall =
  | { api: 'fsconfig'; args: Parameters<NativeBinding['fsmount']> }
  | { api: 'mount'; args: MountArgs };

/**
 * Mounts an overlay, on a libuv pool thread. Prefers the new mount API: fsopen("overlay"), one
 * `lowerdir+` per layer (top first), upperdir/workdir, the options, create, fsmount with the flags as
 * mount attributes, move_mount onto target. Falls back to mount(2) with a `lowerdir=a:b` string,
 * refusing (instead of letting the kernel truncate it) when that string exceeds one page. Kernel log
 * lines are part of the error message.
 */
export async function mountOverlay(spec: OverlayMountSpec): Promise<{ api: OverlayApi }> {
  const call = overlayCall('mountOverlay', spec);
  if (call.api === 'fsconfig') await binding.fsmount(...call.args);
  else await binding.mount(...call.args);
  return { api: call.api };
}

/** mountOverlay() on the calling thread, for callers that cannot await (the overlay driver's host probe). */
export function mountOverlaySync(spec: OverlayMountSpec): { api: OverlayApi } {
  const call = overlayCall('mountOverlaySync', spec);
  if (call.api === 'fsconfig') binding.fsmountSync(...call.args);
  else binding.mountSync(...call.args);
  return { api: call.api };
}

function overlayCall(fn: string, spec: OverlayMountSpec): OverlayCall {
  const plan = checkOverlaySpec(fn, spec);
  return overlayApi() === 'fsconfig' ? { api: 'fsconfig', args: fsconfigArgs(fn, plan) } : { api: 'mount', args: legacyArgs(fn, plan) };
}

function fsconfigArgs(fn: string, plan: OverlayPlan): Parameters<NativeBinding['fsmount']> {
  const keys: string[] = [];
  const values: (string | null)[] = [];
  const add = (key: string, value: string | null) => {
    if (value !== null && Buffer.byteLength(value) > FSCONFIG_VALUE_MAX) {
      throw limitError('ENAMETOOLONG', `${fn}: ${key} value '${value}' is ${Buffer.byteLength(value)} bytes; fsconfig takes at most ${FSCONFIG_VALUE_MAX} (use a shorter path)`);
    }
    keys.push(key);
    values.push(value);
  };
  for (const dir of plan.lower) add('lowerdir+', dir);
  if (plan.upper !== null) {
    add('upperdir', plan.upper);
    add('workdir', plan.work);
  }
  for (const [key, value] of plan.options) add(key, value);
  let attrs = 0;
  for (const name of plan.flagNames) attrs |= MOUNT_ATTRS[name]!; // checked against MOUNT_ATTRS by the plan
  return ['overlay', keys, values, attrs, plan.target];
}

/** Escapes the characters overlay's legacy option parser splits on (',' ':') and its escape ('\'). */
function escapeLegacy(path: string): string {
  return path.replace(/[\\:,]/g, '\\$&');
}

function legacyArgs(fn: string, plan: OverlayPlan): MountArgs {
  const parts = [`lowerdir=${plan.lower.map(escapeLegacy).join(':')}`];
  if (plan.upper !== null) parts.push(`upperdir=${escapeLegacy(plan.upper)}`, `workdir=${escapeLegacy(plan.work!)}`);
  for (const [key, value] of plan.options) {
    const opt = value === null ? key : `${key}=${value}`;
    if (opt.includes(',')) fail(fn, 'each option', 'free of commas on the mount(2) path', opt);
    parts.push(opt);
  }
  const data = parts.join(',');
  const bytes = Buffer.byteLength(data);
  if (bytes > MOUNT_DATA_MAX) {
    throw limitError(
      'E2BIG',
      `${fn}: the overlay options for ${plan.lower.length} lower layers are ${bytes} bytes, but mount(2) ` +
        `takes at most ${MOUNT_DATA_MAX} and would silently truncate them; mounting this many layers needs ` +
        `the new mount API with lowerdir+ (Linux 6.7 or later)`,
    );
  }
  const flags = flagBits(fn, 'flags', plan.flagNames, MOUNT_FLAGS);
  return ['overlay', plan.target, 'overlay', flags, data];
}

// ---- roots and namespaces ----

/** pivot_root(2): newRoot must be a mount point; the old root moves to putOld (inside newRoot). */
export function pivotRoot(newRoot: string, putOld: string): void {
  binding.pivotRoot(checkPath('pivotRoot', 'newRoot', newRoot), checkPath('pivotRoot', 'putOld', putOld));
}

/** chroot(2) for the whole process (the root directory is shared by all threads unless unshared). */
export function chroot(path: string): void {
  binding.chroot(checkPath('chroot', 'path', path));
}

/** sethostname(2) in the calling thread's UTS namespace (at most 64 bytes). */
export function sethostname(name: string): void {
  binding.sethostname(checkMaxBytes('sethostname', 'name', checkString('sethostname', 'name', name), HOST_NAME_MAX));
}

/**
 * unshare(2). Namespaces belong to a thread: in Node this moves only the JS main thread (and the
 * children it spawns later) into the new namespaces, never libuv's pool threads, so async fs calls still
 * see the old mount namespace. 'user' fails (EINVAL) in a multi-threaded process such as Node, and 'pid'
 * only applies to children. Run it in a child process when the caller's namespaces must stay untouched.
 */
export function unshare(namespaces: Namespace[]): void {
  const bits = namespaceBits(namespaces);
  if (bits === 0) fail('unshare', 'namespaces', 'a non-empty array', namespaces);
  binding.unshare(bits);
}

/**
 * setns(2) into the namespace at `pathOrFd` (e.g. '/proc/123/ns/uts' or an open fd); `type` makes the
 * kernel check the namespace's kind. Like unshare, it moves only the calling thread. For a mount
 * namespace (or when `type` is omitted) the thread first unshares its filesystem attributes, as the
 * kernel requires: from then on its cwd and root are its own, no longer shared with libuv's threads.
 */
export function setns(pathOrFd: string | number, type?: Namespace): void {
  const target = typeof pathOrFd === 'number' ? checkFd('setns', 'fd', pathOrFd) : checkPath('setns', 'pathOrFd', pathOrFd);
  const nstype = type === undefined ? 0 : checkName('setns', 'type', type, NAMESPACE_FLAGS);
  binding.setns(target, nstype);
}
