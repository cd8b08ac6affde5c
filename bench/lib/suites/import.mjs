// Suite "import": a ~320 MB rootfs tar (bigcopy's data) imported as an image. tsbuild imports into a
// fresh store each run; docker and podman first delete the previous import (untimed).
import { measureCase } from '../measure.mjs';
import { ensureBigcopyRootfsTar } from '../fixtures.mjs';

export const IMPORT_TOOLS = ['tsbuild', 'docker', 'podman'];

export async function importSuite(env) {
  const { tools, opts, log } = env;
  const tar = await ensureBigcopyRootfsTar(env.workloads, log);
  const name = 'bench-bigcopy-rootfs';
  const participants = IMPORT_TOOLS.filter((t) => tools[t]).map((t) => {
    const tool = tools[t];
    const base = { tool: t, unavailable: tool.unavailable, error: tool.error };
    if (base.unavailable || base.error) return base;
    if (t === 'tsbuild') {
      let root;
      return { ...base, tsbuild: true,
        prepare: () => { root = tool.newRoot('import'); },
        command: () => tool.importCmd(root, tar, name),
        after: () => tool.drop(root) };
    }
    return { ...base, prepare: () => tool.rmi(name), command: () => tool.importCmd(tar, name), after: () => tool.rmi(name) };
  });
  const c = await measureCase({ title: 'import bigcopy rootfs (~320 MB tar)', runs: opts.importRuns, participants, dropCaches: opts.dropCaches, log });
  return { cases: [c], goals: [] };
}
