// The image store and transports against real peers: skopeo and umoci read the live store and our
// OCI archives, podman and a throwaway dockerd load our docker-archives and run them, and we load
// what podman saves.
import { execFile, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxRootfs } from '../fixtures/busybox';
import { MediaTypes } from '../packages/storage/src/content';
import { ImageStore } from '../packages/storage/src/image';
import { loadArchive, saveDockerArchive, saveOciArchive } from '../packages/storage/src/transport';
import { makeBusyboxImage, recordingImporter } from './helpers/images';
import { startDockerd, type Dockerd } from './peers/dockerd';
import { CLI, busyboxTarball, cli, mountsUnder } from './helpers/roots';
import { makePodman, type Podman } from './peers/podman';

const run = promisify(execFile);

async function sh(cmd: string, args: string[], timeoutMs = 120_000): Promise<string> {
  try {
    return (await run(cmd, args, { timeout: timeoutMs, maxBuffer: 64 << 20 })).stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}

/** Relative path → type (+ symlink target, file mode) of everything under `root`. */
function listTree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(root, r));
      if (st.isSymbolicLink()) out.push(`${r} -> ${fs.readlinkSync(path.join(root, r))}`);
      else if (st.isDirectory()) {
        out.push(`${r}/ ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`);
        walk(r);
      } else out.push(`${r} ${(st.mode & 0o7777).toString(8)} ${st.size}`);
    }
  };
  walk('');
  return out;
}

const sha256File = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

