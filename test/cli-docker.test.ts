// What a docker user types (issue 14): the README's docker table walked row by row, the grouped
// forms, unknown commands that never start a build, every flag in --help, --format templates, run -d
// with logs/stop/kill/wait/exec, and `save` in the format docker load, podman load and skopeo read.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { REPO, cli, cliRootWithBusybox, writeTree } from './helpers/roots';

// The compiled CLI through Node's own require, as the bin loads it: its command table registers
// itself into the same module instance.
const cliMain = createRequire(__filename)('../packages/builder/dist/cli/main.js') as typeof import('../packages/builder/src/cli/main');
const { commandNames, lookupCommand } = cliMain;

const { top, root } = cliRootWithBusybox('tsbuild-clidocker-');

afterAll(() => {
  // Detached containers of failed tests: their supervisors die with the kill.
  cli(root, ['ps', '-q']).stdout.split('\n').filter(Boolean).forEach((id) => cli(root, ['kill', id]));
  for (let i = 0; i < 50 && cli(root, ['ps', '-q']).stdout.trim() !== ''; i++) spawnSync('sleep', ['0.1']);
});

interface Row {
  docker: string;
  tsbuild: string[];
  error?: string;
}

function readmeTable(): Row[] {
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const body = readme.slice(readme.indexOf('<!-- docker-table:start -->'), readme.indexOf('<!-- docker-table:end -->'));
  const rows: Row[] = [];
  for (const line of body.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
    const code = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\\\|/g, '|'));
    const status = cells[2]!;
    rows.push({
      docker: cells[0]!,
      tsbuild: code(cells[1]!),
      ...(status.startsWith('error') ? { error: code(status)[0]! } : {}),
    });
  }
  return rows;
}

describe("the README's docker table", () => {
  const rows = readmeTable();
  it('has rows', () => {
    expect(rows.length).toBeGreaterThan(25);
  });

  it.each(rows.filter((r) => !r.error).flatMap((r) => r.tsbuild.map((t) => [t, r.docker] as const)))(
    'supported: %s lists its flags in --help',
    (command) => {
      const words = command.split(' ').slice(1);
      const sub = words.filter((w) => !w.startsWith('-'));
      const flags = words.filter((w) => w.startsWith('-'));
      const r = cli(root, [...sub, '--help']);
      expect(r.status).toBe(0);
      for (const flag of flags) expect(r.stdout).toMatch(new RegExp(`(^|[\\s,\\[|])${flag}([\\s,=\\]|]|$)`, 'm'));
    },
  );

  it.each(rows.filter((r) => r.error).map((r) => [r.tsbuild[0]!, r.error!] as const))('error: %s says %s', (command, message) => {
    const r = cli(root, command.split(' ').slice(1));
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(message);
  });
});

