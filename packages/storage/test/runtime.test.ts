// The container runtime for real, as root: namespaces, Docker's mounts and masks, capabilities, cgroup
// v1 limits (this machine), cgroup v2 on the real (controller-less) unified tree and on a fake tree, and
// the runc CVE regressions (REFERENCE §5.3).
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { INIT_BINARY, readAll, setCloexec } from '@tsbuild/native';
import { createCgroup, runContainer, type RunOptions, type RunningContainer } from '../src/runtime';
import { makeBusyboxRootfs } from '../../../fixtures/busybox';
import { busyboxRootfsPerFile, closedAfterEach, removeCgroupAfterAll, stoppedAfterEach, waitFor } from '../../../test/helpers/containers';

const DOCKER_CAP_MASK = '00000000a80425fb';

const { tmp, rootfs } = busyboxRootfsPerFile('runtime');
const live = stoppedAfterEach((c: RunningContainer) => {
  c.kill('SIGKILL');
  return c.wait();
});
const openFds = closedAfterEach();

// This file's containers get their own v1 parent group, so other test files running containers at the
// same time never show up in (or disturb) the "nothing left behind" checks.
const CG_PARENT = `tsbuild-rt-${process.pid}`;
removeCgroupAfterAll(CG_PARENT);

async function start(opts: Omit<RunOptions, 'rootfs'> & { rootfs?: string }): Promise<RunningContainer> {
  const c = await runContainer({ rootfs, cgroups: { parent: CG_PARENT }, ...opts });
  live.push(c);
  return c;
}

async function run(opts: Omit<RunOptions, 'rootfs'> & { rootfs?: string }) {
  const c = await start(opts);
  const [stdout, stderr, exit] = await Promise.all([readAll(c.stdout ?? null), readAll(c.stderr ?? null), c.wait()]);
  return { stdout, stderr, exit, id: c.id, pid: c.pid };
}

const sh = (script: string, extra: Partial<RunOptions> = {}) => run({ args: ['sh', '-c', script], ...extra });

function childPids(): number[] {
  return fs.readdirSync('/proc/self/task').flatMap((tid) =>
    fs.readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
  );
}

function tsbuildCgroups(): string[] {
  const out: string[] = [];
  for (const controller of fs.readdirSync('/sys/fs/cgroup')) {
    const parent = path.join('/sys/fs/cgroup', controller, CG_PARENT);
    if (!fs.existsSync(parent)) continue;
    for (const e of fs.readdirSync(parent, { withFileTypes: true })) if (e.isDirectory()) out.push(path.join(parent, e.name));
  }
  return out;
}

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

