// RUN: the command in a container on the step's work layer, with BuildKit's defaults (host network
// unless --network=none, no_new_privs off, Docker's capabilities) and its --mount kinds. Mount points
// and the /etc files the runtime binds are stubs: the ones that did not exist before are removed after
// the run, so they never reach the layer.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { createHash, flock, flockWait, randomBytes } from '@tsbuild/native';
import { mkdirExactModeAsync, mkdirp, mkdirpExactMode, requireEmulation, resolveInRoot, writeFileExactModeAsync } from '@tsbuild/storage';
import { planRun, type RunInstruction, type RunMount } from '../../dockerfile';
import type { RunMountRequest } from '../backend';
import type { SourceEntry } from '../../context';
import { BuildError, lineMessage } from '../errors';
import { DEFAULT_SHELL, type ImageConfig } from '../image-config';
import type { CopySources } from './copy';
import type { ExecContext, LayerExecutor, PlanContext } from './executor';

/** RUN --mount=type=bind sources in the context, by mount target: in the key, and what is mounted. */
type ContextBinds = Map<string, CopySources> | undefined;

export const runExecutor: LayerExecutor<'run', ContextBinds> = {
  layer: true,

  async plan(instr, ctx) {
    // A RUN for a platform this host cannot execute fails here, before any layer is made.
    try {
      requireEmulation(ctx.platform);
    } catch (err) {
      throw new BuildError(lineMessage(instr.startLine, (err as Error).message));
    }
    await checkMounts(instr, ctx);
    return planContextBinds(instr, ctx);
  },

  async keyParts(step, ctx) {
    const { instr, configBefore } = step;
    const config = configBefore.config;
    const parts: Record<string, string> = { env: JSON.stringify(step.keyEnv) };
    if (step.planned) parts.content = JSON.stringify([...step.planned].map(([target, b]) => [target, b.contentDigest]));
    parts.user = config.User ?? '';
    parts.workdir = config.WorkingDir ?? '';
    parts.shell = JSON.stringify(config.Shell ?? DEFAULT_SHELL);
    parts.network = ctx.network;
    parts.mounts = JSON.stringify(instr.mounts ?? []);
    const froms = (instr.mounts ?? []).map((m) => ('from' in m ? m.from : '')).filter(Boolean);
    if (froms.length > 0) parts.from = JSON.stringify(await Promise.all(froms.map((f) => ctx.chainOf(f))));
    // Absent for this host's platform, so keys made before multi-platform builds stay valid.
    if (ctx.foreignPlatform !== undefined) parts.platform = ctx.foreignPlatform;
    return parts;
  },

  execute(step, rootfs, ctx) {
    const binds = step.planned;
    const run: RunContext = {
      ...ctx,
      contextBind: (target) => {
        const planned = binds?.get(target);
        return planned ? { entries: planned.entries, filtered: ctx.contextFiltered } : undefined;
      },
    };
    return runStep(run, rootfs, step.instr, step.runEnv, step.configBefore);
  },

  history({ instr, args }) {
    const declared = args.length > 0 ? `|${args.length} ${args.join(' ')} ` : '';
    return `RUN ${declared}${instr.prependShell ? '/bin/sh -c ' : ''}${instr.cmdLine.join(' ')}`;
  },
};

/** Mount sources (stages, images), required secrets, and the entitlement --security=insecure needs. */
async function checkMounts(instr: RunInstruction, ctx: PlanContext): Promise<void> {
  for (const m of instr.mounts ?? []) {
    const from = 'from' in m ? m.from : '';
    if (from) await ctx.dependOn(from, instr.startLine);
    if (m.type === 'secret' && m.required && !ctx.secrets[m.id]) {
      throw new BuildError(lineMessage(instr.startLine, `secret ${m.id} is required but was not provided (--secret id=${m.id},src=FILE)`));
    }
    if (m.type === 'ssh') {
      throw new BuildError(lineMessage(instr.startLine, 'RUN --mount=type=ssh is not supported by tsbuild yet'));
    }
  }
  if (instr.security === 'insecure' && !ctx.allow.includes('security.insecure')) {
    throw new BuildError(lineMessage(instr.startLine, 'RUN --security=insecure needs the security.insecure entitlement: pass --allow security.insecure'));
  }
}

