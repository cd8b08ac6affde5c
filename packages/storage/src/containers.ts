// Containers: an image's chain plus a read-write layer, mounted, with a process started by the
// runtime from the image config and the caller's overrides. A record per container lives in
// <root>/containers/<id>.json (written atomically); the RW layer is named `ctr-<id>`.
import { requireEmulation } from './runtime/binfmt';
import { configPlatform } from './image/store';
import type { Platform } from './content/types';
import { randomBytes } from '@tsbuild/native';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic, writeFileAtomicVolatileSync, mkdirpSync, unlinkIfExists } from './atomic';
import { isAlive, processToken, tokenOf } from './drivers/proc';
import type { Digest } from './digest';
import type { ContainerExit, RunOptions, RunningContainer, SeccompOption } from './runtime';

import { mergeEnv } from './runtime/env';
import type { Store } from './store';
import type { RWLayer } from './layers';
import { userError } from './errors';

export interface ContainerRecord {
  id: string;
  name: string;
  image: string;
  imageId: string;
  args: string[];
  /** The process environment (image Env with the overrides): what `exec` starts from. */
  env?: string[];
  /** The user the container runs as (`exec` defaults to it). */
  user?: string;
  /** Started detached (`run -d`): output goes to logPath(). */
  detached?: boolean;
  created: string;
  state: 'created' | 'running' | 'exited';
  pid?: number;
  /** `<pid>.<start time>`: tells the container's PID 1 from a later process that got the same pid. */
  pidToken?: string;
  exitCode?: number;
  finished?: string;
  /** docker run --rm: removed when it exits, or by the next open of the store if its tsbuild was killed. */
  autoRemove?: boolean;
  /**
   * The process token of the tsbuild that created an autoRemove container and starts it: if that one
   * dies before the container started (state still `created`), the next open removes the container.
   */
  creator?: string;
  /**
   * The process token of the tsbuild that started the container and records its exit (the CLI, or a
   * detached container's supervisor). While it lives, a running record whose process is gone is an
   * exit about to be recorded, not a container killed with its tsbuild.
   */
  owner?: string;
  /** The confinement the container was started with: `exec` gives its processes the same, as Docker does. */
  security?: ContainerSecurity;
}

export interface ContainerSecurity {
  /** The capability set (bounding = effective = permitted). */
  capabilities: string[];
  seccomp: SeccompOption;
  noNewPrivileges: boolean;
}

/** What a container runs: the image's Entrypoint/Cmd/Env/WorkingDir/User with docker run's overrides. */
export interface ProcessOverrides {
  /** Replaces the image's Cmd (docker run IMAGE CMD...). */
  cmd?: string[];
  /** Replaces the image's Entrypoint (and drops its Cmd unless cmd is given). */
  entrypoint?: string[];
  env?: string[];
  workdir?: string;
  user?: string;
}

/** How a started container ended; `removed` when it was an autoRemove one and is gone already. */
export type FinishedExit = ContainerExit & { removed?: boolean };

export type StartOptions = Omit<RunOptions, 'rootfs' | 'args' | 'env' | 'cwd' | 'user' | 'id'>;

export interface CreateOptions extends ProcessOverrides {
  image: string;
  /** The platform to pick from a multi-platform image (run --platform); checked against a single one. */
  platform?: Platform;
  name?: string;
  autoRemove?: boolean;
}

/** The status of a container whose tsbuild was killed: its PID 1 got SIGKILL with it (parent-death signal). */
const KILLED_WITH_TSBUILD = 128 + 9;

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

export class Containers {
  private readonly dir: string;
  /** RW layers create() made, for start() (`run`): not read back from the store. */
  private readonly created = new Map<string, RWLayer>();

  constructor(private readonly store: Store) {
    this.dir = path.join(store.root, 'containers');
    mkdirpSync(this.dir, 0o700);
  }

