// The one place that turns mount plans into syscalls (through @tsbuild/native).
import * as fs from 'node:fs';
import * as native from '@tsbuild/native';
import type { MountFlag } from '@tsbuild/native';
import { isOverlayMount, type Mount, type MountPlan } from './types';
import { isMountPoint } from './mountinfo';

/** Option words of a generic mount that are mount(2) flags rather than filesystem data. */
const FLAG_WORDS: ReadonlySet<string> = new Set<MountFlag>([
  'ro', 'nosuid', 'nodev', 'noexec', 'sync', 'remount', 'bind', 'rec', 'private', 'slave', 'shared',
  'unbindable', 'noatime', 'nodiratime', 'relatime', 'strictatime',
]);

function performOne(m: Mount, defaultTarget: string): void {
  const target = m.target ?? defaultTarget;
  if (isOverlayMount(m)) {
    native.mountOverlay({ lower: m.lower, upper: m.upper, work: m.work, target, options: m.options });
    return;
  }
  const flags = m.options.filter((o) => FLAG_WORDS.has(o)) as MountFlag[];
  const data = m.options.filter((o) => !FLAG_WORDS.has(o)).join(',');
  native.mount({ source: m.source, target, type: m.type, flags, data: data || undefined });
}

/** Creates the mount point and performs every mount of the plan; on failure undoes what it did. */
export function performPlan(plan: MountPlan): void {
  fs.mkdirSync(plan.target, { recursive: true, mode: 0o755 });
  const done: string[] = [];
  try {
    for (const m of plan.mounts) {
      performOne(m, plan.target);
      done.push(m.target ?? plan.target);
    }
  } catch (err) {
    for (const t of done.reverse()) detach(t);
    throw err;
  }
}

/** A lazy unmount: succeeds even when a process still has a cwd or an open file inside. */
export function detach(target: string): void {
  try {
    native.umount(target, { detach: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOENT') throw err; // EINVAL: not a mount point (anymore)
  }
}

/** Detaches every mount stacked on `target`, then removes the (now plain) directory if empty. */
export function unmountAndRemove(target: string, warn: (msg: string) => void): void {
  for (let i = 0; i < 64 && isMountPoint(target); i++) {
    try {
      detach(target);
    } catch (err) {
      warn(`unmounting ${target}: ${(err as Error).message}`);
      return;
    }
  }
  try {
    fs.rmdirSync(target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') warn(`removing mount point ${target}: ${(err as Error).message}`);
  }
}
