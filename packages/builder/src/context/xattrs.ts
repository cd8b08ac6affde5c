// Extended attributes that count for cache keys, as the storage's xattr policy says (BuildKit drops
// security.* and system.* but keeps security.capability).
import { cacheKeyCountsXattr, fsPath } from '@tsbuild/storage';

/** Reads a path's extended attributes without following symlinks: name → value. */
export type XattrReader = (absPath: string) => Map<string, Buffer>;

/** Whether an attribute name is part of the content hash. */
export const xattrCounts: (name: string) => boolean = cacheKeyCountsXattr;

interface NativeXattrs {
  llistxattr(path: string | Buffer): string[];
  lgetxattr(path: string | Buffer, name: string): Buffer | null;
}

let nativeReader: Promise<XattrReader | null> | undefined;

/**
 * The reader backed by @tsbuild/native's llistxattr/lgetxattr (loaded lazily, so parsing and matching
 * work without the addon), or null when the addon cannot load.
 */
export function defaultXattrReader(): Promise<XattrReader | null> {
  nativeReader ??= import('@tsbuild/native').then(
    (mod) => nativeXattrReader(mod),
    () => null,
  );
  return nativeReader;
}

function nativeXattrReader(n: NativeXattrs): XattrReader {
  return (absPath) => {
    const out = new Map<string, Buffer>();
    let names: string[];
    try {
      names = n.llistxattr(fsPath(absPath));
    } catch (err) {
      // Filesystems without xattr support have none to hash.
      if ((err as { code?: string }).code === 'ENOTSUP' || (err as { code?: string }).code === 'EOPNOTSUPP') return out;
      throw err;
    }
    for (const name of names) {
      if (!xattrCounts(name)) continue;
      const value = n.lgetxattr(fsPath(absPath), name);
      if (value !== null) out.set(name, value);
    }
    return out;
  };
}
