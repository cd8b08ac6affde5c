// A container's terminal as Node streams: the pty master from a consolePty step.
import * as fs from 'node:fs';
// Required where used: node:tty loads node:net, ~4 ms of every run that has no terminal.
import type * as tty from 'node:tty';
import { Writable, type Readable } from 'node:stream';

export function terminalStreams(master: number): { output: Readable; input: Writable } {
  const output = new (require('node:tty') as typeof tty).ReadStream(master);
  // When the last holder of the terminal's slave side exits, reading the master gives EIO: that is
  // the terminal's end of file, not an error.
  output.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EIO') output.push(null);
  });
  const input = new Writable({
    write(chunk: Buffer, _enc, cb) {
      fs.write(master, chunk, (err) => cb(err));
    },
  });
  return { output, input };
}
