// The rootless mode (issue 15), end to end: the CLI and the library run as an ordinary user
// (`tsbuild-ci`, with subordinate ids from .ci/setup) enter a user namespace and build the same
// images a root build makes. The root builds are the reference: same base (saved by root, loaded by
// the user), same SOURCE_DATE_EPOCH, so the image IDs must be equal.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store, detectCgroupVersion } from '@tsbuild/storage';
import { REPO, busyboxTarball, cli } from './helpers/roots';
import { destroyRoot } from './helpers/temp';
import { cliAs, ensureRootlessUser, runAs, stopKeeper, userDir, type RootlessUser } from './helpers/rootless';

const EPOCH = { SOURCE_DATE_EPOCH: '1700000000' };
const storageDist = path.join(REPO, 'packages', 'storage', 'dist', 'index.js');

// Whole builds (bigcopy is ~320 MB) as two users: minutes on a loaded 2-core machine, not seconds.
const SLOW = 300_000;

let user: RootlessUser;
let top: string;
let rootStore: string;
let baseTar: string;
let workloads: string;

/** The shared benchmark workloads (mkworkloads.sh: app, bigcopy), generated once into the test cache. */
function sharedWorkloads(): string {
  const candidates = [path.join(REPO, '..', 'shared', 'bench', 'mkworkloads.sh'), '/work/shared/bench/mkworkloads.sh'];
  const script = candidates.find((c) => fs.existsSync(c));
  if (!script) throw new Error(`the rootless tests need ../shared/bench/mkworkloads.sh (looked at ${candidates.join(', ')})`);
  const dir = path.join(process.env.TSBUILD_TEST_CACHE ?? '/var/cache/tsbuild-test', 'workloads');
  const stamp = path.join(dir, '.stamp');
  const want = fs.readFileSync(script, 'utf8').length + ':' + fs.statSync(script).mtimeMs;
  if (!fs.existsSync(stamp) || fs.readFileSync(stamp, 'utf8') !== want) {
    fs.mkdirSync(dir, { recursive: true });
    execFileSync('bash', [script, dir], { stdio: 'ignore' });
    fs.writeFileSync(stamp, want);
  }
  execFileSync('chmod', ['-R', 'a+rX', dir]);
  return dir;
}

/** A build as root (the reference) into the root store. */
function rootBuild(context: string, tag: string, extra: string[] = []): string {
  const r = cli(rootStore, ['build', '-q', '-t', tag, ...extra, context], { env: EPOCH });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout.trim();
}

/** A fresh storage root of the user's with the base loaded (as `docker load` of root's save). */
function userRootWithBase(name: string, driver: string[] = []): { root: string; firstStderr: string } {
  const root = path.join(userDir(user, top, name), 'root');
  const r = cliAs(user, root, [...driver, 'load', '-i', baseTar]);
  expect(r.status, r.stderr).toBe(0);
  return { root, firstStderr: r.stderr };
}

function userBuild(root: string, context: string, tag: string, driver: string[] = []): string {
  const r = cliAs(user, root, [...driver, 'build', '-q', '-t', tag, context], { env: EPOCH });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout.trim();
}

beforeAll(() => {
  user = ensureRootlessUser();
  top = fs.mkdtempSync('/tmp/tsbuild-rootless-');
  fs.chmodSync(top, 0o755);
  rootStore = path.join(top, 'rootstore');
  let r = cli(rootStore, ['import', busyboxTarball(), 'bench-base']);
  expect(r.status, r.stderr).toBe(0);
  baseTar = path.join(top, 'base.tar');
  r = cli(rootStore, ['save', '-o', baseTar, 'bench-base']);
  expect(r.status, r.stderr).toBe(0);
  fs.chmodSync(baseTar, 0o644);
  workloads = sharedWorkloads();
}, 900_000);

afterAll(() => {
  // The keeper holding the user's namespace (and every mount made in it) goes first; then nothing
  // may be mounted here.
  const otherKeepers = user ? stopKeeper(user) : [];
  const leftMounted = top ? destroyRoot(top) : [];
  user?.remove();
  expect(leftMounted).toEqual([]);
  // One keeper per user: the library's and the CLI's commands (the addon reached through another path,
  // node_modules/@tsbuild/native against packages/native) share it.
  expect(otherKeepers).toEqual([]);
});

