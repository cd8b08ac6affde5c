// Helpers shared by the native syscall tests (mount, overlay, fsops).
import { expect } from 'vitest';
import * as fs from 'node:fs';
import { binding } from '../src/binding';
import { umount } from '../src/mount';

/** Calls fn with the addon's function `name` replaced by a spy, to prove C++ was never reached. */
export function withoutNative(name: string, fn: () => void): void {
  const real = binding[name];
  let called = false;
  binding[name] = () => {
    called = true;
  };
  try {
    fn();
  } finally {
    binding[name] = real;
  }
  expect(called).toBe(false);
}

function mountTargets(): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((line) => line.split(' ')[4]!);
}

/** The /proc/self/mountinfo line of the mount at target, if any. */
export function mountLine(target: string): string | undefined {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((line) => line.split(' ')[4] === target);
}

/** Unmounts (lazily) whatever a test left mounted under dir, innermost first, then removes dir. */
export function cleanUp(dir: string): void {
  const mine = mountTargets().filter((target) => target === dir || target.startsWith(dir + '/')).reverse();
  for (const target of mine) umount(target, { detach: true });
  fs.rmSync(dir, { recursive: true, force: true });
}
