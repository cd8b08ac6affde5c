// Confinement, for real: Docker's default seccomp profile compiled to BPF and loaded by spawn's child,
// the capability options, --privileged. A static probe (test/helpers/seccomp-probe.c) makes each
// syscall by number inside the container and reports the errno.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { readAll } from '@tsbuild/native';
import {
  DOCKER_DEFAULT_PROFILE, capabilitySet, compileFilter, containerSeccomp, parseProfile, resolveProfile, runContainer,
  type RunOptions, type RunningContainer, type SeccompProfile,
} from '../src/runtime';
import { busyboxRootfsPerFile, removeCgroupAfterAll, stoppedAfterEach } from '../../../test/helpers/containers';
import { buildSeccompProbe, installProbe, parseProbeOutput } from '../../../test/helpers/seccomp-probe';

const CG_PARENT = `tsbuild-sc-${process.pid}`;
removeCgroupAfterAll(CG_PARENT);
const { tmp, rootfs } = busyboxRootfsPerFile('seccomp');
let probe: string;
const live = stoppedAfterEach((c: RunningContainer) => {
  c.kill('SIGKILL');
  return c.wait();
});

beforeAll(() => {
  probe = buildSeccompProbe(path.join(tmp, 'probe'));
  installProbe(probe, rootfs);
  installProbe(probe, rootfs, 'suid-probe', 0o4755);
});


async function run(opts: Omit<RunOptions, 'rootfs'> & { rootfs?: string }) {
  const c = await runContainer({ rootfs, cgroups: { parent: CG_PARENT }, ...opts });
  live.push(c);
  const [stdout, stderr, exit] = await Promise.all([readAll(c.stdout ?? null), readAll(c.stderr ?? null), c.wait()]);
  return { stdout, stderr, exitCode: exit.exitCode };
}

async function probeIn(probes: string[], opts: Omit<RunOptions, 'rootfs' | 'args'> = {}) {
  const r = await run({ args: ['/probe', ...probes], ...opts });
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  return parseProbeOutput(r.stdout);
}

const REFUSED = [
  'unshare-user', 'unshare-mount', 'keyctl', 'add_key', 'userfaultfd', 'io_uring_setup', 'bpf', 'perf_event_open',
  'kexec_load', 'open_by_handle_at', 'mount', 'clone-newns', 'clone-newuser', 'socket-alg', 'socket-vsock',
  'personality-norandom', 'x32-getpid', 'unknown-old',
];

