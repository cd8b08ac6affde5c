// What `docker save` writes since Docker 25: an OCI layout whose layers are uncompressed tars, plus a
// docker-archive manifest.json naming the same blobs, so docker load (any version), podman load and
// OCI tools (skopeo oci-archive:, umoci) all read one file.
import type { ImageSink } from '../sink';
import { ociArchiveSink } from './oci-archive';

export const dockerOciArchiveSink: ImageSink = {
  name: 'docker-oci',
  aliases: [],
  dest: 'file',
  summary: 'docker save since Docker 25 (docker/podman load, skopeo/umoci oci-archive)',
  write: (images, out, opts) => ociArchiveSink.write(images, out, { ...opts, compression: 'none', dockerManifest: true }),
};
