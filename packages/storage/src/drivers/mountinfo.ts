// /proc/self/mountinfo: which of our mount points are mounted right now. Always read fresh: other
// processes (and lazy unmounts) change it behind our back.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface MountInfoEntry {
  id: number;
  parentId: number;
  mountPoint: string;
  fsType: string;
  source: string;
  superOptions: string;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountInfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (sep < 0 || fields.length < sep + 3) continue;
    out.push({
      // sep >= 6 and the length check above: all of these exist
      id: Number(fields[0]),
      parentId: Number(fields[1]),
      mountPoint: unescapeOctal(fields[4]!),
      fsType: fields[sep + 1]!,
      source: unescapeOctal(fields[sep + 2]!),
      superOptions: fields[sep + 3] ?? '',
    });
  }
  return out;
}

export function readMountInfo(): MountInfoEntry[] {
  return parseMountInfo(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
}

/** Whether `target` (an absolute path) is a mount point in our mount namespace. */
export function isMountPoint(target: string, table: MountInfoEntry[] = readMountInfo()): boolean {
  const t = path.resolve(target);
  return table.some((m) => m.mountPoint === t);
}

/** Mount points equal to or below `dir`, deepest first (the order to unmount them in). */
export function mountsUnder(dir: string, table: MountInfoEntry[] = readMountInfo()): string[] {
  const d = path.resolve(dir);
  const found = new Set<string>();
  for (const m of table) {
    if (m.mountPoint === d || m.mountPoint.startsWith(d + '/')) found.add(m.mountPoint);
  }
  return [...found].sort((a, b) => b.length - a.length);
}
