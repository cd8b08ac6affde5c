// Storage acceptance on real roots: a capability xattr and a large uid survive import → save → load →
// mount byte for byte; kill -9 in the middle of an import leaves a store the next command opens
// cleanly; many containers in a row leave nothing behind.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { lgetxattr, lsetxattr } from '@tsbuild/native';
import { Containers, packDir } from '@tsbuild/storage';
import { CLI, cli, mountsUnder, openTestRoot, type TestRoot } from './helpers/roots';

const roots: TestRoot[] = [];
afterEach(async () => {
  for (const r of roots.splice(0)) await r.close();
});
async function root(opts: Parameters<typeof openTestRoot>[0] = {}) {
  const r = await openTestRoot(opts);
  roots.push(r);
  return r;
}

/** SIGKILLs a CLI process mid-operation; the next command (repairing) lists no image `tag` and leaves no mount. */
async function killAndCheck(child: ChildProcess, root: string, tag: string): Promise<void> {
  child.kill('SIGKILL');
  await new Promise((res) => child.on('close', res));
  const images = cli(root, ['images', '-a']);
  expect(images.status).toBe(0);
  expect(images.stdout).not.toContain(tag);
  expect(mountsUnder(root)).toEqual([]);
}

/** VFS_CAP_REVISION_2: cap_net_bind_service in permitted, effective bit set. */
const CAPABILITY = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

describe('round trips', () => {
  for (const format of ['oci', 'docker'] as const) {
    it(`security.capability and uid 1000000 survive import → save (${format}) → load → mount`, async () => {
      const a = await root({ base: false });
      const tree = path.join(a.work, 'tree');
      fs.mkdirSync(path.join(tree, 'bin'), { recursive: true });
      const ping = path.join(tree, 'bin', 'ping');
      fs.writeFileSync(ping, crypto.randomBytes(4096), { mode: 0o755 });
      lsetxattr(ping, 'security.capability', CAPABILITY);
      const owned = path.join(tree, 'owned');
      fs.writeFileSync(owned, 'big uid');
      fs.chownSync(owned, 1000000, 1000000);
      const tarball = path.join(a.work, 'rootfs.tar');
      await new Promise<void>((resolve, reject) => {
        packDir(tree, { whiteouts: 'none' }).pipe(fs.createWriteStream(tarball)).on('finish', resolve).on('error', reject);
      });
      await a.store.importTarball(tarball, 'caps:latest');
      const archive = path.join(a.work, `caps-${format}.tar`);
      await a.store.save(['caps:latest'], archive, format);

      const b = await root({ base: false });
      const loaded = await b.store.load(archive);
      expect(loaded.images).toEqual(['caps:latest']);
      const { chainID } = await b.store.imageChain('caps:latest');
      const mounted = await b.store.layers.mount(chainID!);
      try {
        const got = path.join(mounted, 'bin', 'ping');
        expect(lgetxattr(got, 'security.capability')).toEqual(CAPABILITY);
        expect(fs.readFileSync(got)).toEqual(fs.readFileSync(ping));
        expect(fs.statSync(got).mode & 0o7777).toBe(0o755);
        const st = fs.statSync(path.join(mounted, 'owned'));
        expect([st.uid, st.gid]).toEqual([1000000, 1000000]);
      } finally {
        await b.store.layers.unmount(chainID!);
      }
    });
  }
});

describe('crash safety', () => {
  it('kill -9 during a 300 MB import: the next command works and nothing incomplete remains', async () => {
    const r = await root({ base: false });
    const data = path.join(r.work, 'data');
    fs.mkdirSync(data);
    // Three 100 MB files: the import is well under way when it is killed.
    for (const name of ['a', 'b', 'c']) {
      const fd = fs.openSync(path.join(data, name), 'w');
      const chunk = crypto.randomBytes(1 << 20);
      for (let i = 0; i < 100; i++) fs.writeSync(fd, chunk);
      fs.closeSync(fd);
    }
    const tarball = path.join(r.work, 'big.tar');
    expect(spawnSync('tar', ['-C', data, '-cf', tarball, '.']).status).toBe(0);
    await r.store.close();

    const child = spawn(process.execPath, [CLI, '--root', r.root, 'import', tarball, 'big:latest'], { stdio: 'ignore' });
    // Wait until the import has written a good part of its blob, then kill it.
    const ingest = path.join(r.root, 'oci', 'ingest');
    for (let i = 0; i < 400; i++) {
      const sizes = fs.existsSync(ingest) ? fs.readdirSync(ingest).map((f) => fs.statSync(path.join(ingest, f)).size) : [];
      if (sizes.some((s) => s > 100 << 20)) break;
      await new Promise((res) => setTimeout(res, 25));
    }
    await killAndCheck(child, r.root, 'big');
    expect(fs.readdirSync(path.join(r.root, 'layers', 'tmp'))).toEqual([]);
    expect(fs.readdirSync(path.join(r.root, 'layers', 'sha256'))).toEqual([]);
    expect(fs.readdirSync(ingest)).toEqual([]);
    expect(fs.readdirSync(path.join(r.root, 'overlay2')).filter((d) => d !== 'l')).toEqual([]);
    // And the store still takes the same import.
    expect(cli(r.root, ['import', tarball, 'big:latest']).status).toBe(0);
  });
});

