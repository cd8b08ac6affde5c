// The drivers' use of the layer tar codec (../archive): packing a directory into a deterministic OCI
// tar and extracting one safely. Here `size` is the number of tar bytes (what image manifests and the
// layer store record), counted on the way in.
import type { Readable } from 'node:stream';
import { applyTar, packDir, type ApplyWhiteouts } from '../archive';
import { HashingStream, type Digest } from '../digest';

export function packLayerDir(dir: string, opts: { whiteouts: 'overlay' | 'none'; clampMtime?: number | undefined }): Readable {
  return packDir(dir, opts.clampMtime === undefined ? { whiteouts: opts.whiteouts } : opts);
}

export async function applyLayerTar(
  tar: Readable,
  dest: string,
  opts: { whiteouts: ApplyWhiteouts },
): Promise<{ diffID: Digest; size: number }> {
  const counter = new HashingStream();
  tar.on('error', (err) => counter.destroy(err));
  tar.pipe(counter);
  try {
    await applyTar(counter, dest, opts);
  } catch (err) {
    tar.unpipe(counter);
    tar.destroy();
    throw err;
  }
  return { diffID: counter.digest(), size: counter.bytes };
}
