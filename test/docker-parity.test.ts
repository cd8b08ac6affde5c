// Docker parity: every case builds the same context with Docker's classic builder
// (DOCKER_BUILDKIT=0; this machine's docker has no buildx) and with tsbuild, both FROM the identical
// busybox base (saved from our store as a docker-archive and `docker load`ed), then compares the two
// root filesystems entry by entry (path, type, mode, owner, content, link target, hardlink groups,
// xattrs) and the image config fields a Dockerfile controls, exactly.
//
// What is left out, on purpose:
// - times (mtime/atime/ctime): no two builders agree on them, and `created` is wall-clock time;
// - layer counts and diffIDs: the classic builder commits an (empty) layer for every RUN and WORKDIR
//   even when nothing changed, BuildKit and tsbuild do not; only the merged trees are compared;
// - `.dockerenv`, /etc/hosts, /etc/hostname, /etc/resolv.conf, /dev/{console,pts,shm}: Docker puts
//   these in a container's init layer, which never reaches an image. Docker's side is read from the
//   image's own layer directories (GraphDriver), so they never appear and nothing needs skipping;
// - in configs, `null`, a missing field, `[]` and `{}` mean the same (no value) and compare equal;
//   every other difference counts.
// tsbuild follows BuildKit. Where the classic builder is known to differ from BuildKit, a case either
// stays clear (nothing runs after VOLUME: classic discards a RUN's writes under a volume; no
// BuildKit-only syntax: heredocs, --chmod, --mount, --link) or states the exact expected difference
// with its reason (KnownClassicDifferences below); any other difference fails.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { build } from '@tsbuild/builder';
import { openTestRoot, useTestRoot, writeTree } from './helpers/roots';
import { diffTrees, type TreeEntry } from './helpers/tree';
import { dockerBuild, dockerImage, normalizeConfig, storeImage, type Built, type KnownClassicDifferences } from './helpers/parity';
import { startDockerd, type Dockerd } from './peers/dockerd';

type Files = Record<string, string | { content: string; mode: number }>;

let dockerd: Dockerd;
let shared: string; // the base archive, kept for every test's store
let baseArchive: string;
const t = useTestRoot({ base: false });

beforeAll(async () => {
  shared = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-parity-'));
  dockerd = await startDockerd();
  const origin = await openTestRoot();
  try {
    baseArchive = path.join(shared, 'busybox-docker.tar');
    await origin.store.save(['busybox:latest'], baseArchive, 'docker');
  } finally {
    await origin.close();
  }
  const loaded = await dockerd.docker(['load', '-i', baseArchive]);
  expect(loaded.stdout).toContain('busybox:latest');
}, 120_000);

afterAll(async () => {
  await dockerd?.stop();
  if (shared) fs.rmSync(shared, { recursive: true, force: true });
});

beforeEach(async () => {
  // Every test gets its own store, loaded from the very archive Docker loaded: identical base image.
  const { images } = await t.store.load(baseArchive);
  expect(images).toContain('busybox:latest');
});

function context(files: Files, prepare?: (dir: string) => void): string {
  const dir = fs.mkdtempSync(path.join(t.work, 'ctx-'));
  writeTree(dir, files);
  prepare?.(dir);
  return dir;
}

/** tsbuild's image: built with the library, its tree read from the store's own mount of the chain. */
async function tsbuildImage(ctx: string, tag: string): Promise<Built> {
  const result = await build({ context: ctx, tags: [tag] }, { store: t.store });
  const built = await storeImage(t.store, tag);
  expect(built.config).toEqual(result.config.config);
  return built;
}

/**
 * Builds `ctx` (its Dockerfile) as `tag` with both builders and expects the same config and tree.
 * Returns both sides for case-specific checks.
 */
async function parity(ctx: string, tag: string, known: KnownClassicDifferences = {}): Promise<{ docker: Built; tsbuild: Built }> {
  await dockerBuild(dockerd, ctx, tag);
  const docker = await dockerImage(dockerd, tag, t.work);
  const tsbuild = await tsbuildImage(ctx, tag);
  const expected = known.dockerConfig ? known.dockerConfig(structuredClone(docker.config)) : docker.config;
  expect(normalizeConfig(tsbuild.config), `config of ${tag}`).toEqual(normalizeConfig(expected));
  expect(diffTrees(docker.tree, tsbuild.tree, ['docker', 'tsbuild']), `tree of ${tag}`).toEqual(known.treeDiff ?? []);
  // A parity that compares nothing proves nothing: the trees must hold the base at least.
  expect(docker.tree.find((e) => e.path === 'bin/busybox')?.type).toBe('file');
  return { docker, tsbuild };
}

