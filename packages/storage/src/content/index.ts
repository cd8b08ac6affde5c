// Content store: design decisions (DESIGN)
//
// 1. The live store IS an OCI image layout at `<root>/oci/` (`oci-layout` {"imageLayoutVersion":"1.0.0"},
//    `index.json`, `blobs/sha256/<hex>`), so skopeo, umoci and podman read it directly:
//    `skopeo inspect oci:<root>/oci:app:latest`.
// 2. Built layers (ARCHITECTURE.md, "A tension to settle on purpose"): the layer's diff directory is the
//    source of truth and its tar is a deterministic function of it. Manifests in the live store name the
//    UNCOMPRESSED layer (mediaType application/vnd.oci.image.layer.v1.tar, digest = diffID). The blob file
//    is MATERIALIZED on demand, on first read (a save, a push, `ImageStore.materializeImage`), through a
//    `LayerBlobSource` the layer store provides: staged in `ingest/`, verified against the diffID,
//    renamed into `blobs/`. A build therefore writes each layer once (the diff directory), not twice.
//    The price: until materialized, an external tool reading the live layout finds the manifest and
//    config but not the layer blob (inspect works; copy needs materializeImage first).
// 3. Compressed blobs (gzip through node:zlib) are produced on save/push and then kept, recorded in
//    `<root>/blobinfo.json` as an alternative descriptor for that diffID, so a second save reuses them.
//    prune() keeps them while an image uses their diffID.
// 4. Imported layers keep their original blobs and digests (the original bytes cannot be rebuilt from
//    an extracted directory by a different tar writer), and their manifests keep naming them.
// 5. Tags live in index.json: one entry per tag, annotation `org.opencontainers.image.ref.name` = the
//    FAMILIAR reference (`app:latest`, `myorg/app:v1`, `localhost:5000/app:v1`). skopeo matches the
//    part after the layout path exactly, so `oci:<root>/oci:app:latest` works (`oci:<root>/oci:app`
//    does not: there is no implied tag). Internally names are normalized docker-style
//    (`docker.io/library/app:latest`). Untagged ("dangling") images are entries without the annotation.
// 6. Writes: stage in `ingest/<random>` (flocked while written, so start-up cleanup removes only files
//    of crashed writers), fsync, rename into `blobs/sha256/<hex>`. index.json and blobinfo.json are
//    replaced with writeFileAtomic under the exclusive `<root>/images.lock`.
// 7. Reads are verified against the digest while streaming; a corrupt blob errors naming its digest.
export * from './types';
export * from './store';
export * from './blobinfo';
