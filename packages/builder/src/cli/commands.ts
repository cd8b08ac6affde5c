// The command table. Each entry loads its module only when used.
import { registerCommand } from './main';

registerCommand('version', () => require('./cmd-version').command);
