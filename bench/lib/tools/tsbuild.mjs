// tsbuild through its CLI, exactly as a user runs it: the bin file as a program (`tsbuild`, an npm bin link
// to it), whose sh lines start node: `packages/builder/bin/tsbuild.js --root R ...`.
// Every store is a fresh directory under the bench temp dir, so "cold" really is cold.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run, firstLine } from '../exec.mjs';
import { removeTree } from '../cleanup.mjs';

export function tsbuildTool(ctx) {
  const bin = ctx.tsbuildCli;
  const home = path.join(ctx.tmp, 'tsbuild');
  let count = 0;
  const cli = (root, ...args) => ({ cmd: bin, args: ['--root', root, ...args], timeoutMs: 15 * 60_000 });

  return {
    name: 'tsbuild',
    /** The CLI script (suites that run their own commands). */
    cliPath: bin,
    note: `${path.relative(ctx.repoRoot, bin)} --root <fresh dir>`,

    /** Undefined when the CLI starts at all; otherwise why not (tsbuild cells then read "error: ..."). */
    async check() {
      if (!fs.existsSync(bin)) return `${bin} not found`;
      const inRepo = bin === path.join(ctx.repoRoot, 'packages/builder/bin/tsbuild.js');
      if (inRepo && !fs.existsSync(path.join(ctx.repoRoot, 'packages/builder/dist/cli/main.js'))) return 'not built: run npx tsc -b';
      const r = await run(bin, ['--version']);
      return r.code === 0 ? undefined : firstLine(r.stderr) || `exit status ${r.code}`;
    },

    async version() {
      const r = await run(bin, ['--version']);
      return r.stdout.trim().split('\n')[0];
    },

    newRoot(label) {
      const root = path.join(home, `${label}-${++count}`);
      fs.mkdirSync(root, { recursive: true });
      return root;
    },

    /** A fresh store holding only bench-base. Throws the CLI's first stderr line on failure. */
    async newRootWithBase(label) {
      const root = this.newRoot(label);
      const { cmd, args } = cli(root, 'import', ctx.baseTar, 'bench-base');
      const r = await run(cmd, args);
      if (r.code !== 0) throw new Error(`import bench-base: ${firstLine(r.stderr) || `exit status ${r.code}`}`);
      return root;
    },

    importCmd: (root, tar, name) => cli(root, 'import', tar, name),
    runCmd: (root) => cli(root, 'run', '--rm', 'bench-base', 'true'),
    imagesCmd: (root) => cli(root, 'images'),
    inspectCmd: (root, name) => cli(root, 'inspect', name),
    tagCmd: (root, source, target) => cli(root, 'tag', source, target),
    buildCmd: (root, tag, context) => cli(root, 'build', '-t', tag, context),

    drop(root) {
      if (root) removeTree(root);
    },

    async teardown() {
      removeTree(home);
    },
  };
}
