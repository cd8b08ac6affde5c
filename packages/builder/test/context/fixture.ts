// Builds small context trees on disk for the context tests.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A tree: a string is a file's content, `{ link }` a symlink, `{ dir: true }` an empty directory. */
export type Tree = Record<string, string | { link: string } | { dir: true }>;

export function makeTempRoot(prefix = 'tsbuild-ctx-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function writeTree(root: string, tree: Tree): void {
  for (const [rel, spec] of Object.entries(tree)) {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (typeof spec === 'string') fs.writeFileSync(p, spec);
    else if ('link' in spec) fs.symlinkSync(spec.link, p);
    else fs.mkdirSync(p, { recursive: true });
  }
}

export function removeTree(root: string | undefined): void {
  if (root) fs.rmSync(root, { recursive: true, force: true });
}