describe('rootless: entering the user namespace', () => {
  it('without subordinate ids: one line naming the files, exit 125, nothing created', () => {
    const home = path.join(top, 'nobody-home');
    fs.mkdirSync(home, { mode: 0o777 });
    fs.chmodSync(home, 0o777);
    const nobody = { name: 'nobody', home };
    const root = path.join(home, 'root');
    for (const args of [['--root', root, 'images'], ['images']]) {
      const r = runAs(nobody, [process.execPath, path.join(REPO, 'packages', 'builder', 'bin', 'tsbuild.js'), ...args]);
      expect(r.status).toBe(125);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^tsbuild: rootless mode needs subordinate ids for nobody: \/etc\/subuid needs a line "nobody:100000:65536" and \/etc\/subgid needs a line "nobody:100000:65536" \(as root: usermod .+\)\n$/);
    }
    // Neither the named root nor the default one (~/.local/share/tsbuild) was made, nor a runtime dir.
    expect(fs.readdirSync(home)).toEqual([]);
    expect(fs.existsSync('/tmp/tsbuild-65534')).toBe(false);
  }, SLOW);

  it('the library: reexecInUserNamespace, then Store.open takes overlay2 in the namespace', () => {
    const dir = userDir(user, top, 'library');
    const script = path.join(top, 'library.js');
    fs.writeFileSync(
      script,
      `const s = require(${JSON.stringify(storageDist)});
(async () => {
  await s.reexecInUserNamespace();
  const store = await s.Store.open(process.argv[2], { rootless: true });
  console.log(store.driverName, s.inUserNamespace(), process.getuid(), s.defaultStorageRoot());
  await store.close();
})().catch((e) => { console.error(e.message); process.exitCode = 3; });
`,
    );
    const r = runAs(user, [process.execPath, script, path.join(dir, 'root')]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`overlay2 true 0 ${user.home}/.local/share/tsbuild\n`);
    expect(r.status).toBe(0);
  }, SLOW);

  it('Store.open({ rootless: true }) outside a user namespace is refused before anything is made', async () => {
    const root = path.join(top, 'not-rootless');
    await expect(Store.open(root, { rootless: true })).rejects.toThrow('rootless: true needs a user namespace: call reexecInUserNamespace() first');
    expect(fs.existsSync(root)).toBe(false);
  }, SLOW);
});