async function planContextBinds(instr: RunInstruction, ctx: PlanContext): Promise<ContextBinds> {
  const binds = (instr.mounts ?? []).filter((m) => m.type === 'bind' && !m.from);
  if (binds.length === 0) return undefined;
  const out = new Map<string, CopySources>();
  for (const m of binds) {
    if (m.type !== 'bind') continue;
    try {
      out.set(m.target, await (await ctx.contextSources()).planBind(m.source));
    } catch (err) {
      throw new BuildError(lineMessage(instr.startLine, `--mount=type=bind,source=${m.source}: ${(err as Error).message}`));
    }
  }
  return out;
}

interface RunContext extends ExecContext {
  /** What a context bind at this target mounts (planned: .dockerignore applied, in the key). */
  contextBind(target: string): { entries: SourceEntry[]; filtered: boolean } | undefined;
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

async function runStep(ctx: RunContext, rootfs: string, instr: RunInstruction, env: string[], config: ImageConfig): Promise<void> {
  const shell = config.config.Shell && config.config.Shell.length > 0 ? config.config.Shell : undefined;
  const plan = planRun(instr, shell);
  const cleanups: (() => Promise<void>)[] = [];
  const scratch = await ctx.backend.scratch('run');
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
      // Read by the step's user, whatever the caller's umask.
      await mkdirExactModeAsync(dir, 0o755);
      await writeFileExactModeAsync(path.join(dir, plan.scriptFile.name), plan.scriptFile.data, 0o755);
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
      // BuildKit's insecure mode is a privileged container (all capabilities, no seccomp, no masks).
      ...(instr.security === 'insecure' ? { privileged: true } : {}),
      ...(ctx.seccomp !== undefined ? { seccomp: ctx.seccomp } : {}),
      stdout,
      stderr,
      signal: ctx.signal,
      ...(ctx.runtime ? { runtime: ctx.runtime } : {}),
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
      const base = path.join(ctx.cacheMountsDir, createHash('sha256').update(m.id).digest('hex'));
      await mkdirp(ctx.cacheMountsDir, 0o700);
      const dir = await claimCacheDir(base, m.sharing, cleanups);
      const created = await mkdirp(dir);
      if (created) {
        await fsp.chown(dir, m.uid, m.gid);
        await fsp.chmod(dir, m.mode);
      }
      return { type: 'bind', source: dir, target: m.target, readonly: m.readOnly };
    }
    case 'tmpfs':
      return { type: 'tmpfs', target: m.target, ...(m.size ? { size: m.size } : {}) };
    case 'bind': {
      const planned = m.from ? undefined : ctx.contextBind(m.target);
      if (planned && planned.filtered) {
        // The context as .dockerignore leaves it, as BuildKit sends it: a private view of the entries.
        const view = path.join(scratch, `ctx-${randomBytes(4).toString('hex')}`);
        await materialize(planned.entries, view, m.readOnly);
        return { type: 'bind', source: view, target: m.target, readonly: m.readOnly };
      }
      let root = ctx.contextDir;
      if (m.from) {
        const view = await ctx.viewOf(m.from);
        cleanups.push(() => view.release());
        root = view.rootfs;
      }
      const source = await resolveInRoot(root, m.source || '/', { followFinal: true, escape: 'clamp' });
      if (!m.readOnly) {
        // rw binds keep their writes to this step: give the step a private copy.
        const copy = path.join(scratch, `bind-${randomBytes(4).toString('hex')}`);
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
      // Bytes as given: a secret may be binary (a key file); only an env secret is text.
      const value = given.env !== undefined ? Buffer.from(process.env[given.env] ?? '') : await readSecret(given.src!, m.id);
      if (m.env) env.push(`${m.env}=${value.toString('utf8')}`);
      if (!m.target) return undefined;
      const file = path.join(scratch, `secret-${randomBytes(4).toString('hex')}`);
      await writeFileExactModeAsync(file, value, m.mode);
      await fsp.chown(file, m.uid, m.gid);
      return { type: 'bind', source: file, target: m.target, readonly: true };
    }
    default:
      throw new BuildError(`RUN --mount=type=${(m as { type: string }).type} is not supported`);
  }
}

/**
 * Builds a view of context entries: directories, symlinks, and files hard-linked in when the view is
 * mounted read-only (cheap), copied when the step may write to it (the context must not change).
 */
