// The caller's umask must not reach an image or a container's view (issue 8): Docker's device nodes
// are 0666, its /etc/hosts 0644, a RUN's heredoc readable by a non-root USER, whatever umask dockerd's
// caller had. Each umask builds the same Dockerfile in its own store; the layers must be equal and
// a non-root process must be able to use /dev/null, /etc/hosts and the mounts.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { build } from '@tsbuild/builder';
import { Containers } from '@tsbuild/storage';
import { cli, openTestRoot, type TestRoot, useTestRoot, writeTree } from './helpers/roots';

const UMASKS = [0o022, 0o077, 0o000] as const;
const DRIVERS = ['overlay2', 'aufs', 'vfs'] as const;

// Everything a build creates on the host for a step: context copies, WORKDIR, cache and secret
// mounts, bind mounts of the context, heredoc scripts; and, as a non-root user, the runtime's /dev.
const DOCKERFILE = `# syntax=docker/dockerfile:1
FROM busybox
WORKDIR /app/deep/dir
COPY tree/ /app/
RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && mkdir /out && chown app /out
USER 1000
RUN --mount=type=cache,target=/cache,uid=1000 --mount=type=secret,id=token,target=/run/secrets/token,mode=0444 \\
    --mount=type=bind,target=/ctx \\
    echo x > /dev/null && echo y > /dev/zero && head -c 4 /dev/urandom > /dev/null && \\
    cat /etc/hosts /etc/resolv.conf /etc/hostname > /dev/null && cat /run/secrets/token > /out/secret && \\
    cat /ctx/tree/file > /out/ctx && touch /cache/ok && ls -ln /dev/null | cut -c1-10 > /out/devnull
RUN <<EOF
echo heredoc > /out/heredoc
EOF
`;

interface Outcome {
  diffIds: string[];
  devNull: string;
  files: string;
}

async function buildUnder(umask: number, driver: (typeof DRIVERS)[number]): Promise<Outcome> {
  // The context is the user's own files: written with fixed modes (Docker copies their modes as they are).
  const ctxTop = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-umask-ctx-'));
  const ctx = path.join(ctxTop, 'ctx');
  for (const d of [ctx, path.join(ctx, 'tree'), path.join(ctx, 'tree', 'bin')]) {
    fs.mkdirSync(d);
    fs.chmodSync(d, 0o755);
  }
  writeTree(ctx, {
    Dockerfile: DOCKERFILE,
    'tree/file': 'context file\n',
    'tree/bin/tool': { content: '#!/bin/sh\necho tool\n', mode: 0o755 },
  });
  const secret = path.join(ctxTop, 'token');
  fs.writeFileSync(secret, 'hunter2\n', { mode: 0o600 });
  const previous = process.umask(umask);
  let t: TestRoot | undefined;
  try {
    t = await openTestRoot({ driver });
    const { config } = await build(
      { context: ctx, tags: ['umask:test'], secrets: { token: { src: secret } }, sourceDateEpoch: 1_700_000_000 },
      { store: t.store },
    );
    const run = async (cmd: string[]) => {
      const containers = new Containers(t!.store);
      const { record, process: proc } = await containers.create({ image: 'umask:test', cmd, user: '1000' });
      try {
        const { container, finished } = await containers.start(record, proc, { stdio: 'pipe' });
        let out = '';
        for await (const chunk of container.stdout!) out += chunk.toString();
        let err = '';
        for await (const chunk of container.stderr!) err += chunk.toString();
        const exit = await finished;
        expect(err).toBe('');
        expect(exit.exitCode).toBe(0);
        return out;
      } finally {
        await containers.remove(record.id, { force: true });
      }
    };
    const devNull = await run(['sh', '-c', 'ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty | cut -c1-10; echo > /dev/null; cat /etc/hosts /etc/hostname /etc/resolv.conf > /dev/null']);
    const files = await run(['sh', '-c', 'cat /out/secret /out/ctx /out/heredoc /out/devnull; for p in / /app /app/deep /app/deep/dir /app/bin /app/bin/tool /app/file; do stat -c "%A %n" $p; done']);
    return { diffIds: config.rootfs.diff_ids, devNull, files };
  } finally {
    process.umask(previous);
    await t?.close();
    fs.rmSync(ctxTop, { recursive: true, force: true });
  }
}

describe.each(DRIVERS)('the caller umask does not reach images or containers (%s)', (driver) => {
  const outcomes = new Map<number, Outcome>();
  beforeAll(async () => {
    for (const umask of UMASKS) outcomes.set(umask, await buildUnder(umask, driver));
  }, 300_000);

  it.each(UMASKS)('device nodes are crw-rw-rw- and usable by a non-root user under umask %o', (umask) => {
    expect(outcomes.get(umask)!.devNull).toBe('crw-rw-rw-\n'.repeat(6));
  });

  it.each(UMASKS)('a non-root RUN reads hosts files, secrets, context binds and heredocs under umask %o', (umask) => {
    const lines = outcomes.get(umask)!.files.split('\n');
    expect(lines.slice(0, 3)).toEqual(['hunter2', 'context file', 'heredoc']);
    expect(lines[3]).toMatch(/^crw-rw-rw-/);
    expect(lines.slice(4, 11)).toEqual([
      'drwxr-xr-x /', 'drwxr-xr-x /app', 'drwxr-xr-x /app/deep', 'drwxr-xr-x /app/deep/dir', 'drwxr-xr-x /app/bin',
      '-rwxr-xr-x /app/bin/tool', '-rw-r--r-- /app/file',
    ]);
  });

  // Layers, not image IDs: each store imports the base at another time, so the configs differ. (What
  // the RUN steps write must not depend on the clock either: ls -l prints times, so it is cut.)
  it('the same layers under every umask', () => {
    const layers = UMASKS.map((u) => outcomes.get(u)!.diffIds.join(','));
    expect(new Set(layers).size).toBe(1);
  });
});

describe('tsbuild run under the caller umask', () => {
  const t = useTestRoot({}, 'all');

  it.each(UMASKS)('ls -l /dev/null shows crw-rw-rw- under umask %o', (umask) => {
    const previous = process.umask(umask);
    try {
      const r = cli(t.root, ['run', '--rm', '-u', '1000', 'busybox', 'sh', '-c', 'ls -l /dev/null && echo ok > /dev/null']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^crw-rw-rw- /);
    } finally {
      process.umask(previous);
    }
  });
});
