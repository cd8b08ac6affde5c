// BuildKit's plain progress format: `#N name`, logs with elapsed seconds, `#N DONE 0.3s`, `#N CACHED`.
import type { BuildEvent, VertexId } from './events';

interface VertexState {
  number: number;
  name: string;
  started: number;
}

export class PlainRenderer {
  private readonly vertices = new Map<VertexId, VertexState>();
  private next = 1;
  private last: VertexId | undefined;

  constructor(private readonly write: (text: string) => void) {}

  handle(event: BuildEvent): void {
    switch (event.type) {
      case 'step-start': {
        const state = { number: this.next++, name: event.name, started: event.time };
        this.vertices.set(event.vertex, state);
        this.separate(event.vertex);
        this.write(`#${state.number} ${event.name}\n`);
        break;
      }
      case 'step-cached':
        this.line(event.vertex, 'CACHED');
        break;
      case 'step-cache-miss':
        this.line(event.vertex, `cache miss: ${event.reason}`);
        break;
      case 'step-log': {
        const v = this.vertices.get(event.vertex);
        if (!v) return;
        this.separate(event.vertex);
        const elapsed = formatElapsed((event.time - v.started) / 1000);
        for (const text of splitLines(event.data.toString('utf8'))) this.write(`#${v.number} ${elapsed} ${text}\n`);
        break;
      }
      case 'step-progress': {
        const v = this.vertices.get(event.vertex);
        if (!v || (event.total !== undefined && event.current < event.total)) return;
        const secs = ((event.time - v.started) / 1000).toFixed(1);
        const total = event.total !== undefined ? ` / ${formatBytes(event.total)}` : '';
        this.line(event.vertex, `${event.id} ${formatBytes(event.current)}${total} ${secs}s done`);
        break;
      }
      case 'step-done': {
        const v = this.vertices.get(event.vertex);
        if (v) this.line(event.vertex, `DONE ${((event.time - v.started) / 1000).toFixed(1)}s`);
        break;
      }
      case 'step-error':
        this.line(event.vertex, `ERROR: ${event.message}`);
        break;
      case 'warning':
        this.write(`WARNING: ${event.line !== undefined ? `line ${event.line}: ` : ''}${event.message}\n`);
        break;
      case 'image':
        this.write(`\nwriting image ${event.imageId} done\n`);
        for (const tag of event.tags) this.write(`naming to ${tag} done\n`);
        break;
    }
  }

  private line(vertex: VertexId, text: string): void {
    const v = this.vertices.get(vertex);
    if (!v) return;
    this.separate(vertex);
    this.write(`#${v.number} ${text}\n`);
  }

  /** A blank line goes between output of different vertices. */
  private separate(vertex: VertexId): void {
    if (this.last !== undefined && this.last !== vertex) this.write('\n');
    this.last = vertex;
  }
}

/** 3/2/1 decimals for < 10 s / < 100 s / longer, as BuildKit prints log times. */
export function formatElapsed(seconds: number): string {
  if (seconds < 10) return seconds.toFixed(3);
  if (seconds < 100) return seconds.toFixed(2);
  return seconds.toFixed(1);
}

export function formatBytes(n: number): string {
  if (n < 1000) return `${n}B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(2)}${units[unit]}`;
}

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}
