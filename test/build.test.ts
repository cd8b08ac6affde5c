// End-to-end builds on a real store: overlay mounts, RUN in real containers, the cache, errors.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { build, BuildCache, BuildContext, hashSources, type BuildEvent } from '@tsbuild/builder';
import { Store } from '@tsbuild/storage';
import { mountsUnder, openTestRoot, runImage, useTestRoot, writeTree } from './helpers/roots';

const t = useTestRoot();

function context(files: Record<string, string | { content: string; mode: number }>): string {
  const dir = fs.mkdtempSync(path.join(t.work, 'ctx-'));
  return writeTree(dir, files);
}

async function buildCollect(ctx: string, opts: Partial<Parameters<typeof build>[0]> = {}) {
  const events: BuildEvent[] = [];
  const result = await build({ context: ctx, tags: ['test:latest'], ...opts }, { store: t.store, onEvent: (e) => events.push(e) });
  return { result, events };
}

describe('build', () => {
  it('builds the README example and runs it', async () => {
    const ctx = path.resolve(__dirname, '..', 'examples', 'hello');
    const { result } = await buildCollect(ctx);
    expect(result.imageId).toMatch(/^sha256:[0-9a-f]{64}$/);
    const run = await runImage(t.store, 'test:latest');
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toContain('Hello from tsbuild');
    expect(run.stdout).toContain('built with BusyBox');
    expect(result.config.config.Cmd).toEqual(['/app/hello.sh']);
    expect(result.config.config.WorkingDir).toBe('/app');
  });

  it('caches every layer step, then misses only from a changed source onwards and says why', async () => {
    const ctx = context({
      Dockerfile: 'FROM busybox\nRUN echo one > /one\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy\n',
      'a.txt': 'first\n',
    });
    const first = await buildCollect(ctx);
    const second = await buildCollect(ctx);
    expect(second.events.filter((e) => e.type === 'step-cached')).toHaveLength(3);
    expect(second.result.imageId).toBe(first.result.imageId);

    fs.writeFileSync(path.join(ctx, 'a.txt'), 'second\n');
    const third = await buildCollect(ctx);
    expect(third.events.filter((e) => e.type === 'step-cached')).toHaveLength(1);
    const reasons = third.events.filter((e): e is Extract<BuildEvent, { type: 'step-cache-miss' }> => e.type === 'step-cache-miss').map((e) => e.reason);
    expect(reasons[0]).toContain('the content of the sources changed');
    expect(reasons[1]).toContain('the parent layer changed');
    expect((await runImage(t.store, 'test:latest', ['cat', '/copy'])).stdout).toBe('second\n');
  });

  it('multi-stage: COPY --from a stage, --target, and parallel independent stages', async () => {
    const ctx = context({
      Dockerfile: [
        'FROM busybox AS a',
        'RUN echo from-a > /a',
        'FROM busybox AS b',
        'RUN echo from-b > /b',
        'FROM busybox',
        'COPY --from=a /a /got-a',
        'COPY --from=1 /b /got-b',
        'CMD ["cat", "/got-a", "/got-b"]',
      ].join('\n'),
    });
    await buildCollect(ctx);
    expect((await runImage(t.store, 'test:latest')).stdout).toBe('from-a\nfrom-b\n');
    await buildCollect(ctx, { target: 'b', tags: ['only-b'] });
    expect((await runImage(t.store, 'only-b', ['ls', '/'])).stdout).not.toContain('got-a');
  });

  it('empty arguments: RUN ["x", ""], an empty RUN line (sh -c ""), CMD [""] after an ENTRYPOINT', async () => {
    const ctx = context({
      Dockerfile: [
        'FROM busybox',
        'RUN ["sh", "-c", "echo \\"$#[$1]\\" > /args", "sh", ""]',
        'RUN',
        'ENTRYPOINT ["sh", "-c", "echo \\"[$0]\\"; cat /args"]',
        'CMD [""]',
      ].join('\n'),
    });
    const { result } = await buildCollect(ctx);
    expect(result.config.config.Cmd).toEqual(['']);
    const run = await runImage(t.store, 'test:latest');
    expect([run.exitCode, run.stdout]).toEqual([0, '[]\n1[]\n']);
    const history = result.config.history!.map((h) => h.created_by);
    expect(history).toContain('RUN /bin/sh -c  # tsbuild');
  });

  it('ENV in one instruction sees the environment from before it; ARG and --build-arg', async () => {
    const ctx = context({
      Dockerfile: 'FROM busybox\nARG WHO=nobody\nENV A=1\nENV A=2 B=$A C=${WHO}\nRUN echo "$A $B $C" > /out\n',
    });
    const { result } = await buildCollect(ctx, { buildArgs: { WHO: 'tester' } });
    expect(result.config.config.Env).toContain('B=1');
    expect((await runImage(t.store, 'test:latest', ['cat', '/out'])).stdout).toBe('2 1 tester\n');
  });

  it('.dockerignore with an exception, COPY dir vs dir/ and --chown by name', async () => {
    const ctx = context({
      Dockerfile: 'FROM busybox\nCOPY --chown=app src /dst/\nCOPY src /flat\n',
      '.dockerignore': 'src/*.log\n!src/keep.log\n',
      'src/a.txt': 'a',
      'src/skip.log': 'no',
      'src/keep.log': 'yes',
      'src/sub/b.txt': 'b',
    });
    await buildCollect(ctx);
    const ls = await runImage(t.store, 'test:latest', ['sh', '-c', 'cd /dst && find . | sort && stat -c %U /dst/a.txt && ls /flat']);
    expect(ls.stdout.split('\n')).toEqual(['.', './a.txt', './keep.log', './sub', './sub/b.txt', 'app', 'a.txt', 'keep.log', 'sub', '']);
  });

  it('RUN --mount=type=cache persists between builds and secrets never reach a layer', async () => {
    const secret = path.join(t.work, 'token');
    fs.writeFileSync(secret, 's3cret');
    const ctx = context({
      Dockerfile: [
        'FROM busybox',
        'ARG N=1',
        'RUN --mount=type=cache,target=/cache echo $N >> /cache/log && cat /cache/log > /seen',
        'RUN --mount=type=secret,id=tok cat /run/secrets/tok > /used-secret-len && wc -c < /run/secrets/tok > /used-secret-len',
      ].join('\n'),
    });
    await buildCollect(ctx, { buildArgs: { N: '1' }, secrets: { tok: { src: secret } } });
    await buildCollect(ctx, { buildArgs: { N: '2' }, secrets: { tok: { src: secret } } });
    const out = await runImage(t.store, 'test:latest', ['sh', '-c', 'cat /seen; cat /used-secret-len; ls /run 2>&1 || true']);
    expect(out.stdout).toContain('1\n2\n');
    expect(out.stdout).toContain('6');
    expect(out.stdout).not.toContain('secrets');
  });

  it('RUN --mount=type=bind (context and stage, read-only) and type=tmpfs leave nothing in the layer', async () => {
    const ctx = context({
      Dockerfile: [
        'FROM busybox AS tools',
        'RUN echo tool > /tool',
        'FROM busybox',
        'RUN --mount=type=bind,source=data,target=/data cat /data/in > /from-ctx && (touch /data/x 2>/dev/null && echo rw || echo ro) > /bind-mode',
        'RUN --mount=type=bind,from=tools,source=/tool,target=/t cat /t > /from-stage',
        'RUN --mount=type=tmpfs,target=/scratch echo temp > /scratch/f && cat /scratch/f > /from-tmpfs',
      ].join('\n'),
      'data/in': 'context data\n',
    });
    await buildCollect(ctx);
    const out = await runImage(t.store, 'test:latest', ['sh', '-c', 'cat /from-ctx /bind-mode /from-stage /from-tmpfs; ls /']);
    const [ctxLine, mode, stageLine, tmpLine, ...rootEntries] = out.stdout.trim().split('\n');
    expect([ctxLine, mode, stageLine, tmpLine]).toEqual(['context data', 'ro', 'tool', 'temp']);
    // The mount points were stubs: none of them reached a layer.
    expect(rootEntries.filter((e) => ['data', 't', 'scratch'].includes(e))).toEqual([]);
  });

  it('RUN mount stubs are removed inside the rootfs only, and files the step wrote are kept', async () => {
    // An image symlink `/a -> /` must not make the stub cleanup delete the host's copy of the path.
    const victimDir = fs.mkdtempSync('/tmp/tsbuild-victim-');
    const victim = path.join(victimDir, 'precious');
    fs.writeFileSync(victim, 'do not delete\n');
    try {
      const ctx = context({
        Dockerfile: [
          'FROM busybox',
          `RUN ln -s / /a && mkdir -p ${victimDir} /w`,
          `RUN --mount=type=tmpfs,target=/a${victim} true`,
          'RUN --mount=type=tmpfs,target=/w/sub/m touch /w/sub/.keep',
        ].join('\n'),
      });
      await buildCollect(ctx);
      expect(fs.readFileSync(victim, 'utf8')).toBe('do not delete\n');
      const out = await runImage(t.store, 'test:latest', ['sh', '-c', `ls -a /w/sub; ls ${victimDir}`]);
      expect(out.stdout).toBe('.\n..\n.keep\n');
    } finally {
      fs.rmSync(victimDir, { recursive: true, force: true });
    }
  });

  it('ADD extracts local archives (tar, gzip, bzip2, xz) and copies other files', async () => {
    const src = path.join(t.work, 'arch');
    writeTree(src, { 'dir/hello.txt': 'hello\n' });
    const ctx = context({ Dockerfile: '', 'plain.txt': 'not an archive\n' });
    const { spawnSync } = await import('node:child_process');
    for (const [name, flag] of [['a.tar', ''], ['b.tar.gz', 'z'], ['c.tar.bz2', 'j'], ['d.tar.xz', 'J']] as const) {
      expect(spawnSync('tar', [`-c${flag}f`, path.join(ctx, name), '-C', src, 'dir']).status).toBe(0);
    }
    fs.writeFileSync(
      path.join(ctx, 'Dockerfile'),
      'FROM busybox\nADD a.tar /a/\nADD b.tar.gz /b/\nADD c.tar.bz2 /c/\nADD d.tar.xz /d/\nADD plain.txt /p/\n',
    );
    await buildCollect(ctx);
    const out = await runImage(t.store, 'test:latest', ['sh', '-c', 'cat /a/dir/hello.txt /b/dir/hello.txt /c/dir/hello.txt /d/dir/hello.txt /p/plain.txt']);
    expect(out.stdout).toBe('hello\nhello\nhello\nhello\nnot an archive\n');
  });

  for (const sharing of ['locked', 'private'] as const) {
    it(`RUN cache mounts with sharing=${sharing} in two parallel stages`, async () => {
      const step = (name: string) =>
        `RUN --mount=type=cache,id=c,target=/c,sharing=${sharing} echo ${name}-start >> /c/log && sleep 0.4 && echo ${name}-end >> /c/log && cp /c/log /${name}-log`;
      const ctx = context({
        Dockerfile: ['FROM busybox AS a', step('a'), 'FROM busybox AS b', step('b'), 'FROM busybox', 'COPY --from=a /a-log /a-log', 'COPY --from=b /b-log /b-log'].join('\n'),
      });
      await buildCollect(ctx);
      const out = await runImage(t.store, 'test:latest', ['cat', '/a-log', '/b-log']);
      const [a, b] = [out.stdout.split('\n').filter((l) => l.startsWith('a-')), out.stdout.split('\n').filter((l) => l.startsWith('b-'))];
      expect(a.length + b.length).toBeGreaterThanOrEqual(4);
      if (sharing === 'private') {
        // Each concurrent step had a directory of its own: a log holds one stage's lines only.
        expect(out.stdout.split('\n').filter(Boolean)).toEqual(['a-start', 'a-end', 'b-start', 'b-end']);
      } else {
        // One after the other: in the later log, each stage's start is directly followed by its end.
        const later = out.stdout.split('\n').filter(Boolean).slice(2);
        expect([later[0]!.slice(0, 2) === later[1]!.slice(0, 2), later[2]!.slice(0, 2) === later[3]!.slice(0, 2)]).toEqual([true, true]);
      }
    });
  }

  it('SOURCE_DATE_EPOCH gives the same image digest in two stores', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox\nRUN echo hi > /hi && mkdir /d\nCOPY f /d/f\n', f: 'x' });
    const a = await buildCollect(ctx, { sourceDateEpoch: 1700000000 });
    // The same base image (loaded from an archive, so its config is byte-identical) in a second store.
    const archive = path.join(t.work, 'base.tar');
    await t.store.save(['busybox:latest'], archive, 'oci');
    const other = await openTestRoot({ base: false });
    try {
      await other.store.load(archive);
      const b = await build({ context: ctx, tags: ['t'], sourceDateEpoch: 1700000000 }, { store: other.store });
      // Image ID (config digest) and layer diffIDs match; manifests may differ only in how the
      // base's blobs are compressed (the second store loaded them from a gzip archive).
      expect(b.imageId).toBe(a.result.imageId);
      expect(b.config.rootfs.diff_ids).toEqual(a.result.config.rootfs.diff_ids);
    } finally {
      await other.close();
    }
  });
});

