// A sink takes model Images (image/model.ts) wherever they came from and writes them somewhere: an
// archive file, a layout directory. Each sink is one file under sinks/ plus one line in sinks/index.ts,
// which is what `tsbuild save --format`, `tsbuild build -o type=` and Store.save look names up in.
import type { Image } from '../image/model';
import type { SaveOptions } from './common';

export interface ImageSink {
  /** The name in `save --format` and `build -o type=`. */
  readonly name: string;
  /** Other accepted names (skopeo's transport names). */
  readonly aliases: readonly string[];
  /** What the destination is: an archive file (which may be staged and streamed to stdout), or a directory. */
  readonly dest: 'file' | 'directory';
  /** One line for usage texts. */
  readonly summary: string;
  /** Whether it writes image indexes (SaveOptions.indexes): OCI layouts do, docker archives cannot. */
  readonly indexes?: boolean;
  write(images: readonly Image[], dest: string, opts: SaveOptions): Promise<void>;
}
