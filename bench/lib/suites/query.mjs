// Suite "query": latency of the read-only commands a user runs between builds, `images` and
// `inspect bench-base`, on a store holding bench-base under TAGS names (warm, after warm-up runs).
import { must } from '../exec.mjs';
import { measureCase } from '../measure.mjs';
import { startFloorParticipants } from '../start-floor.mjs';

export const QUERY_TOOLS = ['tsbuild', 'docker', 'podman'];
const TAGS = 10;

export async function querySuite(env) {
  const { tools, opts, log } = env;
  let tsRoot;
  const ready = {};
  // Each tool's store gets the same extra tags, so `images` lists TAGS rows everywhere.
  for (const t of QUERY_TOOLS.filter((name) => tools[name])) {
    const tool = tools[t];
    if (tool.unavailable || tool.error) continue;
    try {
      if (t === 'tsbuild') tsRoot = await tool.newRootWithBase('query');
      for (let i = 1; i < TAGS; i++) {
        const spec = t === 'tsbuild' ? tool.tagCmd(tsRoot, 'bench-base', `bench-tag-${i}`) : tool.tagCmd('bench-base', `bench-tag-${i}`);
        await must(`${t} tag`, spec.cmd, spec.args, spec);
      }
      ready[t] = true;
    } catch (err) {
      ready[t] = err.message;
    }
  }
  const participants = (command) => QUERY_TOOLS.filter((name) => tools[name]).map((t) => {
    const tool = tools[t];
    const base = { tool: t, unavailable: tool.unavailable, error: tool.error ?? (ready[t] === true ? undefined : ready[t]) };
    if (base.unavailable || base.error) return base;
    return { ...base, tsbuild: t === 'tsbuild', command: () => command(tool, t) };
  }).concat(startFloorParticipants(tools));
  try {
    const probes = tools.docker?.daemonProbe && !tools.docker.unavailable ? [tools.docker.daemonProbe()] : [];
    const images = await measureCase({ title: `images (${TAGS} tags)`, runs: opts.runRuns, warmup: 3, probes, log,
      participants: participants((tool, t) => (t === 'tsbuild' ? tool.imagesCmd(tsRoot) : tool.imagesCmd())) });
    const inspect = await measureCase({ title: 'inspect bench-base', runs: opts.runRuns, warmup: 3, probes, log,
      participants: participants((tool, t) => (t === 'tsbuild' ? tool.inspectCmd(tsRoot, 'bench-base') : tool.inspectCmd('bench-base'))) });
    return { cases: [images, inspect], goals: [] };
  } finally {
    tools.tsbuild?.drop?.(tsRoot);
    for (const t of ['docker', 'podman']) {
      if (ready[t] === true) await tools[t].rmi(...Array.from({ length: TAGS - 1 }, (_, i) => `bench-tag-${i + 1}`)).catch(() => {});
    }
  }
}
