// The interactive renderer: redraws a status block in place, BuildKit's tty look:
// `[+] Building 12.3s (8/10)`, ` => [2/4] RUN … 1.2s`, ` => => # <last log lines>`.
import type { BuildEvent, VertexId } from './events';

interface Row {
  name: string;
  started: number;
  ended?: number;
  state: 'running' | 'cached' | 'done' | 'error';
  logs: string[];
}

const LOG_TAIL = 6;

export class TtyRenderer {
  private readonly rows = new Map<VertexId, Row>();
  private readonly began = Date.now();
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;
  private finished = false;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly color = !process.env.NO_COLOR,
  ) {
    this.timer = setInterval(() => this.draw(), 150);
    this.timer.unref();
  }

  handle(event: BuildEvent): void {
    const row = 'vertex' in event ? this.rows.get(event.vertex) : undefined;
    switch (event.type) {
      case 'step-start':
        this.rows.set(event.vertex, { name: event.name, started: event.time, state: 'running', logs: [] });
        break;
      case 'step-cached':
        if (row) Object.assign(row, { state: 'cached', ended: event.time });
        break;
      case 'step-done':
        if (row) Object.assign(row, { state: 'done', ended: event.time });
        break;
      case 'step-error':
        if (row) {
          Object.assign(row, { state: 'error', ended: event.time });
          row.logs.push(`ERROR: ${event.message}`);
        }
        break;
      case 'step-log':
        if (row) {
          row.logs.push(...event.data.toString('utf8').split('\n').filter((l) => l.length > 0));
          if (row.logs.length > LOG_TAIL) row.logs.splice(0, row.logs.length - LOG_TAIL);
        }
        break;
      default:
        break;
    }
    this.draw();
  }

  /** Draws the final state once and stops redrawing. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearInterval(this.timer);
    this.draw(true);
  }

  private draw(final = false): void {
    const width = this.out.columns || 100;
    const rows = [...this.rows.values()];
    const done = rows.filter((r) => r.state !== 'running').length;
    const elapsed = ((Date.now() - this.began) / 1000).toFixed(1);
    const lines = [`[+] Building ${elapsed}s (${done}/${rows.length})${final ? ' FINISHED' : ''}`];
    for (const r of rows) {
      const secs = (((r.ended ?? Date.now()) - r.started) / 1000).toFixed(1);
      const tag = r.state === 'cached' ? 'CACHED' : `${secs}s`;
      const text = ` => ${r.name}`;
      const room = Math.max(10, width - tag.length - 2);
      const head = text.length > room ? `${text.slice(0, room - 1)}…` : text.padEnd(room);
      lines.push(this.paint(`${head} ${tag}`, r.state));
      if (r.state === 'running' || r.state === 'error') {
        for (const log of r.logs) lines.push(` => => # ${log}`.slice(0, width - 1));
      }
    }
    let text = '';
    if (this.drawn > 0) text += `\x1b[${this.drawn}F`;
    text += lines.map((l) => `${l}\x1b[K`).join('\n') + '\n\x1b[J';
    this.out.write(text);
    this.drawn = lines.length;
  }

  private paint(text: string, state: Row['state']): string {
    if (!this.color) return text;
    if (state === 'error') return `\x1b[31m${text}\x1b[0m`;
    if (state === 'done' || state === 'cached') return `\x1b[34m${text}\x1b[0m`;
    return text;
  }
}
