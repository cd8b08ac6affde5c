// Suite "run": start-to-exit latency of `run --rm bench-base true`, warm (after warm-up runs).
import { measureCase } from '../measure.mjs';
import { ratioOf } from '../report.mjs';
import { startFloorParticipants } from '../start-floor.mjs';

export const RUN_TOOLS = ['tsbuild', 'podman', 'docker', 'runc'];

export async function runSuite(env) {
  const { tools, opts, log } = env;
  const participants = [];
  let tsRoot;
  for (const t of RUN_TOOLS.filter((name) => tools[name])) {
    const tool = tools[t];
    const base = { tool: t, unavailable: tool.unavailable, error: tool.error };
    if (base.unavailable || base.error) { participants.push(base); continue; }
    if (t === 'tsbuild') {
      try {
        tsRoot = await tool.newRootWithBase('run');
        participants.push({ ...base, tsbuild: true, command: () => tool.runCmd(tsRoot) });
      } catch (err) {
        participants.push({ ...base, error: err.message });
      }
      continue;
    }
    participants.push({ ...base, command: () => tool.runCmd() });
  }
  participants.push(...startFloorParticipants(tools));
  try {
    const probes = tools.docker?.daemonProbe && !tools.docker.unavailable ? [tools.docker.daemonProbe()] : [];
    const c = await measureCase({ title: 'run --rm bench-base true (warm)', runs: opts.runRuns, warmup: 3, participants, probes, log });
    const goals = [{ case: 'run', peer: 'podman', goal: 0.5, ...ratioOf(c.rows, 'podman') }];
    return { cases: [c], goals };
  } finally {
    tools.tsbuild?.drop?.(tsRoot);
  }
}
