// The typed event stream a build emits. Renderers (plain, tty, json) and library users consume it.

export type VertexId = number;

export type BuildEvent =
  /** A step (vertex) begins. `name` is BuildKit-style: `[stage 2/5] RUN make`. */
  | { type: 'step-start'; vertex: VertexId; name: string; time: number }
  /** The step's result came from the build cache. */
  | { type: 'step-cached'; vertex: VertexId; time: number }
  /** Why a step missed the cache: which part of its key changed (or that no entry existed). */
  | { type: 'step-cache-miss'; vertex: VertexId; reason: string; time: number }
  /** Output of a RUN step's process. */
  | { type: 'step-log'; vertex: VertexId; stream: 'stdout' | 'stderr'; data: Buffer; time: number }
  /** Progress of a long operation within a step (bytes copied, layers exported). */
  | { type: 'step-progress'; vertex: VertexId; id: string; current: number; total?: number; time: number }
  | { type: 'step-done'; vertex: VertexId; time: number }
  | { type: 'step-error'; vertex: VertexId; message: string; time: number }
  | { type: 'warning'; message: string; line?: number; time: number }
  /** The build finished: the image and its tags. */
  | { type: 'image'; imageId: string; manifestDigest: string; tags: string[]; time: number };

export type EventSink = (event: BuildEvent) => void;
