// runc on a prepared OCI bundle: the rootfs is the busybox tree unpacked into a plain directory, so this
// row is the runtime alone (no image lookup, no overlay mount, no cleanup of a container layer).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run, must, which } from '../exec.mjs';

export function runcTool(ctx) {
  const dir = path.join(ctx.tmp, 'runc');
  const bundle = path.join(dir, 'bundle');
  const state = path.join(dir, 'state');
  let count = 0;
  return {
    name: 'runc',
    note: 'runc run on a bundle (config from `runc spec`, args ["true"], rootfs a plain dir)',

    async setup() {
      if (!which('runc')) throw new Error('runc not installed');
      fs.mkdirSync(path.join(bundle, 'rootfs'), { recursive: true });
      await must('unpack rootfs', 'tar', ['-C', path.join(bundle, 'rootfs'), '-xf', ctx.baseTar]);
      await must('runc spec', 'runc', ['spec'], { cwd: bundle });
      const configPath = path.join(bundle, 'config.json');
      const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
      config.process.terminal = false;
      config.process.args = ['true'];
      fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
      const { cmd, args } = this.runCmd();
      await must('runc run', cmd, args);
    },

    version: async () => (await run('runc', ['--version'])).stdout.split('\n')[0],
    runCmd: () => ({ cmd: 'runc', args: ['--root', state, 'run', '--bundle', bundle, `bench-${++count}`], timeoutMs: 60_000 }),
    async teardown() {},
  };
}
