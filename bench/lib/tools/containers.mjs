// podman and buildah on containers-storage. Each store is a private --root/--runroot (plus podman's
// --tmpdir and TMPDIR), so nothing touches /var/lib/containers. buildah and podman share a store when
// given the same flags; bench-base is imported with `podman import` and used by buildah from there.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run, must, which } from '../exec.mjs';
import { removeTree } from '../cleanup.mjs';

const ULIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

// Short names: podman refuses a runroot longer than 50 characters.
function makeStore(ctx, label) {
  const dir = path.join(ctx.tmp, 'c', label);
  const store = {
    dir,
    storage: ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run'), '--storage-driver', 'overlay'],
    env: { TMPDIR: path.join(dir, 'tmp') },
  };
  store.podman = [...store.storage, '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--tmpdir', path.join(dir, 'libpod-tmp')];
  fs.mkdirSync(store.env.TMPDIR, { recursive: true });
  return store;
}

async function importBase(ctx, store) {
  await must('podman import bench-base', 'podman', [...store.podman, 'import', ctx.baseTar, 'bench-base'], { env: store.env });
}

export function podmanTool(ctx) {
  let store;
  const podman = (...args) => ({ cmd: 'podman', args: [...store.podman, ...args], env: store.env, timeoutMs: 15 * 60_000 });
  return {
    name: 'podman',
    note: 'podman --root/--runroot private, overlay, cgroupfs, --network none',

    async setup() {
      if (!which('podman')) throw new Error('podman not installed');
      store = makeStore(ctx, 'p');
      await importBase(ctx, store);
      const { cmd, args, env } = this.runCmd();
      await must('podman run', cmd, args, { env });
    },

    version: async () => (await run('podman', ['--version'])).stdout.trim(),
    importCmd: (tar, name) => podman('import', tar, name),
    runCmd: () => podman('run', '--rm', '--pull=never', '--network', 'none', ...ULIMITS, 'bench-base', 'true'),
    imagesCmd: () => podman('images'),
    inspectCmd: (name) => podman('inspect', name),
    tagCmd: (source, target) => podman('tag', source, target),

    async rmi(...names) {
      await run('podman', [...store.podman, 'rmi', '-f', ...names], { env: store.env });
    },

    async teardown() {
      if (store) removeTree(store.dir);
    },
  };
}

export function buildahTool(ctx) {
  let count = 0;
  return {
    name: 'buildah',
    note: 'buildah bud --layers, OCI isolation (runc), --network none; fresh store per cold build',

    /** Proves a store with bench-base can start a working container from it. */
    async setup() {
      for (const bin of ['buildah', 'podman']) if (!which(bin)) throw new Error(`${bin} not installed`);
      const store = await this.newStore();
      try {
        const from = await must('buildah from', 'buildah', [...store.storage, 'from', '--pull=never', 'bench-base'], { env: store.env });
        const name = from.stdout.trim().split('\n').pop();
        await must('buildah run', 'buildah', [...store.storage, 'run', '--network', 'none', name, 'true'], { env: store.env });
        await must('buildah rm', 'buildah', [...store.storage, 'rm', name], { env: store.env });
      } finally {
        this.drop(store);
      }
    },

    version: async () => (await run('buildah', ['--version'])).stdout.trim(),

    /** A fresh store holding only bench-base. */
    async newStore() {
      const store = makeStore(ctx, `b${++count}`);
      await importBase(ctx, store);
      return store;
    },

    buildCmd: (store, tag, context) => ({
      cmd: 'buildah',
      args: [...store.storage, 'bud', '--layers', '--pull=never', '--network', 'none', ...ULIMITS, '-t', tag, context],
      env: store.env,
      timeoutMs: 15 * 60_000,
    }),

    drop(store) {
      if (store) removeTree(store.dir);
    },

    async teardown() {
      removeTree(path.join(ctx.tmp, 'c'));
    },
  };
}
