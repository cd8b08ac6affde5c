// The tsbuild command line as users run it: exit codes, one-line errors, the storage and container
// commands, the build shorthand, signals reaching the container.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI, REPO, cli, cliRootWithBusybox, writeTree } from './helpers/roots';

const { top, root } = cliRootWithBusybox('tsbuild-cli-');

describe('usage', () => {
  it('--help prints usage and exits 0; npx finds the bin', () => {
    const r = spawnSync('npx', ['tsbuild', '--help'], { cwd: REPO, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: tsbuild');
    for (const c of ['build', 'run', 'images', 'import', 'save', 'load', 'rmi', 'prune', 'ps', 'rm']) expect(r.stdout).toContain(`  ${c} `);
  });

  it('unknown commands and flags are usage errors (exit 2) in one line', () => {
    const r = cli(root, ['images', '--bogus']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^tsbuild: Unknown option '--bogus'/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('as a user without subordinate ids: says in one line which lines are missing (exit 125), nothing made', () => {
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, '--root', root, 'images'], { encoding: 'utf8' });
    expect(r.status).toBe(125);
    expect(r.stderr.trim()).toMatch(/^tsbuild: rootless mode needs subordinate ids for nobody: \/etc\/subuid needs a line .+$/);
  });
});

describe("README's main job", () => {
  it('npm run demo imports the base, builds examples/hello and runs it', () => {
    const demoRoot = path.join(top, 'demo-root');
    const r = spawnSync('npm', ['run', '--silent', 'demo'], { cwd: REPO, encoding: 'utf8', env: { ...process.env, TSBUILD_ROOT: demoRoot } });
    expect(r.stderr).toContain('naming to hello done');
    expect(r.stdout).toMatch(/Hello from tsbuild\nbuilt with BusyBox v[\d.]+\nrunning as pid \d+ on [0-9a-f]{12}\n$/);
    expect(r.status).toBe(0);
  });
});

describe('image commands', () => {
  it('images, tag, inspect, history, save, load, rmi, prune', () => {
    expect(cli(root, ['tag', 'busybox', 'mybox:v1']).status).toBe(0);
    const images = cli(root, ['images']).stdout;
    expect(images).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/m);
    expect(images).toMatch(/^mybox\s+v1\s+[0-9a-f]{12}\s/m);
    const inspect = JSON.parse(cli(root, ['inspect', 'mybox:v1']).stdout);
    expect(inspect[0].RepoTags).toContain('mybox:v1');
    expect(cli(root, ['history', 'mybox:v1']).stdout).toContain('tsbuild import');

    const archive = path.join(top, 'mybox.tar');
    expect(cli(root, ['save', '--format', 'docker', '-o', archive, 'mybox:v1']).status).toBe(0);
    const other = path.join(top, 'other');
    const load = cli(other, ['load', '-i', archive]);
    expect(load.status).toBe(0);
    expect(load.stdout).toContain('Loaded image: mybox:v1');
    expect(cli(other, ['run', '--rm', 'mybox:v1', 'echo', 'loaded']).stdout).toBe('loaded\n');

    const rmi = cli(root, ['rmi', 'mybox:v1']);
    expect(rmi.stdout).toBe('Untagged: mybox:v1\n');
    const missing = cli(root, ['rmi', 'nosuch:1']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/nosuch/);
    expect(cli(root, ['prune']).status).toBe(0);
  });

  it('a missing image is a user error: exit 1 for inspect, 125 for run', () => {
    const inspect = cli(root, ['inspect', 'nosuch:1']);
    expect([inspect.status, inspect.stderr.trim()]).toEqual([1, 'tsbuild: image not found: nosuch:1']);
    expect(cli(root, ['run', '--rm', 'nosuch:1', 'true']).status).toBe(125);
  });

  it('a missing import file is a clear error', () => {
    const r = cli(root, ['import', '/nonexistent.tar', 'x']);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe('tsbuild: cannot import /nonexistent.tar: no such file');
  });
});

describe('a fully cached build', () => {
  /** Every regular file under `dir` with its mtime (ns). */
  function fileTimes(dir: string, out = new Map<string, bigint>(), top = dir): Map<string, bigint> {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) fileTimes(file, out, top);
      else if (entry.isFile()) out.set(path.relative(top, file), fs.lstatSync(file, { bigint: true }).mtimeNs);
    }
    return out;
  }

  it('writes nothing: every file in the store keeps its mtime', () => {
    const ctx = writeTree(fs.mkdtempSync(path.join(top, 'cached-')), {
      Dockerfile: 'FROM busybox:latest\nENV A=1\nRUN echo one > /one\nCOPY a.txt /a.txt\nWORKDIR /app\nRUN cat /a.txt > copy\n',
      'a.txt': 'a\n',
    });
    const first = cli(root, ['build', '-q', '-t', 'cached:latest', ctx]);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    const before = fileTimes(root);
    const second = cli(root, ['build', '-q', '-t', 'cached:latest', ctx]);
    expect(second.stderr).toBe('');
    expect(second.stdout).toBe(first.stdout);
    expect(fileTimes(root)).toEqual(before);
  });
});

