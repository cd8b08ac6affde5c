// A one-line progress indicator for long storage operations, only on a terminal.
import { humanSize } from './parse';

export function progressLine(label: string, stream: NodeJS.WriteStream = process.stderr) {
  let last = 0;
  const active = stream.isTTY === true;
  return {
    update(done: number, total?: number): void {
      if (!active) return;
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      const of = total ? ` / ${humanSize(total)}` : '';
      stream.write(`\r${label} ${humanSize(done)}${of}\x1b[K`);
    },
    done(): void {
      if (active && last > 0) stream.write('\r\x1b[K');
    },
  };
}