describe('runContainer: isolation', () => {
  it('runs the command as PID 1 without init, as PID 1 child of tsbuild-init by default', async () => {
    const bare = await sh('echo $$', { init: false });
    expect(bare.stdout).toBe('1\n');
    const withInit = await sh('echo $$; ps -o pid,comm');
    const [pid, , first] = withInit.stdout.trim().split('\n');
    expect(Number(pid)).toBeGreaterThan(1);
    expect(first!.trim().split(/\s+/)).toEqual(['1', expect.stringMatching(/tsbuild-i/)]);
  });

  it('has its own hostname (the short id), /etc/hostname and /etc/hosts', async () => {
    const r = await sh('hostname; cat /etc/hostname; grep -c localhost /etc/hosts');
    expect(r.stdout).toBe(`${r.id.slice(0, 12)}\n${r.id.slice(0, 12)}\n2\n`);
    expect(r.id.slice(0, 12)).not.toBe(os.hostname());
    expect(fs.existsSync(path.join(rootfs, 'etc/hostname'))).toBe(true); // the mount point only
    expect(fs.readFileSync(path.join(rootfs, 'etc/hostname'), 'utf8')).toBe('');
  });

  it('cannot see host processes', async () => {
    const r = await sh('ps -o pid,comm');
    const pids = r.stdout.trim().split('\n').slice(1).map((l) => Number(l.trim().split(/\s+/)[0]));
    expect(pids.every((p) => p < 10)).toBe(true);
    expect(pids).not.toContain(process.pid);
  });

  it("has Docker's 14 capabilities and an empty inheritable set", async () => {
    const r = await run({ args: ['grep', '^Cap', '/proc/self/status'] });
    expect(r.stdout).toContain('CapInh:\t0000000000000000');
    expect(r.stdout).toContain(`CapEff:\t${DOCKER_CAP_MASK}`);
    expect(r.stdout).toContain(`CapBnd:\t${DOCKER_CAP_MASK}`);
    const dropped = await run({ args: ['grep', '^CapEff', '/proc/self/status'], capabilities: { drop: ['NET_RAW'] } });
    expect(dropped.stdout).toBe('CapEff:\t00000000a80405fb\n');
  });

  it('masks /proc/kcore and friends and keeps /proc/sys read-only', async () => {
    const r = await sh(
      'for f in /proc/kcore /proc/keys /proc/timer_list; do printf "%s=" $f; cat $f 2>/dev/null | wc -c; done; ' +
        'ls /proc/acpi | wc -l; echo 1 > /proc/sys/vm/drop_caches && echo WROTE; ' +
        'echo 1 > /proc/sysrq-trigger && echo WROTE; grep -c " /proc/sys " /proc/self/mounts',
    );
    const lines = r.stdout.trim().split('\n').map((l) => l.trim());
    expect(lines.slice(0, 4)).toEqual(['/proc/kcore=0', '/proc/keys=0', '/proc/timer_list=0', '0']);
    expect(r.stdout).not.toContain('WROTE');
    expect(r.stderr).toMatch(/Read-only file system/);
  });

  it('has only lo with network none, and the host interfaces with network host', async () => {
    const none = await run({ args: ['ls', '/sys/class/net'] });
    expect(none.stdout.split(/\s+/).filter(Boolean)).toEqual(['lo']);
    const host = await run({ args: ['ls', '/sys/class/net'], network: 'host' });
    expect(host.stdout.split(/\s+/).filter(Boolean).sort()).toEqual(fs.readdirSync('/sys/class/net').sort());
  });

  it('brings lo up with network none: a server and a client on 127.0.0.1 in one container', async () => {
    const r = await run({
      args: ['sh', '-c', 'mkdir /tmp/www && echo served > /tmp/www/index.html && httpd -p 127.0.0.1:8080 -h /tmp/www && wget -qO- http://127.0.0.1:8080/'],
    });
    expect(r.stderr).toBe('');
    expect(r.exit.exitCode).toBe(0);
    expect(r.stdout).toBe('served\n');
  });

  it('passes empty arguments through and reports an empty command as not found (127)', async () => {
    const r = await run({ args: ['sh', '-c', 'echo "$#[$1]"', 'sh', ''] });
    expect(r.stdout).toBe('1[]\n');
    await expect(runContainer({ rootfs, cgroups: { parent: CG_PARENT }, args: [''] })).rejects.toMatchObject({ exitCode: 127 });
  });

  it('builds /dev: device nodes, symlinks, devpts, shm, mqueue; only fds 0-2', async () => {
    const r = await sh(
      'ls /dev | sort | tr "\\n" " "; echo; head -c 4 /dev/zero | wc -c; readlink /dev/ptmx; readlink /dev/fd; ' +
        'grep -E " /dev/(pts|shm|mqueue) " /proc/self/mounts | cut -d" " -f2,3 | tr "\\n" " "; echo; ls /proc/self/fd',
    );
    const [devs, zeros, ptmx, fdlink, mounts, fds] = r.stdout.split('\n');
    expect(devs!.trim().split(' ')).toEqual([
      'fd', 'full', 'mqueue', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero',
    ]);
    expect([zeros, ptmx, fdlink]).toEqual(['4', 'pts/ptmx', '/proc/self/fd']);
    expect(mounts!.trim()).toBe('/dev/pts devpts /dev/shm tmpfs /dev/mqueue mqueue');
    expect([fds, ...r.stdout.split('\n').slice(6)].filter(Boolean)).toEqual(['0', '1', '2', '3']); // 3: ls's own dir fd
  });

  it('gives a terminal with tty: setsid, controlling tty, TERM', async () => {
    const c = await start({ args: ['sh', '-c', 'tty; echo "TERM=$TERM"; ps -o pid,tty | tail -1'], tty: true });
    const output = c.terminal!.output;
    let text = '';
    output.on('data', (d: Buffer) => (text += d.toString()));
    const closed = new Promise<void>((resolve) => {
      output.on('close', () => resolve());
      output.on('error', () => resolve()); // EIO once the last slave fd is gone
    });
    expect((await c.wait()).exitCode).toBe(0);
    await closed;
    expect(text).toMatch(/^\/dev\/pts\/0\r\nTERM=xterm\r\n\s*\d+ 136,0\r\n$/);
  });
});

