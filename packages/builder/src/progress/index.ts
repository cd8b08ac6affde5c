import type { BuildEvent } from './events';
import { PlainRenderer } from './plain';
import { TtyRenderer } from './tty';
import { JsonRenderer } from './json';

export type { BuildEvent, EventSink, VertexId } from './events';
export { PlainRenderer, formatElapsed, formatBytes } from './plain';
export { TtyRenderer } from './tty';
export { JsonRenderer } from './json';

export type ProgressMode = 'auto' | 'plain' | 'tty' | 'json' | 'rawjson' | 'quiet';

export interface Renderer {
  handle(event: BuildEvent): void;
  finish(): void;
}

/** Picks a renderer; `auto` is tty on a terminal, plain otherwise (BUILDKIT_PROGRESS may override). */
export function createRenderer(mode: ProgressMode, out: NodeJS.WriteStream = process.stderr): Renderer {
  const chosen = mode === 'auto' ? ((process.env.BUILDKIT_PROGRESS as ProgressMode | undefined) ?? 'auto') : mode;
  const write = (text: string) => {
    out.write(text);
  };
  if (chosen === 'quiet') return { handle() {}, finish() {} };
  if (chosen === 'json' || chosen === 'rawjson') {
    const r = new JsonRenderer(write);
    return { handle: (e) => r.handle(e), finish() {} };
  }
  if (chosen === 'tty' || (chosen === 'auto' && out.isTTY)) {
    const r = new TtyRenderer(out);
    return { handle: (e) => r.handle(e), finish: () => r.finish() };
  }
  const r = new PlainRenderer(write);
  return { handle: (e) => r.handle(e), finish() {} };
}
