// Temporary roots for tests and their cleanup, shared by every test tree: each test makes its own
// directory and removal proves (or forces) that nothing is left mounted below it.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach } from 'vitest';

/** A fresh directory `tsbuild-<prefix>-XXXXXX` in the system temp directory. */
export function tempRoot(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `tsbuild-${prefix}-`));
}

/** Mount points at or below `dir`, from /proc/self/mountinfo (outermost first). */
export function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => !!p && (p === dir || p.startsWith(`${dir}/`)));
}

/** Detaches every mount at or below `dir` (innermost first), removes it, and returns the mounts that were left. */
export function destroyRoot(dir: string): string[] {
  const left = mountsUnder(dir);
  for (const m of [...left].reverse()) spawnSync('umount', ['-l', m]);
  fs.rmSync(dir, { recursive: true, force: true });
  return left;
}

/** `tempRoot` for the current test: every root it made is destroyed after each test. */
export function tempRootsPerTest(): (prefix: string) => string {
  const roots: string[] = [];
  afterEach(() => {
    for (const r of roots.splice(0)) destroyRoot(r);
  });
  return (prefix) => {
    const r = tempRoot(prefix);
    roots.push(r);
    return r;
  };
}

/**
 * Files to write under a directory: a string is a file's content (mode 0644), `{ content, mode }` a
 * file with that mode (umask ignored), `{ link }` a symlink, `{ dir: true }` an empty directory.
 */
export type TreeSpec = Record<string, string | { content: string; mode: number } | { link: string } | { dir: true }>;

/** Writes `tree` under `dir` (parents created) and returns `dir`. */
export function writeTree(dir: string, tree: TreeSpec): string {
  for (const [rel, spec] of Object.entries(tree)) {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (typeof spec !== 'string' && 'link' in spec) fs.symlinkSync(spec.link, p);
    else if (typeof spec !== 'string' && 'dir' in spec) fs.mkdirSync(p, { recursive: true });
    else {
      const { content, mode } = typeof spec === 'string' ? { content: spec, mode: 0o644 } : spec;
      fs.writeFileSync(p, content, { mode });
      fs.chmodSync(p, mode);
    }
  }
  return dir;
}
