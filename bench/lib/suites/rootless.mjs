// Suite "rootless": the app workload built by tsbuild as an ordinary user (its rootless mode, a user
// namespace with the user's subordinate ids), against the same build as root and against
// `buildah bud --layers` run rootless by the same user. Cold (a fresh store per run, bench-base
// imported) and fully cached. The user is `tsbuild-ci`, made by .ci/setup (.ci/rootless-user), or
// --rootless-user's value through TSBUILD_BENCH_ROOTLESS_USER.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { measureCase } from '../measure.mjs';
import { removeTree } from '../cleanup.mjs';
import { must, which } from '../exec.mjs';
import { copyContext } from '../fixtures.mjs';

export const ROOTLESS_TOOLS = ['tsbuild', 'buildah'];

function lookupUser(name) {
  const r = spawnSync('getent', ['passwd', name], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const f = r.stdout.trim().split(':');
  const hasRange = (file) => fs.readFileSync(file, 'utf8').split('\n').some((l) => l.startsWith(`${name}:`));
  if (!hasRange('/etc/subuid') || !hasRange('/etc/subgid')) return undefined;
  return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] };
}

export async function rootlessSuite(env) {
  const { tools, opts, log, tmp } = env;
  const name = process.env.TSBUILD_BENCH_ROOTLESS_USER ?? 'tsbuild-ci';
  const user = lookupUser(name);
  const missing = user ? undefined : `no user ${name} with subordinate ids (bash .ci/rootless-user ${name})`;
  // The user must reach its stores and the inputs under the bench's temp dir (mkdtemp makes it 0700).
  fs.chmodSync(tmp, 0o711);
  const area = path.join(tmp, 'rootless');
  fs.mkdirSync(area, { recursive: true, mode: 0o755 });
  const context = await copyContext(env.workloads, 'app', path.join(area, 'app'));
  spawnSync('chmod', ['-R', 'a+rX', area]);
  const baseTar = path.join(area, 'base.tar');
  fs.copyFileSync(path.join(tmp, 'base.tar'), baseTar);
  fs.chmodSync(baseTar, 0o644);

  const asUser = (cmd, args) => ({
    cmd: 'setpriv',
    args: ['--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', 'env', '-i', `PATH=${process.env.PATH}`, `HOME=${user.home}`, cmd, ...args],
    timeoutMs: 15 * 60_000,
  });
  let count = 0;
  const userDir = (label) => {
    const dir = path.join(area, `${label}-${++count}`);
    fs.mkdirSync(dir);
    fs.chownSync(dir, user.uid, user.gid);
    return dir;
  };
  const runAsUser = async (label, cmd, args) => {
    const { cmd: c, args: a } = asUser(cmd, args);
    await must(label, c, a);
  };
  const tsbuildAsUser = (root, ...args) => asUser(opts.tsbuildCli, ['--root', root, ...args]);
  const buildahStore = (dir) => ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run'), '--storage-driver', 'overlay'];

  // Rootless podman leaves a pause process holding its namespace (pid in --tmpdir): stop it with the store.
  const dropBuildah = (dir) => {
    if (!dir) return;
    try {
      process.kill(Number(fs.readFileSync(path.join(dir, 'ptmp', 'pause.pid'), 'utf8').trim()), 'SIGKILL');
    } catch { /* none was left */ }
    removeTree(dir);
  };
  // tsbuild's own keeper of the user's namespace: stopped afterwards if this suite made it.
  const keeperFile = user ? path.join('/tmp', `tsbuild-${user.uid}`, 'userns.pid') : undefined;
  const keeperPid = () => { try { return Number(fs.readFileSync(keeperFile, 'utf8').trim()); } catch { return undefined; } };
  const keeperBefore = keeperFile && keeperPid();
  const state = {};
  const participants = (cold) => {
    const ts = tools.tsbuild;
    const rows = [];
    rows.push(user && !ts?.error
      ? {
          tool: 'tsbuild', tsbuild: true,
          prepare: cold ? async () => {
            if (state.user) removeTree(state.user);
            state.user = userDir('ts');
            const { cmd, args } = tsbuildAsUser(path.join(state.user, 'root'), 'import', baseTar, 'bench-base');
            await must('tsbuild import (rootless)', cmd, args);
          } : undefined,
          command: () => tsbuildAsUser(path.join(state.user, 'root'), 'build', '-t', 'bench-app', context),
        }
      : { tool: 'tsbuild', unavailable: missing ?? ts?.error });
    rows.push(ts && !ts.error
      ? {
          tool: 'tsbuild as root', tsbuild: true,
          prepare: cold ? async () => { ts.drop(state.root); state.root = await ts.newRootWithBase('rootless-ref'); } : undefined,
          command: () => ts.buildCmd(state.root, 'bench-app', context),
        }
      : { tool: 'tsbuild as root', unavailable: 'tsbuild not selected' });
    rows.push(user && which('buildah') && which('podman')
      ? {
          tool: 'buildah rootless',
          prepare: cold ? async () => {
            dropBuildah(state.buildah);
            state.buildah = userDir('b');
            await runAsUser('podman import (rootless)', 'podman', [...buildahStore(state.buildah), '--tmpdir', path.join(state.buildah, 'ptmp'), 'import', baseTar, 'bench-base']);
          } : undefined,
          command: () => asUser('buildah', [...buildahStore(state.buildah), 'bud', '--layers', '--pull=never', '--network', 'none',
            '--ulimit', 'nofile=1024:1024', '-t', 'bench-app', context]),
        }
      : { tool: 'buildah rootless', unavailable: missing ?? 'buildah or podman not installed' });
    return rows;
  };

  const cases = [];
  try {
    const cold = await measureCase({ title: 'app rootless cold (fresh store)', runs: opts.buildRuns, participants: participants(true), dropCaches: opts.dropCaches, log });
    cases.push(cold);
    cases.push(await measureCase({ title: 'app rootless cached (no change)', runs: opts.buildRuns, participants: participants(false), log }));
  } finally {
    dropBuildah(state.buildah);
    const keeper = keeperFile && keeperPid();
    if (keeper && keeper !== keeperBefore) {
      try { process.kill(keeper, 'SIGKILL'); } catch { /* gone */ }
      fs.rmSync(path.dirname(keeperFile), { recursive: true, force: true });
    }
    removeTree(area);
  }
  // The issue sets no goal: each table's ratio column is rootless tsbuild over root tsbuild and over
  // rootless buildah.
  return { cases, goals: [] };
}
