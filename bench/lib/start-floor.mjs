// Start-up floors for the short commands (run, images, inspect, a fully cached build): what tsbuild pays
// before it does anything. `node -e 0` is Node's own start; `tsbuild --version` adds loading the CLI.
// Their rows sit beside the tools' rows, and the goal table gives `node -e 0` ÷ peer: a goal below that
// ratio cannot be met by a CLI that starts Node.
export const NODE_START = 'node -e 0';
export const CLI_START = 'tsbuild --version';

/** Participants for a case: Node's start, and the CLI's (when tsbuild runs in the case). */
export function startFloorParticipants(tools) {
  const rows = [{ tool: NODE_START, command: () => ({ cmd: process.execPath, args: ['-e', '0'] }) }];
  const ts = tools.tsbuild;
  if (ts && !ts.unavailable && !ts.error) rows.push({ tool: CLI_START, command: () => ({ cmd: process.execPath, args: [ts.cliPath, '--version'] }) });
  return rows;
}