describe('layer bytes', () => {
  it('a COPY of a tree (nested directories, symlink, hardlink, empty directory) gives a pinned diffID', async () => {
    const ctx = context({
      Dockerfile: 'FROM busybox\nCOPY tree/ /dst/\n',
      'tree/a.txt': { content: 'a\n', mode: 0o644 },
      'tree/sub/b.sh': { content: '#!/bin/sh\n', mode: 0o755 },
      'tree/sub/deep/c.txt': { content: 'c\n', mode: 0o600 },
    });
    const tree = path.join(ctx, 'tree');
    fs.mkdirSync(path.join(tree, 'empty'));
    fs.symlinkSync('sub/b.sh', path.join(tree, 'link'));
    fs.linkSync(path.join(tree, 'a.txt'), path.join(tree, 'hard'));
    const when = new Date('2020-01-02T03:04:05Z');
    for (const dir of ['sub/deep', 'sub', 'empty', '.']) fs.chmodSync(path.join(tree, dir), 0o755); // not the umask's
    for (const rel of ['a.txt', 'sub/b.sh', 'sub/deep/c.txt', 'sub/deep', 'sub', 'empty', '.']) fs.utimesSync(path.join(tree, rel), when, when);
    fs.lutimesSync(path.join(tree, 'link'), when, when);
    const { result } = await buildCollect(ctx, { sourceDateEpoch: 1700000000 });
    expect(result.config.rootfs.diff_ids.at(-1)).toBe('sha256:23fd91cb9b5398958f60831724e80f86978dcf9bfeb03b2b144d9ffc2b9a69a2');
  });

  // The batch copy creates targets O_EXCL: what the image below has at a target (a file, a directory)
  // is replaced on the JS thread and the batch goes on.
  it('a COPY replaces files and directories of the image below', async () => {
    const files: Record<string, string> = {
      Dockerfile: 'FROM busybox\nRUN mkdir -p /dst/b /dst/sub && echo old > /dst/a && echo x > /dst/b/inner && echo old > /dst/sub/e\nCOPY tree/ /dst/\n',
    };
    for (const name of ['a', 'b', 'c', 'sub/d', 'sub/e']) files[`tree/${name}`] = `new ${name}\n`;
    for (let i = 0; i < 100; i++) files[`tree/many/f${i}`] = `${i}\n`; // more than one batch
    await buildCollect(context(files), { tags: ['replaced:latest'] });
    const run = await runImage(t.store, 'replaced:latest', ['sh', '-c', 'cat /dst/a /dst/b /dst/c /dst/sub/d /dst/sub/e /dst/many/f99; ls /dst/many | wc -l']);
    expect(run.stdout.split('\n').map((l) => l.trim())).toEqual(['new a', 'new b', 'new c', 'new sub/d', 'new sub/e', '99', '100', '']);
  });

  // Large files are copied in the background while the small ones are written, and read one chunk ahead
  // for the cache key and the layer tar: the pins were taken before either change.
  it('a COPY of large files among small ones (and a hardlink to a large one) gives pinned diffID and content key', async () => {
    const files: Record<string, { content: string; mode: number }> = {};
    for (let i = 0; i < 30; i++) files[`tree/s${String(i).padStart(2, '0')}.txt`] = { content: `small ${i}\n`, mode: 0o644 };
    files['tree/b0.bin'] = { content: 'a'.repeat(300 * 1024), mode: 0o644 };
    files['tree/sub/b1.bin'] = { content: 'b'.repeat(3 * 1024 * 1024 + 17), mode: 0o600 };
    files['tree/sub/b2.bin'] = { content: 'c'.repeat(1024 * 1024), mode: 0o755 };
    const ctx = context({ Dockerfile: 'FROM busybox\nCOPY tree/ /dst/\n', ...files });
    const tree = path.join(ctx, 'tree');
    fs.linkSync(path.join(tree, 'sub/b1.bin'), path.join(tree, 'z-hard'));
    const when = new Date('2020-01-02T03:04:05Z');
    for (const dir of ['sub', '.']) fs.chmodSync(path.join(tree, dir), 0o755);
    for (const rel of [...Object.keys(files).map((f) => f.slice('tree/'.length)), 'sub', '.']) fs.utimesSync(path.join(tree, rel), when, when);
    const { result } = await buildCollect(ctx, { sourceDateEpoch: 1700000000 });
    expect(result.config.rootfs.diff_ids.at(-1)).toBe('sha256:81d15332674fdd5837892561c08e097061f9fd4065084350b9d06229e7a11cf8');
    const hash = await hashSources(await (await BuildContext.open(ctx)).resolveSources(['tree/']));
    expect(hash.digest).toBe('sha256:630f8d6290b0fbd637f96cbb1151f9744c654fe6126c2e592909a7e44ddd3572');
  });
  // COPY writes the contents of directories it creates straight into the overlay's upper directory
  // (executors/copy.ts): the pins were taken with every file written through the mount.
  it('a COPY into directories it creates gives pinned layers, and nothing of a lower layer shows', async () => {
    const files: Record<string, { content: string; mode: number }> = {
      'tree/a.txt': { content: 'a\n', mode: 0o644 },
      'tree/sub/b.sh': { content: '#!/bin/sh\n', mode: 0o755 },
      'tree/sub/deep/c.txt': { content: 'c\n', mode: 0o600 },
      'tree/big.bin': { content: 'b'.repeat(300 * 1024), mode: 0o644 },
    };
    const ctx = context({
      Dockerfile: [
        'FROM busybox',
        'RUN mkdir -p /gone/sub /keep && echo hidden > /gone/sub/old && echo lower > /keep/old',
        'RUN rm -rf /gone',
        'COPY tree/ /gone/',
        'COPY tree/ /keep/new/',
        'COPY tree/ /etc/',
        '',
      ].join('\n'),
      ...files,
    });
    const tree = path.join(ctx, 'tree');
    fs.mkdirSync(path.join(tree, 'empty'));
    fs.symlinkSync('sub/b.sh', path.join(tree, 'link'));
    const when = new Date('2020-01-02T03:04:05Z');
    for (const dir of ['sub/deep', 'sub', 'empty', '.']) fs.chmodSync(path.join(tree, dir), 0o755);
    for (const rel of [...Object.keys(files).map((f) => f.slice('tree/'.length)), 'sub/deep', 'sub', 'empty', '.']) fs.utimesSync(path.join(tree, rel), when, when);
    fs.lutimesSync(path.join(tree, 'link'), when, when);
    const { result } = await buildCollect(ctx, { sourceDateEpoch: 1700000000, tags: ['upper:latest'] });
    expect(result.config.rootfs.diff_ids.slice(-3)).toEqual([
      'sha256:ae4758114ef655e8217332bef12ea1dc62d90a796131d2d6a964dfb5204529d1',
      'sha256:6ab0c18728f6ff6e2625a148fc1aeed9cb5fe9a0462fd89713e5e4d9b97220f4',
      'sha256:5d502facb8653ca2040d2c915e2d7b6f6a37d0a93b82d7879eb25647b5c6b053',
    ]);
    const run = await runImage(t.store, 'upper:latest', ['sh', '-c', 'find /gone /keep | sort; cat /keep/old /etc/sub/deep/c.txt; ls /etc/passwd']);
    expect(run.stdout.split('\n')).toEqual([
      '/gone', '/gone/a.txt', '/gone/big.bin', '/gone/empty', '/gone/link', '/gone/sub', '/gone/sub/b.sh', '/gone/sub/deep', '/gone/sub/deep/c.txt',
      '/keep', '/keep/new', '/keep/new/a.txt', '/keep/new/big.bin', '/keep/new/empty', '/keep/new/link', '/keep/new/sub', '/keep/new/sub/b.sh',
      '/keep/new/sub/deep', '/keep/new/sub/deep/c.txt', '/keep/old', 'lower', 'c', '/etc/passwd', '',
    ]);
  });
});

