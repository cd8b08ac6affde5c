// The command table. Each entry loads its module only when used.
import { registerCommand } from './main';

registerCommand('build', () => require('./cmd-build').command);
registerCommand('run', () => require('./cmd-run').runCommand);
registerCommand('ps', () => require('./cmd-run').psCommand);
registerCommand('rm', () => require('./cmd-run').rmCommand);
registerCommand('version', () => require('./cmd-version').command);
registerCommand('import', () => require('./cmd-images').importCommand);
registerCommand('images', () => require('./cmd-images').imagesCommand);
registerCommand('inspect', () => require('./cmd-images').inspectCommand);
registerCommand('history', () => require('./cmd-images').historyCommand);
registerCommand('tag', () => require('./cmd-images').tagCommand);
registerCommand('rmi', () => require('./cmd-images').rmiCommand);
registerCommand('save', () => require('./cmd-images').saveCommand);
registerCommand('load', () => require('./cmd-images').loadCommand);
registerCommand('prune', () => require('./cmd-images').pruneCommand);
registerCommand('push', () => require('./cmd-registry').pushCommand);
registerCommand('pull', () => require('./cmd-registry').pullCommand);