async function materialize(entries: SourceEntry[], dest: string, linkFiles: boolean): Promise<void> {
  for (const entry of entries) {
    const root = entry.root.type === 'dir' ? dest : path.join(dest, path.posix.basename(entry.matchedPath));
    for (const item of entry.items) {
      const target = item.rel === '' ? root : path.join(root, item.rel);
      if (item.type === 'dir') {
        await mkdirpExactMode(target, 0o755);
        await fsp.chmod(target, item.mode & 0o7777);
      } else if (item.type === 'symlink') await fsp.symlink(item.linkTarget ?? '', target);
      else if (item.type === 'file') {
        await mkdirpExactMode(path.dirname(target), 0o755);
        if (linkFiles) await fsp.link(item.absPath, target).catch(() => fsp.copyFile(item.absPath, target));
        else await fsp.copyFile(item.absPath, target);
      }
    }
  }
}

/**
 * BuildKit's cache `sharing`: `shared` lets concurrent steps use the directory together, `locked`
 * makes them wait for each other, `private` gives a concurrent step a directory of its own. Locks are
 * flocks on `<dir>.lock`, held until the step ends (and dropped by the kernel if tsbuild dies).
 */
async function claimCacheDir(base: string, sharing: string, cleanups: (() => Promise<void>)[]): Promise<string> {
  if (sharing === 'shared') return base;
  const hold = (fd: number) =>
    cleanups.push(async () => {
      flock(fd, 'unlock');
      fs.closeSync(fd);
    });
  if (sharing === 'locked') {
    const fd = fs.openSync(`${base}.lock`, 'a', 0o600);
    await flockWait(fd, 'exclusive');
    hold(fd);
    return base;
  }
  for (let n = 0; ; n++) {
    const dir = n === 0 ? base : `${base}-${n}`;
    const fd = fs.openSync(`${dir}.lock`, 'a', 0o600);
    if (flock(fd, 'exclusive', { nonBlocking: true })) {
      hold(fd);
      return dir;
    }
    fs.closeSync(fd);
  }
}

async function readSecret(src: string, id: string): Promise<Buffer> {
  try {
    return await fsp.readFile(src);
  } catch (err) {
    throw new BuildError(`secret ${id}: cannot read ${src}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * Remembers the mount-point paths that are missing before the run (the runtime creates them as empty
 * files or directories) and removes exactly those afterwards, deepest first. Removal happens after
 * every process of the container has died (its PID namespace is gone), and only along a path that is
 * still plain directories inside the rootfs: if the step swapped a component for a symlink, the stub
 * stays rather than the host being touched (CVE-2024-23652). Only empty stubs go: whatever the step
 * wrote into a stub directory is kept.
 */
class StubTracker {
  /** Host paths of created stubs, parents before children. */
  private readonly created: string[] = [];

  constructor(private readonly rootfs: string) {}

  async note(target: string): Promise<void> {
    const parts = target.split('/').filter((p) => p !== '' && p !== '.');
    for (let i = 0; i < parts.length; i++) {
      // Existing components are followed as the container would follow them (inside the rootfs).
      const host = await resolveInRoot(this.rootfs, `/${parts.slice(0, i + 1).join('/')}`, { followFinal: true });
      if (await exists(host)) continue;
      // From here down everything is created by the runtime.
      let p = host;
      for (let j = i; j < parts.length; j++) {
        if (j > i) p = path.join(p, parts[j]!);
        if (!this.created.includes(p)) this.created.push(p);
      }
      return;
    }
  }

  async removeCreated(): Promise<void> {
    for (const host of [...this.created].reverse()) {
      if (!(await plainPathInside(this.rootfs, host))) continue;
      const st = await fsp.lstat(host).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) await fsp.rmdir(host).catch(() => {}); // not empty: the step wrote there
      else if (st.isFile() && st.size === 0) await fsp.unlink(host);
    }
  }
}

async function exists(p: string): Promise<boolean> {
  return fsp.lstat(p).then(
    () => true,
    () => false,
  );
}

/** True when `host` is below `root` and every directory between them is a real directory. */
async function plainPathInside(root: string, host: string): Promise<boolean> {
  if (!host.startsWith(`${root}/`)) return false;
  let dir = root;
  for (const part of path.relative(root, path.dirname(host)).split('/').filter(Boolean)) {
    dir = path.join(dir, part);
    const st = await fsp.lstat(dir).catch(() => undefined);
    if (!st || !st.isDirectory()) return false;
  }
  return true;
}

/** Go's %q for the failure message docker prints. */
function goQuote(s: string): string {
  return JSON.stringify(s).replace(/\\u([0-9a-f]{4})/g, (_m, hex: string) => `\\x${hex.slice(2)}`);
}
