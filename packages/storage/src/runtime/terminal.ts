// A container's terminal as Node streams: the pty master from a consolePty step.
import * as fs from 'node:fs';
import * as tty from 'node:tty';
import { Writable, type Readable } from 'node:stream';

export function terminalStreams(master: number): { output: Readable; input: Writable } {
  const output = new tty.ReadStream(master);
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