describe('run', () => {
  it('passes exit statuses through: own code, 128+signal, 126, 127', () => {
    expect(cli(root, ['run', '--rm', 'busybox', 'sh', '-c', 'exit 7']).status).toBe(7);
    expect(cli(root, ['run', '--rm', 'busybox', 'sh', '-c', 'kill -9 $$']).status).toBe(137);
    const notFound = cli(root, ['run', '--rm', 'busybox', 'nope']);
    expect(notFound.status).toBe(127);
    expect(notFound.stderr).toMatch(/nope/);
    expect(cli(root, ['run', '--rm', 'busybox', '/etc/passwd']).status).toBe(126);
  });

  it("passes empty arguments through as docker does; an empty command is not found (127)", () => {
    const r = cli(root, ['run', '--rm', 'busybox', 'sh', '-c', 'echo "$#[$1][$2]"', 'sh', '', 'x']);
    expect([r.status, r.stdout, r.stderr]).toEqual([0, '2[][x]\n', '']);
    const empty = cli(root, ['run', '--rm', 'busybox', '']);
    expect(empty.status).toBe(127);
    expect(empty.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('the command is PID 1 with --no-init; the default init reaps and the command sees pid 2', () => {
    expect(cli(root, ['run', '--rm', '--no-init', 'busybox', 'sh', '-c', 'echo $$']).stdout).toBe('1\n');
    expect(cli(root, ['run', '--rm', 'busybox', 'sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "']).stdout).toMatch(/tsbuild-init|^\S*init/);
  });

  it('-e, -w, -u, --hostname, --network none, -v', () => {
    const dir = fs.mkdtempSync(path.join(top, 'vol-'));
    fs.chmodSync(dir, 0o755);
    fs.writeFileSync(path.join(dir, 'f'), 'from host', { mode: 0o644 });
    const r = cli(root, [
      'run', '--rm', '-e', 'A=1', '-w', '/tmp', '-u', 'app', '--hostname', 'box', '-v', `${dir}:/mnt:ro`,
      'busybox', 'sh', '-c', 'echo $A $(pwd) $(id -u) $(hostname) $(cat /mnt/f); ls /sys/class/net; touch /mnt/x 2>/dev/null || echo ro',
    ]);
    expect(r.stdout).toBe('1 /tmp 1000 box from host\nlo\nro\n');
  });

  it("--help among the container's arguments belongs to the container", () => {
    const r = cli(root, ['run', '--rm', 'busybox', 'ls', '-h', '/bin/busybox']);
    expect([r.status, r.stdout]).toEqual([0, '/bin/busybox\n']);
  });

  it('-i passes stdin', () => {
    expect(cli(root, ['run', '--rm', '-i', 'busybox', 'cat'], { input: 'piped\n' }).stdout).toBe('piped\n');
  });

  it('/dev/stdout and /dev/stderr open when tsbuild\'s own stdio are sockets (as Node spawns it)', () => {
    // Images link logs to /dev/stdout (nginx); Docker's containers always write to pipes. The cli
    // helper's stdio are socketpairs, where opening /proc/self/fd/1 fails with ENXIO.
    const r = cli(root, ['run', '--rm', 'busybox', 'sh', '-c', 'echo out > /dev/stdout && echo err > /dev/stderr && echo direct']);
    expect(r.stderr).toBe('err\n');
    expect(r.stdout).toBe('out\ndirect\n');
    expect(r.status).toBe(0);
  });

  it('SIGTERM to tsbuild run reaches the process', async () => {
    const child = spawn(process.execPath, [CLI, '--root', root, 'run', '--rm', 'busybox', 'sh', '-c', 'trap "echo got TERM; exit 3" TERM; echo ready; while true; do sleep 0.05; done'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) resolve();
      });
    });
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(out).toContain('got TERM');
    expect(code).toBe(3);
  });

  it('-t gives the container a terminal of its own devpts; tty progress redraws in place', () => {
    const quote = (a: string[]) => a.map((x) => `'${x.replace(/'/g, "'\\''")}'`).join(' ');
    const run = spawnSync('script', ['-qec', quote([process.execPath, CLI, '--root', root, 'run', '--rm', '-t', 'busybox', 'sh', '-c', 'tty; exit 4']), '/dev/null'], { encoding: 'utf8' });
    expect(run.stdout).toContain('/dev/pts/0');
    expect(run.status).toBe(4);

    const ctx = writeTree(fs.mkdtempSync(path.join(top, 'ctx-')), { Dockerfile: 'FROM busybox\nRUN echo tty-build\n' });
    const b = spawnSync('script', ['-qec', quote([process.execPath, CLI, '--root', root, 'build', '-t', 'ttyb', ctx]), '/dev/null'], { encoding: 'utf8' });
    expect(b.status).toBe(0);
    expect(b.stdout).toMatch(/\[\+\] Building [\d.]+s \(2\/2\) FINISHED/);
    expect(b.stdout).toContain('\x1b['); // cursor movement: redrawn in place
  });

  it('ps and rm manage kept containers', () => {
    expect(cli(root, ['run', '--name', 'kept', 'busybox', 'true']).status).toBe(0);
    expect(cli(root, ['ps', '-a']).stdout).toMatch(/kept/);
    expect(cli(root, ['rm', 'kept']).status).toBe(0);
    expect(cli(root, ['ps', '-a']).stdout).not.toMatch(/kept/);
  });
});

