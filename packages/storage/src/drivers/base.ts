// What every driver shares: refcounted get/put around a mount plan, a per-layer in-process mutex, and
// the bookkeeping cleanup() needs to put back every get() of this process.
import * as fs from 'node:fs';
import type { Readable } from 'node:stream';
import type { Digest } from '../digest';
import { checkLayerId } from './ids';
import { isMountPoint } from './mountinfo';
import { performPlan, unmountAndRemove } from './perform';
import type {
  DriverCreateOptions, DiffOptions, Driver, DriverName, DriverRemoveOptions, MountCounter, MountPlan, RepairReport,
} from './types';

/** Runs async functions one at a time per key. */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T> | T): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/** The default counter: this process only. */
export class MemoryMountCounter implements MountCounter {
  private readonly counts = new Map<string, number>();
  increment(id: string): number {
    const n = (this.counts.get(id) ?? 0) + 1;
    this.counts.set(id, n);
    return n;
  }
  decrement(id: string): number {
    const n = Math.max(0, (this.counts.get(id) ?? 0) - 1);
    if (n === 0) this.counts.delete(id);
    else this.counts.set(id, n);
    return n;
  }
}

export interface DriverOptions {
  /** Where non-fatal problems go (a failed lazy unmount, a leftover mount point). */
  warn?: ((message: string) => void) | undefined;
}

export function defaultWarn(message: string): void {
  process.emitWarning(message, { type: 'TsbuildStorageWarning' });
}

export abstract class BaseDriver implements Driver {
  abstract readonly name: DriverName;
  protected counter: MountCounter = new MemoryMountCounter();
  /** get()s of this process not yet put back, per id (for cleanup). */
  private readonly own = new Map<string, number>();
  protected readonly mutex = new KeyedMutex();
  protected readonly warn: (message: string) => void;

  constructor(
    readonly root: string,
    opts: DriverOptions = {},
  ) {
    this.warn = opts.warn ?? defaultWarn;
  }

  abstract create(id: string, parent: string | null, opts?: DriverCreateOptions): Promise<void>;
  abstract remove(id: string, opts?: DriverRemoveOptions): Promise<void>;
  abstract exists(id: string): boolean;
  abstract list(): string[];
  abstract mounts(id: string): MountPlan;
  abstract commit(id: string): Promise<void>;
  abstract diffPath(id: string): string;
  abstract diff(id: string, opts?: DiffOptions): Readable;
  abstract applyDiff(id: string, tar: Readable): Promise<{ diffID: Digest; size: number }>;
  abstract repair(inUse: (id: string) => boolean): Promise<RepairReport>;
  abstract needsRepair(): boolean;

  setMountCounter(counter: MountCounter): void {
    this.counter = counter;
  }

  protected requireLayer(id: string): void {
    checkLayerId(id);
    if (!this.exists(id)) throw new Error(`${this.name}: layer ${id} does not exist`);
  }

  isMounted(id: string): boolean {
    const plan = this.mounts(id);
    return plan.mounts.length > 0 && isMountPoint(plan.target);
  }

  /** Driver-specific preparation right before the plan is performed (e.g. volatile's incompat dir). */
  protected beforeMount(_id: string, _plan: MountPlan): void {}

  async get(id: string): Promise<string> {
    this.requireLayer(id);
    return this.mutex.run(id, async () => {
      const plan = this.mounts(id);
      await this.counter.increment(id);
      this.own.set(id, (this.own.get(id) ?? 0) + 1);
      if (plan.mounts.length > 0 && !isMountPoint(plan.target)) {
        try {
          this.beforeMount(id, plan);
          await performPlan(plan);
        } catch (err) {
          await this.counter.decrement(id);
          this.dropOwn(id);
          throw new Error(`${this.name}: mounting layer ${id} at ${plan.target}: ${(err as Error).message}`, { cause: err });
        }
      }
      return plan.target;
    });
  }

  async put(id: string): Promise<void> {
    checkLayerId(id);
    await this.mutex.run(id, async () => {
      const n = await this.counter.decrement(id);
      this.dropOwn(id);
      if (n > 0 || !this.exists(id)) return this.counter.settled?.(id);
      const plan = this.mounts(id);
      if (plan.mounts.length > 0) await unmountAndRemove(plan.target, this.warn);
      // A mount point left in place (the detach failed) stays unsettled: a repair looks at it later.
      if (plan.mounts.length === 0 || !fs.existsSync(plan.target)) await this.counter.settled?.(id);
    });
  }

  private dropOwn(id: string): void {
    const n = (this.own.get(id) ?? 0) - 1;
    if (n > 0) this.own.set(id, n);
    else this.own.delete(id);
  }

  /** Whether this process holds get()s on `id`. */
  protected heldHere(id: string): boolean {
    return (this.own.get(id) ?? 0) > 0;
  }

  protected forgetOwn(id: string): void {
    this.own.delete(id);
  }

  async cleanup(): Promise<void> {
    for (const [id, n] of [...this.own]) {
      for (let i = 0; i < n; i++) {
        try {
          await this.put(id);
        } catch (err) {
          this.warn(`${this.name}: releasing layer ${id}: ${(err as Error).message}`);
        }
      }
    }
  }
}

/** Deletes a driver's `-removing` tree: on the pool, or inline (DriverRemoveOptions). */
export async function removeDoomed(doomed: string, opts: DriverRemoveOptions = {}): Promise<void> {
  if (opts.inline) fs.rmSync(doomed, { recursive: true, force: true });
  else await fs.promises.rm(doomed, { recursive: true, force: true });
}

/** A small text file's trimmed content, or null when it does not exist. */
export function readTextOrNull(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Creates an empty marker file (or leaves an existing one). */
export function touch(file: string): void {
  fs.closeSync(fs.openSync(file, 'a', 0o644));
}
