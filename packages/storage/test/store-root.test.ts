// Store.open as non-root: a clear refusal before anything is written, never a silent fall back to
// vfs recorded in the root.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ROOT_REQUIRED_MESSAGE } from '@tsbuild/storage';

// The child runs the compiled package (tsc -b runs before the tests), as a library user would.
const storageDist = path.resolve(__dirname, '..', 'dist', 'index.js');
const NOBODY = 65534;

let parent: string;

beforeEach(() => {
  parent = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-nonroot-'));
  // Writable by nobody, so only the check (not a permission error) can stop the open.
  fs.chmodSync(parent, 0o777);
});

afterEach(() => {
  fs.rmSync(parent, { recursive: true, force: true });
});

function openAs(uid: number, root: string, options: object): { status: number | null; stderr: string } {
  const script = `require(${JSON.stringify(storageDist)}).Store.open(${JSON.stringify(root)}, ${JSON.stringify(options)})
    .then((s) => s.close().then(() => console.log('opened with ' + s.driverName)), (e) => { console.error(e.message); process.exitCode = 3; });`;
  const r = spawnSync(process.execPath, ['-e', script], { uid, gid: uid, encoding: 'utf8', cwd: parent });
  return { status: r.status, stderr: r.stderr.trim() };
}

describe('Store.open without root', () => {
  it('refuses in one line and leaves the root untouched', () => {
    const root = path.join(parent, 'root');
    const r = openAs(NOBODY, root, {});
    expect(r).toEqual({ status: 3, stderr: ROOT_REQUIRED_MESSAGE });
    expect(fs.existsSync(root)).toBe(false);
  });

  it('names the way in for an ordinary user (reexecInUserNamespace), also with rootless: true', () => {
    const root = path.join(parent, 'root');
    expect(ROOT_REQUIRED_MESSAGE).toContain('reexecInUserNamespace()');
    expect(openAs(NOBODY, root, { rootless: true })).toEqual({ status: 3, stderr: ROOT_REQUIRED_MESSAGE });
    expect(fs.existsSync(root)).toBe(false);
  });
});