describe('runContainer: users, mounts, rootfs', () => {
  it('resolves USER from the rootfs passwd and group files', async () => {
    const app = await sh('id -u; id -g; echo $HOME', { user: 'app' });
    expect(app.stdout).toBe('1000\n1000\n/home/app\n');
    const numeric = await sh('id -u; id -g', { user: '1000:65534' });
    expect(numeric.stdout).toBe('1000\n65534\n');
    const named = await sh('id -u; id -g', { user: 'app:nogroup' });
    expect(named.stdout).toBe('1000\n65534\n');
    await expect(runContainer({ rootfs, args: ['true'], user: 'ghost' })).rejects.toThrow(/unable to find user ghost/);
  });

  it('makes the rootfs read-only and binds host paths (read-only when asked)', async () => {
    const shared = fs.mkdtempSync(path.join(tmp, 'shared-'));
    fs.writeFileSync(path.join(shared, 'in'), 'from host\n');
    const r = await sh('cat /data/in; touch /data/new && echo RW; touch /ro/x || echo RO; touch /newfile || echo ROOT-RO', {
      readonlyRootfs: true,
      mounts: [
        { source: shared, target: '/data' },
        { source: shared, target: '/ro', readonly: true },
      ],
    });
    expect(r.stdout).toBe('from host\nRW\nRO\nROOT-RO\n');
    expect(fs.readdirSync(shared).sort()).toEqual(['in', 'new']);
  });

  it('creates the working directory', async () => {
    const r = await sh('pwd', { cwd: '/work/dir' });
    expect(r.stdout).toBe('/work/dir\n');
  });
});

describe('runContainer: exit codes and signals', () => {
  it('exit 7 → 7, kill -9 $$ → 137, SIGTERM reaches the process → 143', async () => {
    expect((await sh('exit 7')).exit).toEqual({ exitCode: 7, signal: null, oomKilled: false });
    expect((await sh('kill -9 $$')).exit.exitCode).toBe(137);
    const c = await start({ args: ['sleep', '30'] });
    await waitFor(() => fs.readFileSync(`/proc/${c.pid}/task/${c.pid}/children`, 'utf8').trim() !== '');
    c.kill('SIGTERM');
    expect((await c.wait()).exitCode).toBe(143);
  });

  it('missing command → 127, non-executable → 126 (rejections carrying exitCode)', async () => {
    await expect(runContainer({ rootfs, args: ['nope'] })).rejects.toMatchObject({ code: 'ENOENT', exitCode: 127 });
    await expect(runContainer({ rootfs, args: ['/bin/notexec'] })).rejects.toMatchObject({ code: 'EACCES', exitCode: 126 });
    expect(tsbuildCgroups()).toEqual([]);
  });

  it("reaps orphans: sh -c 'sleep 0.2 & exec sleep 1' leaves no zombie", async () => {
    const c = await start({ args: ['sh', '-c', 'sleep 0.2 & exec sleep 1'] });
    const ns = fs.readlinkSync(`/proc/${c.pid}/ns/pid`);
    expect((await c.wait()).exitCode).toBe(0);
    const inNs = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
      try {
        return fs.readlinkSync(`/proc/${p}/ns/pid`) === ns;
      } catch {
        return false;
      }
    });
    expect(inNs).toEqual([]);
    expect(childPids()).toEqual([]);
    const orphans = await sh('(sleep 0.1 &); sleep 0.5; ps -o stat | grep -c ^Z');
    expect(orphans.stdout).toBe('0\n');
  });
});