describe('rootless: the same images as root', () => {
  it('app and bigcopy: equal image IDs, overlay2 chosen in the namespace, and they run', () => {
    const { root, firstStderr } = userRootWithBase('builds');
    expect(firstStderr).toBe('tsbuild: rootless: using overlay2 (kernel overlayfs mounted with userxattr in the user namespace)\n');
    const context = (name: string) => path.join(workloads, name);
    expect(userBuild(root, context('app'), 'app')).toBe(rootBuild(context('app'), 'app'));
    const userBig = userBuild(root, context('bigcopy'), 'bigcopy');
    const rootBig = rootBuild(context('bigcopy'), 'bigcopy');
    expect(fs.readdirSync(path.join(root, 'overlay2')).length).toBeGreaterThan(1);
    expect(fs.existsSync(path.join(root, 'vfs'))).toBe(false);
    const app = cliAs(user, root, ['run', '--rm', 'app']);
    expect(app).toEqual({ status: 0, stdout: 'built\n', stderr: '' });
    const big = cliAs(user, root, ['run', '--rm', 'bigcopy']);
    expect(big.stderr).toBe('');
    const rootSize = cli(rootStore, ['run', '--rm', 'bigcopy']).stdout;
    // bigcopy's last step records `du -s /data`: blocks the filesystem allocated, which can differ
    // by an extent block between any two builds, root or not. The COPY layer must be the same bytes
    // always; the image ID whenever du agrees.
    const layers = ['inspect', '-f', '{{.RootFS.Layers}}', 'bigcopy'];
    const userLayers = cliAs(user, root, layers).stdout.split(' ');
    const rootLayers = cli(rootStore, layers).stdout.split(' ');
    expect(userLayers.slice(0, -1)).toEqual(rootLayers.slice(0, -1));
    expect(big.stdout).toMatch(/^\d+\t\/data\n$/);
    if (big.stdout === rootSize) expect(userBig).toBe(rootBig);
    else process.stderr.write(`rootless: bigcopy's du differs (${big.stdout.trim()} / ${rootSize.trim()}); its COPY layer is equal\n`);
    // Fully cached the second time, same ID.
    expect(userBuild(root, path.join(workloads, 'app'), 'app')).toBe(rootBuild(path.join(workloads, 'app'), 'app'));
  }, SLOW);

  it('chown, USER steps and a setuid file: the same tree (owners, modes, xattrs) as root', () => {
    const context = path.join(top, 'owners');
    fs.mkdirSync(context);
    fs.writeFileSync(path.join(context, 'f.txt'), 'with an xattr\n');
    execFileSync('setfattr', ['-n', 'user.origin', '-v', 'context', path.join(context, 'f.txt')]);
    fs.writeFileSync(
      path.join(context, 'Dockerfile'),
      [
        'FROM bench-base',
        'RUN mkdir /x && echo hi > /x/f && chown 1000:1000 /x /x/f',
        'RUN cp /bin/busybox /x/suid && chmod 4755 /x/suid && mkdir /y && chown 65534:65534 /y && chmod 2770 /y',
        'COPY --chown=1000:1000 f.txt /z/',
        'USER 1000',
        'RUN echo mine > /tmp/mine && touch /x/byapp',
        'USER 0',
        'RUN rm /x/f',
        '',
      ].join('\n'),
    );
    execFileSync('chmod', ['-R', 'a+rX', context]);
    const { root } = userRootWithBase('owners');
    const asRoot = rootBuild(context, 'owners');
    expect(userBuild(root, context, 'owners')).toBe(asRoot);
    // What the image holds, seen from a container of each store: the IDs being equal, these must be too.
    const show = ['run', '--rm', 'owners', 'sh', '-c', 'stat -c "%n %u:%g %a" /x /x/suid /x/byapp /y /tmp/mine /z/f.txt; ls /x'];
    const rootView = cli(rootStore, show);
    expect(rootView.stdout).toBe(
      '/x 1000:1000 755\n/x/suid 0:0 4755\n/x/byapp 1000:1000 644\n/y 65534:65534 2770\n/tmp/mine 1000:1000 644\n/z/f.txt 1000:1000 644\nbyapp\nsuid\n',
    );
    expect(cliAs(user, root, show)).toEqual(rootView);
    const xattr = ['run', '--rm', 'owners', 'sh', '-c', 'cat /z/f.txt'];
    expect(cliAs(user, root, xattr).stdout).toBe('with an xattr\n');
    // The xattr itself: the layer tars are equal (same diff IDs), and root's holds it.
    const layers = ['inspect', '-f', '{{.RootFS.Layers}}', 'owners'];
    expect(cliAs(user, root, layers).stdout).toBe(cli(rootStore, layers).stdout);
    const out = path.join(top, 'owners-out');
    expect(cli(rootStore, ['build', '-q', '-o', `type=local,dest=${out}`, context], { env: EPOCH }).status).toBe(0);
    expect(execFileSync('getfattr', ['--only-values', '-n', 'user.origin', path.join(out, 'z', 'f.txt')], { encoding: 'utf8' })).toBe('context');
  }, SLOW);

  it('--storage-driver vfs works too, with the image ID of a root vfs build', () => {
    const vfs = ['--storage-driver', 'vfs'];
    const { root } = userRootWithBase('vfs', vfs);
    const rootVfs = path.join(top, 'rootstore-vfs');
    expect(cli(rootVfs, [...vfs, 'load', '-i', baseTar]).status).toBe(0);
    const context = path.join(workloads, 'app');
    const asRoot = cli(rootVfs, [...vfs, 'build', '-q', '-t', 'app', context], { env: EPOCH });
    expect(asRoot.status, asRoot.stderr).toBe(0);
    expect(userBuild(root, context, 'app', vfs)).toBe(asRoot.stdout.trim());
    expect(fs.existsSync(path.join(root, 'overlay2'))).toBe(false);
    expect(cliAs(user, root, ['--storage-driver', 'vfs', 'run', '--rm', 'app'])).toEqual({ status: 0, stdout: 'built\n', stderr: '' });
  }, SLOW);
});

