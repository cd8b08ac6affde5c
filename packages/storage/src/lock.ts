// Store locks: whole-file flock(2) for other processes plus an in-process reader/writer queue, since
// flock is per open file description and one process shares one description per lock file.
//
// Never blocks the event loop: a non-blocking flock is tried first, and only when another process
// holds the lock do we wait on flockWait (which blocks a worker thread, not the loop).
//
// Reentrancy: the locks held by the current async call chain are tracked in AsyncLocalStorage, so a
// withShared/withExclusive nested inside a withExclusive (or a withShared inside a withShared) of the
// same lock just runs. Upgrading shared → exclusive in one chain would deadlock and throws instead.
//
// Lock order (fixed, like containers/storage's graph → layers → images → containers): a process
// takes the layer store's lock before the image store's lock, and never the other way round. The
// image store therefore calls layer-store callbacks (onImageDeleted) only after releasing its lock.
import { AsyncLocalStorage } from 'node:async_hooks';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as native from '@tsbuild/native';
import { mkdirpSync } from './atomic';

export type LockMode = 'shared' | 'exclusive';

interface Waiter {
  mode: LockMode;
  grant: () => void;
}

/** In-process state of one lock file, shared by every StoreLock on the same path. */
class LockFile {
  private fd: number | null = null;
  private holders = 0;
  private mode: LockMode | null = null;
  /** Resolves when the flock for the current holders is in place. */
  private osLock: Promise<void> | null = null;
  private readonly queue: Waiter[] = [];

  constructor(readonly file: string) {}

  /** The fd of the lock file, reopened if the file was removed or replaced since we opened it. */
  private openFd(): number {
    if (this.fd !== null && !this.stillCurrent(this.fd)) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
    if (this.fd === null) {
      mkdirpSync(path.dirname(this.file));
      this.fd = fs.openSync(this.file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    }
    return this.fd;
  }

  private stillCurrent(fd: number): boolean {
    try {
      const a = fs.fstatSync(fd);
      const b = fs.statSync(this.file);
      return a.ino === b.ino && a.dev === b.dev;
    } catch {
      return false;
    }
  }

  private canGrant(mode: LockMode): boolean {
    if (this.holders === 0) return true;
    // Readers join readers only while no writer waits (writers do not starve).
    return mode === 'shared' && this.mode === 'shared' && !this.queue.some((w) => w.mode === 'exclusive');
  }

  async acquire(mode: LockMode): Promise<void> {
    if (this.canGrant(mode) && this.queue.length === 0) this.grant(mode);
    else await new Promise<void>((resolve) => this.queue.push({ mode, grant: resolve }));
    try {
      await this.osLock;
    } catch (err) {
      this.release();
      throw err;
    }
  }

  /** Marks one more in-process holder; the first one starts taking the flock. */
  private grant(mode: LockMode): void {
    if (this.holders === 0) {
      this.mode = mode;
      this.osLock = this.takeFlock(mode);
      this.osLock.catch(() => {}); // awaited by every holder; avoid an unhandled rejection
    }
    this.holders++;
  }

  private async takeFlock(mode: LockMode): Promise<void> {
    for (;;) {
      const fd = this.openFd();
      if (!native.flock(fd, mode, { nonBlocking: true })) await native.flockWait(fd, mode);
      // If the file was replaced while we waited, we hold a lock nobody else sees: take it again.
      if (this.stillCurrent(fd)) return;
      native.flock(fd, 'unlock', { nonBlocking: true });
    }
  }

  release(): void {
    this.holders--;
    if (this.holders > 0) return;
    if (this.fd !== null) {
      try {
        native.flock(this.fd, 'unlock', { nonBlocking: true });
      } catch {
        // Unlocking a lock we failed to take; nothing is held.
      }
    }
    this.mode = null;
    this.osLock = null;
    // Wake the next writer, or every reader at the head of the queue.
    while (this.queue.length > 0 && this.canGrant(this.queue[0]!.mode)) {
      const w = this.queue.shift()!;
      this.grant(w.mode);
      w.grant();
      if (w.mode === 'exclusive') break;
    }
  }
}

const lockFiles = new Map<string, LockFile>();
const heldLocks = new AsyncLocalStorage<ReadonlyMap<LockFile, LockMode>>();

export class StoreLock {
  private readonly lockFile: LockFile;

  /** A lock on `file` (created if missing). Instances on the same path share their state. */
  constructor(file: string) {
    const key = path.resolve(file);
    let lf = lockFiles.get(key);
    if (!lf) {
      lf = new LockFile(key);
      lockFiles.set(key, lf);
    }
    this.lockFile = lf;
  }

  get path(): string {
    return this.lockFile.file;
  }

  withShared<T>(fn: () => Promise<T> | T): Promise<T> {
    return this.with('shared', fn);
  }

  withExclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    return this.with('exclusive', fn);
  }

  /** The mode this async call chain holds, if any. */
  heldMode(): LockMode | undefined {
    return heldLocks.getStore()?.get(this.lockFile);
  }

  private async with<T>(mode: LockMode, fn: () => Promise<T> | T): Promise<T> {
    const held = heldLocks.getStore();
    const current = held?.get(this.lockFile);
    if (current === 'exclusive' || (current === 'shared' && mode === 'shared')) return fn();
    if (current === 'shared') {
      throw new Error(`lock ${this.lockFile.file}: cannot take it exclusively while holding it shared (would deadlock)`);
    }
    await this.lockFile.acquire(mode);
    const next = new Map(held ?? []);
    next.set(this.lockFile, mode);
    try {
      return await heldLocks.run(next, fn);
    } finally {
      this.lockFile.release();
    }
  }
}