describe('runContainer: cgroups', () => {
  it('--memory 32m: a 100 MB allocation is OOM-killed → 137 and oomKilled', async () => {
    const r = await sh('head -c 100000000 /dev/zero | tail', { memory: 32 * 1024 * 1024 });
    expect(r.exit).toEqual({ exitCode: 137, signal: null, oomKilled: true });
  });

  it('pids limit 20: a fork loop fails inside while the host is unaffected', async () => {
    // Counting with a glob: the shell cannot fork anything else once the limit is reached.
    // A failed fork ends a busybox sh, so the loop runs in a child shell; its sleeps stay behind.
    const r = await sh("sh -c 'for i in $(seq 1 40); do sleep 5 & done'; set -- /proc/[0-9]*; echo $#", { pidsLimit: 20 });
    expect(Number(r.stdout.trim())).toBeGreaterThan(10);
    expect(Number(r.stdout.trim())).toBeLessThanOrEqual(20);
    expect(r.stderr).toMatch(/can't fork|Resource temporarily unavailable/);
    expect(execFileSync('/bin/sh', ['-c', 'for i in 1 2 3 4 5; do /bin/true & done; wait; echo ok'], { encoding: 'utf8' })).toBe('ok\n');
  });

  it('writes cpu and pids limits into its v1 groups and removes them after exit', async () => {
    const c = await start({ args: ['sleep', '30'], cpus: 0.5, pidsLimit: 50, memory: 64 << 20 });
    const group = (ctrl: string, file: string) => fs.readFileSync(`/sys/fs/cgroup/${ctrl}/${CG_PARENT}/${c.id}/${file}`, 'utf8').trim();
    expect(group('cpu', 'cpu.cfs_quota_us')).toBe('50000');
    expect(group('cpu', 'cpu.cfs_period_us')).toBe('100000');
    expect(group('pids', 'pids.max')).toBe('50');
    expect(group('memory', 'memory.limit_in_bytes')).toBe(String(64 << 20));
    expect(group('pids', 'cgroup.procs').split('\n').map(Number)).toContain(c.pid);
    expect(group('devices', 'devices.list')).toContain('c 1:3 rwm');
    c.kill('SIGKILL');
    await c.wait();
    expect(fs.existsSync(`/sys/fs/cgroup/pids/${CG_PARENT}/${c.id}`)).toBe(false);
    expect(tsbuildCgroups()).toEqual([]);
  });

  it('cannot open host block devices (device cgroup)', async () => {
    const r = await sh('mknod /tmp/disk b 254 0 && head -c 1 /tmp/disk > /dev/null && echo READ; rm -f /tmp/disk');
    expect(r.stdout).not.toContain('READ');
    expect(r.stderr).toMatch(/Operation not permitted/);
  });

  it('v2 for real on the unified tree: CLONE_INTO_CGROUP, cgroup.kill, removal', async () => {
    const root = '/sys/fs/cgroup/unified';
    const parent = `tsbuild-test-${process.pid}`;
    try {
      const c = await start({ args: ['sh', '-c', 'grep ^0:: /proc/self/cgroup; sleep 30 & sleep 30; true'], cgroups: { version: 2, root, parent } });
      const dir = path.join(root, parent, c.id);
      // init + sh + both sleeps (the trailing `true` keeps sh from exec'ing the last one): grep has
      // finished, and printed, before the first sleep starts.
      await waitFor(() => fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').trim().split('\n').length >= 4);
      c.kill('SIGKILL');
      const [out, exit] = await Promise.all([readAll(c.stdout ?? null), c.wait()]);
      expect(out).toBe(`0::/${parent}/${c.id}\n`);
      expect(exit.exitCode).toBe(137);
      expect(fs.existsSync(dir)).toBe(false);
      await expect(runContainer({ rootfs, args: ['true'], memory: 1 << 20, cgroups: { version: 2, root, parent } })).rejects.toThrow(
        /v2 memory controller is not available/,
      );
    } finally {
      for (const c of live.splice(0)) {
        c.kill('SIGKILL');
        await c.wait().catch(() => undefined);
      }
      if (fs.existsSync(path.join(root, parent))) fs.rmdirSync(path.join(root, parent));
    }
  });

  it('v2 limits and OOM detection against a fake tree', async () => {
    const root = fs.mkdtempSync(path.join(tmp, 'fake-cgroup2-'));
    fs.writeFileSync(path.join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
    fs.writeFileSync(path.join(root, 'cgroup.subtree_control'), 'cpu\n');
    const cg = createCgroup('c1', { memory: 32 << 20, cpus: 1.5, pidsLimit: 20 }, { version: 2, root });
    const dir = path.join(root, 'tsbuild', 'c1');
    const read = (f: string) => fs.readFileSync(f, 'utf8');
    expect(cg.spawnOptions).toEqual({ cgroupDir: dir });
    expect(read(path.join(root, 'cgroup.subtree_control'))).toBe('+memory +pids');
    expect(read(path.join(root, 'tsbuild', 'cgroup.subtree_control'))).toBe('+memory +cpu +pids');
    expect(read(path.join(dir, 'memory.max'))).toBe(String(32 << 20));
    expect(read(path.join(dir, 'memory.swap.max'))).toBe(String(32 << 20));
    expect(read(path.join(dir, 'cpu.max'))).toBe('150000 100000');
    expect(read(path.join(dir, 'pids.max'))).toBe('20');
    expect(cg.oomKilled()).toBe(false);
    fs.writeFileSync(path.join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n');
    expect(cg.oomKilled()).toBe(true);
    expect(() => createCgroup('c2', { memory: 1 }, { version: 2, root: fs.mkdtempSync(path.join(tmp, 'empty-')) })).toThrow(
      /memory controller is not available/,
    );
  });
});

describe('runContainer: CVE regressions', () => {
  it('CVE-2024-21626: a cwd of /proc/self/fd/N (N in 3..64) never lands outside the root', async () => {
    for (let i = 0; i < 10; i++) {
      const fd = fs.openSync(tmp, 'r');
      setCloexec(fd, false);
      openFds.push(fd);
    }
    const marker = `outside-${process.pid}`;
    fs.writeFileSync(path.join(tmp, marker), '');
    for (let n = 3; n <= 64; n++) {
      const r = await run({ args: ['sh', '-c', 'pwd; ls'], cwd: `/proc/self/fd/${n}` }).catch((e: Error & { exitCode?: number }) => e);
      if (r instanceof Error) {
        expect(r.exitCode).toBe(125);
      } else {
        expect(r.stdout).not.toContain(marker);
        expect(r.stdout.startsWith('/')).toBe(true);
      }
    }
  });

  it('CVE-2019-5736: writing /proc/self/exe and /proc/1/exe cannot change node or the addon', async () => {
    const addon = path.resolve(__dirname, '../../native/build/Release/tsbuild_native.node');
    const before = [sha256(process.execPath), sha256(addon), sha256(INIT_BINARY)];
    const evil = makeBusyboxRootfs(path.join(tmp, 'evil'));
    // An interpreter of /proc/self/exe runs whatever binary exec'd it: host node without an init.
    fs.writeFileSync(path.join(evil, 'bin/evil'), '#!/proc/self/exe\n', { mode: 0o755 });
    const attack =
      'for i in 1 2 3; do for p in /proc/[0-9]*; do ' +
      '(echo pwned >> $p/exe) 2>/dev/null && echo "WROTE $p"; done; sleep 0.05; done; ' +
      '(echo pwned >> /proc/self/exe) 2>/dev/null && echo WROTE-SELF; true';
    for (const init of [true, false]) {
      // The interpreter is the sealed init (which refuses to run without its options), never host node.
      const direct = await run({ rootfs: evil, args: ['/bin/evil'], init, pidsLimit: 64 });
      expect(direct.exit.exitCode).toBe(125);
      expect(direct.stderr).toContain('usage: tsbuild-init');
      const r = await run({ rootfs: evil, args: ['sh', '-c', `(/bin/evil &); ${attack}`], init, pidsLimit: 64 });
      expect(r.stdout).not.toMatch(/WROTE \/proc\/1\b/);
    }
    expect([sha256(process.execPath), sha256(addon), sha256(INIT_BINARY)]).toEqual(before);
  });

  it('100 sequential runs leave no mounts, cgroups or zombies', async () => {
    // Other suites may mount concurrently: count only mounts under this suite's or the runtime's dirs.
    const ours = () => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(tmp) || l.includes('tsbuild-ctr-'));
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) {
      const c = await runContainer({ rootfs, args: ['true'], stdio: 'inherit', cgroups: { parent: CG_PARENT } });
      ids.push(c.id.slice(0, 12));
      expect((await c.wait()).exitCode).toBe(0);
    }
    expect(ours().filter((l) => ids.some((id) => l.includes(id)))).toEqual([]);
    expect(tsbuildCgroups()).toEqual([]);
    expect(childPids()).toEqual([]);
    const stateDirs = fs.readdirSync(os.tmpdir()).filter((d) => ids.some((id) => d.startsWith(`tsbuild-ctr-${id}-`)));
    expect(stateDirs).toEqual([]);
  });
});
