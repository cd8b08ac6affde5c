// Extended attributes of one path (never following symlinks), as a sorted name → bytes map.
import * as native from '@tsbuild/native';
import { fsPath } from '../names';

export function readXattrs(p: string): Map<string, Buffer> {
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

export function copyXattrs(from: string, to: string): void {
  for (const [name, value] of readXattrs(from)) native.lsetxattr(fsPath(to), name, value);
}