describe('commands', () => {
  it('every command lists every one of its flags in its usage', () => {
    for (const name of commandNames()) {
      const cmd = lookupCommand(name)!;
      if (!cmd.options) continue;
      for (const [long, spec] of Object.entries(cmd.options)) {
        expect(cmd.usage, `${name} --${long}`).toContain(`--${long}`);
        if (spec.short) expect(cmd.usage, `${name} -${spec.short}`).toMatch(new RegExp(`-${spec.short}[,| \\]]`));
      }
    }
    // Commands with flags declare them (groups and unsupported docker commands have none of their own).
    const flat = commandNames().filter((n) => lookupCommand(n)!.options === undefined);
    expect(flat.sort()).toEqual(expect.arrayContaining(['builder', 'buildx', 'container', 'image', 'system']));
    for (const n of flat) expect(lookupCommand(n)!.usage).toMatch(/COMMAND|docker command|tsbuild has no|does not/);
  });

  it('a word that is not a command is never a build context, even when such a directory exists', () => {
    const cwd = fs.mkdtempSync(path.join(top, 'cwd-'));
    // (A layer of its own: an image with only busybox's layers would be a "parent" of every image built on busybox.)
    writeTree(cwd, { 'exec/Dockerfile': 'FROM busybox\nRUN echo exec > /exec\n', 'logs/Dockerfile': 'FROM busybox\n' });
    for (const word of ['exec', 'logs']) {
      // `exec` and `logs` are commands now: they answer with their own usage, not a build.
      const r = spawnSync(process.execPath, [path.join(REPO, 'packages/builder/bin/tsbuild.js'), '--root', root, word], { cwd, encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`"${word}" needs`);
    }
    const typo = spawnSync(process.execPath, [path.join(REPO, 'packages/builder/bin/tsbuild.js'), '--root', root, 'exex', 'x'], { cwd, encoding: 'utf8' });
    expect([typo.status, typo.stderr.trim()]).toEqual([2, 'tsbuild: unknown command "exex" for "tsbuild"; did you mean "exec"?; see "tsbuild --help"']);
    // A path-like context still builds.
    const built = spawnSync(process.execPath, [path.join(REPO, 'packages/builder/bin/tsbuild.js'), '--root', root, '-q', './exec'], { cwd, encoding: 'utf8' });
    expect(built.status).toBe(0);
    expect(built.stdout).toMatch(/^sha256:/);
  });
});

describe('images and inspect', () => {
  let danglingBefore: number;
  beforeAll(() => {
    danglingBefore = cli(root, ['images', '-q', '-f', 'dangling=true']).stdout.split('\n').filter(Boolean).length;
    const ctx = fs.mkdtempSync(path.join(top, 'ctx-'));
    writeTree(ctx, { Dockerfile: 'FROM busybox\nLABEL version=1.2\nRUN echo a > /a\n' });
    expect(cli(root, ['build', '-q', '-t', 'fmt:one', ctx]).status).toBe(0);
    // The same Dockerfile with another label: fmt:one moves on, the first image dangles.
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nLABEL version=1.3\nRUN echo a > /a\n');
    expect(cli(root, ['build', '-q', '-t', 'fmt:one', ctx]).status).toBe(0);
  });

  it('--format with Go template fields, table and json; -q; --filter dangling and reference', () => {
    const names = cli(root, ['images', '--format', '{{.Repository}}:{{.Tag}}']).stdout.split('\n');
    expect(names).toEqual(expect.arrayContaining(['busybox:latest', 'fmt:one', '<none>:<none>']));
    const dangling = cli(root, ['images', '-q', '-f', 'dangling=true']).stdout.trim().split('\n');
    expect(dangling).toHaveLength(danglingBefore + 1);
    expect(cli(root, ['images', '--filter', 'reference=fmt*', '--format', '{{.Repository}}']).stdout).toBe('fmt\n');
    const tableOut = cli(root, ['images', '--format', 'table {{.Repository}}\\t{{.Tag}}', 'fmt']).stdout;
    expect(tableOut.split('\n')[0]).toMatch(/^REPOSITORY\s+TAG$/);
    const json = JSON.parse(cli(root, ['images', '--format', 'json', 'fmt:one']).stdout) as { Tag: string };
    expect(json.Tag).toBe('one');
    expect(cli(root, ['images', '--filter', 'color=red']).stderr).toContain('unsupported filter "color"');
  });

  it('inspect --format: fields, json, index, range, and <no value> for a missing field', () => {
    const r = cli(root, ['inspect', '--format', '{{index .Config.Labels "version"}} {{json .Config.Labels}} {{range .RepoTags}}[{{.}}]{{end}} {{.Nope}}', 'fmt:one']);
    expect(r.stdout).toBe('1.3 {"version":"1.3"} [fmt:one] <no value>\n');
    expect(cli(root, ['image', 'inspect', '-f', '{{.Os}}/{{.Architecture}}', 'fmt:one']).stdout).toBe(`linux/${process.arch === 'x64' ? 'amd64' : process.arch}\n`);
    const bad = cli(root, ['inspect', '--format', '{{frob .Id}}', 'fmt:one']);
    expect([bad.status, bad.stderr]).toEqual([2, expect.stringContaining('unknown function "frob"')]);
  });

  it('system df, image prune, builder prune with filters', () => {
    const df = cli(root, ['system', 'df']);
    expect(df.stdout).toMatch(/^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE\nImages\s+\d+/);
    expect(df.stdout).toMatch(/Build Cache\s+[1-9]/);
    const keep = cli(root, ['builder', 'prune', '-f', '--filter', 'until=24h']);
    expect(keep.stdout).toMatch(/^Deleted 0 build cache entries/);
    expect(cli(root, ['builder', 'prune', '--keep-storage', '0']).stdout).toMatch(/^Deleted [1-9]\d* build cache entries/);
    expect(cli(root, ['system', 'df', '--format', '{{.Type}}={{.TotalCount}}']).stdout).toContain('Build Cache=0');
    const pruned = cli(root, ['image', 'prune', '-f']);
    expect(pruned.stdout).toMatch(new RegExp(`^Deleted ${danglingBefore + 1} images`));
    expect(cli(root, ['images', '-q', '-f', 'dangling=true']).stdout).toBe('');
  });
});

describe('detached containers', () => {
  it('run -d, ps, logs, exec, stop (SIGTERM reaches the process), wait, inspect, rm', () => {
    const d = cli(root, ['run', '-d', '--name', 'web', '--add-host', 'db:10.0.0.9', 'busybox', 'sh', '-c',
      'echo ready; trap "echo terminating; exit 3" TERM; while :; do sleep 0.1; done']);
    expect(d.stderr).toBe('');
    expect(d.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    expect(cli(root, ['ps']).stdout).toMatch(/\bUp\s+web/);
    for (let i = 0; i < 50 && cli(root, ['logs', 'web']).stdout === ''; i++) spawnSync('sleep', ['0.1']);
    expect(cli(root, ['logs', 'web']).stdout).toBe('ready\n');
    const ex = cli(root, ['exec', '-e', 'X=1', '-w', '/tmp', '-u', '1000', 'web', 'sh', '-c', 'echo $X $(pwd) $(id -u) $(hostname); grep -w db /etc/hosts; ps -o comm | grep -c sleep']);
    expect(ex.stderr).toBe('');
    expect(ex.stdout.split('\n').slice(0, 2)).toEqual([`1 /tmp 1000 ${d.stdout.slice(0, 12)}`, '10.0.0.9\tdb']);
    expect(cli(root, ['exec', 'web', 'sh', '-c', 'exit 4']).status).toBe(4);
    expect(cli(root, ['exec', 'web', 'nope']).status).toBe(127);
    expect(cli(root, ['stop', '-t', '5', 'web']).stdout).toBe('web\n');
    expect(cli(root, ['wait', 'web']).stdout).toBe('3\n');
    expect(cli(root, ['logs', '--tail', '1', 'web']).stdout).toBe('terminating\n');
    expect(cli(root, ['container', 'inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'web']).stdout).toBe('exited 3\n');
    expect(cli(root, ['exec', 'web', 'true']).stderr).toContain('is not running');
    expect(cli(root, ['rm', 'web']).status).toBe(0);
    expect(cli(root, ['ps', '-a', '-q']).stdout).toBe('');
  });

  it('kill -s, --rm removes a detached container when it ends, logs -f follows to the end', () => {
    const id = cli(root, ['run', '-d', '--rm', 'busybox', 'sh', '-c', 'trap "echo hup; exit 0" HUP; echo up; while :; do sleep 0.1; done']).stdout.trim();
    for (let i = 0; i < 50 && cli(root, ['logs', id]).stdout === ''; i++) spawnSync('sleep', ['0.1']);
    expect(cli(root, ['kill', '-s', 'HUP', id]).status).toBe(0);
    const follow = cli(root, ['logs', '-f', id]);
    // Either the follow saw the end, or the container was already removed (--rm) before logs ran.
    if (follow.status === 0) expect(follow.stdout).toBe('up\nhup\n');
    else expect(follow.stderr).toContain('no such container');
    for (let i = 0; i < 50 && cli(root, ['ps', '-a', '-q']).stdout !== ''; i++) spawnSync('sleep', ['0.1']);
    expect(cli(root, ['ps', '-a', '-q']).stdout).toBe('');
  });

  it('logs of more than a pipe holds reach a piped reader whole (the bin exits only once stdout drained)', () => {
    const id = cli(root, ['run', '-d', 'busybox', 'seq', '1', '100000']).stdout.trim();
    expect(cli(root, ['wait', id]).stdout).toBe('0\n');
    const logs = cli(root, ['logs', id]);
    expect(logs.status).toBe(0);
    expect(logs.stdout.length).toBe(588_895); // `seq 1 100000`: far more than the 64 KiB a pipe buffers
    expect(logs.stdout.endsWith('\n99999\n100000\n')).toBe(true);
    expect(cli(root, ['rm', id]).status).toBe(0);
  });

  it('a detached container that cannot start fails the run with 125 or 127 and leaves nothing', () => {
    const r = cli(root, ['run', '-d', '--rm', 'busybox', 'nope']);
    expect(r.status).toBe(127);
    expect(r.stderr).toContain('nope');
    expect(cli(root, ['ps', '-a', '-q']).stdout).toBe('');
    expect(cli(root, ['run', '-d', '-t', 'busybox', 'true']).status).toBe(2);
  });

  it('--env-file, --ulimit, --shm-size, and -p refused naming --network host', () => {
    const envFile = path.join(top, 'env');
    fs.writeFileSync(envFile, '# comment\nA=1\nB=two words\n');
    const r = cli(root, ['run', '--rm', '--env-file', envFile, '--ulimit', 'nofile=512:1024', '--shm-size', '16m', 'busybox', 'sh', '-c',
      'echo $A $B; ulimit -n; df -k /dev/shm | tail -1 | tr -s " " | cut -d" " -f2']);
    expect(r.stdout).toBe('1 two words\n512\n16384\n');
    const p = cli(root, ['run', '-p', '80:80', 'busybox', 'true']);
    expect([p.status, p.stderr]).toEqual([2, expect.stringContaining('--network host')]);
  });
});

describe('save', () => {
  it('defaults to one archive that skopeo reads as oci-archive and podman loads; stdout when piped', () => {
    const file = path.join(top, 'busybox.tar');
    const r = spawnSync('sh', ['-c', `node ${path.join(REPO, 'packages/builder/bin/tsbuild.js')} --root ${root} save busybox > ${file}`], { encoding: 'utf8' });
    expect([r.status, r.stderr]).toEqual([0, '']);
    const members = spawnSync('tar', ['-tf', file], { encoding: 'utf8' }).stdout.split('\n');
    expect(members).toEqual(expect.arrayContaining(['oci-layout', 'index.json', 'manifest.json']));
    const skopeo = spawnSync('skopeo', ['inspect', `oci-archive:${file}`], { encoding: 'utf8' });
    expect(skopeo.status).toBe(0);
    const podmanRoot = path.join(top, 'podman');
    const podman = spawnSync('podman', ['--root', podmanRoot, '--runroot', path.join(top, 'podman-run'), 'load', '-i', file], { encoding: 'utf8' });
    spawnSync('podman', ['--root', podmanRoot, '--runroot', path.join(top, 'podman-run'), 'system', 'reset', '-f'], { encoding: 'utf8' });
    expect(podman.stdout + podman.stderr).toContain('busybox:latest');
    const refused = cli(root, ['save', '-o', path.join(top, 'missing', 'x.tar'), 'busybox']);
    expect([refused.status, refused.stderr]).toEqual([1, expect.stringContaining('does not exist')]);
  });
});

describe("build output as docker's", () => {
  it('history shows expanded instructions; metadata steps carry the build time; step counters count shown steps', () => {
    const ctx = fs.mkdtempSync(path.join(top, 'hist-'));
    writeTree(ctx, {
      Dockerfile: [
        'FROM busybox', 'ARG V=1.0', 'ENV APP_HOME=/opt/app VERSION=$V', 'WORKDIR $APP_HOME', 'LABEL version=$VERSION',
        'COPY --chmod=644 Dockerfile $APP_HOME/', 'USER ${U:-root}', 'EXPOSE 80',
      ].join('\n'),
    });
    const started = Date.now();
    const r = cli(root, ['build', '--progress', 'plain', '-t', 'hist', ctx]);
    expect(r.status).toBe(0);
    expect(r.stderr.split('\n').filter((l) => /^#\d+ \[/.test(l))).toEqual([
      '#1 [1/3] FROM busybox', '#2 [2/3] WORKDIR $APP_HOME', '#3 [3/3] COPY --chmod=644 Dockerfile $APP_HOME/',
    ]);
    const created = cli(root, ['inspect', '-f', '{{.Created}}', 'hist']).stdout.trim();
    expect(Date.parse(created)).toBeGreaterThanOrEqual(started - 1000);
    const rows = cli(root, ['history', '--no-trunc', 'hist']).stdout.split('\n').slice(1, 8).map((l) => l.replace(/\s{2,}/g, '|').split('|'));
    expect(rows.map((c) => c[2])).toEqual([
      'EXPOSE 80 # tsbuild', 'USER root # tsbuild', 'COPY --chmod=644 Dockerfile /opt/app/ # tsbuild', 'LABEL version=1.0 # tsbuild',
      'WORKDIR /opt/app # tsbuild', 'ENV APP_HOME=/opt/app VERSION=1.0 # tsbuild', 'ARG V=1.0 # tsbuild',
    ]);
    // The metadata steps before the first layer step are as new as that step, not the base image.
    expect(rows.map((c) => c[1]).every((t) => /seconds? ago|Less than a second ago/.test(t!))).toBe(true);
  });
});

describe('rmi of an image other images were built from', () => {
  it('by name untags it (the children keep working and exporting); by ID it is refused; images -a shows it', () => {
    expect(cli(root, ['tag', 'busybox', 'parent:1']).status).toBe(0);
    const ctx = fs.mkdtempSync(path.join(top, 'child-'));
    writeTree(ctx, { Dockerfile: 'FROM parent:1\nRUN echo child > /child\n' });
    expect(cli(root, ['build', '-q', '-t', 'child:1', ctx]).status).toBe(0);
    // A parent of its own: parent2 is busybox plus one layer, child2 is parent2 plus one more.
    writeTree(ctx, { Dockerfile: 'FROM busybox\nRUN echo p > /p\n' });
    expect(cli(root, ['build', '-q', '-t', 'parent2:1', ctx]).status).toBe(0);
    const parentId = cli(root, ['inspect', '-f', '{{.Id}}', 'parent2:1']).stdout.trim();
    writeTree(ctx, { Dockerfile: 'FROM parent2:1\nRUN echo c > /c\n' });
    expect(cli(root, ['build', '-q', '-t', 'child2:1', ctx]).status).toBe(0);

    const untag = cli(root, ['rmi', 'parent2:1']);
    expect([untag.status, untag.stdout]).toEqual([0, 'Untagged: parent2:1\n']);
    const byId = cli(root, ['rmi', parentId]);
    expect([byId.status, byId.stderr]).toEqual([1, expect.stringContaining('(must be forced): image has dependent child images')]);
    expect(cli(root, ['images', '-q', '--no-trunc']).stdout).not.toContain(parentId);
    expect(cli(root, ['images', '-a', '-q', '--no-trunc']).stdout).toContain(parentId);
    // image prune keeps a parent too; the child still runs and saves.
    cli(root, ['image', 'prune', '-f']);
    expect(cli(root, ['images', '-a', '-q', '--no-trunc']).stdout).toContain(parentId);
    expect(cli(root, ['run', '--rm', 'child2:1', 'cat', '/p', '/c']).stdout).toBe('p\nc\n');
    expect(cli(root, ['save', '-o', path.join(top, 'child2.tar'), 'child2:1']).status).toBe(0);
    // Once the child is gone, the parent is an ordinary dangling image and prune removes it.
    expect(cli(root, ['rmi', 'child2:1']).status).toBe(0);
    cli(root, ['image', 'prune', '-f']);
    expect(cli(root, ['images', '-a', '-q', '--no-trunc']).stdout).not.toContain(parentId);
  });
});

describe('sizes as docker counts them', () => {
  it('image and history sizes are the bytes of the files (a WORKDIR is 0B), not of the tars', () => {
    const ctx = fs.mkdtempSync(path.join(top, 'sizes-'));
    writeTree(ctx, { Dockerfile: 'FROM busybox\nWORKDIR /opt/app\nRUN head -c 10000 /dev/zero > /opt/app/f && ln -s /opt/app/f /opt/app/l\n' });
    expect(cli(root, ['build', '-q', '-t', 'sizes', ctx]).status).toBe(0);
    const rows = cli(root, ['history', 'sizes']).stdout.split('\n').slice(1, 3).map((l) => l.replace(/\s{2,}/g, '|').split('|')[3]);
    // 10,000 bytes of file and a 10-byte link target; the WORKDIR layer holds a directory only.
    expect(rows).toEqual(['10kB', '0B']);
    const base = Number(cli(root, ['inspect', '-f', '{{.Size}}', 'busybox']).stdout);
    expect(Number(cli(root, ['inspect', '-f', '{{.Size}}', 'sizes']).stdout)).toBe(base + 10_010);
  });
});
