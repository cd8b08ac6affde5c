// Suite "build": app, bigcopy, layers100, smallfiles and steps30 built cold (a fresh store per run: a new
// tsbuild root, a new buildah store, docker pruned back to bench-base), then fully cached, and for app a
// rebuild after src/m5.js changes. The context is the same directory for every tool. The COPY-heavy cold
// cases (bigcopy, smallfiles) also time a floor: `cp -a` of the copied tree, then `tar | sha256sum` of
// the copy, the least any builder can do to copy the files and digest a layer of them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { measureCase } from '../measure.mjs';
import { removeTree } from '../cleanup.mjs';
import { copyContext, WORKLOADS } from '../fixtures.mjs';
import { ratioOf } from '../report.mjs';
import { startFloorParticipants } from '../start-floor.mjs';

export const BUILD_TOOLS = ['tsbuild', 'docker', 'buildah'];

// The goals, as the largest acceptable ratio tsbuild/peer of the medians.
const GOALS = [
  ['app cold', 'docker', 0.4], ['app cached', 'docker', 1.0], ['app rebuild', 'docker', 0.4],
  ['bigcopy cold', 'docker', 0.5], ['bigcopy cold', 'floor', 1.5], ['layers100 cold', 'docker', 0.15],
  ['smallfiles cold', 'docker', 0.25], ['smallfiles cold', 'floor', 2], ['steps30 cached', 'docker', 1.0],
];
// The directory each COPY-heavy workload copies, for the floor row.
const FLOOR_SOURCE = { bigcopy: 'data', smallfiles: 'node_modules' };

export async function buildSuite(env) {
  const { opts } = env;
  const cases = [];
  for (const workload of opts.buildWorkloads) {
    if (!WORKLOADS.includes(workload)) throw new Error(`unknown workload "${workload}": use ${WORKLOADS.join(', ')}`);
    cases.push(...(await buildWorkload(env, workload)));
  }
  const goals = [];
  for (const c of cases) {
    const key = c.title.replace(/ \(.*$/, '');
    for (const [name, peer, goal] of GOALS) {
      if (name === key && c.rows.some((r) => r.tool === peer)) goals.push({ case: key, peer, goal, ...ratioOf(c.rows, peer) });
    }
  }
  return { cases, goals };
}

async function buildWorkload(env, workload) {
  const { tools, opts, log, tmp } = env;
  const context = workload === 'app'
    ? await copyContext(env.workloads, 'app', path.join(tmp, 'contexts', 'app'))
    : path.join(env.workloads, workload);
  const tag = `bench-${workload}`;
  const coldRuns = workload === 'bigcopy' ? opts.bigcopyRuns : opts.buildRuns;
  const state = {}; // the store each tool's last cold build left behind, for the warm cases
  const names = BUILD_TOOLS.filter((t) => tools[t]);

  const coldParticipant = (t) => {
    const tool = tools[t];
    const base = { tool: t, unavailable: tool.unavailable, error: tool.error };
    if (base.unavailable || base.error) return base;
    if (t === 'tsbuild') {
      return { ...base, tsbuild: true,
        prepare: async () => { tool.drop(state.tsbuild); state.tsbuild = undefined; state.tsbuild = await tool.newRootWithBase(`build-${workload}`); },
        command: () => tool.buildCmd(state.tsbuild, tag, context) };
    }
    if (t === 'buildah') {
      return { ...base,
        prepare: async () => { tool.drop(state.buildah); state.buildah = undefined; state.buildah = await tool.newStore(); },
        command: () => tool.buildCmd(state.buildah, tag, context) };
    }
    return { ...base, prepare: () => tool.resetImages(), command: () => tool.buildCmd(tag, context) };
  };

  // A warm case reuses the store of the cold build; a tool whose cold build failed has nothing to reuse.
  const warmParticipant = (t, cold) => {
    const tool = tools[t];
    const row = cold.rows.find((r) => r.tool === t);
    const base = { tool: t, unavailable: tool.unavailable, error: tool.error };
    if (base.unavailable || base.error) return base;
    if (row.status !== 'ok') return { ...base, error: 'cold build failed' };
    if (t === 'tsbuild') return { ...base, tsbuild: true, command: () => tool.buildCmd(state.tsbuild, tag, context) };
    if (t === 'buildah') return { ...base, command: () => tool.buildCmd(state.buildah, tag, context) };
    return { ...base, command: () => tool.buildCmd(tag, context) };
  };

  // cp -a, then tar | sha256sum of the copy: the floor for copying the tree and digesting it as a layer.
  const floorDest = path.join(tmp, 'floor');
  const floorParticipant = () => ({
    tool: 'floor',
    prepare: () => { removeTree(floorDest); },
    command: () => ({ cmd: 'sh', args: ['-c', 'cp -a "$1" "$2" && tar -C "$2" -cf - . | sha256sum >/dev/null', 'floor',
      path.join(context, FLOOR_SOURCE[workload]), floorDest] }),
    after: () => { removeTree(floorDest); },
  });
  const probes = tools.docker?.daemonProbe && !tools.docker.unavailable ? [tools.docker.daemonProbe()] : [];

  const cases = [];
  try {
    const coldParticipants = names.map(coldParticipant);
    if (FLOOR_SOURCE[workload] && tools.tsbuild) coldParticipants.push(floorParticipant());
    const cold = await measureCase({ title: `${workload} cold (fresh store)`, runs: coldRuns, participants: coldParticipants, dropCaches: opts.dropCaches, probes, log });
    cases.push(cold);
    // A fully cached build is mostly start-up for the small workloads: the floors show how much.
    const cachedParticipants = [...names.map((t) => warmParticipant(t, cold)), ...startFloorParticipants(tools)];
    cases.push(await measureCase({ title: `${workload} cached (no change)`, runs: opts.buildRuns, participants: cachedParticipants, probes, log }));
    if (workload === 'app') {
      const m5 = path.join(context, 'src', 'm5.js');
      // Every round writes new content, so every tool's COPY src/ misses the cache in every round.
      const beforeRound = (i) => fs.writeFileSync(m5, `export const v5 = 5; // rebuild ${i} ${Date.now()}\n`);
      cases.push(await measureCase({ title: 'app rebuild (src/m5.js changed)', runs: opts.buildRuns, participants: names.map((t) => warmParticipant(t, cold)), beforeRound, probes, log }));
    }
  } finally {
    tools.tsbuild?.drop?.(state.tsbuild);
    tools.buildah?.drop?.(state.buildah);
    if (tools.docker && !tools.docker.unavailable) await tools.docker.resetImages().catch(() => {});
  }
  return cases;
}
