// Attaching a container's terminal (run -t, exec -t) to tsbuild's own stdin and stdout.

/**
 * Connects a container's terminal to ours: its output to stdout and, when interactive, our stdin (raw
 * when it is a terminal) to its input. Returns what undoes it.
 */
export function attachTerminal(terminal: { output: NodeJS.ReadableStream; input: NodeJS.WritableStream }, interactive: boolean): () => void {
  terminal.output.pipe(process.stdout);
  if (!interactive) return () => {};
  const raw = process.stdin.isTTY === true;
  if (raw) process.stdin.setRawMode(true);
  process.stdin.pipe(terminal.input);
  return () => {
    if (raw) process.stdin.setRawMode(false);
    process.stdin.unpipe();
    process.stdin.pause();
  };
}
