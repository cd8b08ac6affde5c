// Smaller things a docker user expects (issue 9, defect 9): a bad tag refused before the build runs,
// save refusing a missing output directory, a container whose tsbuild was killed reported as killed
// (and removed when it was --rm), -v and -w through an image's absolute symlinks resolved inside it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, busyboxTarball, cli, mountsUnder, writeTree } from './helpers/roots';

let top: string;
let root: string;

beforeAll(() => {
  top = fs.mkdtempSync('/tmp/tsbuild-edges-');
  root = path.join(top, 'root');
  const r = cli(root, ['import', busyboxTarball(), 'busybox:latest']);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
});

afterAll(() => {
  const left = mountsUnder(top);
  for (const m of left.reverse()) spawnSync('umount', ['-l', m]);
  fs.rmSync(top, { recursive: true, force: true });
  expect(left).toEqual([]);
});

describe('build and save check their arguments first', () => {
  it('build -t Bad:Tag is refused before any step runs', () => {
    const ctx = writeTree(path.join(top, 'ctx-tag'), { Dockerfile: 'FROM busybox\nRUN echo step-ran\n' });
    const r = cli(root, ['build', '--progress', 'plain', '-t', 'ok:1', '-t', 'Bad:Tag', ctx]);
    expect(r.stderr).toBe('tsbuild: invalid tag "Bad:Tag": repository name must be lowercase\n');
    expect(r.status).toBe(1);
    expect(cli(root, ['inspect', 'ok:1']).status).toBe(1);
  });

  it('save -o into a missing directory is an error and creates nothing', () => {
    const out = path.join(top, 'missing', 'dir', 'x.tar');
    const r = cli(root, ['save', '-o', out, 'busybox']);
    expect(r.stderr).toBe(`tsbuild: invalid output path: directory "${path.dirname(out)}" does not exist\n`);
    expect(r.status).toBe(1);
    expect(fs.existsSync(path.join(top, 'missing'))).toBe(false);
  });
});

describe('a container whose tsbuild was killed', () => {
  it('is reported Exited (137), and a --rm one is removed by the next command', async () => {
    const start = (args: string[]) => spawn(process.execPath, [CLI, '--root', root, 'run', ...args, 'busybox', 'sleep', '1000'], { stdio: 'ignore' });
    const kept = start(['--name', 'kept']);
    const removed = start(['--rm', '--name', 'removed']);
    try {
      // Both are up once ps lists them as such (each run writes its record after the start).
      for (let i = 0; i < 300; i++) {
        const ps = cli(root, ['ps']).stdout;
        if (/Up\s+kept$/m.test(ps) && /Up\s+removed$/m.test(ps)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(cli(root, ['ps']).stdout).toMatch(/Up\s+kept$/m);
    } finally {
      kept.kill('SIGKILL');
      removed.kill('SIGKILL');
    }
    await Promise.all([kept, removed].map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('exit', r)))));
    const ps = cli(root, ['ps', '-a']);
    expect(ps.status).toBe(0);
    expect(ps.stdout).toMatch(/Exited \(137\) .*\s+kept$/m);
    expect(ps.stdout).not.toMatch(/removed/);
    // Its record and read-write layer are gone; the kept one still has both until rm.
    expect(cli(root, ['rm', 'removed']).stderr).toBe('tsbuild: no such container: removed\n');
    expect(cli(root, ['rm', 'kept']).status).toBe(0);
  });
});

describe('paths in the container are resolved inside its rootfs', () => {
  it('-v SRC:/link/x and -w /link/w where /link is an absolute symlink in the image', () => {
    const ctx = writeTree(path.join(top, 'ctx-link'), { Dockerfile: 'FROM busybox\nRUN mkdir /real-in-image && ln -s /real-in-image /link\n' });
    expect(cli(root, ['build', '-q', '-t', 'linked', ctx]).status).toBe(0);
    const src = writeTree(path.join(top, 'vol'), { f: 'from the host\n' });
    const r = cli(root, ['run', '--rm', '-v', `${src}:/link/x`, '-w', '/link/w', 'linked', 'sh', '-c', 'pwd; cat /real-in-image/x/f']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('/real-in-image/w\nfrom the host\n');
    expect(r.status).toBe(0);
    expect(fs.existsSync('/real-in-image')).toBe(false);
  });

  it('the same through a symlink whose target does not exist yet (runc creates it inside)', () => {
    const ctx = writeTree(path.join(top, 'ctx-dangling'), { Dockerfile: 'FROM busybox\nRUN ln -s /dangling-real /link\n' });
    expect(cli(root, ['build', '-q', '-t', 'dangling', ctx]).status).toBe(0);
    const src = writeTree(path.join(top, 'vol2'), { f: 'through a dangling link\n' });
    const r = cli(root, ['run', '--rm', '-v', `${src}:/link/x`, '-w', '/link/w', 'dangling', 'sh', '-c', 'pwd; cat /dangling-real/x/f']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('/dangling-real/w\nthrough a dangling link\n');
    expect(r.status).toBe(0);
    expect(fs.existsSync('/dangling-real')).toBe(false);
  });
});
