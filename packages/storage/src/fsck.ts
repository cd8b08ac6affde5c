// `tsbuild fsck`: checks a storage root against what it records, and with `repair` removes what is
// wrong or orphaned. Checked: every blob against its digest; every compressed blob an image or the
// blob records name against its diff_id; every image entry (manifest, config, layers present); every
// layer's chain and diff directory against its diffID; mounts under the root that nothing holds;
// what dead processes left (staging, work layers, driver layers nothing names, containers without
// their layer, empty cgroups). Open the store with `repair: false` first, or open's own repair
// removes the leftovers before fsck sees them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { Containers, containerLayerName } from './containers';
import { layerCompression, type Descriptor } from './content/types';
import { DigestMismatchError, chainIDs, type Digest } from './digest';
import { mountsUnder } from './drivers/mountinfo';
import { detach } from './drivers/perform';
import { isAlive, ownerOf } from './drivers/proc';
import type { ImageLayer } from './image/store';
import { ANNOTATION_REF_NAME, type ImageConfig } from './image/types';
import { chainID } from './layers/store';
import { staleCgroups } from './runtime/cgroups';
import type { Store } from './store';
import { StoreLayer, openOwnBlobVerified } from './image/local';

export type FsckKind = 'blob' | 'layer-blob' | 'image' | 'layer' | 'mount' | 'leftover';

export interface FsckProblem {
  kind: FsckKind;
  /** One line: what is wrong. */
  message: string;
  /** With repair: what was done about it. */
  repair?: string;
}

export interface FsckReport {
  problems: FsckProblem[];
  checked: { blobs: number; layerBlobs: number; images: number; layers: number; mounts: number };
  /** What could not be checked (an imported layer whose original tar is gone). */
  notes: string[];
}

/** How long a container's layer or record must have been alone before it counts as left over. */
const SETTLE_MS = 60_000;

interface LayerBlobUse {
  diffID: Digest;
  blob: Descriptor;
  /** Manifests (index entries) whose image names this blob for this diffID. */
  entries: Set<Digest>;
}