describe('interop: image store and transports with real peers', () => {
  let tmp: string;
  let store: ImageStore;
  let bb: Awaited<ReturnType<typeof makeBusyboxImage>>;
  let ociArchive: string;
  let dockerArchive: string;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-interop-'));
    store = await ImageStore.open(path.join(tmp, 'store'));
    bb = await makeBusyboxImage(store, tmp, 'tsb-busybox:1.0', { materializeLater: true });
    ociArchive = path.join(tmp, 'bb.oci.tar');
    dockerArchive = path.join(tmp, 'bb.docker.tar');
  });
  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('skopeo inspects the live store as oci:<root>/oci:<name:tag>', async () => {
    const out = JSON.parse(await sh('skopeo', ['inspect', `oci:${path.join(tmp, 'store', 'oci')}:tsb-busybox:1.0`]));
    expect(out.Digest).toBe(bb.manifest.digest);
    expect(out.Layers).toEqual([bb.diffID]);
    expect(out.Architecture).toBe('amd64');
    expect(out.Os).toBe('linux');
    const config = JSON.parse(await sh('skopeo', ['inspect', '--config', `oci:${path.join(tmp, 'store', 'oci')}:tsb-busybox:1.0`]));
    expect(config.rootfs.diff_ids).toEqual([bb.diffID]);
    // After materializing, skopeo can copy straight out of the live store.
    await store.materializeImage('tsb-busybox:1.0');
    const dir = path.join(tmp, 'live-copy');
    await sh('skopeo', ['copy', `oci:${path.join(tmp, 'store', 'oci')}:tsb-busybox:1.0`, `dir:${dir}`]);
    expect(fs.existsSync(path.join(dir, bb.diffID.slice(7)))).toBe(true);
  });

  it('skopeo reads and copies our OCI archive; umoci unpacks it to the fixture tree', async () => {
    await saveOciArchive(store, ['tsb-busybox:1.0'], ociArchive);
    const gz = await store.findLayerBlob(bb.diffID, MediaTypes.ociLayerGzip);
    const inspected = JSON.parse(await sh('skopeo', ['inspect', `oci-archive:${ociArchive}:tsb-busybox:1.0`]));
    expect(inspected.Layers).toEqual([gz!.digest]);
    const cfg = JSON.parse(await sh('skopeo', ['inspect', '--config', `oci-archive:${ociArchive}`]));
    expect(cfg.rootfs.diff_ids).toEqual([bb.diffID]);
    const copied = path.join(tmp, 'skopeo-dir');
    await sh('skopeo', ['copy', `oci-archive:${ociArchive}:tsb-busybox:1.0`, `dir:${copied}`]);
    expect(JSON.parse(fs.readFileSync(path.join(copied, 'manifest.json'), 'utf8')).config.digest).toBe(bb.id);
    expect(sha256File(path.join(copied, gz!.digest.slice(7)))).toBe(gz!.digest.slice(7));

    const layout = path.join(tmp, 'extracted');
    fs.mkdirSync(layout);
    await sh('tar', ['-xf', ociArchive, '-C', layout]);
    const bundle = path.join(tmp, 'bundle');
    await sh('umoci', ['unpack', '--image', `${layout}:tsb-busybox:1.0`, bundle]);
    const fixture = makeBusyboxRootfs(path.join(tmp, 'fixture-rootfs'));
    expect(listTree(path.join(bundle, 'rootfs'))).toEqual(listTree(fixture));
    expect(sha256File(path.join(bundle, 'rootfs/bin/busybox'))).toBe(sha256File('/bin/busybox'));
  });

  // The oci-layout sink: one file in transport/sinks, reached from save --format and build -o type=.
  it('tsbuild save --format oci-layout and build -o type=oci-layout write directories skopeo and umoci read', async () => {
    const root = path.join(tmp, 'cli-root');
    expect(cli(root, ['import', busyboxTarball(), 'layout:1']).status).toBe(0);
    const saved = path.join(tmp, 'saved-layout');
    const r = cli(root, ['save', '--format', 'oci-layout', '-o', saved, 'layout:1']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const inspected = JSON.parse(await sh('skopeo', ['inspect', `oci:${saved}:layout:1`]));
    const cfg = JSON.parse(await sh('skopeo', ['inspect', '--config', `oci:${saved}:layout:1`]));
    expect(inspected.Layers).toHaveLength(1);
    expect(cfg.rootfs.diff_ids).toHaveLength(1);
    const bundle = path.join(tmp, 'layout-bundle');
    await sh('umoci', ['unpack', '--image', `${saved}:layout:1`, bundle]);
    expect(sha256File(path.join(bundle, 'rootfs/bin/busybox'))).toBe(sha256File('/bin/busybox'));

    const ctx = path.join(tmp, 'layout-ctx');
    fs.mkdirSync(ctx);
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM layout:1\nRUN echo built > /built.txt\n');
    const built = path.join(tmp, 'built-layout');
    const b = cli(root, ['build', '-q', '-t', 'layout:2', '-o', `type=oci-layout,dest=${built}`, ctx]);
    expect(b.stderr).toBe('');
    expect(b.status).toBe(0);
    const builtInspect = JSON.parse(await sh('skopeo', ['inspect', `oci:${built}:layout:2`]));
    expect(builtInspect.Layers).toHaveLength(2);
    expect(builtInspect.Layers[0]).toBe(inspected.Layers[0]); // the base's gzip blob, compressed once and kept
    const builtBundle = path.join(tmp, 'built-layout-bundle');
    await sh('umoci', ['unpack', '--image', `${built}:layout:2`, builtBundle]);
    expect(fs.readFileSync(path.join(builtBundle, 'rootfs/built.txt'), 'utf8')).toBe('built\n');
    // buildx's spelling of the same output.
    const buildx = path.join(tmp, 'buildx-layout');
    expect(cli(root, ['build', '-q', '-t', 'layout:2', '-o', `type=oci,dest=${buildx},tar=false`, ctx]).status).toBe(0);
    expect(JSON.parse(await sh('skopeo', ['inspect', `oci:${buildx}:layout:2`])).Digest).toBe(builtInspect.Digest);

    // A directory cannot go to stdout; an unknown format names the registered ones.
    const piped = cli(root, ['save', '--format', 'oci-layout', 'layout:1']);
    expect(piped.status).not.toBe(0);
    expect(piped.stderr).toMatch(/format oci-layout writes a directory: give -o DIR/);
    const unknown = cli(root, ['save', '--format', 'nope', '-o', path.join(tmp, 'x.tar'), 'layout:1']);
    expect(unknown.stderr).toMatch(/unknown format "nope": use docker-oci, oci, docker, oci-layout/);
    const badOutput = cli(root, ['build', '-o', 'type=nope,dest=x', ctx]);
    expect(badOutput.stderr).toMatch(/unknown output type "nope": use docker-oci, oci, docker, oci-layout, local, tar/);
  });

  describe('podman', () => {
    let pm: Podman;
    beforeAll(() => {
      pm = makePodman();
    });
    afterAll(async () => {
      await pm?.cleanup();
    });

    it('loads and runs our docker-archive; we load what it saves in both formats', async () => {
      await saveDockerArchive(store, ['tsb-busybox:1.0'], dockerArchive);
      const loaded = await pm.podman(['load', '-i', dockerArchive]);
      expect(loaded.stdout).toMatch(/Loaded image: docker\.io\/library\/tsb-busybox:1\.0/);
      const id = (await pm.podman(['image', 'inspect', '--format', '{{.Id}}', 'docker.io/library/tsb-busybox:1.0'])).stdout.trim();
      expect(`sha256:${id}`).toBe(bb.id);
      const ran = await pm.podman(['run', '--rm', '--network', 'none', 'tsb-busybox:1.0', '/bin/sh', '-c', 'echo hi']);
      expect(ran.stdout).toBe('hi\n');
      if (!fs.existsSync(ociArchive)) await saveOciArchive(store, ['tsb-busybox:1.0'], ociArchive);
      await pm.podman(['rmi', 'tsb-busybox:1.0']);
      // Our OCI archive loads under the same name.
      const fromOci = await pm.podman(['load', '-i', ociArchive]);
      expect(fromOci.stdout).toMatch(/Loaded image: docker\.io\/library\/tsb-busybox:1\.0/);
      const ran2 = await pm.podman(['run', '--rm', '--network', 'none', 'tsb-busybox:1.0', '/bin/sh', '-c', 'echo hi from oci']);
      expect(ran2.stdout).toBe('hi from oci\n');

      for (const format of ['docker-archive', 'oci-archive']) {
        const file = path.join(tmp, `podman.${format}.tar`);
        await pm.podman(['save', '--format', format, '-o', file, 'tsb-busybox:1.0']);
        const target = await ImageStore.open(path.join(tmp, `from-podman-${format}`));
        const { importer, seen } = recordingImporter();
        const res = await loadArchive(target, file, { importer });
        expect(seen.map((s) => [s.parent, s.diffID, s.digest])).toEqual([[null, bb.diffID, bb.diffID]]);
        expect(res.ids).toEqual([bb.id]);
        const img = await target.resolve(bb.id);
        expect(img.config.rootfs.diff_ids).toEqual([bb.diffID]);
        // podman names it docker.io/library/tsb-busybox:1.0 (docker-archive) or by ref.name (OCI).
        expect(res.images.length).toBe(1);
        expect(res.images[0]).toMatch(/tsb-busybox:1\.0$/);
      }
    });
  });

  describe('docker', () => {
    let dockerd: Dockerd | undefined;
    beforeAll(async () => {
      dockerd = await startDockerd();
    });
    afterAll(async () => {
      await dockerd?.stop();
    });

    it('docker load + docker run of our docker-archive', async () => {
      if (!fs.existsSync(dockerArchive)) await saveDockerArchive(store, ['tsb-busybox:1.0'], dockerArchive);
      const d = dockerd!;
      const loaded = await d.docker(['load', '-i', dockerArchive]);
      expect(loaded.stdout).toMatch(/Loaded image: tsb-busybox:1\.0/);
      const id = (await d.docker(['image', 'inspect', '--format', '{{.Id}}', 'tsb-busybox:1.0'])).stdout.trim();
      expect(id).toBe(bb.id);
      const ran = await d.docker(['run', '--rm', '--network', 'none', 'tsb-busybox:1.0', 'echo', 'hi']);
      expect(ran.stdout).toBe('hi\n');
      // And back: what docker 20.10 saves (<id>/layer.tar, <id>.json, repositories) loads here.
      const saved = path.join(tmp, 'docker-saved.tar');
      await d.docker(['save', '-o', saved, 'tsb-busybox:1.0']);
      const target = await ImageStore.open(path.join(tmp, 'from-docker'));
      const { importer, seen } = recordingImporter();
      expect(await loadArchive(target, saved, { importer })).toEqual({ images: ['tsb-busybox:1.0'], ids: [bb.id] });
      expect(seen.map((x) => [x.parent, x.diffID, x.digest])).toEqual([[null, bb.diffID, bb.diffID]]);
    });

    it('tsbuild save IMAGE | docker load: the default archive format, written to a pipe', async () => {
      const root = path.join(tmp, 'cli-root');
      expect(cli(root, ['import', busyboxTarball(), 'piped:1']).status).toBe(0);
      const d = dockerd!;
      const piped = spawnSync('sh', ['-c', `"${process.execPath}" "${CLI}" --root "${root}" save piped:1 | docker load`], {
        encoding: 'utf8',
        env: { ...process.env, DOCKER_HOST: d.host, DOCKER_CONFIG: path.join(d.dir, 'cli') },
      });
      expect(piped.stderr).toBe('');
      expect(piped.stdout).toMatch(/Loaded image: piped:1/);
      const ran = await d.docker(['run', '--rm', '--network', 'none', 'piped:1', 'echo', 'piped']);
      expect(ran.stdout).toBe('piped\n');
      const mounts = mountsUnder(root);
      expect(mounts).toEqual([]);
    });
  });
});