  /** Resolves the image, computes the process and creates the RW layer (not mounted yet). */
  async create(opts: CreateOptions): Promise<{ record: ContainerRecord; process: { args: string[]; env: string[]; cwd: string; user: string } }> {
    if (opts.name !== undefined && !NAME_RE.test(opts.name)) {
      throw userError(`invalid container name "${opts.name}": use letters, digits, '_', '.' and '-'`);
    }
    if (opts.name !== undefined && this.list().some((c) => c.name === opts.name)) {
      throw userError(`the container name "${opts.name}" is already in use`);
    }
    const { id: imageId, chainID, config } = await this.store.imageChain(opts.image, opts.platform ? { platform: opts.platform } : {});
    // Another architecture's image runs through binfmt_misc emulation, or fails here in one line.
    requireEmulation(configPlatform(config), `image ${opts.image}: `);
    const c = config.config ?? {};
    const entrypoint = opts.entrypoint ?? c.Entrypoint ?? [];
    const cmd = opts.cmd && opts.cmd.length > 0 ? opts.cmd : opts.entrypoint ? [] : (c.Cmd ?? []);
    const args = [...entrypoint, ...cmd];
    if (args.length === 0) throw userError(`no command specified: image ${opts.image} has no CMD or ENTRYPOINT`);
    const env = mergeEnv(c.Env ?? [], opts.env ?? []);
    const id = randomBytes(32).toString('hex');
    const record: ContainerRecord = {
      id,
      name: opts.name ?? `tsbuild_${id.slice(0, 12)}`,
      image: opts.image,
      imageId,
      args,
      env,
      user: opts.user ?? c.User ?? '',
      created: new Date().toISOString(),
      state: 'created',
      ...(opts.autoRemove ? { autoRemove: true, creator: processToken() } : {}),
    };
    // A --rm container is throwaway: nothing of it may outlive it, so nothing of it is synced (its
    // overlay is volatile, as podman mounts a --rm container's). A kill -9 of tsbuild leaves the
    // records in the page cache, where the next open finds and removes them.
    const name = containerLayerName(id);
    let rw: RWLayer;
    if (opts.autoRemove) {
      // Its record first: a kill -9 before the layer is complete leaves the record of a dead creator,
      // which the next open removes with whatever layer there is (a layer first would stay, unnamed).
      await this.write(record);
      try {
        rw = await this.store.layers.createRW(chainID as Digest | null, name, { volatile: true });
      } catch (err) {
        unlinkIfExists(this.recordPath(id));
        throw err;
      }
    } else {
      rw = await this.store.layers.createRW(chainID as Digest | null, name);
      try {
        await this.write(record);
      } catch (err) {
        await this.store.layers.removeRW(name).catch(() => {});
        throw err;
      }
    }
    this.created.set(id, rw);
    return { record, process: { args, env, cwd: opts.workdir ?? (c.WorkingDir || '/'), user: opts.user ?? c.User ?? '' } };
  }

  /**
   * Mounts the container's rootfs and starts its process. `finished` resolves after the state is saved,
   * or, for an autoRemove container, once it is removed (`removed`).
   */
  async start(
    record: ContainerRecord,
    proc: { args: string[]; env: string[]; cwd: string; user: string },
    opts: StartOptions,
  ): Promise<{ container: RunningContainer; finished: Promise<FinishedExit> }> {
    const rw = this.created.get(record.id) ?? this.store.layers.getRW(containerLayerName(record.id));
    this.created.delete(record.id);
    if (!rw) throw userError(`container ${record.name} has no read-write layer`);
    // Loaded here, not at import: every store open settles orphaned containers, few start one. run.js,
    // not the runtime's index: that loads the seccomp compiler, which the default filter does not need.
    const runtime = await import('./runtime/run.js');
    const rootfs = await rw.mount();
    let container: RunningContainer;
    try {
      container = await runtime.runContainer({
        stateDir: await this.store.scratch('ctr'),
        ...opts,
        rootfs,
        args: proc.args,
        env: proc.env,
        cwd: proc.cwd,
        ...(proc.user ? { user: proc.user } : {}),
        id: record.id,
      });
    } catch (err) {
      await rw.unmount().catch(() => {});
      await this.write({ ...record, state: 'exited', exitCode: (err as { exitCode?: number }).exitCode ?? 125, finished: new Date().toISOString() });
      throw err;
    }
    const pidToken = tokenOf(container.pid);
    const security: ContainerSecurity = {
      capabilities: runtime.capabilitySet(opts.capabilities, opts.privileged),
      seccomp: opts.privileged ? 'unconfined' : (opts.seccomp ?? 'default'),
      noNewPrivileges: opts.noNewPrivileges ?? false,
    };
    await this.write({ ...record, state: 'running', pid: container.pid, ...(pidToken ? { pidToken } : {}), owner: processToken(), security });
    const finished = container.wait().then(async (exit): Promise<FinishedExit> => {
      await rw.unmount().catch(() => {});
      if (record.autoRemove && (await this.removeExited(record, rw.name))) return { ...exit, removed: true };
      await this.write({ ...record, state: 'exited', exitCode: exit.exitCode, finished: new Date().toISOString() });
      return exit;
    });
    return { container, finished };
  }

  /**
   * A --rm container that exited goes at once, with what start() knows: no record of its exit is
   * written, the RW layer is not looked up or unmounted again, and no other record is read. The RW
   * layer goes first and the record last, as in remove(): a kill -9 in between leaves the record of
   * a dead container, which the next open removes (settleOrphans). False when the layer stays (still
   * mounted): the caller records the exit instead.
   */
  private async removeExited(record: ContainerRecord, rwName: string): Promise<boolean> {
    try {
      await this.store.layers.removeRW(rwName, { inline: true });
    } catch {
      return false;
    }
    unlinkIfExists(this.logPath(record.id));
    unlinkIfExists(this.recordPath(record.id));
    return true;
  }

