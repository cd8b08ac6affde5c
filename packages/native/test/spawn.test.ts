// spawn(): real clone3 into namespaces, as root. Every mount happens inside the child's own mount
// namespace (made a slave first), so nothing reaches the host's mount table.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  INIT_BINARY, dockerCapabilities, exitCodeOf, normalizeSpawnSpec, readAll, setCloexec, spawn, spawnWithPipes,
} from '../src/spawn';
import { openPty, pipe } from '../src/fsops';
import type { ContainerProcess, SetupStep, SpawnSpec } from '../src/types';
import { busyboxRootfsPerFile, closedAfterEach, stoppedAfterEach, waitFor } from '../../../test/helpers/containers';

const ENV = ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'];
const NS: NonNullable<SpawnSpec['namespaces']> = ['pid', 'mount', 'uts', 'ipc', 'net'];

const { tmp, rootfs } = busyboxRootfsPerFile('spawn');
const running = stoppedAfterEach((p: ContainerProcess) => {
  p.kill('SIGKILL');
  return p.exited;
});
const openFds = closedAfterEach();

/** Docker-like root setup: private propagation, pivot into the busybox rootfs, a fresh /proc. */
function container(extra: SetupStep[] = [], hostname = 'spawned'): SetupStep[] {
  return [
    { op: 'mount', target: '/', flags: ['rec', 'slave'] },
    { op: 'mount', source: rootfs, target: rootfs, flags: ['bind', 'rec'] },
    { op: 'pivotRoot', root: rootfs },
    { op: 'mount', source: 'proc', target: '/proc', type: 'proc', flags: ['nosuid', 'nodev', 'noexec'] },
    { op: 'sethostname', name: hostname },
    ...extra,
  ];
}

type RunSpec = Omit<SpawnSpec, 'stdio' | 'env'> & { env?: string[] };

async function run(spec: RunSpec) {
  const p = await spawnWithPipes({ env: ENV, namespaces: NS, steps: container(), ...spec });
  running.push(p);
  const [stdout, stderr, status] = await Promise.all([readAll(p.stdout), readAll(p.stderr), p.exited]);
  return { stdout, stderr, status, pid: p.pid };
}

async function start(spec: RunSpec): Promise<ContainerProcess> {
  const p = await spawnWithPipes({ env: ENV, namespaces: NS, steps: container(), ...spec, stdio: ['ignore', 'ignore', 'ignore'] });
  running.push(p);
  return p;
}

/** Children of this process, from every thread's children list. */
function childPids(): number[] {
  const pids: number[] = [];
  for (const tid of fs.readdirSync('/proc/self/task')) {
    const text = fs.readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim();
    if (text) pids.push(...text.split(/\s+/).map(Number));
  }
  return pids;
}

function nsInode(pid: number, type: string): string {
  return fs.readlinkSync(`/proc/${pid}/ns/${type}`);
}

/** Host pids whose pid namespace is `ns` (e.g. 'pid:[4026532301]'). */
function processesInNamespace(ns: string): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readlinkSync(`/proc/${entry}/ns/pid`) === ns) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

describe.each(['vfork', 'fork'] as const)('spawn (%s clone)', (cloneMode) => {
  it('runs as PID 1 with its own hostname and only a loopback interface', async () => {
    const r = await run({
      cloneMode,
      args: ['sh', '-c', 'echo $$; hostname; ls /sys/class/net 2>/dev/null || cat /proc/net/dev'],
      steps: container([], 'box-' + cloneMode),
    });
    expect(r.status).toEqual({ exitCode: 0, signal: null });
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('1');
    expect(lines[1]).toBe('box-' + cloneMode);
    expect(lines[1]).not.toBe(os.hostname());
    const interfaces = lines.slice(2).filter((l) => l.includes(':')).map((l) => l.split(':')[0]!.trim());
    expect(interfaces.filter((i) => i !== 'Inter-|   Receive' && i !== 'face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed')).toEqual(['lo']);
  });

  it('brings lo up with a loopbackUp step; without it lo stays down', async () => {
    const show = ['sh', '-c', 'ip link show lo | head -1 | cut -d" " -f3'];
    const up = await run({ cloneMode, args: show, steps: [{ op: 'loopbackUp' }, ...container()] });
    expect(up.status).toEqual({ exitCode: 0, signal: null });
    expect(up.stdout).toBe('<LOOPBACK,UP,LOWER_UP>\n');
    const down = await run({ cloneMode, args: show });
    expect(down.stdout).toBe('<LOOPBACK>\n');
  });

  it('passes empty-string arguments through to execve', async () => {
    const r = await run({ cloneMode, args: ['sh', '-c', 'echo "$#:[$1][$2]"', 'sh', '', 'x'] });
    expect(r.status).toEqual({ exitCode: 0, signal: null });
    expect(r.stdout).toBe('2:[][x]\n');
  });

  it('reports the exit code', async () => {
    const r = await run({ cloneMode, args: ['sh', '-c', 'exit 7'] });
    expect(r.status).toEqual({ exitCode: 7, signal: null });
    expect(exitCodeOf(r.status)).toBe(7);
  });
});