describe('cache keys', () => {
  /** The key as documented: a digest of the named parts in order (the format existing caches hold). */
  const keyOf = (parts: Record<string, string>) => {
    const h = crypto.createHash('sha256').update('tsbuild-cache-v1\n');
    for (const [name, value] of Object.entries(parts)) h.update(`${name}=${JSON.stringify(value)}\n`);
    return `sha256:${h.digest('hex')}`;
  };

  it('are pinned: every layer step keys the same named parts, so existing caches keep hitting', async () => {
    const ctx = context({
      Dockerfile: [
        'FROM busybox AS first',
        'ENV A=1',
        'ARG B=2',
        'WORKDIR /app',
        'COPY --chmod=640 a.txt ./',
        'ADD b.txt /b/',
        'USER 0:0',
        'RUN --mount=type=cache,target=/cache --mount=type=bind,source=a.txt,target=/x echo $A $B > /out',
        'RUN --network=none true',
        'LABEL l=$A',
        'EXPOSE 80',
        'CMD ["sh"]',
        'FROM busybox AS second',
        'COPY --from=0 /out /out2',
        '',
      ].join('\n'),
      'a.txt': 'a\n',
      'b.txt': 'b\n',
    });
    await buildCollect(ctx, { sourceDateEpoch: 1700000000, buildArgs: { B: '3' } });
    const records = await new BuildCache(t.root).list();
    const lineage = path.join(t.root, 'builder', 'lineage');
    const steps = fs.readdirSync(lineage).map((f) => JSON.parse(fs.readFileSync(path.join(lineage, f), 'utf8')) as Record<string, string>);
    expect(steps).toHaveLength(6);
    // Each step's cache entry is the key of the parts it recorded.
    expect(steps.map(keyOf).sort()).toEqual(records.map((r) => r.key).sort());
    // Chain IDs depend on the base image's bytes: name each after the step that made it.
    const names = new Map<string, string>([[(await t.store.imageChain('busybox')).chainID!, '<busybox>']]);
    for (let named = -1; named !== names.size; ) {
      named = names.size;
      for (const parts of steps) {
        const made = records.find((r) => r.key === keyOf(parts))!.record.chainID;
        const instr = JSON.parse(parts.instruction!) as { keyword: string; dest?: string; path?: string; cmdLine?: string[] };
        if (names.has(parts.parent!) && !names.has(made)) names.set(made, `<${instr.keyword} ${instr.dest ?? instr.path ?? instr.cmdLine!.join(' ')}>`);
      }
    }
    const named = (parts: Record<string, string>) =>
      Object.entries(parts)
        .map(([k, v]) => `${k}=${[...names].reduce((s, [id, n]) => s.split(id).join(n), v)}`)
        .join('\n');
    const runMounts =
      '[{"type":"cache","target":"/cache","id":"/cache","sharing":"shared","from":"","source":"","readOnly":false,"mode":493,"uid":0,"gid":0},{"type":"bind","target":"/x","source":"a.txt","from":"","readOnly":true}]';
    const env = '["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","A=1","B=3"]';
    expect(steps.map(named).sort()).toEqual(
      [
        ['parent=<busybox>', 'instruction={"kind":"workdir","keyword":"WORKDIR","flags":[],"path":"/app"}', 'workdir=/app', 'epoch=1700000000'],
        [
          'parent=<WORKDIR /app>',
          'instruction={"kind":"copy","keyword":"COPY","flags":["--chmod=640"],"sources":["a.txt"],"contents":[],"dest":"./","chown":"","chmod":"640","link":false,"exclude":[],"from":"","parents":false}',
          'user=',
          'workdir=/app',
          'content=sha256:69ecaa1524ec696edf52b07a86da69efe31903bc04712e23978074a507f5d14c',
          'epoch=1700000000',
        ],
        [
          'parent=<COPY ./>',
          'instruction={"kind":"add","keyword":"ADD","flags":[],"sources":["b.txt"],"contents":[],"dest":"/b/","chown":"","chmod":"","link":false,"exclude":[],"checksum":""}',
          'user=',
          'workdir=/app',
          'content=sha256:5108f58cdc6bf2e42bcb5756953dcab4105043dae63a3b8000c55480c7e7eb7b',
          'epoch=1700000000',
        ],
        [
          'parent=<ADD /b/>',
          `instruction={"kind":"run","keyword":"RUN","flags":["--mount=type=cache,target=/cache","--mount=type=bind,source=a.txt,target=/x"],"cmdLine":["echo $A $B > /out"],"prependShell":true,"files":[],"mountSpecs":["type=cache,target=/cache","type=bind,source=a.txt,target=/x"],"mounts":${runMounts},"network":"default","security":"sandbox","flagsUsed":["mount"]}`,
          `env=${env}`,
          'content=[["/x","sha256:67ef472d5ead72f98529809510f620e6debff8a2bfb07a0d0fe44f5e7074a140"]]',
          'user=0:0',
          'workdir=/app',
          'shell=["/bin/sh","-c"]',
          'network=default',
          `mounts=${runMounts}`,
          'epoch=1700000000',
        ],
        [
          'parent=<RUN echo $A $B > /out>',
          'instruction={"kind":"run","keyword":"RUN","flags":["--network=none"],"cmdLine":["true"],"prependShell":true,"files":[],"mountSpecs":[],"mounts":[],"network":"none","security":"sandbox","flagsUsed":["network"]}',
          `env=${env}`,
          'user=0:0',
          'workdir=/app',
          'shell=["/bin/sh","-c"]',
          'network=default',
          'mounts=[]',
          'epoch=1700000000',
        ],
        [
          'parent=<busybox>',
          'instruction={"kind":"copy","keyword":"COPY","flags":["--from=0"],"sources":["/out"],"contents":[],"dest":"/out2","chown":"","chmod":"","link":false,"exclude":[],"from":"0","parents":false}',
          'user=',
          'workdir=',
          'from=<RUN true>',
          'epoch=1700000000',
        ],
      ]
        .map((l) => l.join('\n'))
        .sort(),
    );
    // The first stage again: every step hits, and the history says what each instruction did.
    const first = await buildCollect(ctx, { sourceDateEpoch: 1700000000, buildArgs: { B: '3' }, target: 'first' });
    expect(first.events.filter((e) => e.type === 'step-cache-miss')).toEqual([]);
    expect(first.result.config.history!.slice(-11).map((h) => [h.created_by, h.empty_layer ?? false])).toEqual([
      ['ENV A=1 # tsbuild', true],
      ['ARG B=2 # tsbuild', true],
      ['WORKDIR /app # tsbuild', false],
      ['COPY --chmod=640 a.txt ./ # tsbuild', false],
      ['ADD b.txt /b/ # tsbuild', false],
      ['USER 0:0 # tsbuild', true],
      ['RUN |1 B=3 /bin/sh -c echo $A $B > /out # tsbuild', false],
      ['RUN |1 B=3 /bin/sh -c true # tsbuild', false],
      ['LABEL l=1 # tsbuild', true],
      ['EXPOSE 80 # tsbuild', true],
      ['CMD ["sh"] # tsbuild', true],
    ]);
  });
});

