// Confinement through the command line: `tsbuild run` and RUN steps get Docker's seccomp profile,
// --security-opt / --cap-add / --cap-drop / --privileged behave as docker run's, and
// RUN --security=insecure needs --allow security.insecure.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, cliRootWithBusybox, writeTree } from './helpers/roots';
import { buildSeccompProbe, parseProbeOutput } from './helpers/seccomp-probe';

const { top, root } = cliRootWithBusybox('tsbuild-security-');
let ctx: string;

const REFUSED = [
  'unshare-user', 'unshare-mount', 'keyctl', 'add_key', 'userfaultfd', 'io_uring_setup', 'bpf', 'perf_event_open',
  'kexec_load', 'open_by_handle_at', 'mount',
];
const ALLOWED = ['thread', 'fork', 'chown', 'ptrace-child'];

beforeAll(() => {
  // An image with the probe, built by tsbuild itself (its RUN steps are confined as well).
  ctx = path.join(top, 'ctx');
  writeTree(ctx, { Dockerfile: 'FROM busybox\nCOPY probe /probe\n' });
  buildSeccompProbe(path.join(ctx, 'probe'));
  const b = cli(root, ['build', '-q', '-t', 'probe', ctx]);
  expect(b.stderr).toBe('');
  expect(b.status).toBe(0);
});

function runProbe(flags: string[], probes: string[]) {
  const r = cli(root, ['run', '--rm', ...flags, 'probe', '/probe', ...probes]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return parseProbeOutput(r.stdout);
}

describe('tsbuild run', () => {
  it('refuses what Docker refuses with EPERM; clone3 is ENOSYS; ordinary work goes on', () => {
    expect(runProbe([], [...REFUSED, 'clone3', ...ALLOWED])).toEqual({
      ...Object.fromEntries(REFUSED.map((p) => [p, 'EPERM'])),
      clone3: 'ENOSYS',
      ...Object.fromEntries(ALLOWED.map((p) => [p, 'OK'])),
    });
  });

  it('--cap-add SYS_ADMIN lets unshare -m work; seccomp=unconfined lets unshare -U work', () => {
    expect(runProbe(['--cap-add', 'SYS_ADMIN'], ['unshare-mount'])).toEqual({ 'unshare-mount': 'OK' });
    expect(runProbe(['--security-opt', 'seccomp=unconfined'], ['unshare-user'])).toEqual({ 'unshare-user': 'OK' });
    expect(runProbe(['--cap-add', 'SYS_PTRACE'], ['ptrace-child'])).toEqual({ 'ptrace-child': 'OK' });
  });

  it('a custom profile file is honoured; a malformed one fails with 125 before anything starts', () => {
    const profile = path.join(top, 'deny-chown.json');
    fs.writeFileSync(profile, JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['chown', 'fchownat', 'lchown'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }],
    }));
    expect(runProbe(['--security-opt', `seccomp=${profile}`], ['chown', 'keyctl'])).toEqual({ chown: 'EACCES', keyctl: 'OK' });

    const bad = path.join(top, 'bad.json');
    fs.writeFileSync(bad, '{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "op": "SCMP_CMP_ABOUT"}]}]}');
    const before = cli(root, ['ps', '-a']).stdout;
    const r = cli(root, ['run', '--security-opt', `seccomp=${bad}`, 'probe', 'true']);
    expect(r.status).toBe(125);
    expect(r.stderr).toBe(`tsbuild: seccomp profile ${bad}: syscalls[0].args[0].op: unknown operator "SCMP_CMP_ABOUT"\n`);
    expect(cli(root, ['ps', '-a']).stdout).toBe(before);
    const missing = cli(root, ['run', '--security-opt', 'seccomp=/nonexistent.json', 'probe', 'true']);
    expect(missing.status).toBe(125);
    expect(missing.stderr).toBe('tsbuild: seccomp profile /nonexistent.json cannot be read: ENOENT\n');
    const unknown = cli(root, ['run', '--security-opt', 'apparmor=unconfined', 'probe', 'true']);
    expect(unknown.status).toBe(125);
    expect(unknown.stderr).toMatch(/^tsbuild: invalid --security-opt: "apparmor=unconfined" \(supported: .*\)\n$/);
  });

  it('--security-opt no-new-privileges, --cap-drop ALL, --privileged', () => {
    const status = (flags: string[]) => cli(root, ['run', '--rm', ...flags, 'probe', 'grep', '-E', '^(CapEff|NoNewPrivs|Seccomp):', '/proc/self/status']).stdout;
    expect(status(['--security-opt', 'no-new-privileges'])).toBe('CapEff:\t00000000a80425fb\nNoNewPrivs:\t1\nSeccomp:\t2\n');
    expect(status(['--cap-drop', 'ALL'])).toBe('CapEff:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t2\n');
    const own = /^CapBnd:\s*(\w+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1];
    expect(status(['--privileged'])).toBe(`CapEff:\t${own}\nNoNewPrivs:\t0\nSeccomp:\t0\n`);
    const bad = cli(root, ['run', '--rm', '--cap-add', 'NET_FLY', 'probe', 'true']);
    expect(bad.status).toBe(125);
    expect(bad.stderr).toBe('tsbuild: unknown capability: "NET_FLY"\n');
  });

  it('a detached container gets the same options (run -d)', () => {
    const profile = path.join(top, 'deny-chown-d.json');
    fs.writeFileSync(profile, JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: 97, args: [{ index: 0, value: 2, op: 'SCMP_CMP_EQ' }] }],
    }));
    const d = cli(root, ['run', '-d', '--cap-drop', 'ALL', '--security-opt', `seccomp=${profile}`, 'probe', 'sh', '-c', 'grep ^CapEff: /proc/self/status; /probe socket-inet keyctl']);
    expect(d.stderr).toBe('');
    expect(d.status).toBe(0);
    const id = d.stdout.trim();
    expect(cli(root, ['wait', id]).stdout).toBe('0\n');
    expect(cli(root, ['logs', id]).stdout).toBe('CapEff:\t0000000000000000\nsocket-inet=EAFNOSUPPORT\nkeyctl=OK\n');
    expect(cli(root, ['rm', id]).status).toBe(0);
  });
});

