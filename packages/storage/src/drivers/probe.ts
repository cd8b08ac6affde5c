// Feature tests for overlay on a given storage root (containerd's overlayutils/check.go): mount a tiny
// overlay inside the root's own filesystem and check that whiteouts hide, opaque dirs hide, and the
// kernel writes 0/0 whiteouts into the upper dir. Capabilities come from these tests, never from names.
import { randomBytes } from '@tsbuild/native';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as native from '@tsbuild/native';
import { detachSync } from './perform';
import { isMountPoint } from './mountinfo';
import { isAlive, ownedName, ownerOf } from './proc';
import { TsbuildError } from '../errors';
import { mkdirpSync } from '../atomic';
import { overlayOpaqueXattr } from '../archive/xattrs';
import { inUserNamespace } from '../rootless';

const OVERLAY_PARAMS = '/sys/module/overlay/parameters';

export interface OverlayFeatures {
  /** `index` is a module parameter here: pass `index=off` (moby/moby#37970). */
  indexParam: boolean;
  /** `metacopy` is a module parameter here: pass `metacopy=off` so native diffs stay whole files. */
  metacopyParam: boolean;
  /** The kernel takes one `lowerdir+` per layer (new mount API, Linux 6.7+): 500 layers fit. */
  lowerdirPlus: boolean;
  /** In a user namespace (rootless): overlay keeps its xattrs in `user.overlay.*` (`userxattr`, Linux 5.11+). */
  userxattr?: boolean;
}

export interface OverlayProbe extends OverlayFeatures {
  supported: boolean;
  /** The filesystem holding the root ('ext4', 'xfs', 'tmpfs', ... or its magic in hex). */
  fsType: string;
  /** Why overlay cannot be used, when !supported. */
  reason?: string;
}

export class OverlayUnsupportedError extends TsbuildError {
  constructor(
    readonly fsType: string,
    readonly root: string,
    readonly reason: string,
  ) {
    super('EOVERLAYUNSUPPORTED', `overlay not supported on ${fsType} at ${root}: ${reason}`);
  }
}

/** Reads the module parameters (present once the overlay module is loaded). */
export function overlayFeatures(): OverlayFeatures {
  return {
    indexParam: fs.existsSync(path.join(OVERLAY_PARAMS, 'index')),
    metacopyParam: fs.existsSync(path.join(OVERLAY_PARAMS, 'metacopy')),
    lowerdirPlus: native.overlayApi() === 'fsconfig',
    ...(inUserNamespace() ? { userxattr: true } : {}),
  };
}

/** The overlay options every overlay2 mount gets, given the features. */
export function baseOverlayOptions(f: OverlayFeatures): string[] {
  const opts: string[] = [];
  if (f.indexParam) opts.push('index=off');
  if (f.metacopyParam) opts.push('metacopy=off');
  // With userxattr the kernel refuses to follow redirects (a user could forge them): `nofollow`.
  opts.push(f.userxattr ? 'redirect_dir=nofollow' : 'redirect_dir=off');
  if (f.userxattr) opts.push('userxattr');
  return opts;
}

export function fsTypeOf(dir: string): string {
  const st = native.statfs(dir);
  return st.typeName ?? `0x${st.type.toString(16)}`;
}

const cache = new Map<string, OverlayProbe>();

/** Probes overlay support at `root` (created if missing), once per root per process. */
export function probeOverlay(root: string): OverlayProbe {
  const key = path.resolve(root);
  const cached = cache.get(key) ?? readProbeRecord(key);
  if (cached) {
    cache.set(key, cached);
    return cached;
  }
  mkdirpSync(key);
  const result = runProbe(key);
  cache.set(key, result);
  writeProbeRecord(key, result);
  return result;
}

/**
 * A passed probe is recorded in the root, like a daemon that probes once at start: it holds until the
 * kernel or the filesystem under the root changes (then the next command probes again). Saves a test
 * mount on every command.
 */
const PROBE_RECORD = '.overlay-probe.json';

function probeIdentity(root: string): string {
  const st = fs.statSync(root);
  return `${os.release()} ${st.dev}${inUserNamespace() ? ' userns' : ''}`;
}

function readProbeRecord(root: string): OverlayProbe | undefined {
  try {
    const rec = JSON.parse(fs.readFileSync(path.join(root, PROBE_RECORD), 'utf8')) as { identity: string; probe: OverlayProbe };
    if (rec.identity !== probeIdentity(root) || !rec.probe.supported) return undefined;
    // Module parameters can change without a reboot: re-read the cheap part.
    return { ...rec.probe, ...overlayFeatures() };
  } catch {
    return undefined;
  }
}

