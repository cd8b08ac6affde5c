// Whiteout names of the OCI/aufs layer format and the overlay on-disk equivalents
// (REFERENCE §3.7, opencontainers/image-spec layer.md).

/** `.wh.<name>` in a layer tar hides `<name>` of the lower layers. */
export const WHITEOUT_PREFIX = '.wh.';
/** Names starting with `.wh..wh.` are aufs metadata, not whiteouts. */
export const WHITEOUT_META_PREFIX = '.wh..wh.';
/** `<dir>/.wh..wh..opq` makes `<dir>` opaque: the lower layers' children are hidden. */
export const WHITEOUT_OPAQUE = '.wh..wh..opq';
/** aufs pseudo-link dir: its files are hard link targets and must be extracted. */
export const WHITEOUT_LINK_DIR = '.wh..wh.plnk';
/** aufs whiteout base (`.wh.` files are hard links to it). */
export const WHITEOUT_AUFS_BASE = '.wh..wh.aufs';
/** aufs orphan dir. */
export const WHITEOUT_ORPHAN_DIR = '.wh..wh.orph';

// The overlay opaque xattr and the other xattrs union filesystems own: the xattr policy (xattrs.ts).
export { OVERLAY_OPAQUE_XATTR, OVERLAY_XATTR_PREFIXES, isOverlayXattr, overlayOpaqueXattr } from './xattrs';

/** What a layer entry's base name means for whiteout processing. */
export type WhiteoutKind =
  | { kind: 'none' }
  | { kind: 'opaque' }
  /** aufs metadata (`.wh..wh.*` other than the opaque marker). */
  | { kind: 'meta' }
  | { kind: 'whiteout'; target: string }
  /** `.wh.`, `.wh..`, `.wh...`: a whiteout of "", "." or "..". */
  | { kind: 'invalid' };

/** Classifies a base name (one path component) of a layer entry. */
export function classifyWhiteout(base: string): WhiteoutKind {
  if (!base.startsWith(WHITEOUT_PREFIX)) return { kind: 'none' };
  if (base === WHITEOUT_OPAQUE) return { kind: 'opaque' };
  if (base.startsWith(WHITEOUT_META_PREFIX)) return { kind: 'meta' };
  const target = base.slice(WHITEOUT_PREFIX.length);
  if (target === '' || target === '.' || target === '..') return { kind: 'invalid' };
  return { kind: 'whiteout', target };
}

export function isWhiteoutName(base: string): boolean {
  return base.startsWith(WHITEOUT_PREFIX);
}

/** The tar base name that hides `name`. */
export function whiteoutNameFor(name: string): string {
  return WHITEOUT_PREFIX + name;
}

/** An overlay whiteout on disk is a char device 0/0. */
export function isOverlayWhiteoutDevice(isCharDevice: boolean, rdev: number | bigint): boolean {
  return isCharDevice && BigInt(rdev) === 0n;
}
