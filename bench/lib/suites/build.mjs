// Suite "build": app, bigcopy and layers100 built cold (a fresh store per run: a new tsbuild root, a new
// buildah store, docker pruned back to bench-base), then fully cached, and for app a rebuild after
// src/m5.js changes. The context is the same directory for every tool.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { measureCase } from '../measure.mjs';
import { copyContext, WORKLOADS } from '../fixtures.mjs';
import { ratioOf } from '../report.mjs';

export const BUILD_TOOLS = ['tsbuild', 'docker', 'buildah'];

// The goals, as the largest acceptable ratio tsbuild/docker of the medians.
const GOALS = { 'app cold': 0.4, 'app cached': 1.0, 'app rebuild': 0.4, 'bigcopy cold': 0.5, 'layers100 cold': 0.15 };

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
    if (GOALS[key] !== undefined) goals.push({ case: key, peer: 'docker', goal: GOALS[key], ...ratioOf(c.rows, 'docker') });
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

  const cases = [];
  try {
    const cold = await measureCase({ title: `${workload} cold (fresh store)`, runs: coldRuns, participants: names.map(coldParticipant), dropCaches: opts.dropCaches, log });
    cases.push(cold);
    cases.push(await measureCase({ title: `${workload} cached (no change)`, runs: opts.buildRuns, participants: names.map((t) => warmParticipant(t, cold)), log }));
    if (workload === 'app') {
      const m5 = path.join(context, 'src', 'm5.js');
      // Every round writes new content, so every tool's COPY src/ misses the cache in every round.
      const beforeRound = (i) => fs.writeFileSync(m5, `export const v5 = 5; // rebuild ${i} ${Date.now()}\n`);
      cases.push(await measureCase({ title: 'app rebuild (src/m5.js changed)', runs: opts.buildRuns, participants: names.map((t) => warmParticipant(t, cold)), beforeRound, log }));
    }
  } finally {
    tools.tsbuild?.drop?.(state.tsbuild);
    tools.buildah?.drop?.(state.buildah);
    if (tools.docker && !tools.docker.unavailable) await tools.docker.resetImages().catch(() => {});
  }
  return cases;
}
