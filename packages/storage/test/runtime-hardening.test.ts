// Hardening found in review: symlinked mount points in an image are refused, and a container running
// as a non-root user still dies with the process that started it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn as spawnProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeBusyboxRootfs } from '../../../fixtures/busybox';
import { createCgroup, removeStaleCgroups, runContainer } from '../src/runtime';
import { removeCgroupAfterAll } from '../../../test/helpers/containers';

const repo = path.resolve(__dirname, '..', '..', '..');
// The killed starter cannot remove its container's cgroup: keep it in a parent of our own, swept after.
const CG_PARENT = `tsbuild-harden-${process.pid}`;
let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-harden-'));
});
removeCgroupAfterAll(CG_PARENT);
afterAll(() => {
  removeStaleCgroups({ parent: CG_PARENT, minAgeMs: 0 });
  fs.rmSync(tmp, { recursive: true, force: true });
});

for (const name of ['proc', 'sys', 'dev']) {
  it(`refuses an image whose /${name} is a symlink`, async () => {
    const rootfs = makeBusyboxRootfs(path.join(tmp, `sym-${name}`));
    fs.rmSync(path.join(rootfs, name), { recursive: true, force: true });
    fs.mkdirSync(path.join(rootfs, 'elsewhere'), { recursive: true });
    fs.symlinkSync('/elsewhere', path.join(rootfs, name));
    await expect(runContainer({ rootfs, args: ['true'], stdio: 'inherit' })).rejects.toThrow(
      new RegExp(`the image's /${name} is a symlink to /elsewhere: refusing to mount ${name} there`),
    );
  });
}

it('a container running as uid 1000 dies with the killed process that started it (PDEATHSIG re-armed)', async () => {
  const rootfs = makeBusyboxRootfs(path.join(tmp, 'pdeath'));
  const pidFile = path.join(tmp, 'pid');
  // A separate Node process starts the container and is then SIGKILLed. Its state dir goes in this
  // test's tmp: the killed process cannot remove it, and one in $TMPDIR would outlive the suite.
  const id = 'd'.repeat(64);
  const stateDir = path.join(tmp, 'pdeath-state');
  const script = `
    const { runContainer } = require(${JSON.stringify(path.join(repo, 'packages/storage/dist/runtime'))});
    runContainer({ id: '${id}', stateDir: ${JSON.stringify(stateDir)}, rootfs: ${JSON.stringify(rootfs)}, args: ['sleep', '60'], user: '1000', stdio: 'inherit', init: false, cgroups: { parent: ${JSON.stringify(CG_PARENT)} } })
      .then((c) => { require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(c.pid)); });
    setInterval(() => {}, 1000);
  `;
  const child = spawnProcess(process.execPath, ['-e', script], { stdio: 'ignore' });
  // The file exists from writeFileSync's open on, before its bytes: wait for the pid itself.
  const pidText = () => (fs.existsSync(pidFile) ? fs.readFileSync(pidFile, 'utf8') : '');
  for (let i = 0; i < 200 && !/^[1-9]\d*$/.test(pidText()); i++) await new Promise((r) => setTimeout(r, 25));
  const pid = Number(pidText());
  expect(pid).toBeGreaterThan(0);
  expect(fs.readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^Uid:\s+1000\b/m);
  child.kill('SIGKILL');
  await new Promise((r) => child.on('close', r));
  let alive = true;
  for (let i = 0; i < 200 && alive; i++) {
    alive = fs.existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (alive) await new Promise((r) => setTimeout(r, 25));
  }
  expect(alive).toBe(false);
  expect(fs.readdirSync(os.tmpdir()).filter((d) => d.startsWith(`tsbuild-ctr-${id.slice(0, 12)}-`))).toEqual([]);
});

it('removing a v1 group freezes, kills and thaws every task left in it (no pid-reuse window)', async () => {
  const parent = `${CG_PARENT}-kill`;
  const cg = createCgroup('b'.repeat(64), {}, { parent });
  // Host processes (not in a pid namespace of their own) stand in for a container's stragglers.
  const children = [0, 1, 2].map(() => spawnProcess('sleep', ['60'], { stdio: 'ignore' }));
  try {
    for (const child of children) for (const dir of cg.dirs) fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(child.pid));
    const freezer = cg.dirs.find((d) => d.includes('/freezer/'))!;
    expect(fs.readFileSync(path.join(freezer, 'cgroup.procs'), 'utf8').trim().split('\n')).toHaveLength(3);
    const closed = children.map((c) => new Promise((r) => c.on('close', (_code, signal) => r(signal))));
    await cg.remove();
    expect(await Promise.all(closed)).toEqual(['SIGKILL', 'SIGKILL', 'SIGKILL']);
    for (const dir of cg.dirs) expect(fs.existsSync(dir)).toBe(false);
  } finally {
    for (const c of children) c.kill('SIGKILL');
    for (const controller of fs.readdirSync('/sys/fs/cgroup')) {
      try {
        fs.rmdirSync(path.join('/sys/fs/cgroup', controller, parent));
      } catch {
        // not created in this controller
      }
    }
  }
});