describe('the default profile in a container', () => {
  it('refuses namespaces, keyrings, userfaultfd, io_uring, bpf, perf, kexec, handles, mount with EPERM', async () => {
    const got = await probeIn(REFUSED);
    expect(got).toEqual(Object.fromEntries(REFUSED.map((p) => [p, 'EPERM'])));
  });

  it('the same probes without a filter are not EPERM for the seccomp reasons (the probe can tell)', async () => {
    // With seccomp=unconfined the kernel itself answers: unshare(CLONE_NEWUSER) succeeds, keyctl works.
    const got = await probeIn(['keyctl', 'add_key', 'bpf', 'perf_event_open', 'socket-vsock', 'personality-norandom', 'unknown-old', 'unshare-user'], { seccomp: 'unconfined' });
    expect(got).toEqual({
      keyctl: 'OK', add_key: 'OK', bpf: 'EINVAL', perf_event_open: 'EFAULT', 'socket-vsock': 'OK',
      'personality-norandom': 'OK', 'unknown-old': 'ENOSYS', 'unshare-user': 'OK',
    });
  });

  it('clone3 gives ENOSYS, syscalls newer than the profile too; glibc still starts threads and processes', async () => {
    const got = await probeIn(['clone3', 'unknown-new', 'thread', 'fork', 'socket-inet', 'personality-query', 'chown', 'ptrace-child']);
    expect(got).toEqual({
      clone3: 'ENOSYS', 'unknown-new': 'ENOSYS', thread: 'OK', fork: 'OK', 'socket-inet': 'OK',
      'personality-query': 'OK', chown: 'OK', 'ptrace-child': 'OK',
    });
    // busybox forks and pipes through its shell under the filter.
    const sh = await run({ args: ['sh', '-c', 'echo a | cat; (sleep 0; echo b) & wait; grep ^Seccomp: /proc/self/status'] });
    expect(sh.stdout).toBe('a\nb\nSeccomp:\t2\n');
  });

  it('the init (PID 1) runs confined too, as Docker applies the filter to the container init', async () => {
    const r = await run({ args: ['sh', '-c', 'grep ^Seccomp: /proc/1/status; grep ^NoNewPrivs: /proc/1/status'] });
    expect(r.stdout).toBe('Seccomp:\t2\nNoNewPrivs:\t0\n');
  });

  it('a setuid program still gains its owner (no_new_privs stays off), and runs under the filter', async () => {
    const r = await run({ args: ['/suid-probe', 'euid', 'keyctl'], user: '1000' });
    expect(parseProbeOutput(r.stdout)).toEqual({ euid: '0', keyctl: 'EPERM' });
  });

  it('with no-new-privileges the filter is loaded last and setuid no longer elevates', async () => {
    const r = await run({ args: ['/suid-probe', 'euid', 'keyctl', 'thread'], user: '1000', noNewPrivileges: true });
    expect(parseProbeOutput(r.stdout)).toEqual({ euid: '1000', keyctl: 'EPERM', thread: 'OK' });
  });

  it('ptrace of a child works with CAP_SYS_PTRACE added', async () => {
    expect(await probeIn(['ptrace-child'], { capabilities: { add: ['SYS_PTRACE'] } })).toEqual({ 'ptrace-child': 'OK' });
  });
});

describe('a Debian userland under the default profile (this host\'s /usr, /etc and /var, read-only)', () => {
  let debian: string;
  const binds = ['usr', 'etc', 'var'];
  beforeAll(() => {
    debian = path.join(tmp, 'debian');
    fs.mkdirSync(debian, { mode: 0o755 });
    for (const d of [...binds, 'tmp', 'proc', 'dev', 'sys', 'root', 'run']) fs.mkdirSync(path.join(debian, d));
    fs.chmodSync(path.join(debian, 'tmp'), 0o1777);
    for (const l of ['bin', 'lib', 'lib64', 'sbin']) fs.symlinkSync(`usr/${l}`, path.join(debian, l));
    for (const b of binds) execFileSync('mount', ['--bind', '-o', 'ro', `/${b}`, path.join(debian, b)]);
  });
  afterAll(() => {
    for (const b of binds) execFileSync('umount', [path.join(debian, b)]);
  });
  const inDebian = (script: string, opts: Omit<RunOptions, 'rootfs' | 'args'> = {}) =>
    run({ args: ['sh', '-c', script], env: ['PATH=/usr/sbin:/usr/bin'], ...opts, rootfs: debian });

  it('apt-get, dpkg, perl, python threads and subprocesses, chown, su to another user', async () => {
    const r = await inDebian([
      'apt-get check >/dev/null 2>&1 && echo apt-get ok',
      'test "$(dpkg -l | wc -l)" -gt 100 && echo dpkg ok',
      'perl -e "print qq(perl ok\\n)"',
      'python3 -u -c "import subprocess, threading; t = threading.Thread(target=print, args=(\'thread ok\',)); t.start(); t.join(); subprocess.run([\'echo\', \'subprocess ok\'])"',
      'touch /tmp/f && chown nobody:nogroup /tmp/f && stat -c "chown %U" /tmp/f',
      'su -s /bin/sh nobody -c "id -un"',
      'grep ^Seccomp: /proc/self/status',
    ].join('; '));
    expect(r.stdout).toBe('apt-get ok\ndpkg ok\nperl ok\nthread ok\nsubprocess ok\nchown nobody\nnobody\nSeccomp:\t2\n');
  });

  it('a setuid-root program (passwd -S reads /etc/shadow) works for a user, unless no-new-privileges', async () => {
    const host = execFileSync('passwd', ['-S', 'nobody'], { encoding: 'utf8' });
    expect((await inDebian('passwd -S', { user: 'nobody' })).stdout).toBe(host);
    // Without the setuid bit's effect passwd cannot read the shadow file and reports less.
    expect((await inDebian('passwd -S', { user: 'nobody', noNewPrivileges: true })).stdout).not.toBe(host);
  });
});