describe('spawn', () => {
  it('reports a signal death: kill -9 $$ and kill("SIGKILL")', async () => {
    // Without a PID namespace (a PID 1 ignores SIGKILL sent from inside its namespace).
    const self = await run({
      args: ['sh', '-c', 'kill -9 $$'],
      namespaces: ['mount'],
      steps: [{ op: 'mount', target: '/', flags: ['rec', 'slave'] }, { op: 'chroot', root: rootfs }],
    });
    expect(self.status).toEqual({ exitCode: null, signal: 'SIGKILL' });

    const p = await start({ args: ['sleep', '30'] });
    p.kill('SIGKILL');
    const status = await p.exited;
    expect(status).toEqual({ exitCode: null, signal: 'SIGKILL' });
    expect(exitCodeOf(status)).toBe(137);
    expect(() => p.kill('SIGKILL')).not.toThrow(); // a no-op once reaped
    expect(fs.existsSync(`/proc/${p.pid}`)).toBe(false);
  });

  it('rejects a missing executable with ENOENT, exit code 127, and reaps the child', async () => {
    const err = await run({ args: ['/bin/nope'] }).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain('execve "/bin/nope": ENOENT');
    expect(err).toMatchObject({ code: 'ENOENT', syscall: 'execve', path: '/bin/nope', exitCode: 127 });

    const viaPath = await run({ args: ['nope'] }).catch((e) => e);
    expect(viaPath).toMatchObject({ code: 'ENOENT', exitCode: 127, path: 'nope' });
    expect(viaPath.message).toContain("not found in the container's PATH");
    expect(childPids()).toEqual([]);
  });

  it('rejects a non-executable file with EACCES and exit code 126', async () => {
    const err = await run({ args: ['/bin/notexec'] }).catch((e) => e);
    expect(err).toMatchObject({ code: 'EACCES', syscall: 'execve', path: '/bin/notexec', exitCode: 126 });
    const viaPath = await run({ args: ['notexec'] }).catch((e) => e);
    expect(viaPath).toMatchObject({ code: 'EACCES', exitCode: 126 });
  });

  it('rejects a failing setup step with its index, op and exit code 125; optional steps skip ENOENT', async () => {
    const steps = container([{ op: 'mount', source: 'tmpfs', target: '/no/such/dir', type: 'tmpfs' }]);
    const err = await run({ args: ['true'], steps }).catch((e) => e);
    expect(err).toMatchObject({ code: 'ENOENT', syscall: 'mount', step: 5, stepName: 'mount', exitCode: 125 });
    expect(err.message).toContain('setup step 5 (mount tmpfs "tmpfs" on "/no/such/dir")');

    const optional = container([{ op: 'mount', source: 'tmpfs', target: '/no/such/dir', type: 'tmpfs', optional: true }]);
    const r = await run({ args: ['true'], steps: optional });
    expect(r.status.exitCode).toBe(0);
  });

  it('validates the spec before cloning', async () => {
    await expect(spawn({ args: [], env: [], stdio: [0, 1, 2] })).rejects.toThrow(/args must be a non-empty array/);
    await expect(spawn({ args: ['true'], env: [], stdio: [0, 1, 2], namespaces: ['pid', 'pid'] })).rejects.toThrow(/listed twice/);
    await expect(spawn({ args: ['true'], env: [], stdio: [0, 1, 2], namespaces: ['user'] })).rejects.toThrow(/user namespaces/);
    await expect(
      spawn({ args: ['true'], env: [], stdio: [0, 1, 2], steps: [{ op: 'mount', target: '/', flags: ['bogus' as 'ro'] }] }),
    ).rejects.toThrow(/steps\[0\]\.flags/);
    await expect(spawn({ args: ['true'], env: ['NOEQUALS'], stdio: [0, 1, 2] })).rejects.toThrow(/NAME=value/);
  });

  it('runs 200 concurrent processes off the JS thread and leaves no zombie', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      const procs = await Promise.all(
        Array.from({ length: 200 }, () =>
          spawn({
            args: ['/bin/true'], env: ENV, namespaces: ['pid', 'mount'], stdio: [0, 1, 2],
            steps: [{ op: 'mount', target: '/', flags: ['rec', 'slave'] }, { op: 'chroot', root: rootfs }],
          }),
        ),
      );
      const statuses = await Promise.all(procs.map((p) => p.exited));
      expect(statuses.every((s) => s.exitCode === 0)).toBe(true);
      expect(procs.filter((p) => fs.existsSync(`/proc/${p.pid}`))).toEqual([]);
      expect(childPids()).toEqual([]);
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(0);
  });

  it('resets SIGPIPE (Node ignores it): yes | head -1 finishes, nothing ignored or blocked', async () => {
    const r = await run({ args: ['sh', '-c', 'yes | head -1'] });
    expect(r.stdout).toBe('y\n');
    expect(r.status.exitCode).toBe(0);
    const dispositions = await run({ args: ['grep', '-E', '^Sig(Ign|Blk)', '/proc/self/status'] });
    expect(dispositions.stdout).toBe('SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n');
  });

  it('hands the child only fds 0, 1 and 2, even with 50 inherited non-CLOEXEC fds open', async () => {
    for (let i = 0; i < 50; i++) {
      const fd = fs.openSync(tmp, 'r');
      setCloexec(fd, false);
      openFds.push(fd);
    }
    const [r, w] = pipe();
    setCloexec(r, false);
    setCloexec(w, false);
    openFds.push(r, w);
    for (const initBinary of [undefined, INIT_BINARY]) {
      const p = await start({ args: ['sleep', '30'], ...(initBinary && { initBinary }) });
      await waitFor(() => fs.readlinkSync(`/proc/${p.pid}/exe`).includes(initBinary ? 'memfd' : 'busybox'));
      expect(fs.readdirSync(`/proc/${p.pid}/fd`).sort()).toEqual(['0', '1', '2']);
      p.kill('SIGKILL');
      await p.exited;
    }
    // From inside: the fd list of `ls` itself is 0-2 plus the directory it is reading.
    const inside = await run({ args: ['ls', '/proc/self/fd'] });
    expect(inside.stdout.split(/\s+/).filter(Boolean).map(Number).sort()).toEqual([0, 1, 2, 3]);
  });

  it('never starts in a cwd outside the root (CVE-2024-21626): /proc/self/fd/N for N in 3..64', async () => {
    for (let i = 0; i < 8; i++) {
      const fd = fs.openSync(tmp, 'r');
      setCloexec(fd, false);
      openFds.push(fd);
    }
    for (let n = 3; n <= 64; n++) {
      const result = await run({ args: ['pwd'], cwd: `/proc/self/fd/${n}`, namespaces: ['mount', 'pid'] }).catch((e) => e);
      if (result instanceof Error) {
        expect((result as Error & { exitCode: number }).exitCode).toBe(125);
      } else {
        expect(result.stdout.startsWith('/')).toBe(true);
        expect(fs.existsSync(path.join(rootfs, result.stdout.trim()))).toBe(true);
      }
    }
  });

  it("applies Docker's capability sets: CapInh 0, CapEff = the 14-cap mask", async () => {
    const r = await run({ args: ['grep', '^Cap', '/proc/self/status'], capabilities: dockerCapabilities() });
    const caps = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(/:\s+/)));
    expect(caps).toEqual({
      CapInh: '0000000000000000', CapPrm: '00000000a80425fb', CapEff: '00000000a80425fb',
      CapBnd: '00000000a80425fb', CapAmb: '0000000000000000',
    });
  });

  it('switches uid, gid and groups', async () => {
    const r = await run({
      args: ['sh', '-c', 'id -u; id -g; id -G; grep ^Cap[EP] /proc/self/status'],
      uid: 1000, gid: 1000, additionalGids: [1000, 65534], capabilities: dockerCapabilities(),
    });
    expect(r.stdout.split('\n').slice(0, 3)).toEqual(['1000', '1000', '1000 65534']);
    expect(r.stdout).toContain('CapEff:\t0000000000000000');
  });

  it('applies rlimits, clamping a hard limit above the host to the host (or failing by name)', async () => {
    const r = await run({ args: ['sh', '-c', 'ulimit -n; ulimit -Hn'], rlimits: [{ type: 'nofile', soft: 1024, hard: 1024 }] });
    expect(r.stdout).toBe('1024\n1024\n');

    const hostHard = Number(/^Max open files\s+\S+\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'))![1]);
    const ask = hostHard + 10000;
    const clamped = await run({ args: ['sh', '-c', 'ulimit -n; ulimit -Hn'], rlimits: [{ type: 'nofile', soft: ask, hard: ask }] });
    expect(clamped.stdout).toBe(`${hostHard}\n${hostHard}\n`);

    const strict = await run({
      args: ['true'], rlimits: [{ type: 'nofile', soft: 1024, hard: ask }], clampRlimits: false,
    }).catch((e) => e);
    expect(strict).toBeInstanceOf(Error);
    expect(strict.message).toMatch(/rlimit nofile.*CAP_SYS_RESOURCE/);
  });

  it('runs the sealed init as PID 1: reaps orphans, forwards SIGTERM, /proc/1/exe is a memfd', async () => {
    const check = await run({
      initBinary: INIT_BINARY,
      args: ['sh', '-c', 'readlink /proc/1/exe; echo x > /proc/1/exe && echo WROTE; (sleep 0.1 &); sleep 0.6; ps -o pid,stat,comm'],
    });
    expect(check.status).toEqual({ exitCode: 0, signal: null });
    const lines = check.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^\/memfd:tsbuild-init/);
    expect(check.stdout).not.toContain('WROTE');
    const table = lines.slice(2).map((l) => l.trim().split(/\s+/));
    expect(table.filter((row) => row[1]?.startsWith('Z'))).toEqual([]);
    expect(table.find((row) => row[0] === '1')?.[2]).toMatch(/tsbuild-i/);

    const bg = await start({ initBinary: INIT_BINARY, args: ['sh', '-c', 'sleep 0.2 & exec sleep 0.5'] });
    const ns = nsInode(bg.pid, 'pid');
    expect(await bg.exited).toEqual({ exitCode: 0, signal: null });
    expect(processesInNamespace(ns)).toEqual([]);

    const term = await start({ initBinary: INIT_BINARY, args: ['sleep', '30'] });
    await waitFor(() => fs.readFileSync(`/proc/${term.pid}/task/${term.pid}/children`, 'utf8').trim() !== '');
    term.kill('SIGTERM');
    expect(await term.exited).toEqual({ exitCode: 143, signal: null });
    expect(childPids()).toEqual([]);
  });

  it('with initExecOnly, execs the command in place as PID 1 through the sealed init', async () => {
    // /proc/self/exe while the command is exec'd is what a `#!/proc/self/exe` script would run.
    fs.writeFileSync(path.join(rootfs, 'bin/whoexe'), '#!/proc/self/exe\n', { mode: 0o755 });
    try {
      const r = await run({ initBinary: INIT_BINARY, initExecOnly: true, args: ['sh', '-c', 'echo $$; readlink /proc/1/exe'] });
      expect(r.stdout).toBe('1\n/bin/busybox\n');
      // The script's interpreter is the init (usage error 125), never host node.
      const viaScript = await run({ initBinary: INIT_BINARY, initExecOnly: true, args: ['/bin/whoexe'] });
      expect(viaScript.status.exitCode).toBe(125);
      expect(viaScript.stderr).toContain('usage: tsbuild-init');
    } finally {
      fs.rmSync(path.join(rootfs, 'bin/whoexe'));
    }
  });

  it('reports a missing command with an init as 127 too', async () => {
    const err = await run({ initBinary: INIT_BINARY, args: ['nope'] }).catch((e) => e);
    expect(err).toMatchObject({ code: 'ENOENT', exitCode: 127 });
  });

  it('masks paths, makes paths read-only and attaches host trees read-only after the pivot', async () => {
    const shared = fs.mkdtempSync(path.join(tmp, 'shared-'));
    fs.writeFileSync(path.join(shared, 'hello'), 'hi\n');
    fs.mkdirSync(path.join(rootfs, 'mnt'), { recursive: true });
    const steps: SetupStep[] = [
      { op: 'mount', target: '/', flags: ['rec', 'slave'] },
      { op: 'mount', source: rootfs, target: rootfs, flags: ['bind', 'rec'] },
      { op: 'openTree', source: shared, slot: 0 },
      { op: 'pivotRoot', root: rootfs },
      { op: 'mount', source: 'proc', target: '/proc', type: 'proc', flags: ['nosuid', 'nodev', 'noexec'] },
      { op: 'mount', source: 'tmpfs', target: '/dev', type: 'tmpfs', data: 'mode=755,size=64k', flags: ['nosuid'] },
      { op: 'mknod', path: '/dev/null', type: 'char', mode: 0o666, major: 1, minor: 3 },
      { op: 'maskPath', path: '/proc/timer_list' },
      { op: 'maskPath', path: '/proc/acpi' },
      { op: 'maskPath', path: '/proc/does-not-exist' },
      { op: 'readonlyPath', path: '/proc/sys' },
      { op: 'mkdir', path: '/mnt/a/b', parents: true },
      { op: 'attachTree', slot: 0, target: '/mnt/a/b', flags: ['ro', 'nosuid'] },
      { op: 'writeFile', path: '/tmp/note', data: 'written by setup\n' },
      { op: 'symlink', target: '/tmp/note', path: '/tmp/link' },
      { op: 'chdir', path: '/mnt/a' },
      { op: 'umask', mask: 0o077 },
    ];
    const script = [
      'wc -c < /proc/timer_list', 'ls /proc/acpi | wc -l', 'echo 1 > /proc/sys/kernel/ns_last_pid || echo EROFS',
      'cat b/hello', 'touch b/x || echo ROFS', 'cat /tmp/link', 'pwd', 'umask',
    ].join('; ');
    const r = await run({ args: ['sh', '-c', script], steps });
    expect(r.stdout.split('\n').map((l) => l.trim())).toEqual(['0', '0', 'EROFS', 'hi', 'ROFS', 'written by setup', '/mnt/a', '0077', '']);
    expect(fs.readdirSync(shared)).toEqual(['hello']);
    fs.rmSync(path.join(rootfs, 'tmp/note'));
  });

  it('gives a terminal: setsid and a controlling tty on stdin', async () => {
    const pty = openPty();
    openFds.push(pty.master, pty.slave);
    const p = await spawnWithPipes({
      args: ['sh', '-c', 'tty'], env: ENV, namespaces: ['pid', 'mount'],
      steps: [{ op: 'mount', target: '/', flags: ['rec', 'slave'] }],
      stdio: [pty.slave, 'pipe', 'pipe'], terminal: true,
    });
    running.push(p);
    const [out, , status] = await Promise.all([readAll(p.stdout), readAll(p.stderr), p.exited]);
    expect(status.exitCode).toBe(0);
    expect(out.split('\n')[0]).toBe(pty.slavePath);
  });

  it("allocates a console pty from the container's own devpts", async () => {
    const steps = container([
      { op: 'mount', source: 'tmpfs', target: '/dev', type: 'tmpfs', data: 'mode=755', flags: ['nosuid'] },
      { op: 'mkdir', path: '/dev/pts' },
      { op: 'mount', source: 'devpts', target: '/dev/pts', type: 'devpts', data: 'newinstance,ptmxmode=0666,mode=0620' },
      { op: 'consolePty' },
    ]);
    const p = await spawn({ args: ['sh', '-c', 'tty; ls /dev/pts'], env: ENV, namespaces: NS, steps, stdio: [0, 1, 2], terminal: true });
    running.push(p);
    expect(p.terminalFd).toBeGreaterThan(2);
    openFds.push(p.terminalFd!);
    const output = new (await import('node:tty')).ReadStream(p.terminalFd!);
    let text = '';
    output.on('data', (d: Buffer) => (text += d.toString()));
    const closed = new Promise<void>((resolve) => {
      output.on('error', () => resolve()); // EIO: the last slave is gone
      output.on('close', () => resolve());
    });
    expect((await p.exited).exitCode).toBe(0);
    await closed;
    openFds.pop(); // closed by the stream
    expect(text.replace(/\r/g, '').split(/\s+/).filter(Boolean)).toEqual(['/dev/pts/0', '0', 'ptmx']);
  });

  it('joins cgroups: v1 cgroup.procs and v2 CLONE_INTO_CGROUP', async () => {
    const name = `tsbuild-spawn-test-${process.pid}`;
    const v1 = `/sys/fs/cgroup/pids/${name}`;
    const v2 = `/sys/fs/cgroup/unified/${name}`;
    fs.mkdirSync(v1);
    try {
      const r = await run({ args: ['cat', '/proc/self/cgroup'], cgroupProcs: [`${v1}/cgroup.procs`], ...(fs.existsSync('/sys/fs/cgroup/unified') && (fs.mkdirSync(v2), { cgroupDir: v2 })) });
      expect(r.stdout).toMatch(new RegExp(`^\\d+:pids:/${name}$`, 'm'));
      if (fs.existsSync(v2)) expect(r.stdout).toMatch(new RegExp(`^0::/${name}$`, 'm'));
    } finally {
      fs.rmdirSync(v1);
      if (fs.existsSync(v2)) fs.rmdirSync(v2);
    }
  });

  it('joins existing namespaces, pid included', async () => {
    const holder = await start({ args: ['sleep', '30'], steps: container([], 'holder') });
    await waitFor(() => fs.readlinkSync(`/proc/${holder.pid}/exe`).includes('busybox'));
    const r = await run({
      args: ['/bin/busybox', 'sh', '-c', 'hostname; echo $$'],
      namespaces: [], steps: [],
      joinNamespaces: [
        { type: 'uts', path: `/proc/${holder.pid}/ns/uts` },
        { type: 'pid', path: `/proc/${holder.pid}/ns/pid` },
      ],
    });
    const [hostname, pid] = r.stdout.trim().split('\n');
    expect(hostname).toBe('holder');
    expect(Number(pid)).toBeGreaterThan(1);
    expect(Number(pid)).toBeLessThan(100);
  });

  it('sets no_new_privs when asked', async () => {
    const on = await run({ args: ['grep', 'NoNewPrivs', '/proc/self/status'], noNewPrivileges: true });
    expect(on.stdout).toMatch(/NoNewPrivs:\s+1/);
    const off = await run({ args: ['grep', 'NoNewPrivs', '/proc/self/status'] });
    expect(off.stdout).toMatch(/NoNewPrivs:\s+0/);
  });

  it('loads a seccomp filter given as BPF bytes, and reports a filter the kernel refuses', async () => {
    // A hand-assembled program: uname (63 on x86-64, 160 on aarch64) returns EACCES, the rest is allowed.
    const uname = process.arch === 'arm64' ? 160 : 63;
    const insn = (code: number, jt: number, jf: number, k: number) => {
      const b = Buffer.alloc(8);
      b.writeUInt16LE(code, 0); b.writeUInt8(jt, 2); b.writeUInt8(jf, 3); b.writeUInt32LE(k >>> 0, 4);
      return b;
    };
    const filter = Buffer.concat([
      insn(0x20, 0, 0, 0), // ld nr
      insn(0x15, 0, 1, uname), // jeq uname
      insn(0x06, 0, 0, 0x00050000 | 13), // ret ERRNO(EACCES)
      insn(0x06, 0, 0, 0x7fff0000), // ret ALLOW
    ]);
    // busybox's uname prints an empty name when uname(2) fails; without the filter it prints Linux.
    const r = await run({ args: ['sh', '-c', 'uname -s; grep ^Seccomp: /proc/self/status'], seccomp: { filter } });
    expect(r.stdout).toBe('\nSeccomp:\t2\n');
    expect((await run({ args: ['uname', '-s'] })).stdout).toBe('Linux\n');
    // ld from an offset past seccomp_data: the kernel's checker refuses the program.
    await expect(run({ args: ['true'], seccomp: { filter: Buffer.concat([insn(0x20, 0, 0, 4096), insn(0x06, 0, 0, 0x7fff0000)]) } }))
      .rejects.toMatchObject({ message: 'installing the seccomp filter: EINVAL (Invalid argument)', syscall: 'seccomp', exitCode: 125 });
    expect(() => normalizeSpawnSpec({ args: ['true'], env: [], stdio: [0, 1, 2], seccomp: { filter: Buffer.alloc(12) } }))
      .toThrow(/seccomp\.filter/);
  });

  it('chooses vfork only with a fresh PID namespace', () => {
    const base = { args: ['true'], env: [], stdio: [0, 1, 2] as [number, number, number] };
    expect(normalizeSpawnSpec({ ...base, namespaces: ['pid'] }).vfork).toBe(true);
    expect(normalizeSpawnSpec({ ...base, namespaces: ['mount'] }).vfork).toBe(false);
    expect(normalizeSpawnSpec({ ...base, cloneMode: 'vfork' }).vfork).toBe(true);
  });
});
