// Temporary storage roots for end-to-end tests: each test gets its own, with the busybox base
// imported, and teardown proves nothing is left mounted under it before removing it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, expect } from 'vitest';
import { Store } from '@tsbuild/storage';
import { makeBusyboxTar } from '../../fixtures/busybox';

export const REPO = path.resolve(__dirname, '..', '..');
export const CLI = path.join(REPO, 'packages', 'builder', 'bin', 'tsbuild.js');

let busyboxDir: string | undefined;

/** The busybox base rootfs tarball, generated once per test file and removed after it. */
export function busyboxTarball(): string {
  if (!busyboxDir) {
    busyboxDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-bbtar-'));
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

export async function openTestRoot(opts: { driver?: 'overlay2' | 'aufs' | 'vfs'; base?: boolean } = {}): Promise<TestRoot> {
  const top = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-e2e-'));
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
      const left = mountsUnder(top);
      for (const m of left.reverse()) spawnSync('umount', ['-l', m]);
      fs.rmSync(top, { recursive: true, force: true });
      if (left.length > 0) throw new Error(`mounts were left under ${top}: ${left.join(', ')}`);
    },
  };
}

/** Mount points at or below `dir`, from /proc/self/mountinfo. */
export function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => !!p && (p === dir || p.startsWith(`${dir}/`)));
}

/** Writes files (path → content) under dir; content may be { content, mode }. */
export function writeTree(dir: string, files: Record<string, string | { content: string; mode: number }>): string {
  for (const [rel, spec] of Object.entries(files)) {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    const { content, mode } = typeof spec === 'string' ? { content: spec, mode: 0o644 } : spec;
    fs.writeFileSync(p, content, { mode });
    fs.chmodSync(p, mode);
  }
  return dir;
}

/** Runs the tsbuild CLI (compiled) against a root. */
export function cli(root: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  const r = spawnSync(process.execPath, [CLI, '--root', root, ...args], {
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
 * A temp dir with a CLI storage root holding the busybox base, set up before the file's tests and
 * removed after them (failing if anything is left mounted). Read `top` and `root` inside tests.
 */
export function cliRootWithBusybox(prefix: string): { top: string; root: string } {
  const paths = { top: '', root: '' };
  beforeAll(() => {
    paths.top = fs.mkdtempSync(path.join('/tmp', prefix));
    paths.root = path.join(paths.top, 'root');
    const r = cli(paths.root, ['import', busyboxTarball(), 'busybox:latest']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
  afterAll(() => {
    const left = mountsUnder(paths.top);
    for (const m of left.reverse()) spawnSync('umount', ['-l', m]);
    fs.rmSync(paths.top, { recursive: true, force: true });
    expect(left).toEqual([]);
  });
  return paths;
}
