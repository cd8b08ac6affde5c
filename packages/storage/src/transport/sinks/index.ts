// The sink registry: `tsbuild save --format`, `tsbuild build -o type=` and Store.save look names up
// here. A new sink is one file in this folder and one line below.
import type { ImageSink } from '../sink';
import { dockerArchiveSink } from './docker-archive';
import { dockerOciArchiveSink } from './docker-oci-archive';
import { ociArchiveSink } from './oci-archive';
import { ociLayoutSink } from './oci-layout';

/** In the order usage texts list them; the first is `save`'s default. */
export const IMAGE_SINKS: readonly ImageSink[] = [
  dockerOciArchiveSink,
  ociArchiveSink,
  dockerArchiveSink,
  ociLayoutSink,
];

/** The sink called `name` (or one of its aliases). */
export function findSink(name: string): ImageSink | undefined {
  return IMAGE_SINKS.find((s) => s.name === name || s.aliases.includes(name));
}

/** The sink names, for usage texts and error messages. */
export function sinkNames(): string[] {
  return IMAGE_SINKS.map((s) => s.name);
}

export { dockerArchiveSink, dockerOciArchiveSink, ociArchiveSink, ociLayoutSink };
