// Choosing a driver for a storage root: what the root already uses wins; otherwise overlay2 when the
// probe passes, else vfs with a notice for the caller to print.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AufsDriver, probeAufs } from './aufs';
import { inUserNamespace } from '../rootless';
import type { DriverOptions } from './base';
import { Overlay2Driver } from './overlay2';
import { OverlayUnsupportedError, overlayProbeKnown, probeOverlay } from './probe';
import type { Driver, DriverName } from './types';
import { VfsDriver } from './vfs';

export type DriverChoice = DriverName | 'auto';

export interface OpenDriverOptions extends DriverOptions {
  driver?: DriverChoice | undefined;
}

export interface OpenedDriver {
  driver: Driver;
  /** Set when the choice fell back (e.g. to vfs): a one-line notice for the user. */
  notice?: string;
}

function hasEntries(dir: string, ignore: string[] = []): boolean {
  try {
    return fs.readdirSync(dir).some((n) => !ignore.includes(n));
  } catch {
    return false;
  }
}

/** The driver whose layers already live under `root`, if any. */
export function existingDriver(root: string): DriverName | undefined {
  if (hasEntries(path.join(root, 'overlay2'), ['l'])) return 'overlay2';
  if (hasEntries(path.join(root, 'vfs', 'dir'))) return 'vfs';
  if (hasEntries(path.join(root, 'aufs', 'layers'))) return 'aufs';
  return undefined;
}

export function openDriver(root: string, opts: OpenDriverOptions = {}): OpenedDriver {
  const choice = opts.driver ?? 'auto';
  switch (choice) {
    case 'overlay2':
      return { driver: Overlay2Driver.open(root, opts) };
    case 'vfs':
      return { driver: VfsDriver.open(root, opts) };
    case 'aufs':
      return { driver: AufsDriver.open(root, opts) };
    case 'auto':
      break;
    default:
      throw new Error(`unknown storage driver "${String(choice)}": expected overlay2, vfs, aufs or auto`);
  }
  const existing = existingDriver(root);
  if (existing === 'vfs') return { driver: VfsDriver.open(root, opts) };
  if (existing === 'overlay2') return { driver: Overlay2Driver.open(root, opts) };
  if (existing === 'aufs') return { driver: AufsDriver.open(root, opts) };
  // Rootless (a user namespace): kernel overlay with userxattr, else fuse-overlayfs, else vfs; the
  // choice and its reason are said once, when the probe runs for a new root.
  const rootless = inUserNamespace();
  const firstProbe = rootless && !overlayProbeKnown(root);
  const probe = probeOverlay(root);
  if (probe.supported) {
    const driver = Overlay2Driver.open(root, { ...opts, features: probe });
    return firstProbe ? { driver, notice: 'rootless: using overlay2 (kernel overlayfs mounted with userxattr in the user namespace)' } : { driver };
  }
  const why = new OverlayUnsupportedError(probe.fsType, path.resolve(root), probe.reason ?? 'unknown reason').message;
  if (rootless) {
    const fuse = probeAufs(root);
    if (fuse.supported) return { driver: AufsDriver.open(root, opts), notice: `${why}; rootless: using fuse-overlayfs (the aufs driver)` };
    return { driver: VfsDriver.open(root, opts), notice: `${why}; fuse-overlayfs neither (${fuse.reason ?? 'unknown reason'}); using the vfs driver (a full copy per layer)` };
  }
  return { driver: VfsDriver.open(root, opts), notice: `${why}; using the vfs driver (a full copy per layer)` };
}