function writeProbeRecord(root: string, probe: OverlayProbe): void {
  if (!probe.supported) return;
  const file = path.join(root, PROBE_RECORD);
  const tmp = `${file}.${process.pid}`;
  try {
    fs.writeFileSync(tmp, JSON.stringify({ identity: probeIdentity(root), probe }));
    fs.renameSync(tmp, file);
  } catch {
    fs.rmSync(tmp, { force: true });
  }
}

/** Whether a passed probe of `root` is known already (this process, or recorded in the root). */
export function overlayProbeKnown(root: string): boolean {
  const key = path.resolve(root);
  return cache.has(key) || readProbeRecord(key) !== undefined;
}

/** Throws OverlayUnsupportedError unless the probe passed. */
export function assertOverlay(root: string): OverlayProbe {
  const p = probeOverlay(root);
  if (!p.supported) throw new OverlayUnsupportedError(p.fsType, path.resolve(root), p.reason ?? 'unknown reason');
  return p;
}

/** Probe dirs are named so that no driver mistakes them for layers; repair removes leftovers. */
export const PROBE_PREFIX = '.overlay-probe-';

/** A probe dir left by a process that is gone. */
export function isStaleProbe(name: string): boolean {
  if (!name.startsWith(PROBE_PREFIX)) return false;
  const owner = ownerOf(name.slice(PROBE_PREFIX.length));
  return !owner || !isAlive(owner);
}

// Runs inside Overlay2Driver's synchronous open (driver constructors do not await): the test overlay is
// mounted and detached with the *Sync calls, blocking the event loop for the milliseconds it takes.
function runProbe(root: string): OverlayProbe {
  const fsType = fsTypeOf(root);
  const dir = path.join(root, `${PROBE_PREFIX}${ownedName(randomBytes(6).toString('hex'))}`);
  const result = (supported: boolean, reason?: string): OverlayProbe => ({
    ...overlayFeatures(),
    supported,
    fsType,
    ...(reason ? { reason } : {}),
  });
  const at = (d: string) => path.join(dir, d);
  const [l1, l2, upper, work, merged] = [at('l1'), at('l2'), at('upper'), at('work'), at('merged')];
  try {
    for (const d of [l1, l2, upper, work, merged, path.join(l1, 'd'), path.join(l2, 'd')]) {
      mkdirpSync(d);
    }
    fs.writeFileSync(path.join(l1, 'a'), 'a');
    fs.writeFileSync(path.join(l1, 'x'), 'x');
    fs.writeFileSync(path.join(l1, 'd', 'old'), 'old');
    fs.writeFileSync(path.join(l2, 'd', 'new'), 'new');
    try {
      native.mknod(path.join(l2, 'x'), { type: 'char', mode: 0, major: 0, minor: 0 });
    } catch (err) {
      return result(false, `cannot create whiteout devices (${(err as Error).message})`);
    }
    try {
      native.lsetxattr(path.join(l2, 'd'), overlayOpaqueXattr(), Buffer.from('y'));
    } catch (err) {
      return result(false, `cannot set ${overlayOpaqueXattr()} xattrs (${(err as Error).message})`);
    }
    try {
      native.mountOverlaySync({ lower: [l2, l1], upper, work, target: merged, options: baseOverlayOptions(overlayFeatures()) });
    } catch (err) {
      return result(false, `mounting a test overlay failed (${(err as Error).message})`);
    }
    try {
      const top = fs.readdirSync(merged).sort().join(',');
      if (top !== 'a,d') {
        return result(false, `whiteouts in lower layers are not honoured (saw ${top || 'nothing'}; does the filesystem support d_type?)`);
      }
      const inD = fs.readdirSync(path.join(merged, 'd')).sort().join(',');
      if (inD !== 'new') return result(false, `opaque directories are not honoured (saw ${inD})`);
      fs.writeFileSync(path.join(merged, 'b'), 'b');
      fs.rmSync(path.join(merged, 'a'));
      if (!fs.existsSync(path.join(upper, 'b'))) return result(false, 'writes do not reach the upper directory');
      const wh = fs.lstatSync(path.join(upper, 'a'), { throwIfNoEntry: false });
      if (!wh || !wh.isCharacterDevice() || wh.rdev !== 0) {
        return result(false, 'the kernel does not record deletions as 0/0 whiteout devices');
      }
    } finally {
      detachSync(merged);
    }
    return result(true);
  } catch (err) {
    return result(false, (err as Error).message);
  } finally {
    try {
      if (isMountPoint(merged)) detachSync(merged);
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // A leftover probe dir is removed by the next repair.
    }
  }
}