describe('docker build semantics found in review', () => {
  it.each([
    {
      title: 'one wildcard match into a file path; a symlinked destination is followed; local *.git is a path',
      files: {
        Dockerfile: [
          'FROM busybox',
          'RUN mkdir -p /opt/app && ln -s /opt/app /app',
          'COPY target/*.jar app.jar',
          'COPY src/ /app/',
          'COPY repo.git /repo.git',
        ].join('\n'),
        'target/only.jar': 'jar',
        'src/main.txt': 'main',
        'repo.git/HEAD': 'ref',
      },
      cmd: ['sh', '-c', 'cat /app.jar; echo; cat /opt/app/main.txt; echo; [ -L /app ] && echo link; cat /repo.git/HEAD'],
      stdout: 'jar\nmain\nlink\nref',
    },
    {
      title: 'COPY --parents keeps source paths (with a /./ pivot) and --exclude leaves files out',
      files: {
        Dockerfile: 'FROM busybox\nCOPY --parents x/a.txt y/*.txt /keep/\nCOPY --parents ./src/./pkg/m.txt /pivot/\nCOPY --exclude=*.log logs/ /logs/\n',
        'x/a.txt': 'a',
        'y/b.txt': 'b',
        'src/pkg/m.txt': 'm',
        'logs/keep.txt': 'k',
        'logs/drop.log': 'd',
      },
      cmd: ['sh', '-c', 'cd / && find keep pivot logs -type f | sort'],
      stdout: 'keep/x/a.txt\nkeep/y/b.txt\nlogs/keep.txt\npivot/pkg/m.txt\n',
    },
    {
      title: 'COPY --from follows absolute symlinks inside the source image',
      files: {
        Dockerfile: 'FROM busybox AS s\nRUN mkdir /real && echo inside > /real/f && ln -s /real /abs && ln -s ../../real /rel\nFROM busybox\nCOPY --from=s /abs/f /got\nCOPY --from=s /rel/f /got2\n',
      },
      cmd: ['cat', '/got', '/got2'],
      stdout: 'inside\ninside\n',
    },
  ])('$title', async ({ files, cmd, stdout }) => {
    await buildCollect(context(files));
    expect((await runImage(t.store, 'test:latest', cmd)).stdout).toBe(stdout);
  });

  it('undeclared proxy build args reach RUN but not the key; tmpfs mounts are writable by USER', async () => {
    const ctx = context({
      Dockerfile: 'FROM busybox\nUSER 1000\nRUN --mount=type=tmpfs,target=/t touch /t/x && echo "p=$HTTP_PROXY" > /tmp/p\n',
    });
    await buildCollect(ctx, { buildArgs: { HTTP_PROXY: 'http://proxy.invalid:3128' } });
    expect((await runImage(t.store, 'test:latest', ['cat', '/tmp/p'])).stdout).toBe('p=http://proxy.invalid:3128\n');
    const again = await buildCollect(ctx, { buildArgs: { HTTP_PROXY: 'http://other.invalid:8080' } });
    expect(again.events.filter((e) => e.type === 'step-cached')).toHaveLength(1);
  });

  it('RUN --mount=type=bind from the context: its content is in the key and .dockerignore applies', async () => {
    const ctx = context({
      Dockerfile: 'FROM busybox\nRUN --mount=type=bind,target=/src cat /src/a.txt > /out && ls /src > /listing\n',
      '.dockerignore': 'secret.env\n',
      'a.txt': 'one\n',
      'secret.env': 'TOKEN=x\n',
    });
    await buildCollect(ctx);
    fs.writeFileSync(path.join(ctx, 'a.txt'), 'two\n');
    const again = await buildCollect(ctx);
    expect(again.events.filter((e) => e.type === 'step-cached')).toEqual([]);
    const out = await runImage(t.store, 'test:latest', ['cat', '/out', '/listing']);
    expect(out.stdout).toBe('two\nDockerfile\na.txt\n');
  });

  it('ADD of a URL into an existing directory puts the file inside it, and is fetched on every build', async () => {
    const http = await import('node:http');
    let body = 'downloaded\n';
    const server = http.createServer((_req, res) => res.end(body));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const ctx = context({ Dockerfile: `FROM busybox\nADD http://127.0.0.1:${port}/file.txt /tmp\n` });
      await buildCollect(ctx);
      const out = await runImage(t.store, 'test:latest', ['sh', '-c', 'cat /tmp/file.txt; stat -c %a /tmp']);
      expect(out.stdout).toBe('downloaded\n1777\n');
      // Fetched again on the next build: changed bytes miss the cache.
      body = 'changed\n';
      const again = await buildCollect(ctx);
      expect(again.events.filter((e) => e.type === 'step-cached')).toEqual([]);
      expect((await runImage(t.store, 'test:latest', ['cat', '/tmp/file.txt'])).stdout).toBe('changed\n');
    } finally {
      server.close();
    }
  });
});

