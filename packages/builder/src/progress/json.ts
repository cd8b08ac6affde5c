// One JSON object per line per event; log data base64 as in BuildKit's rawjson.
import type { BuildEvent } from './events';

export class JsonRenderer {
  constructor(private readonly write: (text: string) => void) {}

  handle(event: BuildEvent): void {
    const out = event.type === 'step-log' ? { ...event, data: event.data.toString('base64') } : event;
    this.write(`${JSON.stringify(out)}\n`);
  }
}