export async function fsck(store: Store, opts: { repair?: boolean } = {}): Promise<FsckReport> {
  const repair = opts.repair === true;
  const report: FsckReport = { problems: [], checked: { blobs: 0, layerBlobs: 0, images: 0, layers: 0, mounts: 0 }, notes: [] };
  const problem = async (kind: FsckKind, message: string, fix?: () => Promise<string>) => {
    const p: FsckProblem = { kind, message };
    report.problems.push(p);
    if (repair && fix) {
      try {
        p.repair = await fix();
      } catch (err) {
        p.repair = `not repaired: ${(err as Error).message}`;
      }
    }
  };
  const content = store.images.content;

  // Mounts first: the clean-ups below remove directories, never through a mount left on them.
  // Under the layer lock, which every mount of a layer takes: none can appear between the two looks.
  await store.layers.lock.withExclusive(async () => {
    const held = store.layers.heldMountTargets();
    const isHeld = (m: string) => [...held].some((t) => m === t || m.startsWith(`${t}/`));
    for (const m of mountsUnder(store.root)) {
      report.checked.mounts++;
      if (isHeld(m)) continue;
      await problem('mount', `leftover mount at ${m}: no running tsbuild process holds it`, async () => {
        await detach(m);
        return 'unmounted';
      });
    }
  });

  // Blobs against their digests.
  const badBlobs = new Set<Digest>();
  for (const d of await content.list()) {
    report.checked.blobs++;
    try {
      for await (const _ of await content.open(d));
    } catch (err) {
      badBlobs.add(d);
      const why = err instanceof DigestMismatchError ? `its bytes hash to ${err.actual}` : (err as Error).message;
      await problem('blob', `blob ${d} is corrupt: ${why}`, async () => {
        await content.delete(d);
        return 'removed';
      });
    }
  }

  // Image entries, and which layer blobs they name for which diffIDs.
  const index = await store.images.readIndex();
  const broken = new Map<Digest, string>();
  const uses = new Map<string, LayerBlobUse>();
  const entryChains = new Map<Digest, Digest[]>();
  const use = (diffID: Digest, blob: Descriptor, entry?: Digest) => {
    const key = `${diffID} ${blob.digest}`;
    const u = uses.get(key) ?? { diffID, blob, entries: new Set<Digest>() };
    if (entry) u.entries.add(entry);
    uses.set(key, u);
  };
  const labelOf = new Map<Digest, string>();
  for (const entry of index.manifests ?? []) {
    report.checked.images++;
    labelOf.set(entry.digest, entry.annotations?.[ANNOTATION_REF_NAME] ?? entry.digest);
    try {
      const { manifest } = await store.images.readManifest(entry);
      const config = await content.readJson<ImageConfig>(manifest.config.digest);
      const diffIDs = config.rootfs?.diff_ids ?? [];
      if (diffIDs.length !== manifest.layers.length) throw new Error(`its config lists ${diffIDs.length} diff_ids for ${manifest.layers.length} layers`);
      const chains = chainIDs(diffIDs);
      entryChains.set(entry.digest, chains);
      const top = chains[chains.length - 1];
      if (top && !store.layers.has(top)) throw new Error(`its layers are missing from the layer store (chain ${top})`);
      manifest.layers.forEach((l, i) => use(diffIDs[i]!, l, entry.digest));
    } catch (err) {
      broken.set(entry.digest, (err as Error).message);
    }
  }
  for (const [diffID, info] of await store.images.blobInfo.read()) for (const c of info.compressed ?? []) use(diffID, c);

  // Compressed layer blobs against their diffIDs (an uncompressed one is named by its diffID).
  const verifiedForm = new Map<Digest, ImageLayer>();
  for (const u of uses.values()) {
    if (u.blob.digest === u.diffID) continue;
    const layer: ImageLayer = { diffID: u.diffID, descriptor: u.blob };
    if (badBlobs.has(u.blob.digest) || !(await content.has(u.blob.digest))) {
      for (const e of u.entries) if (!broken.has(e)) broken.set(e, `its layer blob ${u.blob.digest} is missing or corrupt`);
      continue;
    }
    report.checked.layerBlobs++;
    try {
      for await (const _ of openOwnBlobVerified(new StoreLayer(store.images, layer.diffID, layer.descriptor), () => {}));
      verifiedForm.set(u.diffID, layer);
    } catch (err) {
      for (const e of u.entries) broken.set(e, `its layer blob ${u.blob.digest} does not match its diff_id ${u.diffID}`);
      await problem('layer-blob', (err as Error).message, async () => {
        await store.images.forgetLayerBlob(u.diffID, u.blob.digest);
        await content.delete(u.blob.digest);
        return 'removed the blob and its record';
      });
    }
  }
  // An uncompressed layer blob that is gone is rebuilt from the diff directory on demand, which
  // gives the same bytes only for a built layer.
  const rebuildableDiffIDs = new Set(store.layers.list().filter((l) => store.layers.isRebuildable(l.chainID)).map((l) => l.diffID));
  for (const u of uses.values()) {
    if (u.blob.digest !== u.diffID || (await content.has(u.diffID)) || verifiedForm.has(u.diffID) || rebuildableDiffIDs.has(u.diffID)) continue;
    if (store.images.remoteLayerForm(u.diffID)) continue; // a shared cache holds its blob (a lazy layer's)
    for (const e of u.entries) if (!broken.has(e)) broken.set(e, `its layer blob ${u.diffID} is missing and cannot be rebuilt from the layer`);
  }
  for (const [digest, why] of broken) {
    await problem('image', `image ${labelOf.get(digest) ?? digest}: ${why}`, async () => {
      const gone = await store.images.forgetEntries(new Set([digest]));
      return `removed ${gone.join(', ') || digest}`;
    });
  }

  // Layers: chain, files, diff directory.
  for (const layer of store.layers.list()) {
    report.checked.layers++;
    const name = `layer ${layer.chainID}`;
    if (chainID(layer.parent, layer.diffID) !== layer.chainID) {
      await problem('layer', `${name}: its parent and diff_id give chain ${chainID(layer.parent, layer.diffID)}`);
      continue;
    }
    if (layer.parent !== null && !store.layers.has(layer.parent)) {
      await problem('layer', `${name}: its parent ${layer.parent} is missing`);
      continue;
    }
    if (!layer.present) {
      // A shared build cache's hit held lazily: its files are fetched (and verified) when needed.
      report.notes.push(`${name}: held lazily, its files are not fetched yet (blob ${layer.remote?.blob.digest} at ${layer.remote?.location})`);
      continue;
    }
    if (!store.layers.driver.exists(layer.cacheId)) {
      await problem('layer', `${name}: its ${store.layers.driver.name} directory ${layer.cacheId} is missing`);
      continue;
    }
    const original = originalTar(store, layer.diffID, badBlobs, verifiedForm);
    let result;
    try {
      result = await store.layers.checkDiff(layer.chainID, original, { repair });
    } catch (err) {
      await problem('layer', `${name}: cannot check its diff directory: ${(err as Error).message}`);
      continue;
    }
    const dir = store.layers.driver.diffPath(layer.cacheId);
    if (result === 'unverifiable') report.notes.push(`${name}: its original tar is gone, so its diff directory ${dir} was not checked`);
    else if (result === 'repaired') report.problems.push({ kind: 'layer', message: `${name}: its diff directory ${dir} no longer matches diff_id ${layer.diffID}`, repair: 'replaced by a fresh extraction of its original tar' });
    else if (result === 'changed') {
      await problem('layer', `${name}: its diff directory ${dir} no longer matches diff_id ${layer.diffID}`, async () => {
        // Nothing to restore it from: the images built on it go, the build cache records of it and of
        // the layers above it (a hit would build on wrong files), and the layers with them.
        const users = new Set([...entryChains].filter(([, chains]) => chains.includes(layer.chainID)).map(([d]) => d));
        const gone = await store.images.forgetEntries(users);
        const records = await store.cache.forgetChains(chainsAbove(store, layer.chainID));
        await store.collectLayers();
        const still = store.layers.has(layer.chainID);
        const done = [gone.length > 0 ? `removed ${gone.join(', ')}` : '', records > 0 ? `dropped ${records} build cache record${records === 1 ? '' : 's'}` : ''];
        done.push(still ? 'the layer stays: a running operation holds it' : 'removed the layer');
        return done.filter(Boolean).join('; ');
      });
    }
  }

  await leftovers(store, problem);
  if (repair) await store.collectLayers();
  return report;
}