describe('builds and the layer sweep', () => {
  it('a failed stage cancels its siblings: nothing runs or holds a work layer once build() rejects', async () => {
    const ctx = context({
      Dockerfile: 'FROM busybox AS a\nRUN false\nFROM busybox AS b\nRUN sleep 30\nFROM busybox\nCOPY --from=a /etc/passwd /a\nCOPY --from=b /etc/passwd /b\n',
    });
    await expect(buildCollect(ctx)).rejects.toThrow(/exit code: 1/);
    expect(t.store.layers.listRW()).toEqual([]);
    expect(mountsUnder(t.root)).toEqual([]);
  });

  it('a sweep (rmi or prune from another process) during a build keeps what the build still needs', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox AS a\nRUN echo a > /a\nFROM busybox AS b\nRUN sleep 1\nFROM b\nCOPY --from=a /a /a\n' });
    let sweep: Promise<number> | undefined;
    const names = new Map<number, string>();
    await buildCollect(ctx).then(() => undefined);
    await t.store.removeImage('test:latest');
    await new BuildCache(t.root).clear();
    await t.store.collectLayers();
    const result = await build(
      { context: ctx, tags: ['test:latest'] },
      {
        store: t.store,
        onEvent: (e: BuildEvent) => {
          if (e.type === 'step-start') names.set(e.vertex, e.name);
          if (e.type === 'step-done' && names.get(e.vertex)?.includes('echo a')) sweep = t.store.collectLayers();
        },
      },
    );
    await sweep;
    expect((await runImage(t.store, result.imageId, ['cat', '/a'])).stdout).toBe('a\n');
  });

  it('a store opened with no option (as a library user opens one) keeps the build cache through prune', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox\nRUN echo a > /a\nCOPY f /f\n', f: 'f' });
    await buildCollect(ctx);
    const other = await Store.open(t.root);
    try {
      await other.removeImage('test:latest');
      expect((await other.prune()).layers).toBe(0);
    } finally {
      await other.close();
    }
    const again = await buildCollect(ctx);
    expect(again.events.filter((e) => e.type === 'step-cached')).toHaveLength(2);
    expect(again.events.filter((e) => e.type === 'step-cache-miss')).toEqual([]);
  });

  it('removing an unrelated image keeps the build cache of intermediate stages', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox AS a\nRUN echo a > /a\nFROM busybox\nCOPY --from=a /a /a\n' });
    await buildCollect(ctx);
    await t.store.images.tag('other:1', (await t.store.images.resolve('busybox')).id);
    await t.store.removeImage('other:1');
    await t.store.collectLayers();
    const again = await buildCollect(ctx);
    expect(again.events.filter((e) => e.type === 'step-cache-miss')).toEqual([]);
  });
});