describe('capability-conditioned rules and opting out', () => {
  it('--cap-add SYS_ADMIN makes unshare -m and mount work (the rules for CAP_SYS_ADMIN)', async () => {
    const got = await probeIn(['unshare-mount', 'clone-newns', 'clone3'], { capabilities: { add: ['SYS_ADMIN'] } });
    expect(got).toEqual({ 'unshare-mount': 'OK', 'clone-newns': 'OK', clone3: 'OK' });
    const r = await run({ args: ['sh', '-c', 'unshare -m true && echo unshared'], capabilities: { add: ['SYS_ADMIN'] } });
    expect(r.stdout).toBe('unshared\n');
    // keyctl is never allowed by the profile, whatever the capabilities.
    expect(await probeIn(['keyctl'], { capabilities: { add: ['SYS_ADMIN'] } })).toEqual({ keyctl: 'EPERM' });
  });

  it("seccomp 'unconfined' makes unshare -U work", async () => {
    const r = await run({ args: ['sh', '-c', 'unshare -U true && echo unshared'], seccomp: 'unconfined' });
    expect(r.stdout).toBe('unshared\n');
    const confined = await run({ args: ['sh', '-c', 'unshare -U true 2>&1; echo $?'] });
    expect(confined.stdout).toMatch(/Operation not permitted\n1\n$/);
  });

  it('a custom profile in Docker format is honoured', async () => {
    const profile = parseProfile(JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        { names: ['chown', 'fchownat', 'lchown'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
        { names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: 97, args: [{ index: 0, value: 2, op: 'SCMP_CMP_EQ' }] },
      ],
    }), 'custom.json');
    const got = await probeIn(['chown', 'socket-inet', 'socket-vsock', 'keyctl', 'clone3'], { seccomp: profile });
    expect(got).toEqual({ chown: 'EACCES', 'socket-inet': 'EAFNOSUPPORT', 'socket-vsock': 'OK', keyctl: 'OK', clone3: 'OK' });
  });

  it('a malformed profile is a clear error before anything is created', async () => {
    const stateDir = path.join(tmp, 'never-created');
    const bad = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_MAYBE' }] } as unknown as SeccompProfile;
    await expect(runContainer({ rootfs, args: ['true'], seccomp: bad, stateDir, cgroups: { parent: CG_PARENT } }))
      .rejects.toThrow('seccomp profile syscalls[0].action: unknown action "SCMP_ACT_MAYBE"');
    expect(fs.existsSync(stateDir)).toBe(false);
    expect(() => parseProfile('{"defaultAction": "SCMP_ACT_ERRNO",', 'p.json')).toThrow(/^seccomp profile p\.json is not valid JSON: /);
    expect(() => parseProfile('{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":7,"value":1,"op":"SCMP_CMP_EQ"}]}]}', 'p.json'))
      .toThrow('seccomp profile p.json: syscalls[0].args[0].index: must be 0-5');
  });
});

// What `docker run` shows in /proc/self/status, recorded from the dockerd peer (docker.io 20.10.24 with
// runc, this machine) with a busybox image: `docker run --rm FLAGS bb grep ^Cap /proc/self/status`.
const DOCKER_STATUS: Record<string, { CapEff: string; CapBnd: string }> = {
  '--cap-drop ALL': { CapEff: '0000000000000000', CapBnd: '0000000000000000' },
  '--cap-add NET_ADMIN': { CapEff: '00000000a80435fb', CapBnd: '00000000a80435fb' },
};
// --privileged: root on this machine lacks CAP_SYS_RESOURCE, so Docker's own --privileged fails here
// (runc: "unable to apply caps: operation not permitted"); `--cap-add ALL --cap-drop SYS_RESOURCE`
// shows its full set minus that one: 0000003ffeffffff, i.e. every capability through AUDIT_READ (37).
// Docker 20.10's list stops there; moby 23 and later take the kernel's (PERFMON, BPF,
// CHECKPOINT_RESTORE too), as tsbuild does. tsbuild grants what it holds itself instead of failing.
const DOCKER_20_ALL_CAPS = 0x3ffeffffffn | (1n << 24n);
const CAPS_AFTER_DOCKER_20 = (1n << 38n) | (1n << 39n) | (1n << 40n);