  list(): ContainerRecord[] {
    const out: ContainerRecord[] = [];
    for (const f of fs.readdirSync(this.dir)) {
      if (!f.endsWith('.json')) continue;
      try {
        const r = JSON.parse(fs.readFileSync(path.join(this.dir, f), 'utf8')) as ContainerRecord;
        // A record left "running" by a killed tsbuild: its process died with it (PDEATHSIG).
        if (killedWithItsTsbuild(r)) Object.assign(r, { state: 'exited', exitCode: KILLED_WITH_TSBUILD });
        out.push(r);
      } catch {
        // A torn record cannot exist (atomic writes); anything unreadable is not ours.
      }
    }
    return out.sort((a, b) => b.created.localeCompare(a.created));
  }

  find(idOrName: string): ContainerRecord {
    const all = this.list();
    const match = all.filter((c) => c.name === idOrName || c.id === idOrName || (idOrName.length >= 4 && c.id.startsWith(idOrName)));
    if (match.length === 0) throw userError(`no such container: ${idOrName}`);
    if (match.length > 1) throw userError(`container ${idOrName} is ambiguous: ${match.map((c) => c.name).join(', ')}`);
    return match[0]!;
  }

  /** Removes the container's RW layer and record; a running one needs `force` (it is killed). */
  async remove(idOrName: string, opts: { force?: boolean } = {}): Promise<ContainerRecord> {
    const record = this.find(idOrName);
    if (record.state === 'running' && runningNow(record)) {
      if (!opts.force) throw userError(`container ${record.name} is running: stop it or use --force`);
      process.kill(record.pid!, 'SIGKILL');
      for (let i = 0; i < 100 && runningNow(record); i++) await new Promise((r) => setTimeout(r, 20));
    }
    const rw = this.store.layers.getRW(containerLayerName(record.id));
    if (rw) {
      await rw.unmount().catch(() => {});
      await this.store.layers.removeRW(containerLayerName(record.id));
    }
    fs.rmSync(this.logPath(record.id), { force: true });
    fs.rmSync(this.recordPath(record.id), { force: true });
    return record;
  }

  /**
   * Settles containers whose tsbuild was killed: the record says exited 137 (it was killed), and a
   * --rm one is removed with its RW layer (their groups went with the dead tsbuild's state dir, removed
   * just before: Store.repairLeftovers). Run when the store opens.
   */
  async settleOrphans(): Promise<void> {
    for (const f of fs.readdirSync(this.dir)) {
      if (!f.endsWith('.json')) continue;
      let record: ContainerRecord;
      try {
        record = JSON.parse(fs.readFileSync(path.join(this.dir, f), 'utf8')) as ContainerRecord;
      } catch {
        continue;
      }
      if (record.state === 'created') {
        // A --rm container whose tsbuild was killed before it started: nobody will start it.
        if (record.autoRemove && record.creator !== undefined && !isAlive(record.creator)) await this.remove(record.id).catch(() => {});
        continue;
      }
      if (!killedWithItsTsbuild(record)) continue;
      if (record.autoRemove) await this.remove(record.id, { force: true }).catch(() => {});
      else await this.write({ ...record, state: 'exited', exitCode: KILLED_WITH_TSBUILD, finished: new Date().toISOString() });
    }
  }

  /** Where a detached container's output goes (`logs`). */
  logPath(id: string): string {
    return path.join(this.dir, `${id}.log`);
  }

  /** Marks a created container as detached before it starts (its output goes to logPath()). */
  async markDetached(record: ContainerRecord): Promise<ContainerRecord> {
    // Its supervisor, another process, starts it: the creator's exit says nothing then.
    const { creator: _creator, ...rest } = record;
    const next = { ...rest, detached: true };
    await this.write(next);
    return next;
  }

  private async write(record: ContainerRecord): Promise<void> {
    const file = this.recordPath(record.id);
    if (!record.autoRemove) return writeFileAtomic(file, JSON.stringify(record));
    writeFileAtomicVolatileSync(file, JSON.stringify(record)); // no fsyncs: see create()
  }

  private recordPath(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }
}

/** The RW layer of container `id`. */
export function containerLayerName(id: string): string {
  return `ctr-${id.slice(0, 32)}`;
}

/** Whether the record's PID 1 still runs: the same pid and the same start time, never a reused pid. */
function runningNow(record: ContainerRecord): boolean {
  return record.pidToken !== undefined && isAlive(record.pidToken);
}

/**
 * A record left "running" by a tsbuild that died: its process is gone (PDEATHSIG) and so is the owner
 * that would record the exit. With the owner alive, the exit is being recorded (`wait` read 137 for a
 * container that exited 0 in the moment between its exit and its supervisor's record of it).
 */
function killedWithItsTsbuild(record: ContainerRecord): boolean {
  return record.state === 'running' && !runningNow(record) && !(record.owner !== undefined && isAlive(record.owner));
}

export { mergeEnv };