describe('tsbuild exec', () => {
  it("runs the new process with the container's capabilities and seccomp filter, as docker exec", () => {
    const started: string[] = [];
    try {
      const confined = cli(root, ['run', '-d', 'probe', 'sleep', '60']).stdout.trim();
      started.push(confined);
      const open = cli(root, ['run', '-d', '--security-opt', 'seccomp=unconfined', '--cap-add', 'SYS_ADMIN', 'probe', 'sleep', '60']).stdout.trim();
      started.push(open);
      const exec = (id: string) => cli(root, ['exec', id, 'sh', '-c', 'grep -E "^(CapEff|Seccomp):" /proc/self/status; /probe unshare-user']).stdout;
      expect(exec(confined)).toBe('CapEff:\t00000000a80425fb\nSeccomp:\t2\nunshare-user=EPERM\n');
      expect(exec(open)).toBe('CapEff:\t00000000a82425fb\nSeccomp:\t0\nunshare-user=OK\n');
    } finally {
      for (const id of started) cli(root, ['rm', '-f', id]);
    }
  });
});

describe('RUN steps', () => {
  function buildAndExport(dockerfile: string, flags: string[] = []) {
    const dir = path.join(top, `b-${Math.random().toString(36).slice(2)}`);
    writeTree(dir, { Dockerfile: dockerfile });
    const out = path.join(dir, 'out');
    const r = cli(root, ['build', '--progress', 'plain', ...flags, '-o', `type=local,dest=${out}`, dir]);
    return { ...r, out };
  }

  it('are confined by the default profile', () => {
    const r = buildAndExport(`FROM probe\nRUN /probe ${[...REFUSED, 'clone3', ...ALLOWED].join(' ')} > /result\n`);
    expect(r.status).toBe(0);
    expect(parseProbeOutput(fs.readFileSync(path.join(r.out, 'result'), 'utf8'))).toEqual({
      ...Object.fromEntries(REFUSED.map((p) => [p, 'EPERM'])),
      clone3: 'ENOSYS',
      ...Object.fromEntries(ALLOWED.map((p) => [p, 'OK'])),
    });
  });

  it('build --security-opt seccomp=unconfined lifts the filter', () => {
    const r = buildAndExport('FROM probe\nRUN /probe unshare-user keyctl > /result\n', ['--security-opt', 'seccomp=unconfined']);
    expect(r.status).toBe(0);
    expect(parseProbeOutput(fs.readFileSync(path.join(r.out, 'result'), 'utf8'))).toEqual({ 'unshare-user': 'OK', keyctl: 'OK' });
  });

  it('RUN --security=insecure needs --allow security.insecure, and then runs privileged', () => {
    const dockerfile = '# syntax=docker/dockerfile:1\nFROM probe\nRUN --security=insecure grep -E "^(CapEff|Seccomp):" /proc/self/status > /result\n';
    const refused = buildAndExport(dockerfile);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toBe("tsbuild: Dockerfile:3: RUN --security=insecure needs the security.insecure entitlement: pass --allow security.insecure\n");
    const allowed = buildAndExport(dockerfile, ['--allow', 'security.insecure']);
    expect(allowed.stderr).not.toMatch(/ERROR/);
    expect(allowed.status).toBe(0);
    const own = /^CapBnd:\s*(\w+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1];
    expect(fs.readFileSync(path.join(allowed.out, 'result'), 'utf8')).toBe(`CapEff:\t${own}\nSeccomp:\t0\n`);
  });
});