describe('build', () => {
  it('the shorthand `tsbuild -t app .`, -q, --iidfile and -f -', () => {
    const ctx = writeTree(fs.mkdtempSync(path.join(top, 'ctx-')), {
      Dockerfile: 'FROM busybox\nRUN echo built > /b\nCMD ["cat", "/b"]\n',
    });
    const iid = path.join(top, 'iid');
    const r = cli(root, ['-t', 'app', '-q', '--iidfile', iid, '.'], { cwd: ctx });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(fs.readFileSync(iid, 'utf8')).toBe(r.stdout.trim());
    expect(cli(root, ['run', '--rm', 'app']).stdout).toBe('built\n');

    const viaStdin = cli(root, ['build', '-q', '-t', 'app2', '-f', '-', ctx], { input: 'FROM busybox\nCMD ["echo", "stdin"]\n' });
    expect(viaStdin.status).toBe(0);
    expect(cli(root, ['run', '--rm', 'app2']).stdout).toBe('stdin\n');
  });

  it('plain progress in BuildKit style, and a one-line error with exit 1 for a bad Dockerfile', () => {
    const ctx = writeTree(fs.mkdtempSync(path.join(top, 'ctx-')), { Dockerfile: 'FROM busybox\nRUN echo hi\n' });
    const ok = cli(root, ['build', '--progress', 'plain', '-t', 'p', ctx]);
    expect(ok.stderr).toMatch(/^#1 \[1\/2\] FROM busybox$/m);
    expect(ok.stderr).toMatch(/^#2 \[2\/2\] RUN echo hi$/m);
    expect(ok.stderr).toMatch(/^#2 \d+\.\d{3} hi$/m);
    expect(ok.stderr).toMatch(/^#2 DONE \d+\.\ds$/m);

    fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nBOGUS x\n');
    const bad = cli(root, ['build', '--progress', 'quiet', '-t', 'bad', ctx]);
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim()).toBe('tsbuild: Dockerfile: dockerfile parse error on line 2: unknown instruction: BOGUS');
    expect(cli(root, ['images']).stdout).not.toMatch(/^bad\s/m);
  });

  it('--output exports an OCI archive (read by skopeo) and a local directory', () => {
    const ctx = writeTree(fs.mkdtempSync(path.join(top, 'ctx-')), { Dockerfile: 'FROM busybox\nRUN echo out > /out\n' });
    const archive = path.join(top, 'out-oci.tar');
    expect(cli(root, ['build', '-q', '-t', 'outimg', '-o', `type=oci,dest=${archive}`, ctx]).status).toBe(0);
    const inspect = spawnSync('skopeo', ['inspect', `oci-archive:${archive}:outimg:latest`], { encoding: 'utf8' });
    expect(inspect.stderr).toBe('');
    expect(JSON.parse(inspect.stdout).Layers).toHaveLength(2);
    const dest = path.join(top, 'out-local');
    expect(cli(root, ['build', '-q', '-o', `type=local,dest=${dest}`, ctx]).status).toBe(0);
    expect(fs.readFileSync(path.join(dest, 'out'), 'utf8')).toBe('out\n');
    expect(fs.existsSync(path.join(dest, 'bin', 'busybox'))).toBe(true);
    const tar = spawnSync(process.execPath, [CLI, '--root', root, 'build', '-q', '-o', '-', ctx], { maxBuffer: 64 << 20 });
    expect(tar.status).toBe(0);
    const listed = spawnSync('tar', ['-t'], { input: tar.stdout, encoding: 'utf8' }).stdout.split('\n');
    expect(listed).toContain('out');
    expect(listed).toContain('bin/busybox');
  });

  // Since issue 16 other platforms are built; a base image of another platform is the clear error.
  it('--platform of a platform the base image lacks is a clear error', () => {
    const ctx = writeTree(fs.mkdtempSync(path.join(top, 'ctx-')), { Dockerfile: 'FROM busybox\n' });
    const r = cli(root, ['build', '--platform', 'linux/s390x', ctx]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('tsbuild: Dockerfile:1: base image "busybox": image busybox is for linux/amd64, not linux/s390x\n');
    const bad = cli(root, ['build', '--platform', 'linux/amd64,windows/amd64', ctx]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^tsbuild: invalid platform "windows\/amd64": operating system "windows" is not supported \(only linux\)/);
  });
});