describe("capabilities match docker run's", () => {
  const caps = (status: string, name: string) => new RegExp(`^${name}:\\s*([0-9a-f]+)$`, 'm').exec(status)![1];

  it.each([
    ['--cap-drop ALL', { drop: ['ALL'] }],
    ['--cap-add NET_ADMIN', { add: ['NET_ADMIN'] }],
  ])('%s', async (flags, capabilities) => {
    const r = await run({ args: ['cat', '/proc/self/status'], capabilities });
    expect({ CapEff: caps(r.stdout, 'CapEff'), CapBnd: caps(r.stdout, 'CapBnd') }).toEqual(DOCKER_STATUS[flags]);
    expect(caps(r.stdout, 'CapInh')).toBe('0000000000000000');
  });

  it('--privileged: every capability held, no filter, no masked paths, writable /sys, host devices', async () => {
    const own = caps(fs.readFileSync('/proc/self/status', 'utf8'), 'CapBnd');
    const lastCap = BigInt(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
    const expected = (DOCKER_20_ALL_CAPS | CAPS_AFTER_DOCKER_20) & ((1n << (lastCap + 1n)) - 1n) & BigInt(`0x${own}`);
    expect(expected.toString(16).padStart(16, '0')).toBe(own);
    const r = await run({
      args: ['sh', '-c', 'grep -E "^(CapEff|CapBnd|Seccomp):" /proc/self/status; grep -c " /proc/keys " /proc/self/mountinfo; grep " /sys " /proc/mounts | cut -d" " -f4 | cut -d, -f1; test -c /dev/loop-control && echo devices'],
      privileged: true,
    });
    expect(r.stdout).toBe(`CapEff:\t${own}\nCapBnd:\t${own}\nSeccomp:\t0\n0\nrw\ndevices\n`);
    const plain = await run({ args: ['sh', '-c', 'grep -c " /proc/keys " /proc/self/mountinfo; test -c /dev/loop-control || echo none'] });
    expect(plain.stdout).toBe('1\nnone\n');
  });

  it('an unknown capability name is an error naming it', () => {
    expect(() => capabilitySet({ add: ['NET_FLY'] })).toThrow('unknown capability: "NET_FLY"');
    expect(capabilitySet({ drop: ['ALL'], add: ['chown', 'CAP_KILL'] })).toEqual(['CHOWN', 'KILL']);
  });
});

// ---- the compiled program, interpreted: the compat ABI cannot be entered on this kernel ----

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const AUDIT_ARCH_AARCH64 = 0xc00000b7;

/** A classic BPF interpreter for seccomp programs (the subset the compiler emits). */
function runFilter(prog: Buffer, arch: number, nr: number, args: bigint[] = []): number {
  const data = Buffer.alloc(64);
  data.writeInt32LE(nr, 0);
  data.writeUInt32LE(arch, 4);
  args.forEach((a, i) => data.writeBigUInt64LE(a, 16 + i * 8));
  let acc = 0;
  for (let pc = 0; pc < prog.length / 8;) {
    const code = prog.readUInt16LE(pc * 8);
    const jt = prog.readUInt8(pc * 8 + 2);
    const jf = prog.readUInt8(pc * 8 + 3);
    const k = prog.readUInt32LE(pc * 8 + 4);
    pc++;
    switch (code) {
      case 0x20: acc = data.readUInt32LE(k); break;
      case 0x54: acc = (acc & k) >>> 0; break;
      case 0x05: pc += k; break;
      case 0x15: pc += acc === k ? jt : jf; break;
      case 0x25: pc += acc > k ? jt : jf; break;
      case 0x35: pc += acc >= k ? jt : jf; break;
      case 0x45: pc += (acc & k) !== 0 ? jt : jf; break;
      case 0x06: return k;
      default: throw new Error(`unexpected BPF opcode ${code.toString(16)}`);
    }
  }
  throw new Error('fell off the end of the program');
}

const ALLOW = 0x7fff0000;
const ERRNO = (e: number) => (0x00050000 | e) >>> 0;

describe('the compiled filter', () => {
  const defaultCaps = capabilitySet(undefined);
  const filter = containerSeccomp('default', defaultCaps)!.filter;

  it('fits the kernel limit with room to spare, for the default and the all-capabilities sets', () => {
    expect(filter.length / 8).toBeLessThan(4096);
    const all = containerSeccomp('default', capabilitySet({ add: ['ALL'] }))!.filter;
    expect(all.length / 8).toBeLessThan(4096);
    expect(all.equals(filter)).toBe(false);
  });

  it('i386 (the compat ABI) is filtered with its own numbers: socket(AF_ALG) refused, getpid allowed', () => {
    expect(runFilter(filter, AUDIT_ARCH_I386, 20)).toBe(ALLOW); // getpid
    expect(runFilter(filter, AUDIT_ARCH_I386, 359, [38n])).toBe(ERRNO(1)); // socket(AF_ALG)
    expect(runFilter(filter, AUDIT_ARCH_I386, 359, [2n])).toBe(ALLOW); // socket(AF_INET)
    expect(runFilter(filter, AUDIT_ARCH_I386, 310, [0x10000000n])).toBe(ERRNO(1)); // unshare
    expect(runFilter(filter, AUDIT_ARCH_I386, 120, [0x11n])).toBe(ALLOW); // clone(SIGCHLD)
    expect(runFilter(filter, AUDIT_ARCH_I386, 120, [0x20000n | 0x11n])).toBe(ERRNO(1)); // clone(CLONE_NEWNS)
    expect(runFilter(filter, AUDIT_ARCH_I386, 435)).toBe(ERRNO(38)); // clone3
    expect(runFilter(filter, AUDIT_ARCH_I386, 999)).toBe(ERRNO(38));
    // 272 on x86-64 is unshare; on i386 it is fadvise64_64, allowed: the tables are per architecture.
    expect(runFilter(filter, AUDIT_ARCH_I386, 272)).toBe(ALLOW);
    expect(runFilter(filter, AUDIT_ARCH_X86_64, 272)).toBe(ERRNO(1));
  });

  it('64-bit arguments are compared whole (as libseccomp does): two 32-bit halves', () => {
    expect(runFilter(filter, AUDIT_ARCH_X86_64, 41, [2n])).toBe(ALLOW); // socket(AF_INET)
    expect(runFilter(filter, AUDIT_ARCH_X86_64, 41, [38n])).toBe(ERRNO(1));
    expect(runFilter(filter, AUDIT_ARCH_X86_64, 41, [40n])).toBe(ERRNO(1));
    expect(runFilter(filter, AUDIT_ARCH_X86_64, 41, [39n])).toBe(ALLOW); // AF_NFC: the one between
    expect(runFilter(filter, AUDIT_ARCH_X86_64, 41, [41n])).toBe(ALLOW);
    expect(runFilter(filter, AUDIT_ARCH_X86_64, 135, [0xffffffffn])).toBe(ALLOW); // personality query
    expect(runFilter(filter, AUDIT_ARCH_X86_64, 135, [0xffffffffffffffffn])).toBe(ERRNO(1));
  });

  it('other architectures are killed, x32 numbers refused', () => {
    expect(runFilter(filter, AUDIT_ARCH_AARCH64, 172)).toBe(0x80000000);
    expect(runFilter(filter, AUDIT_ARCH_X86_64, 0x40000000 | 39)).toBe(ERRNO(1));
  });

  it('on arm64, aarch64 is filtered with the generic numbers and the 32-bit arm ABI is killed', () => {
    const prog = compileFilter(resolveProfile(DOCKER_DEFAULT_PROFILE, { capabilities: defaultCaps, arch: 'arm64', kernel: [6, 1] }));
    expect(runFilter(prog, AUDIT_ARCH_AARCH64, 172)).toBe(ALLOW); // getpid
    expect(runFilter(prog, AUDIT_ARCH_AARCH64, 97, [0x10000000n])).toBe(ERRNO(1)); // unshare
    expect(runFilter(prog, AUDIT_ARCH_AARCH64, 435)).toBe(ERRNO(38)); // clone3
    expect(runFilter(prog, AUDIT_ARCH_AARCH64, 198, [38n])).toBe(ERRNO(1)); // socket(AF_ALG)
    expect(runFilter(prog, AUDIT_ARCH_AARCH64, 220, [0x11n])).toBe(ALLOW); // clone(SIGCHLD)
    expect(runFilter(prog, AUDIT_ARCH_AARCH64, 104)).toBe(ERRNO(1)); // kexec_load
    expect(runFilter(prog, 0x40000028, 20)).toBe(0x80000000); // AUDIT_ARCH_ARM
    expect(runFilter(prog, AUDIT_ARCH_X86_64, 39)).toBe(0x80000000);
  });

  it('every operator, against a reference on both sides of the boundary', () => {
    const values = [0n, 1n, 0xffffffffn, 0x100000000n, 0x100000001n, 0xfffffffffffffffen, 0xffffffffffffffffn];
    const ops = {
      SCMP_CMP_EQ: (a: bigint, b: bigint) => a === b, SCMP_CMP_NE: (a: bigint, b: bigint) => a !== b,
      SCMP_CMP_LT: (a: bigint, b: bigint) => a < b, SCMP_CMP_LE: (a: bigint, b: bigint) => a <= b,
      SCMP_CMP_GT: (a: bigint, b: bigint) => a > b, SCMP_CMP_GE: (a: bigint, b: bigint) => a >= b,
    } as const;
    for (const [op, ref] of Object.entries(ops)) {
      for (const datum of values) {
        const prog = compileFilter(resolveProfile({
          defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ALLOW', args: [{ index: 2, value: datum, op: op as 'SCMP_CMP_EQ' }] }],
        }, { capabilities: [] }));
        for (const arg of values) {
          const want = ref(arg, datum) ? ALLOW : ERRNO(1);
          expect([op, datum, arg, runFilter(prog, AUDIT_ARCH_X86_64, 39, [0n, 0n, arg])]).toEqual([op, datum, arg, want]);
        }
      }
    }
  });

  it("resolves Docker's includes/excludes against capabilities, architecture and kernel version", () => {
    const byName = (caps: string[], kernel: [number, number]) => {
      const r = resolveProfile(DOCKER_DEFAULT_PROFILE, { capabilities: caps, arch: 'amd64', kernel });
      return (name: string) => r.rules.filter((rule) => rule.names.includes(name));
    };
    const plain = byName(defaultCaps, [6, 1]);
    expect(plain('mount')).toEqual([]);
    expect(plain('clone3')).toEqual([{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38, args: [] }]);
    expect(plain('ptrace').map((r) => r.args)).toEqual([[]]); // minKernel 4.8
    expect(byName(defaultCaps, [4, 4])('ptrace')).toEqual([]);
    const admin = byName([...defaultCaps, 'SYS_ADMIN'], [6, 1]);
    expect(admin('mount')).toHaveLength(1);
    expect(admin('clone3').map((r) => r.action)).toEqual(['SCMP_ACT_ALLOW']);
    expect(byName(defaultCaps, [6, 1])('arch_prctl')).toHaveLength(1);
    const arm = resolveProfile(DOCKER_DEFAULT_PROFILE, { capabilities: defaultCaps, arch: 'arm64', kernel: [6, 1] });
    expect(arm.rules.some((r) => r.names.includes('arch_prctl'))).toBe(false);
    expect(arm.architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  });
});
