// The command table. Each entry loads its module only when used.
import { hideCommand, registerCommand } from './main';
import { GROUPS, UNSUPPORTED, groupCommand, unsupportedCommand } from './groups';

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
registerCommand('prune', () => require('./cmd-system').systemPruneCommand);
registerCommand('fsck', () => require('./cmd-fsck').fsckCommand);
registerCommand('push', () => require('./cmd-registry').pushCommand);
registerCommand('logs', () => require('./cmd-containers').logsCommand);
registerCommand('stop', () => require('./cmd-containers').stopCommand);
registerCommand('kill', () => require('./cmd-containers').killCommand);
registerCommand('wait', () => require('./cmd-containers').waitCommand);
registerCommand('exec', () => require('./cmd-containers').execCommand);
registerCommand('pull', () => require('./cmd-registry').pullCommand);
registerCommand('binfmt', () => require('./cmd-platforms').binfmtCommand);

// Reached through docker's grouped forms (`image prune`, `system df`, …): not listed on their own.
const grouped: Record<string, () => unknown> = {
  'image-prune': () => require('./cmd-system').imagePruneCommand,
  'container-prune': () => require('./cmd-system').containerPruneCommand,
  'container-inspect': () => require('./cmd-system').containerInspectCommand,
  'builder-prune': () => require('./cmd-system').builderPruneCommand,
  'system-df': () => require('./cmd-system').systemDfCommand,
  'system-prune': () => require('./cmd-system').systemPruneCommand,
  'manifest-create': () => require('./cmd-platforms').manifestCreateCommand,
  'manifest-inspect': () => require('./cmd-platforms').manifestInspectCommand,
  __supervise: () => require('./cmd-containers').superviseCommand,
};
for (const [name, load] of Object.entries(grouped)) {
  registerCommand(name, load as never);
  hideCommand(name);
}
for (const group of Object.keys(GROUPS)) registerCommand(group, () => groupCommand(group));
for (const name of Object.keys(UNSUPPORTED)) {
  registerCommand(name, () => unsupportedCommand(name));
  hideCommand(name);
}
