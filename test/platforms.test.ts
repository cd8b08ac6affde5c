// Multi-platform images (issue 16) against the real kernel and peers: an arm64 busybox base from
// Debian's busybox-static:arm64 and the amd64 one under one name as an index; builds for linux/amd64
// and linux/arm64 with a RUN under qemu-user-static through a binfmt_misc handler that this file
// registers and removes itself; the clear error without one; a cross-compiling Dockerfile that needs
// no emulation; the index through save, push, skopeo and podman. Emulated work is one `uname -m` per
// build: qemu is slow.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BINFMT_DIR, Store, binfmtHandlersFor, emulationFor, type Platform } from '@tsbuild/storage';
import { build } from '@tsbuild/builder';
import { busyboxArm64Tar } from '../fixtures/busybox-arm64';
import { cli, cliRootWithBusybox, mountsUnder, writeTree } from './helpers/roots';
import { makePodman, type Podman } from './peers/podman';
import { startRegistry, type RegistryPeer } from './peers/registry';

const ARM64: Platform = { os: 'linux', architecture: 'arm64' };
const { top, root } = cliRootWithBusybox('tsb-platforms-');

/** Runs the CLI and expects success; returns stdout. */
function ok(args: string[]): string {
  const r = cli(root, args);
  expect(r.stderr, `tsbuild ${args.join(' ')}`).not.toMatch(/error|Error/);
  expect(r.status, `tsbuild ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

function context(name: string, dockerfile: string): string {
  return writeTree(path.join(top, name), { Dockerfile: dockerfile });
}

/**
 * Handlers for arm64 that were enabled before this file (Debian's binfmt-support registers
 * qemu-aarch64 when qemu-user-static is installed): disabled while the file runs, so that "no handler"
 * is real, and enabled again after it.
 */
let suspended: string[] = [];

beforeAll(() => {
  // busybox:latest (the host's, amd64) is imported by cliRootWithBusybox; the arm64 one next to it.
  ok(['tag', 'busybox:latest', 'bb:amd64']);
  ok(['import', '--platform', 'linux/arm64', busyboxArm64Tar(), 'bb:arm64']);
  ok(['manifest', 'create', 'bb', 'bb:amd64', 'bb:arm64']);
  ok(['binfmt', '--uninstall']);
  suspended = binfmtHandlersFor(ARM64).map((h) => h.name);
  for (const name of suspended) fs.writeFileSync(path.join(BINFMT_DIR, name), '0');
}, 300_000);

afterAll(() => {
  cli(root, ['binfmt', '--uninstall']);
  for (const name of suspended) fs.writeFileSync(path.join(BINFMT_DIR, name), '1');
});

describe('a multi-platform base made without a registry', () => {
  it('import --platform and manifest create give one name with both platforms', () => {
    const rows = ok(['images', '--format', '{{.Repository}}:{{.Tag}} {{.Platform}}']).split('\n');
    expect(rows).toContain('bb:latest linux/amd64,linux/arm64');
    expect(rows).toContain('bb:arm64 linux/arm64');
    // The table shows the platform once the store holds another architecture.
    expect(ok(['images']).split('\n')[0]).toMatch(/IMAGE ID\s+PLATFORM\s+CREATED/);
    const index = JSON.parse(ok(['manifest', 'inspect', 'bb']));
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index.manifests.map((m: { platform: Platform }) => `${m.platform.os}/${m.platform.architecture}`)).toEqual(['linux/amd64', 'linux/arm64']);
    const [arm] = JSON.parse(ok(['inspect', 'bb:arm64']));
    expect([arm.Os, arm.Architecture]).toEqual(['linux', 'arm64']);
    const [multi] = JSON.parse(ok(['inspect', 'bb']));
    expect(multi.Platforms).toEqual(['linux/amd64', 'linux/arm64']);
  });

  it('refuses two images of one platform in an index', () => {
    const r = cli(root, ['manifest', 'create', 'twice', 'bb:amd64', 'busybox:latest']);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe('tsbuild: two images for platform linux/amd64: an index holds one image per platform');
  });
});

describe('without a binfmt_misc handler', () => {
  it('a RUN for arm64 fails with the clear error and leaves nothing behind', () => {
    expect(emulationFor(ARM64).kind).toBe('none');
    const before = ok(['images', '-a', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}']);
    const dir = context('foreign', 'FROM bb\nRUN uname -m > /arch\n');
    const r = cli(root, ['build', '--progress', 'plain', '--platform', 'linux/amd64,linux/arm64', '-t', 'foreign', dir]);
    expect(r.status).toBe(1);
    const last = r.stderr.trim().split('\n').pop();
    expect(last).toBe(
      'tsbuild: Dockerfile:2: cannot run linux/arm64 binaries on this linux/amd64 host: no binfmt_misc handler for linux/arm64 is registered; ' +
        'install emulation (apt-get install qemu-user-static, then tsbuild binfmt --install as root) or cross-compile in a FROM --platform=$BUILDPLATFORM stage',
    );
    expect(ok(['images', '-a', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}'])).toBe(before);
    expect(mountsUnder(root)).toEqual([]);
    const scratch = path.join(root, 'tmp');
    expect(fs.existsSync(scratch) ? fs.readdirSync(scratch) : []).toEqual([]);
  });

  it('run --platform linux/arm64 fails with the same error (docker run status 125)', () => {
    const r = cli(root, ['run', '--rm', '--platform', 'linux/arm64', 'bb', 'true']);
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/^tsbuild: image bb: cannot run linux\/arm64 binaries on this linux\/amd64 host: no binfmt_misc handler/);
  });

  it('a cross-compiling Dockerfile builds for both platforms natively; the shared builder step runs once', async () => {
    const dir = context(
      'cross',
      [
        'FROM --platform=$BUILDPLATFORM bb AS builder',
        // Reads no TARGET* arg: the same step for both targets, run once.
        'RUN uname -m > /built-on && cat /proc/sys/kernel/random/uuid > /run-id',
        'ARG TARGETARCH TARGETPLATFORM BUILDPLATFORM',
        'RUN echo "$TARGETARCH $TARGETPLATFORM from $BUILDPLATFORM" > /out',
        'FROM scratch',
        'COPY --from=builder /out /built-on /run-id /',
        '',
      ].join('\n'),
    );
    const store = await Store.open(root);
    try {
      const runs: string[] = [];
      const names = new Map<number, string>();
      const result = await build(
        { context: dir, platforms: ['linux/amd64', 'linux/arm64'], tags: ['cross'], noCache: true, cacheTo: [{ type: 'local', dest: path.join(top, 'cache') }] },
        {
          store,
          onEvent: (e) => {
            if (e.type === 'step-start') names.set(e.vertex, e.name);
            if (e.type === 'step-done' && names.get(e.vertex)?.includes('RUN uname')) runs.push(names.get(e.vertex)!);
          },
        },
      );
      expect(runs).toHaveLength(1);
      expect(result.platforms.map((p) => p.platform)).toEqual(['linux/amd64', 'linux/arm64']);
      expect(result.indexDigest).toMatch(/^sha256:/);
      expect(result.imageId).toBe(result.indexDigest);
      expect((await store.images.resolveIndex('cross'))?.descriptor.digest).toBe(result.indexDigest);
      const files = async (platform: Platform) => {
        const { chainID, config } = await store.imageChain('cross', { platform });
        expect(config.architecture).toBe(platform.architecture);
        const rootfs = await store.layers.mount(chainID!);
        try {
          const read = (f: string) => fs.readFileSync(path.join(rootfs, f), 'utf8').trim();
          return { out: read('out'), builtOn: read('built-on'), runId: read('run-id') };
        } finally {
          await store.layers.unmount(chainID!);
        }
      };
      const amd = await files({ os: 'linux', architecture: 'amd64' });
      const arm = await files(ARM64);
      expect(amd.out).toBe('amd64 linux/amd64 from linux/amd64');
      expect(arm.out).toBe('arm64 linux/arm64 from linux/amd64');
      expect([amd.builtOn, arm.builtOn]).toEqual(['x86_64', 'x86_64']);
      expect(arm.runId).toBe(amd.runId);
      // The exported cache holds the final stage's step of both platforms (mode=min).
      const cache = await store.readBuildCache({ dir: path.join(top, 'cache') });
      expect(cache?.records.size).toBe(2);
    } finally {
      await store.close();
    }
  });
});

describe('with qemu-user-static registered', () => {
  let registry: RegistryPeer;
  let podman: Podman;
  let image: string;

  beforeAll(async () => {
    expect(ok(['binfmt', '--install', '--platform', 'linux/arm64'])).toBe('registered linux/arm64\n');
    registry = await startRegistry();
    podman = makePodman();
    image = `${registry.host}/multi:1`;
    const dir = context('uname', 'FROM bb\nRUN uname -m > /arch\nCMD ["cat", "/arch"]\n');
    ok(['build', '-q', '--platform', 'linux/amd64,linux/arm64', '-t', image, dir]);
    ok(['push', image]);
  }, 300_000);

  afterAll(async () => {
    await podman?.cleanup();
    await registry?.stop();
  });

  it('the build gives an index of two images; run --platform picks one', () => {
    const index = JSON.parse(ok(['manifest', 'inspect', image]));
    expect(index.manifests.map((m: { platform: Platform }) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
    expect(ok(['run', '--rm', '--platform', 'linux/arm64', image])).toBe('aarch64\n');
    expect(ok(['run', '--rm', image])).toBe('x86_64\n');
    expect(ok(['images', '--format', '{{.Repository}}:{{.Tag}} {{.Platform}}', `${registry.host}/multi`])).toBe(`${image} linux/amd64,linux/arm64\n`);
  });

  it('save --format oci-layout carries the index; docker formats refuse it in one line', () => {
    const layout = path.join(top, 'layout');
    ok(['save', '--format', 'oci-layout', '-o', layout, image]);
    const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci:${layout}:${image}`], { encoding: 'utf8' }));
    expect(raw.manifests.map((m: { platform: Platform }) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
    const r = cli(root, ['save', '--format', 'docker', '-o', path.join(top, 'x.tar'), image]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(
      `tsbuild: ${image} is a multi-platform image (linux/amd64, linux/arm64): format docker cannot hold an image index (docker load takes one platform); use --format oci or oci-layout`,
    );
    expect(fs.existsSync(path.join(top, 'x.tar'))).toBe(false);
    const b = cli(root, ['build', '--platform', 'linux/amd64,linux/arm64', '-o', `type=docker,dest=${path.join(top, 'y.tar')}`, context('o', 'FROM bb\n')]);
    expect(b.status).toBe(2);
    expect(b.stderr).toMatch(/--output type=docker cannot hold a multi-platform image \(docker load takes one platform\)/);
  });

  it('push carries the index: skopeo inspects and copies it, podman pulls the arm64 image', async () => {
    const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${image}`], { encoding: 'utf8' }));
    expect(raw.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(raw.manifests.map((m: { platform: Platform }) => `${m.platform.os}/${m.platform.architecture}`)).toEqual(['linux/amd64', 'linux/arm64']);
    const copy = path.join(top, 'copy');
    execFileSync('skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${image}`, `oci:${copy}:multi`], { stdio: 'pipe' });
    const copied = JSON.parse(fs.readFileSync(path.join(copy, 'index.json'), 'utf8'));
    const top1 = copied.manifests[0];
    const child = JSON.parse(fs.readFileSync(path.join(copy, 'blobs', 'sha256', top1.digest.slice(7)), 'utf8'));
    expect(child.manifests).toHaveLength(2);
    for (const m of child.manifests) expect(fs.existsSync(path.join(copy, 'blobs', 'sha256', m.digest.slice(7)))).toBe(true);
    // The OCI layout, as an archive, loads back as one multi-platform image.
    const archive = path.join(top, 'copy.tar');
    execFileSync('tar', ['-cf', archive, '-C', copy, '.']);
    const loaded = path.join(top, 'loaded-root');
    try {
      expect(cli(loaded, ['load', '-i', archive]).stdout).toBe('Loaded image: multi:latest\n');
      expect(cli(loaded, ['images', '--format', '{{.Repository}} {{.Platform}}']).stdout).toBe('multi linux/amd64,linux/arm64\n');
    } finally {
      fs.rmSync(loaded, { recursive: true, force: true });
    }
    await podman.podman(['pull', '--tls-verify=false', '--platform', 'linux/arm64', image]);
    const arch = (await podman.podman(['image', 'inspect', '--format', '{{.Architecture}}', image])).stdout.trim();
    expect(arch).toBe('arm64');
  });

  it('rmi of the index removes the image of every platform', () => {
    const index = JSON.parse(ok(['manifest', 'inspect', image]));
    const blob = (d: string) => path.join(root, 'oci', 'blobs', 'sha256', d.slice(7));
    const digests: string[] = index.manifests.map((m: { digest: string }) => m.digest);
    for (const d of digests) expect(fs.existsSync(blob(d))).toBe(true);
    ok(['rmi', image]);
    for (const d of digests) expect(fs.existsSync(blob(d))).toBe(false);
    expect(ok(['fsck'])).toMatch(/no problems/);
  });

  it('pull --platform brings one platform; pulling another keeps both under the name', () => {
    const other = path.join(top, 'other-root');
    try {
      const pull = (p: string) => {
        const r = cli(other, ['pull', '-q', '--platform', p, image]);
        expect(r.status, r.stderr).toBe(0);
      };
      // FROM pulls the platform being built from the registry's index.
      const from = context('from-registry', `FROM ${image}\nCOPY Dockerfile /copied\n`);
      const built = cli(other, ['build', '-q', '--platform', 'linux/arm64', '-t', 'from-registry', from]);
      expect(built.status, built.stderr).toBe(0);
      expect(JSON.parse(cli(other, ['inspect', 'from-registry']).stdout)[0].Architecture).toBe('arm64');
      expect(cli(other, ['images', '--format', '{{.Platform}}', image]).stdout).toBe('linux/arm64\n');
      expect(cli(other, ['rmi', 'from-registry']).status).toBe(0);
      pull('linux/arm64');
      expect(cli(other, ['images', '--format', '{{.Platform}}', image]).stdout).toBe('linux/arm64\n');
      pull('linux/amd64');
      expect(cli(other, ['images', '--format', '{{.Platform}}', image]).stdout).toBe('linux/arm64,linux/amd64\n');
      expect(cli(other, ['run', '--rm', '--platform', 'linux/arm64', image]).stdout).toBe('aarch64\n');
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});

