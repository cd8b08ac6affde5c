// Smaller things a docker user expects (issue 9, defect 9): a bad tag refused before the build runs,
// save refusing a missing output directory, a container whose tsbuild was killed reported as killed
// (and removed when it was --rm), -v and -w through an image's absolute symlinks resolved inside it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI, cli, cliRootWithBusybox, mountsUnder, writeTree } from './helpers/roots';

const paths = cliRootWithBusybox('tsbuild-edges-');

describe('build and save check their arguments first', () => {
  it('build -t Bad:Tag is refused before any step runs', () => {
    const ctx = writeTree(path.join(paths.top, 'ctx-tag'), { Dockerfile: 'FROM busybox\nRUN echo step-ran\n' });
    const r = cli(paths.root, ['build', '--progress', 'plain', '-t', 'ok:1', '-t', 'Bad:Tag', ctx]);
    expect(r.stderr).toBe('tsbuild: invalid tag "Bad:Tag": repository name must be lowercase\n');
    expect(r.status).toBe(1);
    expect(cli(paths.root, ['inspect', 'ok:1']).status).toBe(1);
  });

  it('save -o into a missing directory is an error and creates nothing', () => {
    const out = path.join(paths.top, 'missing', 'dir', 'x.tar');
    const r = cli(paths.root, ['save', '-o', out, 'busybox']);
    expect(r.stderr).toBe(`tsbuild: cannot write ${out}: the directory ${path.dirname(out)} does not exist\n`);
    expect(r.status).toBe(1);
    expect(fs.existsSync(path.join(paths.top, 'missing'))).toBe(false);
  });
});

describe('a container whose tsbuild was killed', () => {
  it('is reported Exited (137), and a --rm one is removed by the next command', async () => {
    const start = (args: string[]) => spawn(process.execPath, [CLI, '--root', paths.root, 'run', ...args, 'busybox', 'sleep', '1000'], { stdio: 'ignore' });
    const kept = start(['--name', 'kept']);
    const ids: string[] = [];
    const removed = start(['--rm', '--name', 'removed']);
    try {
      // Both are up once ps lists them as such (each run writes its record after the start).
      for (let i = 0; i < 300; i++) {
        const ps = cli(paths.root, ['ps']).stdout;
        if (/Up\s+kept$/m.test(ps) && /Up\s+removed$/m.test(ps)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(cli(paths.root, ['ps']).stdout).toMatch(/Up\s+kept$/m);
      ids.push(...cli(paths.root, ['ps', '-q']).stdout.split('\n').filter(Boolean));
    } finally {
      kept.kill('SIGKILL');
      removed.kill('SIGKILL');
    }
    await Promise.all([kept, removed].map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('exit', r)))));
    const ps = cli(paths.root, ['ps', '-a']);
    expect(ps.status).toBe(0);
    expect(ps.stdout).toMatch(/Exited \(137\) .*\s+kept$/m);
    expect(ps.stdout).not.toMatch(/removed/);
    // That command removed both containers' cgroups too (their processes died with their tsbuild), not
    // a sweep a minute later: until then every store's fsck would list them.
    expect(ids).toHaveLength(2);
    const groups = ['memory', 'pids', 'cpu', 'devices', 'freezer', 'blkio', 'unified']
      .map((c) => path.join('/sys/fs/cgroup', c, 'tsbuild'))
      .filter((dir) => fs.existsSync(dir))
      .flatMap((dir) => fs.readdirSync(dir).filter((n) => ids.some((id) => n.startsWith(id))).map((n) => path.join(dir, n)));
    expect(groups).toEqual([]);
    // Its record and read-write layer are gone; the kept one still has both until rm.
    expect(cli(paths.root, ['rm', 'removed']).stderr).toBe('tsbuild: no such container: removed\n');
    expect(cli(paths.root, ['rm', 'kept']).status).toBe(0);
    // Nothing of either is left: no mount (the --rm one's volatile overlay was unmounted by the next
    // command), no RW layer record, no overlay directory but the image's.
    expect(mountsUnder(paths.root)).toEqual([]);
    expect(fs.readdirSync(path.join(paths.root, 'layers', 'mounts'))).toEqual([]);
    const imageLayers = fs.readdirSync(path.join(paths.root, 'layers', 'sha256')).length;
    expect(fs.readdirSync(path.join(paths.root, 'overlay2')).filter((d) => d !== 'l')).toHaveLength(imageLayers);
  });
});

