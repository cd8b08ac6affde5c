// Loops of synchronous filesystem calls (a few µs each, where a libuv pool round trip costs ~50 µs) give
// the event loop a turn every few milliseconds, so signals and progress output are not held up.

/** How long synchronous work runs before the event loop gets a turn. */
const SLICE_MS = 10;

/**
 * Files up to this size are read or copied with synchronous calls; larger ones go through the pool,
 * which keeps one big file from holding the event loop (as @tsbuild/storage's pack does).
 */
export const SYNC_IO_MAX = 256 * 1024;

/** A function to await between synchronous steps: it yields to the event loop once a slice is used up. */
export function timeSlicer(): () => Promise<void> | undefined {
  // Date.now, not performance.now: the first use of \`performance\` loads node:perf_hooks (~3 ms).
  let start = Date.now();
  return () => {
    if (Date.now() - start < SLICE_MS) return undefined;
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        start = Date.now();
        resolve();
      }),
    );
  };
}
