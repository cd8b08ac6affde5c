// Per-file fixtures of the tests that start containers (native spawn, the storage runtime): a busybox
// rootfs in a temp dir, processes killed after each test, the file's cgroup parent removed after all.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { makeBusyboxRootfs } from '../../fixtures/busybox';
import { tempRoot } from './temp';

/**
 * A temp dir `tmp` with a busybox rootfs at `rootfs` (plus /bin/notexec, a script without the x bit),
 * made before the file's tests and removed after them.
 */
export function busyboxRootfsPerFile(prefix: string): { tmp: string; rootfs: string } {
  const tmp = tempRoot(prefix);
  const rootfs = path.join(tmp, 'rootfs');
  beforeAll(() => {
    makeBusyboxRootfs(rootfs);
    fs.writeFileSync(path.join(rootfs, 'bin/notexec'), '#!/bin/sh\necho no\n', { mode: 0o644 });
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  return { tmp, rootfs };
}

/** A list to push each started process onto: after each test, every one is stopped by `stop` (errors ignored). */
export function stoppedAfterEach<T>(stop: (p: T) => Promise<unknown>): T[] {
  const started: T[] = [];
  afterEach(async () => {
    for (const p of started.splice(0)) await stop(p).catch(() => undefined);
  });
  return started;
}

/** A list to push file descriptors onto: they are closed after each test. */
export function closedAfterEach(): number[] {
  const fds: number[] = [];
  afterEach(() => {
    for (const fd of fds.splice(0)) fs.closeSync(fd);
  });
  return fds;
}

/** Removes the cgroup `parent` (one of the file's own) from every v1 controller and the v2 tree after the file's tests. */
export function removeCgroupAfterAll(parent: string): void {
  afterAll(() => {
    for (const controller of fs.readdirSync('/sys/fs/cgroup')) {
      try {
        fs.rmdirSync(path.join('/sys/fs/cgroup', controller, parent));
      } catch {
        // not created in this controller
      }
    }
  });
}

/** Polls `cond` (a throw counts as false) every 10 ms until it holds; fails after 5 s. */
export async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    try {
      if (cond()) return;
    } catch {
      // not there yet
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('condition never became true');
}
