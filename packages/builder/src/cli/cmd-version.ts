import * as os from 'node:os';
import type { Command } from './main';

export const command: Command = {
  summary: 'Print the version of tsbuild, Node and the kernel',
  usage: 'Usage: tsbuild version',
  options: {},
  async run() {
    const pkg = require('../../package.json') as { version: string };
    process.stdout.write(`tsbuild ${pkg.version}\nnode ${process.version}\nkernel ${os.release()}\n`);
    return 0;
  },
};
