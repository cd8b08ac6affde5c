// The three benchmark workloads of ../shared/bench/mkworkloads.sh (app, bigcopy, layers100), generated
// here at a reduced size so the file stays fast: bigcopy has 400 x 16 KiB files and one 16 MiB file
// (not 4000 and 256 MiB); app and layers100 are as in the script. The base is our busybox, tagged
// `bench-base` as the script's Dockerfiles expect. Each image is built, run with the CLI, saved as an
// OCI archive that skopeo inspects and umoci unpacks (and the unpacked tree must equal our own mount
// of the image), and rebuilt from the cache.
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { build, type BuildEvent } from '@tsbuild/builder';
import { busyboxTarball, cli, mountsUnder, useTestRoot } from './helpers/roots';
import { captureTree, diffTrees } from './helpers/tree';
import { writeAppWorkload } from './helpers/bench-workloads';

const t = useTestRoot({ base: false });

beforeEach(async () => {
  await t.store.importTarball(busyboxTarball(), 'bench-base');
});

/** `n` incompressible bytes, the same for the same seed (an AES-CTR keystream, as the script's openssl). */
function prand(n: number, seed: string): Buffer {
  const key = crypto.createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = crypto.createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(n)), cipher.final()]);
}

function workload(name: string): string {
  const dir = path.join(t.work, name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

function makeApp(): string {
  return writeAppWorkload(workload('app'));
}

const SMALL_FILES = 400;
const SMALL_SIZE = 16384;
const BIG_SIZE = 16 << 20;

function makeBigcopy(): string {
  const dir = workload('bigcopy');
  const small = path.join(dir, 'data', 'small');
  fs.mkdirSync(small, { recursive: true });
  const blob = prand(SMALL_FILES * SMALL_SIZE, 'small');
  for (let i = 0; i < SMALL_FILES; i++) {
    fs.writeFileSync(path.join(small, `f${String(i).padStart(4, '0')}`), blob.subarray(i * SMALL_SIZE, (i + 1) * SMALL_SIZE));
  }
  fs.writeFileSync(path.join(dir, 'data', 'big.bin'), prand(BIG_SIZE, 'big'));
  fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM bench-base\nCOPY data/ /data/\nRUN du -s /data > /data.size\nCMD ["cat","/data.size"]\n');
  return dir;
}

function makeLayers100(): string {
  const dir = workload('layers100');
  const lines = ['FROM bench-base'];
  for (let i = 1; i <= 100; i++) lines.push(`RUN echo ${i} > /f${i}`);
  lines.push('CMD ["ls","/"]', '');
  fs.writeFileSync(path.join(dir, 'Dockerfile'), lines.join('\n'));
  return dir;
}

async function buildImage(ctx: string, tag: string) {
  const events: BuildEvent[] = [];
  const result = await build({ context: ctx, tags: [tag] }, { store: t.store, onEvent: (e) => events.push(e) });
  const names = new Map<number, string>();
  for (const e of events) if (e.type === 'step-start') names.set(e.vertex, e.name);
  const stepsOf = (type: BuildEvent['type']) =>
    events.filter((e): e is Extract<BuildEvent, { vertex: number }> => e.type === type && 'vertex' in e).map((e) => names.get(e.vertex)!);
  return { result, events, cached: stepsOf('step-cached'), built: stepsOf('step-done').filter((n) => !/\] FROM /.test(n)) };
}

/** `tsbuild run --rm IMAGE [CMD]` through the compiled CLI. */
function runCli(image: string, cmd: string[] = []): { status: number | null; stdout: string; stderr: string } {
  return cli(t.root, ['run', '--rm', image, ...cmd]);
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
}

/**
 * Saves `ref` as an OCI archive, checks what skopeo reads from it, unpacks it with umoci and expects
 * umoci's tree to equal our own mount of the image. Returns the number of layers skopeo saw.
 */
async function interop(ref: string): Promise<number> {
  const archive = path.join(t.work, `${ref}.oci.tar`);
  await t.store.save([ref], archive, 'oci');
  const inspected = JSON.parse(sh('skopeo', ['inspect', `oci-archive:${archive}`])) as { Layers: string[]; Architecture: string; Os: string };
  const { config, chainID } = await t.store.imageChain(ref);
  expect(inspected.Layers).toHaveLength(config.rootfs.diff_ids.length);
  expect(inspected.Os).toBe('linux');

  const layout = path.join(t.work, `${ref}-layout`);
  const bundle = path.join(t.work, `${ref}-bundle`);
  fs.mkdirSync(layout);
  sh('tar', ['-xf', archive, '-C', layout]);
  fs.rmSync(archive);
  sh('umoci', ['unpack', '--image', `${layout}:${ref}:latest`, bundle]);
  const theirs = captureTree(path.join(bundle, 'rootfs'));
  fs.rmSync(bundle, { recursive: true, force: true });
  fs.rmSync(layout, { recursive: true, force: true });

  const rootfs = await t.store.layers.mount(chainID!);
  try {
    expect(diffTrees(theirs, captureTree(rootfs), ['umoci', 'tsbuild'])).toEqual([]);
  } finally {
    await t.store.layers.unmount(chainID!);
  }
  return inspected.Layers.length;
}

describe('benchmark workloads (reduced)', () => {
  it('app: builds, runs as user 1000, survives skopeo and umoci, caches, and rebuilds from the changed COPY', async () => {
    const ctx = makeApp();
    const first = await buildImage(ctx, 'app');
    expect(first.cached).toEqual([]);
    const config = first.result.config.config;
    expect(config.User).toBe('1000');
    expect(config.WorkingDir).toBe('/app');
    expect(config.ExposedPorts).toEqual({ '8080/tcp': {} });
    expect(config.Labels).toEqual({ 'org.example.bench': 'app' });
    expect(config.Env).toContain('MODE=prod');

    const run = runCli('app');
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('built\n');
    expect(run.status).toBe(0);
    const facts = runCli('app', ['sh', '-c', 'id -u; cat /app/count; wc -l < /app/log; cat /app/config.json; ls /app/src | wc -l']);
    expect(facts.stdout.split('\n').map((l) => l.trim())).toEqual(['1000', '199', '200', '{"name":"bench","port":8080}', '199', '']);

    // The base + 5 layers: WORKDIR /app finds the directory RUN made and adds no layer.
    expect(await interop('app')).toBe(6);

    const second = await buildImage(ctx, 'app');
    expect(second.built).toEqual([]);
    expect(second.cached).toHaveLength(6);
    expect(second.result.imageId).toBe(first.result.imageId);

    fs.writeFileSync(path.join(ctx, 'src', 'm7.js'), 'export const v7 = "changed";\n');
    const third = await buildImage(ctx, 'app');
    expect(third.cached.map((n) => n.replace(/^\[[^\]]*\] /, ''))).toEqual(['RUN mkdir -p /app && echo built > /app/stamp', 'WORKDIR /app']);
    expect(third.built.map((n) => n.replace(/^\[[^\]]*\] /, ''))).toEqual([
      'COPY src/ /app/src/',
      'RUN for i in $(seq 1 200); do echo line$i >> /app/log; done',
      'RUN rm /app/src/m1.js && ls /app/src | wc -l > /app/count',
      'COPY config.json /app/',
    ]);
    const misses = third.events.filter((e): e is Extract<BuildEvent, { type: 'step-cache-miss' }> => e.type === 'step-cache-miss');
    expect(misses[0]!.reason).toContain('the content of the sources changed');
    expect(runCli('app', ['cat', '/app/src/m7.js']).stdout).toBe('export const v7 = "changed";\n');
  });

  it('bigcopy: 400 small files and 16 MiB copied byte for byte, du runs over them, cached rebuild', async () => {
    const ctx = makeBigcopy();
    const first = await buildImage(ctx, 'bigcopy');
    const run = runCli('bigcopy');
    expect(run.status).toBe(0);
    const m = /^(\d+)\t\/data\n$/.exec(run.stdout);
    expect(m, run.stdout + run.stderr).not.toBeNull();
    // du counts KiB of allocated blocks: at least the bytes written.
    expect(Number(m![1])).toBeGreaterThanOrEqual((SMALL_FILES * SMALL_SIZE + BIG_SIZE) / 1024);

    const { chainID } = await t.store.imageChain('bigcopy');
    const rootfs = await t.store.layers.mount(chainID!);
    try {
      const tree = captureTree(path.join(rootfs, 'data'), { xattrs: false });
      const source = captureTree(path.join(ctx, 'data'), { xattrs: false });
      // Same names, sizes and bytes; owners are root (COPY from the context) and the new /data is
      // 0755 root whatever the context directory's mode.
      const files = (entries: typeof tree) => entries.filter((e) => e.type === 'file').map((e) => [e.path, e.size, e.sha256, e.mode]);
      expect(files(tree)).toEqual(files(source));
      expect(files(tree)).toHaveLength(SMALL_FILES + 1);
      expect(tree.every((e) => e.uid === 0 && e.gid === 0)).toBe(true);
      expect(tree.find((e) => e.path === '.')).toMatchObject({ type: 'dir', mode: 0o755 });
    } finally {
      await t.store.layers.unmount(chainID!);
    }

    expect(await interop('bigcopy')).toBe(3);
    const second = await buildImage(ctx, 'bigcopy');
    expect(second.built).toEqual([]);
    expect(second.result.imageId).toBe(first.result.imageId);
  });

  it('layers100: 101 layers that mount as one overlay with more than 100 lower layers', async () => {
    const ctx = makeLayers100();
    const first = await buildImage(ctx, 'layers100');
    expect(first.result.config.rootfs.diff_ids).toHaveLength(101);

    const run = runCli('layers100');
    expect(run.status).toBe(0);
    const names = run.stdout.split('\n').filter(Boolean);
    for (let i = 1; i <= 100; i++) expect(names).toContain(`f${i}`);
    expect(runCli('layers100', ['cat', '/f1', '/f50', '/f100']).stdout).toBe('1\n50\n100\n');

    // Our own mount of the chain: one overlay whose lower layers number more than 100.
    const { chainID } = await t.store.imageChain('layers100');
    const rootfs = await t.store.layers.mount(chainID!);
    try {
      const line = fs
        .readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .find((l) => l.split(' ')[4] === rootfs);
      expect(line, `no mount at ${rootfs}`).toBeDefined();
      const [, after] = line!.split(' - ');
      const [fstype, , superOpts] = after!.split(' ');
      expect(fstype).toBe('overlay');
      expect(lowerCount(superOpts!)).toBeGreaterThan(100);
      for (let i = 1; i <= 100; i++) expect(fs.readFileSync(path.join(rootfs, `f${i}`), 'utf8')).toBe(`${i}\n`);
    } finally {
      await t.store.layers.unmount(chainID!);
    }
    expect(mountsUnder(t.root)).toEqual([]);

    expect(await interop('layers100')).toBe(101);
    const second = await buildImage(ctx, 'layers100');
    expect(second.built).toEqual([]);
    expect(second.cached).toHaveLength(100);
    expect(second.result.imageId).toBe(first.result.imageId);
  });
});

/** Lower layers in overlay's super options: `lowerdir=a:b:c` and/or one `lowerdir+=` per layer. */
function lowerCount(superOpts: string): number {
  let n = 0;
  for (const opt of superOpts.split(',')) {
    if (opt.startsWith('lowerdir+=')) n++;
    else if (opt.startsWith('lowerdir=')) n += opt.slice('lowerdir='.length).split(/(?<!\\):/).length;
  }
  return n;
}