describe('leases', () => {
  it('concurrent adds (parallel stages) all land in the lease file', async () => {
    const r = await root({ base: false });
    const lease = await r.store.lease();
    const chains = Array.from({ length: 30 }, (_, i) => `sha256:${String(i).padStart(64, '0')}`);
    await Promise.all(chains.map((c) => lease.add(c)));
    const dir = path.join(r.root, 'leases');
    const files = fs.readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(new Set(JSON.parse(fs.readFileSync(path.join(dir, files[0]!), 'utf8')))).toEqual(new Set(chains));
    await lease.release();
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('crash safety of builds', () => {
  it('kill -9 during a RUN step: the next command removes the work layer and its mount', async () => {
    const r = await root();
    const ctx = path.join(r.work, 'ctx');
    fs.mkdirSync(ctx);
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo started > /started && sleep 60\n');
    await r.store.close();
    const child = spawn(process.execPath, [CLI, '--root', r.root, 'build', '-t', 'killed', ctx], { stdio: 'ignore' });
    const rwDir = path.join(r.root, 'layers', 'mounts');
    for (let i = 0; i < 400 && !(fs.existsSync(rwDir) && fs.readdirSync(rwDir).length > 0 && mountsUnder(r.root).length > 0); i++) {
      await new Promise((res) => setTimeout(res, 25));
    }
    expect(mountsUnder(r.root).length).toBeGreaterThan(0);
    // The RUN container's state dir names its cgroups.
    const scratch = path.join(r.root, 'tmp');
    const named = () => (fs.existsSync(scratch) ? fs.readdirSync(scratch) : []).find((n) => n.includes('ctr-') && fs.existsSync(path.join(scratch, n, 'container-id')));
    for (let i = 0; i < 400 && !named(); i++) await new Promise((res) => setTimeout(res, 25));
    const stateDir = named();
    expect(stateDir).toBeDefined();
    const id = fs.readFileSync(path.join(scratch, stateDir!, 'container-id'), 'utf8');
    const groups = () => ['memory', 'pids', 'cpu', 'devices', 'freezer', 'blkio'].map((c) => path.join('/sys/fs/cgroup', c, 'tsbuild', id)).filter((d) => fs.existsSync(d));
    expect(groups().length).toBeGreaterThan(0);
    // The container dies with tsbuild (PDEATHSIG); its mounts die with its namespace, the work layer's
    // overlay is what the next command must take down, and its groups (not a sweep a minute later,
    // while every store's fsck would list them).
    await killAndCheck(child, r.root, 'killed');
    expect(fs.readdirSync(rwDir)).toEqual([]);
    expect(groups()).toEqual([]);
    // The step's scratch and the container's state lived under the root: repaired away too.
    // (A kill that comes before the step made its scratch leaves no tmp/ at all.)
    const tmp = path.join(r.root, 'tmp');
    expect(fs.existsSync(tmp) ? fs.readdirSync(tmp) : []).toEqual([]);
  });
});

describe('containers', () => {
  it('500 sequential run --rm leave no mounts, RW layers, cgroups or records', async () => {
    const r = await root();
    const containers = new Containers(r.store);
    const ids: string[] = [];
    for (let i = 0; i < 500; i++) {
      const { record, process: proc } = await containers.create({ image: 'busybox', cmd: ['true'] });
      ids.push(record.id);
      const { finished } = await containers.start(record, proc, { stdio: 'inherit' });
      expect((await finished).exitCode).toBe(0);
      await containers.remove(record.id);
    }
    expect(mountsUnder(r.root)).toEqual([]);
    expect(r.store.layers.listRW()).toEqual([]);
    expect(containers.list()).toEqual([]);
    const leftCgroups = ids.filter((id) => fs.existsSync(`/sys/fs/cgroup/pids/tsbuild/${id}`));
    expect(leftCgroups).toEqual([]);
  }, 300_000);

  it('an autoRemove container is gone when finished resolves: record, RW layer, its files, mount, cgroups', async () => {
    const r = await root();
    const containers = new Containers(r.store);
    const overlayDirs = () => fs.readdirSync(path.join(r.root, 'overlay2')).sort();
    const before = overlayDirs();
    const { record, process: proc } = await containers.create({ image: 'busybox', cmd: ['sh', '-c', 'mkdir -p /a/b && echo x > /a/b/f; exit 3'], autoRemove: true });
    const { finished } = await containers.start(record, proc, { stdio: 'inherit' });
    expect(await finished).toMatchObject({ exitCode: 3, removed: true });
    // Nothing for the caller to remove: no record (not even one of its exit), no RW layer or its files.
    expect(containers.list()).toEqual([]);
    expect(r.store.layers.listRW()).toEqual([]);
    expect(overlayDirs()).toEqual(before);
    expect(mountsUnder(r.root)).toEqual([]);
    expect(fs.existsSync(`/sys/fs/cgroup/pids/tsbuild/${record.id}`)).toBe(false);
    expect(fs.readdirSync(path.join(r.root, 'tmp'))).toEqual([]);
    expect(fs.readdirSync(path.join(r.root, 'layers', 'tmp'))).toEqual([]);
  });

  it('a running record whose process is gone stays running while its owner lives (the exit is being recorded)', async () => {
    const r = await root();
    const containers = new Containers(r.store);
    // A --rm container's record names this process as its creator: a token of a live process.
    const { record: rm } = await containers.create({ image: 'busybox', cmd: ['true'], autoRemove: true });
    const liveToken = (JSON.parse(fs.readFileSync(path.join(r.root, 'containers', `${rm.id}.json`), 'utf8')) as { creator: string }).creator;
    const { record } = await containers.create({ image: 'busybox', cmd: ['true'] });
    const file = path.join(r.root, 'containers', `${record.id}.json`);
    // Between a detached container's exit and its supervisor's record of it: the process is gone (pid 1's
    // start time is never 1), the owner is alive. `wait` read 137 here for a container that exited 0.
    fs.writeFileSync(file, JSON.stringify({ ...record, state: 'running', pid: 1, pidToken: '1.1', owner: liveToken }));
    expect(containers.find(record.id).state).toBe('running');
    await r.store.repairLeftovers();
    expect((JSON.parse(fs.readFileSync(file, 'utf8')) as { state: string }).state).toBe('running');
    // Its owner gone too: killed with its tsbuild.
    fs.writeFileSync(file, JSON.stringify({ ...record, state: 'running', pid: 1, pidToken: '1.1', owner: '1.1' }));
    expect(containers.find(record.id)).toMatchObject({ state: 'exited', exitCode: 137 });
    await r.store.repairLeftovers();
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ state: 'exited', exitCode: 137 });
    await containers.remove(record.id);
    await containers.remove(rm.id);
  });

  it('an autoRemove container whose creator died before starting it is removed by the next open', async () => {
    const r = await root();
    const containers = new Containers(r.store);
    const { record } = await containers.create({ image: 'busybox', cmd: ['true'], autoRemove: true });
    const { record: kept } = await containers.create({ image: 'busybox', cmd: ['true'] });
    const file = path.join(r.root, 'containers', `${record.id}.json`);
    const written = JSON.parse(fs.readFileSync(file, 'utf8')) as { creator?: string };
    expect(written.creator).toMatch(/^\d+\.\d+$/);
    // As a kill -9 of the creating tsbuild leaves it: a created record of a process that is gone
    // (pid 1's start time is never 1).
    fs.writeFileSync(file, JSON.stringify({ ...written, creator: '1.1' }));
    // Killed before its layer was made (the record comes first): the record alone goes too.
    const bare = { ...written, id: 'f'.repeat(64), name: 'bare', creator: '1.1' };
    fs.writeFileSync(path.join(r.root, 'containers', `${bare.id}.json`), JSON.stringify(bare));
    await r.store.repairLeftovers();
    expect(containers.list().map((c) => c.id)).toEqual([kept.id]); // a plain `create` stays, as docker's
    expect(r.store.layers.listRW().map((l) => l.name)).toEqual([`ctr-${kept.id.slice(0, 32)}`]);
    await containers.remove(kept.id);
  });
});
