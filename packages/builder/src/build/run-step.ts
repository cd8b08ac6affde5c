// RUN: the command in a container on the step's work layer, with BuildKit's defaults (host network
// unless --network=none, no_new_privs off, Docker's capabilities) and its --mount kinds. Mount points
// and the /etc files the runtime binds are stubs: the ones that did not exist before are removed after
// the run, so they never reach the layer.
import * as crypto from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { resolveInRoot } from '@tsbuild/storage';
import { planRun, type RunInstruction, type RunMount } from '../dockerfile';
import type { BuildEvent } from '../progress';
import type { BuildBackend, RunMountRequest } from './backend';
import { BuildError } from './errors';
import type { ImageConfig } from './image-config';

export interface RunContext {
  backend: BuildBackend;
  emit: (event: Omit<Extract<BuildEvent, { type: 'step-log' }>, 'vertex'>) => void;
  network: 'default' | 'host' | 'none';
  secrets: Record<string, { src?: string; env?: string }>;
  /** A read-only view of a stage or image (RUN --mount from=). */
  viewOf(ref: string): Promise<{ rootfs: string; release(): Promise<void> }>;
  contextDir: string;
  cacheMountsDir: string;
}

/** Files the runtime binds into every container; created as stubs when the image lacks them. */
const RUNTIME_STUBS = [
  { path: '/etc/hosts', dir: false },
  { path: '/etc/hostname', dir: false },
  { path: '/etc/resolv.conf', dir: false },
  { path: '/proc', dir: true },
  { path: '/dev', dir: true },
  { path: '/sys', dir: true },
];

export async function runStep(ctx: RunContext, rootfs: string, instr: RunInstruction, env: string[], config: ImageConfig): Promise<void> {
  const shell = config.config.Shell && config.config.Shell.length > 0 ? config.config.Shell : undefined;
  const plan = planRun(instr, shell);
  const cleanups: (() => Promise<void>)[] = [];
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'tsbuild-run-'));
  cleanups.push(() => fsp.rm(scratch, { recursive: true, force: true }));
  const stubs = new StubTracker(rootfs);
  try {
    const mounts: RunMountRequest[] = [];
    const runEnv = [...env];
    for (const m of instr.mounts ?? []) {
      const resolved = await prepareMount(ctx, m, scratch, runEnv, cleanups);
      if (resolved) mounts.push(resolved);
    }
    if (plan.scriptFile) {
      const dir = path.join(scratch, 'pipes');
      await fsp.mkdir(dir);
      await fsp.writeFile(path.join(dir, plan.scriptFile.name), plan.scriptFile.data, { mode: 0o755 });
      mounts.push({ type: 'bind', source: dir, target: path.posix.dirname(plan.scriptFile.path), readonly: true });
    }
    for (const stub of RUNTIME_STUBS) await stubs.note(stub.path);
    for (const m of mounts) await stubs.note(m.target);

    const stdout = new PassThrough();
    const stderr = new PassThrough();
    stdout.on('data', (data: Buffer) => ctx.emit({ type: 'step-log', stream: 'stdout', data, time: Date.now() }));
    stderr.on('data', (data: Buffer) => ctx.emit({ type: 'step-log', stream: 'stderr', data, time: Date.now() }));
    const result = await ctx.backend.run({
      rootfs,
      args: plan.args,
      env: runEnv,
      cwd: config.config.WorkingDir || '/',
      user: config.config.User ?? '',
      network: (instr.network !== 'default' ? instr.network : ctx.network) === 'none' ? 'none' : 'host',
      mounts,
      stdout,
      stderr,
    });
    if (result.exitCode !== 0) {
      const status = result.exitCode ?? 128;
      const why = result.oomKilled ? ' (OOM killed)' : '';
      throw new BuildError(
        `process ${goQuote(plan.args.join(' '))} did not complete successfully: exit code: ${status}${why}`,
        status,
      );
    }
  } finally {
    await stubs.removeCreated();
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  }
}