describe('rootless: what the namespace cannot do', () => {
  it('a file owned by an id outside the mapping: one line naming the file and the id, nothing recorded', () => {
    const dir = path.join(top, 'bigid');
    fs.mkdirSync(path.join(dir, 'tree', 'opt'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'tree', 'opt', 'big'), 'x');
    fs.chownSync(path.join(dir, 'tree', 'opt', 'big'), 70000, 70000);
    const tar = path.join(dir, 'bigid.tar');
    execFileSync('tar', ['--numeric-owner', '-C', path.join(dir, 'tree'), '-cf', tar, '.']);
    fs.chmodSync(dir, 0o755);
    fs.chmodSync(tar, 0o644);
    const root = path.join(userDir(user, top, 'bigid-user'), 'root');
    const r = cliAs(user, root, ['import', tar, 'bigid']);
    expect(r.stderr).toMatch(/^(tsbuild: rootless: using overlay2 [^\n]+\n)?tsbuild: \/opt\/big is owned by uid 70000, outside the uids this user namespace maps \(0-65536\); give the user more subordinate ids in \/etc\/subuid\n$/);
    expect(r.status).toBe(1);
    expect(cliAs(user, root, ['images', '-q'])).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(fs.readdirSync(path.join(root, 'overlay2')).filter((n) => n !== 'l')).toEqual([]);
    // COPY --chown to such an id: the same error, naming the file; no image.
    expect(cliAs(user, root, ['load', '-i', baseTar]).status).toBe(0);
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM bench-base\nCOPY --chown=70000:70000 bigid.tar /bigid.tar\n');
    fs.chmodSync(path.join(dir, 'Dockerfile'), 0o644);
    const copy = cliAs(user, root, ['build', '-q', '-t', 'chowned', dir]);
    expect(copy.stderr).toMatch(/^tsbuild: .*\/bigid\.tar is owned by uid 70000, outside the uids this user namespace maps \(0-65536\); give the user more subordinate ids in \/etc\/subuid\n$/);
    expect(copy.status).toBe(1);
    expect(cliAs(user, root, ['images', '-q', 'chowned'])).toEqual({ status: 0, stdout: '', stderr: '' });
  }, SLOW);

  it('run: host and no network work; cgroup limits are a clear error without a delegated v2 subtree', () => {
    const { root } = userRootWithBase('run');
    expect(cliAs(user, root, ['run', '--rm', '--network', 'host', 'bench-base', 'sh', '-c', 'ls /sys/class >/dev/null && echo ok'])).toEqual({ status: 0, stdout: 'ok\n', stderr: '' });
    expect(cliAs(user, root, ['run', '--rm', 'bench-base', 'sh', '-c', 'cat /proc/1/uid_map | wc -l; ls /dev/null /dev/urandom /dev/zero'])).toEqual({
      status: 0, stdout: '2\n/dev/null\n/dev/urandom\n/dev/zero\n', stderr: '',
    });
    const limited = cliAs(user, root, ['run', '--rm', '--memory', '64m', '--pids-limit', '10', 'bench-base', 'true']);
    expect(limited.status).toBe(125);
    const why = detectCgroupVersion() === 1 ? 'this host uses cgroup v1 (or hybrid), which has none' : 'tsbuild cannot use a delegated subtree yet';
    expect(limited.stderr).toBe(`tsbuild: --memory, --pids-limit: resource limits in the rootless mode need a cgroup v2 subtree delegated to the user; ${why}\n`);
    expect(cliAs(user, root, ['ps', '-a', '-q'])).toEqual({ status: 0, stdout: '', stderr: '' });
    // Detached: later commands share the user namespace its keeper holds, so exec, logs and stop reach it.
    const id = cliAs(user, root, ['run', '-d', '--name', 'ticker', 'bench-base', 'sh', '-c', 'echo started; exec sleep 600']).stdout.trim();
    try {
      expect(id).toMatch(/^[0-9a-f]{64}$/);
      // In the container's namespaces: its hostname is its short id.
      expect(cliAs(user, root, ['exec', 'ticker', 'sh', '-c', 'id -u; hostname'])).toEqual({ status: 0, stdout: `0\n${id.slice(0, 12)}\n`, stderr: '' });
      expect(cliAs(user, root, ['stop', '-t', '1', 'ticker'])).toEqual({ status: 0, stdout: 'ticker\n', stderr: '' });
      expect(cliAs(user, root, ['logs', 'ticker']).stdout).toBe('started\n');
    } finally {
      expect(cliAs(user, root, ['rm', '-f', 'ticker']).status).toBe(0);
    }
  }, SLOW);
});
