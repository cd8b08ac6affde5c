// Start-up floors for the short commands (run, images, inspect, a fully cached build): what tsbuild pays
// before it does anything. `node -e 0` is Node's own start; `tsbuild --version` adds loading the CLI (run
// as a program, as users run it). Their rows sit beside the tools' rows, and the goal table gives
// `node -e 0` ÷ peer. With NODE_EXTRA_CA_CERTS set, Node 20 builds its root certificate store as it starts;
// the CLI's launcher starts node without it (README, Performance), so Node's start without it is a row too.
export const NODE_START = 'node -e 0';
export const NODE_START_NO_CA = 'node -e 0 without NODE_EXTRA_CA_CERTS';
export const CLI_START = 'tsbuild --version';

/** Participants for a case: Node's start, and the CLI's (when tsbuild runs in the case). */
export function startFloorParticipants(tools) {
  const rows = [{ tool: NODE_START, command: () => ({ cmd: process.execPath, args: ['-e', '0'] }) }];
  if (process.env.NODE_EXTRA_CA_CERTS) rows.push({ tool: NODE_START_NO_CA, command: () => ({ cmd: process.execPath, args: ['-e', '0'], env: { NODE_EXTRA_CA_CERTS: '' } }) });
  const ts = tools.tsbuild;
  if (ts && !ts.unavailable && !ts.error) rows.push({ tool: CLI_START, command: () => ({ cmd: ts.cliPath, args: ['--version'] }) });
  return rows;
}