describe('bad input leaves no tag, layer step or mount behind', () => {
  async function expectFailure(files: Record<string, string>, message: RegExp, opts: Partial<Parameters<typeof build>[0]> = {}) {
    const ctx = context(files);
    const before = t.store.layers.list().length;
    await expect(buildCollect(ctx, { tags: ['bad:latest'], ...opts })).rejects.toThrow(message);
    await expect(t.store.images.resolve('bad:latest')).rejects.toThrow(/not found/);
    expect(t.store.layers.list().length).toBe(before);
    expect(t.store.layers.listRW()).toEqual([]);
    expect(mountsUnder(t.root)).toEqual([]);
  }

  it('an unknown instruction names its line', () =>
    expectFailure({ Dockerfile: 'FROM busybox\nRUN true\nFROBNICATE x\n' }, /line 3: unknown instruction: FROBNICATE/));
  it('an empty Dockerfile', () => expectFailure({ Dockerfile: '' }, /file with no instructions/));
  it('a bad EXPOSE names its line', () => expectFailure({ Dockerfile: 'FROM busybox\nRUN true\nEXPOSE abc\n' }, /Dockerfile:3: invalid containerPort: abc/));
  it('a missing source is named', () => expectFailure({ Dockerfile: 'FROM busybox\nRUN true\nCOPY nothere /x\n' }, /nothere/));
  it('a source outside the context', () => expectFailure({ Dockerfile: 'FROM busybox\nCOPY ../../etc/passwd /x\n' }, /outside the build context/));
  it('a missing base image is named', () => expectFailure({ Dockerfile: 'FROM nosuchimage:1\nRUN true\n' }, /nosuchimage/));
  it('a failing RUN reports its exit code', () =>
    expectFailure({ Dockerfile: 'FROM busybox\nRUN exit 3\n' }, /process "\/bin\/sh -c exit 3" did not complete successfully: exit code: 3/));
  // The file goes away after planning (hashed) and before the COPY runs: the small-file (synchronous)
  // and the large-file (pool) paths both fail naming the file, and leave no layer behind.
  for (const [name, size] of [['small', 10], ['large', 300 * 1024]] as const) {
    it(`a ${name} source file that vanishes before the COPY runs is named`, async () => {
      const files: Record<string, string> = { Dockerfile: 'FROM busybox\nCOPY dir /dst/\n', [`dir/${name}`]: 'x'.repeat(size) };
      for (let i = 0; i < 40; i++) files[`dir/f${i}`] = `${i}`;
      const ctx = context(files);
      const before = t.store.layers.list().length;
      const onEvent = (e: BuildEvent) => {
        if (e.type === 'step-start' && e.name.includes('COPY')) fs.rmSync(path.join(ctx, 'dir', name));
      };
      await expect(build({ context: ctx, tags: ['bad:latest'] }, { store: t.store, onEvent })).rejects.toThrow(
        new RegExp(`Dockerfile:2: COPY dir /dst/: ENOENT.*dir/${name}`),
      );
      await expect(t.store.images.resolve('bad:latest')).rejects.toThrow(/not found/);
      expect(t.store.layers.list().length).toBe(before);
      expect(t.store.layers.listRW()).toEqual([]);
      expect(mountsUnder(t.root)).toEqual([]);
    });
  }
  it('a context symlink pointing outside', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox\nCOPY link /x\n' });
    fs.symlinkSync('/etc/passwd', path.join(ctx, 'link'));
    await expect(buildCollect(ctx, { tags: ['bad:latest'] })).rejects.toThrow(/link/);
    expect(mountsUnder(t.root)).toEqual([]);
  });
});