describe('a --rm container is throwaway', () => {
  // Its overlay is mounted volatile (as podman mounts a --rm container's): unmounting it does not sync
  // the host's filesystem. A container that is kept gets a durable one.
  const rootOptions = (args: string[]) => {
    const r = cli(paths.root, ['run', ...args, 'busybox', 'cat', '/proc/self/mountinfo']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const root = r.stdout.split('\n').find((l) => l.split(' ')[4] === '/');
    expect(root).toMatch(/ - overlay /);
    return root!.split(' - ')[1]!.split(' ')[2]!.split(',');
  };

  // Linux 6.12 and later show the option as fsync=volatile.
  const volatile = (options: string[]) => options.some((o) => o === 'volatile' || o === 'fsync=volatile');

  it('run --rm mounts its root volatile; run without --rm does not', () => {
    expect(volatile(rootOptions(['--rm']))).toBe(true);
    expect(volatile(rootOptions(['--name', 'durable']))).toBe(false);
    expect(cli(paths.root, ['rm', 'durable']).status).toBe(0);
  });

  it('run --rm leaves nothing: no record, RW layer, overlay directory or mount', () => {
    const before = fs.readdirSync(path.join(paths.root, 'overlay2')).sort();
    for (let i = 0; i < 3; i++) expect(cli(paths.root, ['run', '--rm', 'busybox', 'sh', '-c', 'echo x > /new']).status).toBe(0);
    expect(fs.readdirSync(path.join(paths.root, 'overlay2')).sort()).toEqual(before);
    expect(fs.readdirSync(path.join(paths.root, 'layers', 'mounts'))).toEqual([]);
    expect(fs.readdirSync(path.join(paths.root, 'containers')).filter((f) => f.endsWith('.json'))).toEqual([]);
    expect(mountsUnder(paths.root)).toEqual([]);
  });
});

describe('paths in the container are resolved inside its rootfs', () => {
  it.each([
    { title: '-v SRC:/link/x and -w /link/w where /link is an absolute symlink in the image', tag: 'linked', link: 'mkdir /real-in-image && ln -s /real-in-image /link', real: '/real-in-image', text: 'from the host\n' },
    { title: 'the same through a symlink whose target does not exist yet (runc creates it inside)', tag: 'dangling', link: 'ln -s /dangling-real /link', real: '/dangling-real', text: 'through a dangling link\n' },
  ])('$title', ({ tag, link, real, text }) => {
    const ctx = writeTree(path.join(paths.top, `ctx-${tag}`), { Dockerfile: `FROM busybox\nRUN ${link}\n` });
    expect(cli(paths.root, ['build', '-q', '-t', tag, ctx]).status).toBe(0);
    const src = writeTree(path.join(paths.top, `vol-${tag}`), { f: text });
    const r = cli(paths.root, ['run', '--rm', '-v', `${src}:/link/x`, '-w', '/link/w', tag, 'sh', '-c', `pwd; cat ${real}/x/f`]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${real}/w\n${text}`);
    expect(r.status).toBe(0);
    expect(fs.existsSync(real)).toBe(false);
  });
});

describe('build -o type=local never writes through what DEST holds', () => {
  it('replaces symlinks left in DEST (a file and a directory) instead of following them; refuses a DEST symlink', () => {
    const hostFile = path.join(paths.top, 'host-file');
    fs.writeFileSync(hostFile, 'precious\n');
    const hostDir = fs.mkdtempSync(path.join(paths.top, 'host-dir-'));
    const dest = path.join(paths.top, 'export');
    fs.mkdirSync(dest);
    // What an earlier export of a hostile image leaves behind, plus a file of the user's.
    fs.symlinkSync(hostFile, path.join(dest, 'evil'));
    fs.symlinkSync(hostDir, path.join(dest, 'etc'));
    fs.writeFileSync(path.join(dest, 'keep.txt'), 'mine\n');
    const ctx = writeTree(path.join(paths.top, 'ctx-export'), { Dockerfile: 'FROM busybox\nRUN echo new > /evil && echo conf > /etc/new.conf\n' });

    const r = cli(paths.root, ['build', '-q', '-o', `type=local,dest=${dest}`, ctx]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(fs.readFileSync(hostFile, 'utf8')).toBe('precious\n');
    expect(fs.readdirSync(hostDir)).toEqual([]);
    expect(fs.lstatSync(path.join(dest, 'evil')).isFile()).toBe(true);
    expect(fs.readFileSync(path.join(dest, 'evil'), 'utf8')).toBe('new\n');
    expect(fs.lstatSync(path.join(dest, 'etc')).isDirectory()).toBe(true);
    expect(fs.readFileSync(path.join(dest, 'etc', 'new.conf'), 'utf8')).toBe('conf\n');
    expect(fs.readFileSync(path.join(dest, 'keep.txt'), 'utf8')).toBe('mine\n');
    expect(fs.readdirSync(dest).filter((n) => n.startsWith('.tsbuild-tmp-'))).toEqual([]);

    const linkDest = path.join(paths.top, 'export-link');
    fs.symlinkSync(hostDir, linkDest);
    const refused = cli(paths.root, ['build', '-q', '-o', `type=local,dest=${linkDest}`, ctx]);
    expect(refused.stderr).toBe(`tsbuild: --output ${linkDest}: the destination is a symlink; give the directory it points to\n`);
    expect(refused.status).toBe(1);
    expect(fs.readdirSync(hostDir)).toEqual([]);
  });
});
