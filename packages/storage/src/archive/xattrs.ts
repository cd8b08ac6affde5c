// One policy for extended attributes in layers, used by every driver, the tar codec's pack and apply,
// and the builder (COPY, cache keys). A layer carries a file's xattrs as they are (values are bytes:
// `security.capability` is binary), except those a union filesystem keeps for itself in an upper
// directory: overlayfs' `trusted.overlay.*` (`user.overlay.*` in a user namespace) and fuse-overlayfs'
// `user.fuseoverlayfs.*` / `security.fuseoverlayfs.*` (origin of a copy-up, opaque, override_stat).
// Those are never packed into a layer nor set from one: a layer that carried `user.fuseoverlayfs.opaque`
// would hide the lower layers' files under the aufs driver (fuse-overlayfs), as `trusted.overlay.opaque`
// would under overlay2. aufs' own metadata is names (`.wh..wh.*`), handled with the whiteouts.
import * as native from '@tsbuild/native';
import { fsPath } from '../names';
import { inUserNamespace } from '../rootless';

/** The overlay xattr marking an opaque dir as root (`trusted.`); see overlayOpaqueXattr. */
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

/**
 * The opaque xattr overlay2 layers use in this process: `trusted.overlay.opaque`, or in a user
 * namespace (where trusted.* cannot be set; overlay is mounted with `userxattr`) `user.overlay.opaque`.
 */
export function overlayOpaqueXattr(): string {
  return inUserNamespace() ? 'user.overlay.opaque' : OVERLAY_OPAQUE_XATTR;
}

/** The xattr namespaces overlayfs owns. */
export const OVERLAY_XATTR_PREFIXES = ['trusted.overlay.', 'user.overlay.'] as const;

/** The xattr namespaces fuse-overlayfs owns. */
export const FUSE_OVERLAY_XATTR_PREFIXES = ['user.fuseoverlayfs.', 'security.fuseoverlayfs.'] as const;

/** Every xattr that marks a directory opaque in some union filesystem's upper directory. */
export const OPAQUE_MARKER_XATTRS = [OVERLAY_OPAQUE_XATTR, 'user.overlay.opaque', 'user.fuseoverlayfs.opaque'] as const;

export function isOverlayXattr(name: string): boolean {
  return OVERLAY_XATTR_PREFIXES.some((p) => name.startsWith(p));
}

/** An xattr a union filesystem (overlayfs, fuse-overlayfs) keeps for itself. */
export function isUnionFsXattr(name: string): boolean {
  return isOverlayXattr(name) || FUSE_OVERLAY_XATTR_PREFIXES.some((p) => name.startsWith(p));
}

/** Whether a layer stores the xattr: packing a diff, copying a file into a layer, applying a layer tar. */
export function layerKeepsXattr(name: string): boolean {
  return !isUnionFsXattr(name);
}

/**
 * Whether the xattr is part of a build context file's content hash: BuildKit leaves out security.* and
 * system.* (SELinux labels, ACL encodings the host adds) but keeps security.capability, which changes
 * what a binary can do.
 */
export function cacheKeyCountsXattr(name: string): boolean {
  if (name === 'security.capability') return true;
  return !name.startsWith('security.') && !name.startsWith('system.');
}

/**
 * The xattrs of one path (never following symlinks) that `keep` accepts (default: all), as a sorted
 * name → bytes map; none on a filesystem without xattr support.
 */
export function readXattrs(p: string, keep: (name: string) => boolean = () => true): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let names: string[];
  try {
    names = native.llistxattr(fsPath(p));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return out;
    throw err;
  }
  for (const name of names.sort()) {
    if (!keep(name)) continue;
    const value = native.lgetxattr(fsPath(p), name);
    if (value !== null) out.set(name, value);
  }
  return out;
}

export function sameXattrs(a: Map<string, Buffer>, b: Map<string, Buffer>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w || !w.equals(v)) return false;
  }
  return true;
}

/** Copies the xattrs `keep` accepts (default: all) from one path to another. */
export function copyXattrs(from: string, to: string, keep?: (name: string) => boolean): void {
  for (const [name, value] of readXattrs(from, keep)) native.lsetxattr(fsPath(to), name, value);
}