async function prepareMount(
  ctx: RunContext,
  m: RunMount,
  scratch: string,
  env: string[],
  cleanups: (() => Promise<void>)[],
): Promise<RunMountRequest | undefined> {
  switch (m.type) {
    case 'cache': {
      // The id only names a directory: hash it, so `id=../..` can never point outside (CVE-2024-9675).
      const dir = path.join(ctx.cacheMountsDir, crypto.createHash('sha256').update(m.id).digest('hex'));
      const created = await fsp.mkdir(dir, { recursive: true });
      if (created) {
        await fsp.chown(dir, m.uid, m.gid);
        await fsp.chmod(dir, m.mode);
      }
      return { type: 'bind', source: dir, target: m.target, readonly: m.readOnly };
    }
    case 'tmpfs':
      return { type: 'tmpfs', target: m.target, ...(m.size ? { size: m.size } : {}) };
    case 'bind': {
      let root = ctx.contextDir;
      if (m.from) {
        const view = await ctx.viewOf(m.from);
        cleanups.push(() => view.release());
        root = view.rootfs;
      }
      const source = await resolveInRoot(root, m.source || '/', { followFinal: true, escape: 'clamp' });
      if (!m.readOnly) {
        // rw binds keep their writes to this step: give the step a private copy.
        const copy = path.join(scratch, `bind-${crypto.randomBytes(4).toString('hex')}`);
        await fsp.cp(source, copy, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
        return { type: 'bind', source: copy, target: m.target, readonly: false };
      }
      return { type: 'bind', source, target: m.target, readonly: true };
    }
    case 'secret': {
      const given = ctx.secrets[m.id];
      if (!given) {
        if (m.required) throw new BuildError(`secret ${m.id} not found`);
        return undefined;
      }
      const value = given.env !== undefined ? process.env[given.env] ?? '' : await readSecret(given.src!, m.id);
      if (m.env) env.push(`${m.env}=${value}`);
      if (!m.target) return undefined;
      const file = path.join(scratch, `secret-${crypto.randomBytes(4).toString('hex')}`);
      await fsp.writeFile(file, value, { mode: m.mode });
      await fsp.chown(file, m.uid, m.gid);
      return { type: 'bind', source: file, target: m.target, readonly: true };
    }
    default:
      throw new BuildError(`RUN --mount=type=${(m as { type: string }).type} is not supported`);
  }
}

async function readSecret(src: string, id: string): Promise<string> {
  try {
    return await fsp.readFile(src, 'utf8');
  } catch (err) {
    throw new BuildError(`secret ${id}: cannot read ${src}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * Remembers which components of mount-point paths are missing before the run, and removes exactly
 * those afterwards (innermost first), without following symlinks: a step that swapped one for a
 * symlink only loses the symlink (CVE-2024-23652).
 */
class StubTracker {
  private readonly created: string[] = [];

  constructor(private readonly rootfs: string) {}

  async note(target: string): Promise<void> {
    const parts = target.split('/').filter(Boolean);
    let rel = '';
    for (const part of parts) {
      rel = `${rel}/${part}`;
      const host = await resolveInRoot(this.rootfs, rel);
      const exists = await fsp.lstat(host).then(
        () => true,
        () => false,
      );
      if (!exists) {
        if (!this.created.includes(rel)) this.created.push(rel);
        return; // everything below is new too; removing this one removes them
      }
    }
  }

  async removeCreated(): Promise<void> {
    for (const rel of [...this.created].reverse()) {
      const host = path.join(this.rootfs, rel);
      if (!host.startsWith(`${this.rootfs}/`)) continue;
      const st = await fsp.lstat(host).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) await removeEmptyTree(host);
      else await fsp.unlink(host).catch(() => {});
    }
  }
}

/** Removes a directory tree of empty stub directories; keeps anything with real content. */
async function removeEmptyTree(dir: string): Promise<boolean> {
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
  let empty = true;
  for (const e of entries) {
    if (e.isDirectory() && (await removeEmptyTree(path.join(dir, e.name)))) continue;
    if (e.isFile() && (await fsp.stat(path.join(dir, e.name))).size === 0) {
      await fsp.unlink(path.join(dir, e.name));
      continue;
    }
    empty = false;
  }
  if (empty) await fsp.rmdir(dir).catch(() => {});
  return empty;
}

/** Go's %q for the failure message docker prints. */
function goQuote(s: string): string {
  return JSON.stringify(s).replace(/\\u([0-9a-f]{4})/g, (_m, hex: string) => `\\x${hex.slice(2)}`);
}
