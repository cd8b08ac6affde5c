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
  // Date.now, not performance.now: the first use of `performance` loads node:perf_hooks (~3 ms).
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

/** Work started in order and run at most `limit` at a time; done() throws the first failure once all settled. */
export class Background {
  private readonly running = new Set<Promise<void>>();
  private failure: { err: unknown } | undefined;

  constructor(private readonly limit: number) {}

  /** Starts `fn` once fewer than `limit` run; throws an earlier failure instead of starting more. */
  async start(fn: () => Promise<void>): Promise<void> {
    while (this.running.size >= this.limit) await Promise.race(this.running);
    if (this.failure !== undefined) throw this.failure.err;
    const task: Promise<void> = fn()
      .catch((err: unknown) => {
        this.failure ??= { err };
      })
      .then(() => {
        this.running.delete(task);
      });
    this.running.add(task);
  }

  /** Waits for everything started (never throws). */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
  }

  async done(): Promise<void> {
    await this.settled();
    if (this.failure !== undefined) throw this.failure.err;
  }
}