function entry(built: Built, p: string): TreeEntry | undefined {
  return built.tree.find((e) => e.path === p);
}

function sh(cmd: string, args: string[], cwd?: string): void {
  execFileSync(cmd, args, { cwd, stdio: 'pipe' });
}

describe('docker parity (classic builder vs tsbuild)', () => {
  it('multi-stage with COPY --from a stage name, an index and an image', async () => {
    const ctx = context({
      Dockerfile: [
        'FROM busybox AS build',
        'RUN mkdir -p /out/sub && echo one > /out/a && echo two > /out/sub/b && chown -R 1000:1000 /out/sub && chmod 0750 /out/sub && ln -s a /out/link',
        'FROM busybox AS other',
        'RUN echo other > /other && chmod 0600 /other',
        'FROM busybox',
        'COPY --from=build /out /copied',
        'COPY --from=build /out/ /copied2/',
        'COPY --from=build /out/sub/b /out/link /picked/',
        'COPY --from=1 /other /',
        'COPY --from=busybox /etc/passwd /from-image',
        '',
      ].join('\n'),
    });
    const { tsbuild } = await parity(ctx, 'p-multistage');
    expect(entry(tsbuild, 'copied/sub/b')?.sha256).toBeDefined();
    expect(entry(tsbuild, 'other')?.mode).toBe(0o600);
  });

  it('ENV expansion sees the environment from before the instruction', async () => {
    const ctx = context({
      Dockerfile: [
        'FROM busybox',
        'ENV A=1',
        'ENV A=2 B=$A C=${A:-x} D="${UNSET:-dflt}" E=\'$A\'',
        'ENV F=${A}_${B} G=$C\\ z H="${A}"',
        'ENV PATH=/opt/bin:$PATH',
        'ENV legacy form with spaces $A',
        'WORKDIR /w/$A',
        'COPY f /w/${B}-file',
        'COPY f $D/',
        'RUN echo "$A $B $C $D $E $F $G $H" > /out',
        'LABEL l=$A m="${B}${C}"',
        'USER ${A}00',
        '',
      ].join('\n'),
      f: 'f\n',
    });
    const { tsbuild } = await parity(ctx, 'p-env');
    expect(tsbuild.config.Env).toContain('B=1');
  });

  it('relative WORKDIR chains', async () => {
    const ctx = context({
      Dockerfile: [
        'FROM busybox',
        'WORKDIR a',
        'WORKDIR b',
        'RUN pwd > /pwd1',
        'WORKDIR ../c',
        'WORKDIR /abs/x',
        'WORKDIR ./y/../z',
        'ENV D=dd',
        'WORKDIR $D',
        'RUN pwd > /pwd2 && touch here',
        'COPY f .',
        'COPY f rel/',
        'WORKDIR /',
        'WORKDIR existing/../tmp',
        '',
      ].join('\n'),
      f: 'f\n',
    });
    const { tsbuild } = await parity(ctx, 'p-workdir');
    expect(tsbuild.config.WorkingDir).toBe('/tmp');
  });

  it('WORKDIR after USER: created directories belong to that user (BuildKit), existing ones are kept', async () => {
    const ctx = context({
      Dockerfile: ['FROM busybox', 'USER app', 'WORKDIR /home/app/existing-parent', 'WORKDIR /srv/a/b', 'USER 1000:65534', 'WORKDIR /srv/c', 'USER root', 'WORKDIR /srv/d', ''].join('\n'),
    });
    // BuildKit makes WORKDIR's directory and its missing parents with llb.Mkdir(WithUser(USER)), so
    // they belong to the stage's USER; the classic builder creates them as root.
    const owned = (p: string, uid: number, gid: number) => [`${p}: uid docker=0 tsbuild=${uid}`, `${p}: gid docker=0 tsbuild=${gid}`];
    await parity(ctx, 'p-workdir-user', {
      treeDiff: [...owned('home/app/existing-parent', 1000, 1000), ...owned('srv', 1000, 1000), ...owned('srv/a', 1000, 1000), ...owned('srv/a/b', 1000, 1000), ...owned('srv/c', 1000, 65534)],
    });
  });

  it('COPY dir vs dir/, into an existing directory, several sources', async () => {
    const ctx = context(
      {
        Dockerfile: [
          'FROM busybox',
          'COPY dir /d1',
          'COPY dir/ /d2/',
          'COPY dir /d3/',
          'RUN mkdir -m 0700 /exist && echo old > /exist/old && chown 5:5 /exist',
          'COPY dir /exist',
          'COPY f /exist',
          'COPY dir/a dir/sub /multi/',
          'COPY f /newfile',
          'COPY f /newdir/',
          'COPY dir /etc/',
          'COPY dir/sub /nested/deeper/',
          'COPY dir/[as]* f* /wild/',
          '',
        ].join('\n'),
        f: 'file\n',
        'dir/a': 'a\n',
        'dir/.hidden': { content: 'h\n', mode: 0o600 },
        'dir/sub/b': { content: '#!/bin/sh\n', mode: 0o755 },
      },
      (dir) => {
        fs.chmodSync(path.join(dir, 'dir'), 0o750);
        fs.chmodSync(path.join(dir, 'dir/sub'), 0o700);
      },
    );
    await parity(ctx, 'p-copydir');
  });

  it('ADD of a local tar and .tar.gz extracts it; COPY does not', async () => {
    const ctx = context(
      {
        Dockerfile: [
          'FROM busybox',
          'ADD t.tar /x/',
          'ADD t.tar.gz /y',
          'ADD t2.tar /z/',
          'RUN mkdir -p /merge && echo keep > /merge/keep',
          'ADD t.tar /merge/',
          'COPY t.tar /copied.tar',
          'ADD plain.txt /plain',
          'ADD --chown=app:app t.tar /chowned/',
          '',
        ].join('\n'),
        'plain.txt': 'plain\n',
      },
      (dir) => {
        const staging = path.join(dir, '..', `tar-src-${path.basename(dir)}`);
        writeTree(staging, {
          'top.txt': 'top\n',
          'd/inner.txt': { content: 'inner\n', mode: 0o640 },
          'd/exec.sh': { content: '#!/bin/sh\n', mode: 0o755 },
        });
        fs.chmodSync(path.join(staging, 'd'), 0o700);
        fs.chownSync(path.join(staging, 'd/inner.txt'), 123, 456);
        fs.chownSync(path.join(staging, 'd'), 7, 8);
        fs.symlinkSync('top.txt', path.join(staging, 'sym'));
        fs.linkSync(path.join(staging, 'top.txt'), path.join(staging, 'hard.txt'));
        sh('tar', ['--numeric-owner', '-cf', path.join(dir, 't.tar'), '-C', staging, '.']);
        sh('tar', ['--numeric-owner', '-czf', path.join(dir, 't.tar.gz'), '-C', staging, '.']);
        sh('tar', ['--numeric-owner', '-cf', path.join(dir, 't2.tar'), '-C', staging, 'top.txt', 'd']);
        fs.rmSync(staging, { recursive: true, force: true });
      },
    );
    const { tsbuild } = await parity(ctx, 'p-addtar');
    expect(entry(tsbuild, 'x/d/inner.txt')).toMatchObject({ uid: 123, gid: 456 });
    expect(entry(tsbuild, 'copied.tar')?.type).toBe('file');
  });

  it('--chown by name and by id', async () => {
    const ctx = context({
      Dockerfile: [
        'FROM busybox',
        'COPY --chown=app f /f1',
        'COPY --chown=app:nogroup f /f2',
        'COPY --chown=1000:65534 f /f3',
        'COPY --chown=123 dir /d4',
        'COPY --chown=nobody:app dir /d5/',
        'COPY --chown=0:1000 f /f6',
        'ADD --chown=app:app f /f7',
        'COPY --chown=app f /np/sub/f',
        'COPY --chown=1000:65534 dir /np2/x/',
        '',
      ].join('\n'),
      f: 'f\n',
      'dir/a': 'a\n',
      'dir/sub/b': 'b\n',
    });
    // The classic builder chowns the parents it creates for a file source, but for a directory
    // source only the destination itself; BuildKit creates the whole destination path with the
    // --chown owner (fsutil's MkdirAll with the chowner) for both, and so does tsbuild.
    const { tsbuild } = await parity(ctx, 'p-chown', {
      treeDiff: ['np2: uid docker=0 tsbuild=1000', 'np2: gid docker=0 tsbuild=65534'],
    });
    expect(entry(tsbuild, 'f2')).toMatchObject({ uid: 1000, gid: 65534 });
    expect(entry(tsbuild, 'd4/sub/b')).toMatchObject({ uid: 123, gid: 123 });
    // Parents the copy creates belong to the --chown owner too.
    expect(entry(tsbuild, 'np/sub')).toMatchObject({ uid: 1000, gid: 1000, mode: 0o755 });
    expect(entry(tsbuild, 'np2')).toMatchObject({ uid: 1000, gid: 65534 });
  });

  it('.dockerignore with ! exceptions', async () => {
    const ctx = context({
      Dockerfile: 'FROM busybox\nCOPY . /ctx/\nCOPY sub /sub/\n',
      '.dockerignore': ['# a comment', '*.log', '!keep.log', 'tmp', '!tmp/keep', '**/*.bak', 'sub/**/secret*', '!sub/deep/secret-ok', 'docs/', ''].join('\n'),
      'a.log': 'x',
      'keep.log': 'kept',
      'b.txt': 'b',
      'tmp/x': 'x',
      'tmp/keep/y': 'y',
      'one.bak': 'bak',
      'sub/two.bak': 'bak',
      'sub/ok.txt': 'ok',
      'sub/deep/secret-1': 's',
      'sub/deep/secret-ok': 'fine',
      'sub/deep/deeper/secret-2': 's',
      'docs/readme': 'r',
    });
    const { tsbuild } = await parity(ctx, 'p-dockerignore');
    const paths = tsbuild.tree.map((e) => e.path);
    expect(paths).toContain('ctx/keep.log');
    expect(paths).toContain('ctx/tmp/keep/y');
    expect(paths).not.toContain('ctx/a.log');
    expect(paths).toContain('sub/deep/secret-ok');
    expect(paths).not.toContain('sub/deep/deeper/secret-2');
  });

  it('a directory deleted and recreated in a later RUN (opaque) and deleted base files', async () => {
    const ctx = context({
      Dockerfile: [
        'FROM busybox',
        'RUN mkdir -p /o/sub /keep && echo 1 > /o/a && echo 2 > /o/sub/b && echo k > /keep/k',
        'RUN rm -rf /o && mkdir -m 0700 /o && echo 3 > /o/c && rm /keep/k && echo n > /keep/n',
        'COPY dir /o2/',
        'RUN rm -rf /o2 && mkdir /o2 && touch /o2/z',
        'RUN rm -rf /home /bin/vi && mkdir /home && echo h > /home/new',
        '',
      ].join('\n'),
      'dir/x': 'x',
      'dir/y/z': 'z',
    });
    const { tsbuild } = await parity(ctx, 'p-opaque');
    const paths = tsbuild.tree.map((e) => e.path);
    expect(paths.filter((p) => p.startsWith('o/'))).toEqual(['o/c']);
    expect(paths).not.toContain('home/app');
  });

  it('hardlinks in the context and created by RUN', async () => {
    const ctx = context(
      {
        Dockerfile: [
          'FROM busybox',
          'COPY h /h/',
          'COPY h/a h/b /two/',
          'RUN echo x > /r1 && ln /r1 /r2 && mkdir /rd && ln /r1 /rd/r3',
          'RUN ln /h/a /h/e',
          '',
        ].join('\n'),
        'h/a': 'shared\n',
        outside: 'outside\n',
      },
      (dir) => {
        fs.linkSync(path.join(dir, 'h/a'), path.join(dir, 'h/b'));
        fs.mkdirSync(path.join(dir, 'h/sub'));
        fs.linkSync(path.join(dir, 'h/a'), path.join(dir, 'h/sub/d'));
        fs.linkSync(path.join(dir, 'outside'), path.join(dir, 'h/lonely'));
      },
    );
    const { tsbuild } = await parity(ctx, 'p-hardlinks');
    expect(entry(tsbuild, 'r2')?.hardlinkGroup).toBe('r1');
    expect(entry(tsbuild, 'rd/r3')?.hardlinkGroup).toBe('r1');
  });

  it('setuid, setgid and sticky bits', async () => {
    const ctx = context(
      {
        Dockerfile: [
          'FROM busybox',
          'COPY s /s/',
          'COPY s/suid /single-suid',
          'RUN cp /bin/busybox /r-suid && chmod 4755 /r-suid && mkdir -m 2775 /r-sgid-dir && touch /r-sgid-dir/f && mkdir /r-sticky && chmod 1777 /r-sticky',
          '',
        ].join('\n'),
        's/suid': { content: 'u', mode: 0o4755 },
        's/sgid': { content: 'g', mode: 0o2755 },
        's/both': { content: 'b', mode: 0o6711 },
      },
      (dir) => {
        fs.mkdirSync(path.join(dir, 's/sticky'));
        fs.chmodSync(path.join(dir, 's/sticky'), 0o1777);
        fs.mkdirSync(path.join(dir, 's/sgid-dir'));
        fs.chmodSync(path.join(dir, 's/sgid-dir'), 0o2750);
      },
    );
    // The classic builder chowns every copied file to root after writing it, and chown(2) clears
    // setuid (and setgid, on group-executable files) even for root; BuildKit (fsutil's copyFileInfo)
    // and tsbuild chown first, then chmod, so the bits survive. RUN-made bits match.
    const { tsbuild } = await parity(ctx, 'p-setuid', {
      treeDiff: [
        's/both: mode docker=0711 tsbuild=6711',
        's/sgid: mode docker=0755 tsbuild=2755',
        's/suid: mode docker=0755 tsbuild=4755',
        'single-suid: mode docker=0755 tsbuild=4755',
      ],
    });
    expect(entry(tsbuild, 's/both')?.mode).toBe(0o6711);
    expect(entry(tsbuild, 'r-sgid-dir')?.mode).toBe(0o2775);
  });

  it('fifos created by RUN', async () => {
    const ctx = context({
      Dockerfile: 'FROM busybox\nRUN mkfifo /p && mkfifo -m 0600 /p2 && mkdir /fd && mkfifo /fd/p3 && chown 1000:1000 /fd/p3\n',
    });
    const { tsbuild } = await parity(ctx, 'p-fifo');
    expect(entry(tsbuild, 'p2')).toMatchObject({ type: 'fifo', mode: 0o600 });
  });

  it('dangling symlinks', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox\nCOPY dir /l/\nRUN ln -s /nope /r-dangling && ln -s ../missing /etc/r-rel\n', 'dir/ok': 'ok' }, (dir) => {
      fs.symlinkSync('nowhere', path.join(dir, 'dir/dangling'));
      fs.symlinkSync('/nonexistent/x', path.join(dir, 'dir/abs'));
      fs.symlinkSync('ok', path.join(dir, 'dir/good'));
    });
    const { tsbuild } = await parity(ctx, 'p-dangling');
    expect(entry(tsbuild, 'l/dangling')).toMatchObject({ type: 'symlink', linkTarget: 'nowhere' });
  });

  it('the escape directive (backtick)', async () => {
    const ctx = context({
      Dockerfile: [
        '# escape=`',
        'FROM busybox',
        'ENV WIN=C:\\Windows\\path `',
        '    OTHER=x`y',
        'RUN echo "a `',
        'b" > /out && echo \'c\\d\' >> /out',
        'COPY f /dir\\with/',
        'LABEL desc="quote`"inner"',
        'WORKDIR /w\\x',
        '',
      ].join('\n'),
      f: 'f\n',
    });
    const { tsbuild } = await parity(ctx, 'p-escape');
    expect(tsbuild.config.Env).toContain('WIN=C:\\Windows\\path');
  });

  it('ONBUILD: triggers run in the child, not in the grandchild', async () => {
    const parent = context({
      Dockerfile: [
        'FROM busybox',
        'ONBUILD COPY f /onbuild-f',
        'ONBUILD RUN echo triggered >> /triggered',
        'ONBUILD ENV FROM_TRIGGER=1',
        'onbuild label trig=yes',
        'RUN echo parent > /parent',
        '',
      ].join('\n'),
    });
    const p = await parity(parent, 'p-onbuild-parent');
    expect(p.tsbuild.config.OnBuild).toHaveLength(4);
    const child = context({ Dockerfile: 'FROM p-onbuild-parent\nRUN cat /triggered > /seen\n', f: 'from the child context\n' });
    const c = await parity(child, 'p-onbuild-child');
    expect(entry(c.tsbuild, 'onbuild-f')?.size).toBe('from the child context\n'.length);
    const grandchild = context({ Dockerfile: 'FROM p-onbuild-child\nRUN cat /triggered > /seen2\n' });
    await parity(grandchild, 'p-onbuild-grandchild');
  });

  it('CMD and ENTRYPOINT: forms and the rule that ENTRYPOINT clears an inherited CMD', async () => {
    await parity(context({ Dockerfile: 'FROM busybox\nCMD ["echo", "a"]\n' }), 'p-cmd-a');
    const b = await parity(context({ Dockerfile: 'FROM p-cmd-a\nENTRYPOINT ["/bin/echo"]\n' }), 'p-cmd-b');
    expect(b.tsbuild.config.Cmd ?? null).toBeNull();
    await parity(context({ Dockerfile: 'FROM p-cmd-a\nCMD echo shell\nENTRYPOINT /bin/echo e\n' }), 'p-cmd-c');
    await parity(context({ Dockerfile: 'FROM p-cmd-b\nCMD ["x"]\n' }), 'p-cmd-d');
    await parity(context({ Dockerfile: 'FROM p-cmd-c\nENTRYPOINT []\nCMD [] \n' }), 'p-cmd-e');
  });

  it('SHELL changes RUN, shell-form CMD and ENTRYPOINT', async () => {
    const ctx = context({
      Dockerfile: [
        'FROM busybox',
        'SHELL ["/bin/sh", "-ec"]',
        'RUN echo "$0" > /shell1',
        'CMD echo cmd',
        'ENTRYPOINT echo ep',
        'SHELL ["/bin/busybox", "sh", "-c"]',
        'RUN echo "$0" > /shell2',
        'HEALTHCHECK CMD echo hc',
        '',
      ].join('\n'),
    });
    const { tsbuild } = await parity(ctx, 'p-shell');
    expect(tsbuild.config.Shell).toEqual(['/bin/busybox', 'sh', '-c']);
  });

  it('HEALTHCHECK: options, exec form, NONE, last one wins', async () => {
    await parity(
      context({ Dockerfile: 'FROM busybox\nHEALTHCHECK CMD ["false"]\nHEALTHCHECK --interval=5s --timeout=3s --start-period=2s --retries=4 CMD wget -q -O- localhost || exit 1\n' }),
      'p-hc-a',
    );
    // A classic-builder quirk: its HEALTHCHECK config shares a pointer with the step container's
    // config, and container creation fills unset fields from the parent image, so `HEALTHCHECK NONE`
    // (or any HEALTHCHECK without options) keeps the parent's Interval/Timeout/StartPeriod/Retries.
    // BuildKit sets exactly what the instruction says, and so does tsbuild.
    const b = await parity(context({ Dockerfile: 'FROM p-hc-a\nHEALTHCHECK NONE\n' }), 'p-hc-b', {
      dockerConfig: (c) => {
        expect(c.Healthcheck).toEqual({ Test: ['NONE'], Interval: 5e9, Timeout: 3e9, StartPeriod: 2e9, Retries: 4 });
        return { ...c, Healthcheck: { Test: ['NONE'] } };
      },
    });
    expect(b.tsbuild.config.Healthcheck).toEqual({ Test: ['NONE'] });
    await parity(context({ Dockerfile: 'FROM busybox\nHEALTHCHECK --interval=1m30s CMD ["true", "x"]\n' }), 'p-hc-c');
  });

  it('EXPOSE, VOLUME, LABEL, STOPSIGNAL and USER', async () => {
    const ctx = context({
      Dockerfile: [
        'FROM busybox',
        'RUN mkdir /data && echo d > /data/d',
        'USER app',
        'RUN touch /tmp/owned-by-app',
        'USER 1000:65534',
        'RUN touch /tmp/owned-by-1000-65534',
        'EXPOSE 80 53/udp 8080/TCP 9000-9002',
        'LABEL a=b "c d"="e f" multi="1 2"',
        'LABEL a=override',
        'STOPSIGNAL SIGQUIT',
        'VOLUME ["/data", "/logs"]',
        'VOLUME /v1 /v2',
        '',
      ].join('\n'),
    });
    const { tsbuild } = await parity(ctx, 'p-meta');
    expect(entry(tsbuild, 'tmp/owned-by-1000-65534')).toMatchObject({ uid: 1000, gid: 65534 });
  });

  it('RUN as a USER: uid, gid and supplementary groups (the primary gid among them)', async () => {
    // Docker puts the primary gid in the supplementary list (CVE-2022-36109; BuildKit: CVE-2023-25173).
    const ctx = context({
      Dockerfile: [
        'FROM busybox',
        'RUN echo "extra:x:2000:app" >> /etc/group',
        'USER app',
        'RUN id > /tmp/id-app',
        'USER 1000:65534',
        'RUN id > /tmp/id-explicit-group',
        'USER nobody',
        'RUN id > /tmp/id-nobody',
        '',
      ].join('\n'),
    });
    await parity(ctx, 'p-user-groups');
  });
});
