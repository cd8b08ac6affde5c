// Temporary storage roots for end-to-end tests: each test gets its own, with the busybox base
// imported, and teardown proves nothing is left mounted under it before removing it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { Store } from '@tsbuild/storage';
import { makeBusyboxTar } from '../../fixtures/busybox';
import { destroyRoot, tempRoot } from './temp';

export { mountsUnder, writeTree } from './temp';

export const REPO = path.resolve(__dirname, '..', '..');
export const CLI = path.join(REPO, 'packages', 'builder', 'bin', 'tsbuild.js');

let busyboxDir: string | undefined;

/** The busybox base rootfs tarball, generated once per test file and removed after it. */
export function busyboxTarball(): string {
  if (!busyboxDir) {
    busyboxDir = tempRoot('bbtar');
    makeBusyboxTar(path.join(busyboxDir, 'busybox.tar'));
  }
  return path.join(busyboxDir, 'busybox.tar');
}

// Registered at the top level of every test file that imports this helper.
afterAll(() => {
  if (busyboxDir) fs.rmSync(busyboxDir, { recursive: true, force: true });
  busyboxDir = undefined;
});

export interface TestRoot {
  root: string;
  store: Store;
  /** A scratch directory for contexts and outputs, removed with the root. */
  work: string;
  close(): Promise<void>;
}

export interface TestRootOptions {
  driver?: 'overlay2' | 'aufs' | 'vfs';
  /** Import the busybox base as busybox:latest (default true). */
  base?: boolean;
}

export async function openTestRoot(opts: TestRootOptions = {}): Promise<TestRoot> {
  const top = tempRoot('e2e');
  const root = path.join(top, 'root');
  const work = path.join(top, 'work');
  fs.mkdirSync(work);
  const store = await Store.open(root, { driver: opts.driver ?? 'overlay2' });
  if (opts.base !== false) await store.importTarball(busyboxTarball(), 'busybox:latest');
  return {
    root,
    store,
    work,
    async close() {
      await store.close();
      const left = destroyRoot(top);
      if (left.length > 0) throw new Error(`mounts were left under ${top}: ${left.join(', ')}`);
    },
  };
}

/**
 * The TestRoot of the running test: opened before each test and closed after it, or with `per: 'all'`
 * once for the file (or the describe it is called in). Later hooks of the caller run inside that span.
 */
export function useTestRoot(opts: TestRootOptions = {}, per: 'each' | 'all' = 'each'): TestRoot {
  let current: TestRoot | undefined;
  const open = async () => {
    current = await openTestRoot(opts);
  };
  const close = async () => {
    const closing = current;
    current = undefined;
    await closing?.close();
  };
  if (per === 'each') {
    beforeEach(open);
    afterEach(close);
  } else {
    beforeAll(open);
    afterAll(close);
  }
  const now = (): TestRoot => {
    if (!current) throw new Error('the test root is open only while tests run');
    return current;
  };
  return {
    get root() {
      return now().root;
    },
    get store() {
      return now().store;
    },
    get work() {
      return now().work;
    },
    close: () => close(),
  };
}

/** Runs the tsbuild CLI against a root as users run it: the bin file as a program (its sh lines start node). */
export function cli(root: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  const r = spawnSync(CLI, ['--root', root, ...args], {
    encoding: 'utf8',
    input: opts.input ?? '',
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd ?? REPO,
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a command in a container of `image` and returns its exit code and output. */
export async function runImage(store: Store, image: string, cmd?: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const { Containers } = await import('@tsbuild/storage');
  const containers = new Containers(store);
  const { record, process: proc } = await containers.create({ image, ...(cmd ? { cmd } : {}) });
  try {
    const { container, finished } = await containers.start(record, proc, { stdio: 'pipe' });
    const read = async (s: NodeJS.ReadableStream | undefined) => {
      let out = '';
      if (s) for await (const chunk of s) out += chunk.toString();
      return out;
    };
    const [stdout, stderr, exit] = await Promise.all([read(container.stdout), read(container.stderr), finished]);
    return { exitCode: exit.exitCode, stdout, stderr };
  } finally {
    await containers.remove(record.id, { force: true });
  }
}

/**
 * A temp dir with a CLI storage root holding the busybox base, imported before the file's tests and
 * removed after them (failing if anything is left mounted). Later `afterAll` hooks of the file run
 * before the removal.
 */
export function cliRootWithBusybox(prefix: string): { top: string; root: string } {
  const top = fs.mkdtempSync(path.join('/tmp', prefix));
  const paths = { top, root: path.join(top, 'root') };
  beforeAll(() => {
    const r = cli(paths.root, ['import', busyboxTarball(), 'busybox:latest']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
  afterAll(() => {
    expect(destroyRoot(paths.top)).toEqual([]);
  });
  return paths;
}
