// The typed event stream a build emits. Renderers (plain, tty, json) and library users consume it.

/** Numbers the steps (vertices) of one build from 1, in the order they start. */
export type VertexId = number;

/**
 * What a build reports while it runs, delivered in order and synchronously to
 * {@link BuildHooks.onEvent} (a slow handler slows the build). `time` is `Date.now()` when it happened.
 *
 * Every step, FROM included, is a vertex: it starts with `step-start` and ends with exactly one of
 * `step-done`, `step-cached` or `step-error`; between them come its `step-cache-miss`, `step-log` and
 * `step-progress` events. Independent stages build in parallel, so events of different vertices
 * interleave: key them by `vertex`. A successful build ends with one `image` event; a failed or
 * canceled one emits `step-error` for the steps it stopped (message `canceled` on a cancel) and
 * build() rejects.
 *
 * @example
 * ```ts
 * await build(opts, {
 *   onEvent: (e) => {
 *     if (e.type === 'step-start') console.log(e.name);
 *     else if (e.type === 'step-log') process.stdout.write(e.data);
 *     else if (e.type === 'image') console.log('built', e.imageId);
 *   },
 * });
 * ```
 */
export type BuildEvent =
  /** A step (vertex) begins. `name` is BuildKit-style: `[stage 2/5] RUN make`. */
  | { type: 'step-start'; vertex: VertexId; name: string; time: number }
  /** The step's result came from the build cache (it ends the vertex). */
  | { type: 'step-cached'; vertex: VertexId; time: number }
  /** Why a step missed the cache: which part of its key changed (or that no entry existed). */
  | { type: 'step-cache-miss'; vertex: VertexId; reason: string; time: number }
  /** Output of a RUN step's process, as it comes (chunks, not lines). */
  | { type: 'step-log'; vertex: VertexId; stream: 'stdout' | 'stderr'; data: Buffer; time: number }
  /** Progress of a long operation within a step (bytes copied, layers exported). */
  | { type: 'step-progress'; vertex: VertexId; id: string; current: number; total?: number; time: number }
  /** The step ran and its layer (if any) is committed (it ends the vertex). */
  | { type: 'step-done'; vertex: VertexId; time: number }
  /** The step failed or was canceled; nothing of it is kept (it ends the vertex). */
  | { type: 'step-error'; vertex: VertexId; message: string; time: number }
  /** A warning about the Dockerfile or the options (unused build args, deprecated syntax). */
  | { type: 'warning'; message: string; line?: number; time: number }
  /** The build finished: the image and its tags. */
  | { type: 'image'; imageId: string; manifestDigest: string; tags: string[]; time: number };

/** Receives a build's {@link BuildEvent}s. */
export type EventSink = (event: BuildEvent) => void;