/** `chain` and every layer built on it. */
function chainsAbove(store: Store, chain: string): Set<string> {
  const above = new Set([chain]);
  const layers = store.layers.list();
  for (let grew = true; grew; ) {
    grew = false;
    for (const l of layers) {
      if (l.parent !== null && above.has(l.parent) && !above.has(l.chainID)) {
        above.add(l.chainID);
        grew = true;
      }
    }
  }
  return above;
}

/** A verified uncompressed tar of `diffID` from the content store, if one is there. */
function originalTar(store: Store, diffID: Digest, bad: Set<Digest>, verifiedForm: Map<Digest, ImageLayer>): (() => Promise<Readable>) | undefined {
  const content = store.images.content;
  if (!bad.has(diffID) && fs.existsSync(content.blobPath(diffID))) return () => content.open(diffID);
  const form = verifiedForm.get(diffID);
  if (form && layerCompression(form.descriptor.mediaType) !== undefined) return async () => openOwnBlobVerified(new StoreLayer(store.images, form.diffID, form.descriptor), () => {});
  return undefined;
}

/** What dead processes left; repaired by the clean-ups that open runs. */
async function leftovers(store: Store, problem: (kind: FsckKind, message: string, fix?: () => Promise<string>) => Promise<void>): Promise<void> {
  const dead = (name: string) => {
    const owner = ownerOf(name);
    return owner === null || !isAlive(owner);
  };
  const found: string[] = [];
  for (const p of store.layers.staleStaging()) found.push(`staged layer files of a dead process: ${p}`);
  const scratch = path.join(store.root, 'tmp');
  for (const name of fs.existsSync(scratch) ? fs.readdirSync(scratch) : []) if (dead(name)) found.push(`scratch directory of a dead process: ${path.join(scratch, name)}`);
  for (const rw of store.layers.listRW()) if (ownerOf(rw.name) !== null && dead(rw.name)) found.push(`work layer of a dead process: ${rw.name}`);
  for (const id of store.layers.orphanDriverLayers()) found.push(`${store.layers.driver.name} layer that nothing names: ${id}`);
  for (const dir of staleCgroups()) found.push(`empty cgroup of a finished container: ${dir}`);
  let repairing: Promise<string> | undefined;
  const repairAll = () =>
    (repairing ??= (async () => {
      await store.repairLeftovers();
      await store.layers.repairNow();
      return 'removed';
    })());
  for (const message of found) await problem('leftover', message, repairAll);

  // A container is created layer first, record second (a --rm one record first), and removed layer
  // first: only what stayed that way for a while is left over, not a container being created or
  // removed right now.
  const settled = (createdAt: number | undefined) => createdAt !== undefined && Date.now() - createdAt > SETTLE_MS;
  const containers = new Containers(store);
  const records = containers.list();
  const layerNames = new Set(records.map((r) => containerLayerName(r.id)));
  for (const rw of store.layers.listRW()) {
    if (!rw.name.startsWith('ctr-') || layerNames.has(rw.name) || !settled(store.layers.rwCreatedAt(rw.name))) continue;
    await problem('leftover', `container layer without a container: ${rw.name}`, async () => {
      await rw.unmount().catch(() => {});
      await store.layers.removeRW(rw.name);
      return 'removed';
    });
  }
  for (const r of records) {
    if (store.layers.getRW(containerLayerName(r.id)) || !settled(Date.parse(r.created))) continue;
    await problem('leftover', `container ${r.name} (${r.id.slice(0, 12)}) has lost its layer`, async () => {
      await containers.remove(r.id, { force: true });
      return 'removed';
    });
  }
}
