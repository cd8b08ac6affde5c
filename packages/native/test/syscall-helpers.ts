// Helpers shared by the native syscall tests (mount, overlay, fsops).
import { expect } from 'vitest';
import * as fs from 'node:fs';
import { binding, type NativeBinding } from '../src/binding';
import { umount } from '../src/mount';

/** Calls fn with the addon's function `name` replaced by a spy, to prove C++ was never reached. */
export async function withoutNative(name: keyof NativeBinding, fn: () => void | Promise<void>): Promise<void> {
  const addon = binding as unknown as Record<string, unknown>;
  const real = addon[name];
  let called = false;
  addon[name] = () => {
    called = true;
  };
  try {
    await fn();
  } finally {
    addon[name] = real;
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
export async function cleanUp(dir: string): Promise<void> {
  const mine = mountTargets().filter((target) => target === dir || target.startsWith(dir + '/')).reverse();
  for (const target of mine) await umount(target, { detach: true });
  fs.rmSync(dir, { recursive: true, force: true });
}

/** The error a promise rejects with (fails the test when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; errno?: number; syscall?: string; path?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}
